"""How preprocessed arrays become network inputs and per-pixel loss weights.

Both networks see two channels: the normalised flux minus one (so the continuum is 0
and bad pixels are 0) and the per-pixel noise level (so they can discount noisy
pixels and, for the label model, report larger uncertainties at low S/N). The
spectrum's resolving power enters as a scalar next to the convolutional features:
the same star looks different through a 1,800 and a 5,800 spectrograph, and telling
the network which one it looks through frees it (and the latent space) from
learning the instrument.
"""

from __future__ import annotations

import numpy as np
import torch

ERROR_FLOOR = 0.005  # relative model error added in quadrature to the noise (S/N cap ~200)
POWER_PIVOT = 2500.0  # resolving power mapped to 0


def network_input(flux: np.ndarray | torch.Tensor,
                  ivar: np.ndarray | torch.Tensor) -> torch.Tensor:
    """(batch, 2, pixels) float32 tensor: [flux - 1, noise sigma clipped to 1]."""
    flux = torch.as_tensor(flux, dtype=torch.float32)
    ivar = torch.as_tensor(ivar, dtype=torch.float32)
    good = ivar > 0
    signal = torch.where(good, flux - 1.0, torch.zeros_like(flux))
    sigma = torch.where(good, torch.rsqrt(ivar.clamp_min(1.0)), torch.ones_like(flux))
    return torch.stack([signal, sigma], dim=1)


def conditioning(resolving_power: np.ndarray | torch.Tensor | None, n: int,
                 default: float) -> torch.Tensor:
    """(n, 1) float32: log(R / 2500); a missing (NaN) or absent R counts as ``default``."""
    if resolving_power is None:
        power = torch.full((n,), float(default))
    else:
        power = torch.as_tensor(resolving_power, dtype=torch.float32)
        power = torch.where(torch.isfinite(power) & (power > 0), power,
                            torch.full_like(power, float(default)))
    return torch.log(power / POWER_PIVOT)[:, None]


def default_power(resolving_power: np.ndarray) -> float:
    """The value a model assumes for spectra without a stated R: its training median."""
    finite = resolving_power[np.isfinite(resolving_power) & (resolving_power > 0)]
    return float(np.median(finite)) if len(finite) else POWER_PIVOT


def pixel_weight(ivar: torch.Tensor) -> torch.Tensor:
    """Inverse of (noise variance + floor^2); 0 for bad pixels."""
    good = ivar > 0
    var = 1.0 / ivar.clamp_min(1e-12) + ERROR_FLOOR**2
    return torch.where(good, 1.0 / var, torch.zeros_like(ivar))


def batches(flux, ivar, resolving_power, device: torch.device, batch_size: int):
    """(start, flux, ivar, powers) per forward pass: float32 tensors on ``device`` and the
    matching slice of resolving powers (None stays None). Every inference loop over
    preprocessed arrays walks them this way; the caller holds ``torch.inference_mode``."""
    for start in range(0, len(flux), batch_size):
        end = start + batch_size
        yield (start,
               torch.as_tensor(flux[start:end], dtype=torch.float32).to(device),
               torch.as_tensor(ivar[start:end], dtype=torch.float32).to(device),
               None if resolving_power is None else resolving_power[start:end])
