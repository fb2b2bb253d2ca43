"""Radial velocities by cross-correlation, and the shift of each spectrum to its rest frame.

Stellar physics does not depend on the star's velocity, but an observed spectrum's
lines move with it; left in, RV becomes the dominant factor of a latent space and of
its neighbours, and a label network must learn every label at every shift. So both
networks see rest-frame spectra, and RV is measured here and carried separately.

On the log-uniform model grid a velocity is a pixel shift, so each spectrum is
cross-correlated (FFT) with a template built from the training sample itself: the
median absorption spectrum, re-aligned and rebuilt a few times. The template is stored
with the model (a buffer of the network), so every later measurement has the same zero
point; velocities are relative to it (the synthetic and real archives have no common
absolute standard, and mutual information is shift-invariant). Everything runs in
torch, so it runs on the GPU with the networks.
"""

from __future__ import annotations

import torch

MAX_KMS = 400.0  # search window of the cross-correlation


def absorption(flux: torch.Tensor, ivar: torch.Tensor) -> torch.Tensor:
    """Line depth (1 - normalised flux), 0 at bad pixels, mean removed per row."""
    signal = torch.where(ivar > 0, 1.0 - flux, torch.zeros_like(flux))
    return signal - signal.mean(dim=1, keepdim=True)


def lags(signal: torch.Tensor, template: torch.Tensor, max_lag: int) -> torch.Tensor:
    """Sub-pixel shift of each row relative to ``template`` (peak of the FFT cross-correlation
    with a parabola through its three highest samples); row(n) ~ template(n - lag)."""
    n = signal.shape[1]
    cc = torch.fft.irfft(torch.fft.rfft(signal, dim=1)
                         * torch.conj(torch.fft.rfft(template))[None, :], n=n, dim=1)
    offsets = torch.cat([torch.arange(0, max_lag + 1), torch.arange(-max_lag, 0)]).to(
        signal.device)
    window = cc[:, offsets % n]
    best = window.argmax(dim=1)
    rows = torch.arange(len(best), device=signal.device)
    left = window[rows, (best - 1) % len(offsets)]
    mid = window[rows, best]
    right = window[rows, (best + 1) % len(offsets)]
    denom = left - 2 * mid + right
    offset = torch.where(denom < 0, 0.5 * (left - right) / torch.where(denom < 0, denom, -1.0),
                         torch.zeros_like(denom))
    return offsets[best].to(signal.dtype) + offset.clamp(-0.5, 0.5)


def shift(flux: torch.Tensor, ivar: torch.Tensor, pixels: torch.Tensor,
          fill: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """out(n) = in(n + pixels) by linear interpolation; pixels shifted in from outside the
    grid, or next to a bad pixel, get ivar 0 and flux ``fill`` (the continuum).

    The shift is one number per row, so its whole and fractional parts are per row too:
    one gather of n + 1 samples per array gives both interpolation neighbours (a
    per-pixel floor and four gathers cost ~4x as much, and rounded ``n + pixels``
    in float32 at large n).
    """
    n = flux.shape[1]
    whole = pixels.floor()
    frac = (pixels - whole).to(flux.dtype)[:, None]
    left = torch.arange(n + 1, device=flux.device)[None, :] + whole.long()[:, None]
    index = left.clamp(0, n - 1)
    f, iv = torch.gather(flux, 1, index), torch.gather(ivar, 1, index)
    iv_lo, iv_hi = iv[:, :-1], iv[:, 1:]
    good = (left[:, :-1] >= 0) & (left[:, 1:] < n) & (iv_lo > 0) & (iv_hi > 0)
    value = f[:, :-1] * (1 - frac) + f[:, 1:] * frac
    var = (1 - frac) ** 2 / iv_lo.clamp_min(1e-30) + frac**2 / iv_hi.clamp_min(1e-30)
    out_ivar = torch.where(good, 1.0 / var.clamp_min(1e-30), torch.zeros_like(var))
    return torch.where(good, value, torch.full_like(value, fill)), out_ivar


def max_lag(n_pixels: int, velocity_step: float) -> int:
    """Largest shift (pixels) the cross-correlation tries: ``MAX_KMS``, at most a quarter
    of the spectrum.
    """
    return max(1, min(int(MAX_KMS / velocity_step), n_pixels // 4))


def build_template(flux: torch.Tensor, ivar: torch.Tensor, velocity_step: float,
                   iterations: int = 3) -> torch.Tensor:
    """Median absorption spectrum of a sample, aligned on itself ``iterations`` times."""
    signal = absorption(flux, ivar)
    template = signal.median(dim=0).values
    window = max_lag(flux.shape[1], velocity_step)
    for _ in range(iterations):
        aligned, _ = shift(signal, torch.ones_like(signal), lags(signal, template, window), 0.0)
        template = (aligned - aligned.mean(dim=1, keepdim=True)).median(dim=0).values
    return template - template.mean()


def to_rest_frame(flux: torch.Tensor, ivar: torch.Tensor, template: torch.Tensor,
                  velocity_step: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(rest-frame flux, rest-frame ivar, RV in km/s) of normalised spectra."""
    lag = lags(absorption(flux, ivar), template, max_lag(flux.shape[1], velocity_step))
    rest_flux, rest_ivar = shift(flux, ivar, lag)
    return rest_flux, rest_ivar, lag * velocity_step
