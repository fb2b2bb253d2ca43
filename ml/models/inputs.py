"""How preprocessed arrays become network inputs and per-pixel loss weights.

Both networks see two channels: the normalised flux minus one (so the continuum is 0
and bad pixels are 0) and the per-pixel noise level (so they can discount noisy
pixels and, for the label model, report larger uncertainties at low S/N).
"""

from __future__ import annotations

import numpy as np
import torch

ERROR_FLOOR = 0.005  # relative model error added in quadrature to the noise (S/N cap ~200)


def network_input(flux: np.ndarray | torch.Tensor,
                  ivar: np.ndarray | torch.Tensor) -> torch.Tensor:
    """(batch, 2, pixels) float32 tensor: [flux - 1, noise sigma clipped to 1]."""
    flux = torch.as_tensor(flux, dtype=torch.float32)
    ivar = torch.as_tensor(ivar, dtype=torch.float32)
    good = ivar > 0
    signal = torch.where(good, flux - 1.0, torch.zeros_like(flux))
    sigma = torch.where(good, torch.rsqrt(ivar.clamp_min(1.0)), torch.ones_like(flux))
    return torch.stack([signal, sigma], dim=1)


def pixel_weight(ivar: torch.Tensor) -> torch.Tensor:
    """Inverse of (noise variance + floor^2); 0 for bad pixels."""
    good = ivar > 0
    var = 1.0 / ivar.clamp_min(1e-12) + ERROR_FLOOR**2
    return torch.where(good, 1.0 / var, torch.zeros_like(ivar))
