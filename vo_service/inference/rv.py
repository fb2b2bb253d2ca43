"""The RV measurement and rest-frame shift of ``ml.rv``, in numpy for the web process.

The networks read rest-frame spectra, so an uploaded spectrum must be measured and
shifted exactly as ``latentvo ml infer`` does it (cross-correlation with the model's
stored template, parabolic peak, linear interpolation); ``ml.rv`` does it in torch for
batches on the GPU, this module the same arithmetic for a few rows on the CPU.
``tests/test_inference_runtime.py`` compares the two on real spectra.
"""

from __future__ import annotations

import numpy as np

MAX_KMS = 400.0  # search window of the cross-correlation (as ml.rv.MAX_KMS)


def absorption(flux: np.ndarray, ivar: np.ndarray) -> np.ndarray:
    """Line depth (1 - normalised flux), 0 at bad pixels, mean removed per row."""
    signal = np.where(ivar > 0, 1.0 - flux, 0.0).astype(np.float32)
    return signal - signal.mean(axis=1, keepdims=True)


def max_lag(n_pixels: int, velocity_step: float) -> int:
    """Largest shift (pixels) tried: ``MAX_KMS``, at most a quarter of the spectrum."""
    return max(1, min(int(MAX_KMS / velocity_step), n_pixels // 4))


def lags(signal: np.ndarray, template: np.ndarray, window: int) -> np.ndarray:
    """Sub-pixel shift of each row relative to ``template``; row(n) ~ template(n - lag)."""
    n = signal.shape[1]
    cc = np.fft.irfft(np.fft.rfft(signal, axis=1) * np.conj(np.fft.rfft(template))[None, :],
                      n=n, axis=1)
    offsets = np.concatenate([np.arange(0, window + 1), np.arange(-window, 0)])
    values = cc[:, offsets % n]
    best = values.argmax(axis=1)
    rows = np.arange(len(best))
    left = values[rows, (best - 1) % len(offsets)]
    mid = values[rows, best]
    right = values[rows, (best + 1) % len(offsets)]
    denom = left - 2 * mid + right
    offset = np.where(denom < 0, 0.5 * (left - right) / np.where(denom < 0, denom, -1.0), 0.0)
    return offsets[best] + np.clip(offset, -0.5, 0.5)


def shift(flux: np.ndarray, ivar: np.ndarray, pixels: np.ndarray,
          fill: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """out(n) = in(n + pixels) by linear interpolation; pixels from outside the grid or
    next to a bad pixel get ivar 0 and flux ``fill``."""
    n = flux.shape[1]
    whole = np.floor(pixels)
    frac = (pixels - whole)[:, None]
    left = np.arange(n + 1)[None, :] + whole.astype(np.int64)[:, None]
    index = np.clip(left, 0, n - 1)
    f = np.take_along_axis(flux, index, axis=1)
    iv = np.take_along_axis(ivar, index, axis=1)
    iv_lo, iv_hi = iv[:, :-1], iv[:, 1:]
    good = (left[:, :-1] >= 0) & (left[:, 1:] < n) & (iv_lo > 0) & (iv_hi > 0)
    value = f[:, :-1] * (1 - frac) + f[:, 1:] * frac
    var = (1 - frac) ** 2 / np.maximum(iv_lo, 1e-30) + frac**2 / np.maximum(iv_hi, 1e-30)
    out_ivar = np.where(good, 1.0 / np.maximum(var, 1e-30), 0.0)
    return (np.where(good, value, fill).astype(np.float32), out_ivar.astype(np.float32))


def to_rest_frame(flux: np.ndarray, ivar: np.ndarray, template: np.ndarray,
                  velocity_step: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rest-frame flux, rest-frame ivar, RV in km/s) of normalised spectra (rows)."""
    lag = lags(absorption(flux, ivar), template, max_lag(flux.shape[1], velocity_step))
    rest_flux, rest_ivar = shift(flux, ivar, lag)
    return rest_flux, rest_ivar, lag * velocity_step
