"""Named model-size presets: the default (quality first) and one sized for CPU inference.

A profile fixes the network sizes of both models; its name is recorded in each model's
configuration (``models.hyperparameters.profile``), so a registry row says which preset
made it. ``cpu`` halves every convolution width of the autoencoder and the label CNN and
uses one label member instead of three (sigma then comes from the network's own
variance, calibrated on held-out stars as always): about 8x less arithmetic for the
labels and 3x for the encoder, what ~2,000 spectra/s end to end on a 2-core machine
needs. Both profiles meet the quality targets (docs/ml.md, "Benchmarks").

A profile also names the wavelength range of the autoencoder's grid
(``ml.grid_choice``, WAVELENGTH_RANGES): ``default`` the union of the spectra's ranges
(the labels' bound on the common range alone is 2-3.5x that of the whole file), ``cpu``
the common range (a union grid costs ~2.5x the pixels, and with them the inference time,
on the synthetic archive).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ml.errors import MLError
from ml.train import AutoencoderConfig, LabelConfig

NARROW = (8, 16, 16, 32, 32)
PROFILES: dict[str, tuple[AutoencoderConfig, LabelConfig]] = {
    "default": (AutoencoderConfig(), LabelConfig()),
    "cpu": (AutoencoderConfig(channels=NARROW, profile="cpu"),
            LabelConfig(channels=NARROW, members=1, profile="cpu", noise_augment=0.0)),
}

# The default profile reads the union of the spectra's ranges: on 20,000 synthetic spectra
# (one H200, seed 1) its labels were 17-39 % closer to the truth than on the common range
# in every S/N band (RMSE at S/N 100-200 41 K / 0.063 / 0.034 against 52 K / 0.076 /
# 0.042), for ~2x the training time and 2.6x the pixels (docs/ml.md, "Issue 18, sixth
# round"). Before the fixes of that round (the continuum's positivity scale, the running
# mean) the union did worse and both profiles read the common range. The cpu profile
# still does: its 2,000 spectra/s inference goal leaves no room for 2.6x the pixels.
WAVELENGTH_RANGES = {"default": "union", "cpu": "common"}


def profile_range(name: str) -> str:
    """The wavelength range ("common" or "union") of the profile's grids."""
    if name not in WAVELENGTH_RANGES:
        raise MLError(f"unknown model profile {name!r}; choose one of "
                      f"{', '.join(sorted(WAVELENGTH_RANGES))}")
    return WAVELENGTH_RANGES[name]


def profile_configs(name: str, **autoencoder: Any) -> tuple[AutoencoderConfig, LabelConfig]:
    """The profile's two configurations, the autoencoder's with ``autoencoder`` overrides."""
    if name not in PROFILES:
        raise MLError(f"unknown model profile {name!r}; choose one of "
                      f"{', '.join(sorted(PROFILES))}")
    ae, labels = PROFILES[name]
    return replace(ae, **autoencoder), labels
