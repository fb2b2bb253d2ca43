"""Named model-size presets: the default (quality first) and one sized for CPU inference.

A profile fixes the network sizes of both models; its name is recorded in each model's
configuration (``models.hyperparameters.profile``), so a registry row says which preset
made it. ``cpu`` halves every convolution width of the autoencoder and the label CNN and
uses one label member instead of three (sigma then comes from the network's own
variance, calibrated on held-out stars as always): about 8x less arithmetic for the
labels and 3x for the encoder, what ~2,000 spectra/s end to end on a 2-core machine
needs. Both profiles meet the quality targets (docs/ml.md, "Benchmarks").

A profile also names the wavelength range of the autoencoder's grid
(``ml.grid_choice``): ``default`` the union of the spectra's ranges (the labels' bound
on the common range alone is 2-3.5x that of the whole file), ``cpu`` the common range
(a union grid costs ~2.5x the pixels, and with them the inference time, on the
synthetic archive).
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
            LabelConfig(channels=NARROW, members=1, profile="cpu")),
}

# Both on the common range: on 20,000 synthetic spectra the default networks trained on
# the union grid (10,624 px, 3700-9200 A) did worse than on the common one (RMSE at
# S/N >= 50 106 K / 0.18 / 0.061 against 65 K / 0.088 / 0.050), although the union holds
# 2-4x the information for four of five instruments: they do not use it yet (docs/ml.md,
# "Its range"). The union stays an operator's choice (--wavelength-range union).
WAVELENGTH_RANGES = {"default": "common", "cpu": "common"}


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
