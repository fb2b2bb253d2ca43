"""How many pixels an autoencoder's wavelength grid gets: enough for the archive's spectra.

A grid coarser than the spectrograph's resolution element throws away what the files
hold: on 6,000 R 22,500 spectra a 2,048-pixel grid (16 km/s pixels for 13 km/s
elements) gave 14-42 % larger label errors than 4,096 pixels, and sampling near the
native pixels another 15-26 % less (issue 18). So unless the operator names a pixel
count, it follows the files: the PERCENTILE-th percentile of the resolving power the
training spectra state (ingest keeps SPEC_RES and its kin as ``em_res_power``), sampled
at PIXELS_PER_ELEMENT pixels per resolution element (c / R) over the grid's range. A
high percentile rather than the median, so that the sharpest spectra of a mixed
archive are not blurred; the others are merely oversampled.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import sqlalchemy as sa

from ml.preprocess import Grid, common_grid, common_range
from schema.tables import spectra

C_KMS = 299792.458
PERCENTILE = 90.0  # of the training spectra's resolving power
PIXELS_PER_ELEMENT = 2.0  # Nyquist sampling of the resolution element
# Both networks halve the spectrum in each of their five stride-2 convolutions; a
# multiple of 64 keeps every layer's length whole, with room for a sixth.
PIXEL_MULTIPLE = 64
MIN_PIXELS = 256  # fewer leave the deepest convolution under 8 positions
# The preprocessed cache and the training arrays hold 8 bytes per pixel and spectrum
# (20,000 spectra: 2.6 GB at 16,384 pixels) and both networks' dense layers grow with
# the pixel count; 16,384 still samples R 22,500 at 2 pixels per element over a
# 1.44x wavelength range. The operator's --pixels is not capped.
MAX_PIXELS = 16384
FALLBACK_PIXELS = 2048  # when no training spectrum states its resolving power


@dataclass(frozen=True)
class GridChoice:
    """The pixel count of a grid and where it came from (``hyperparameters["grid_choice"]``)."""

    pixels: int
    source: str  # "auto" or "operator"
    resolving_power: float | None  # the PERCENTILE-th percentile; None: no file states it
    pixels_per_resolution_element: float | None  # at that R; None without one

    def record(self) -> dict[str, Any]:
        """The choice as the autoencoder's registry record keeps it."""
        return {"pixels": self.pixels, "source": self.source,
                "resolving_power": self.resolving_power,
                "pixels_per_resolution_element": self.pixels_per_resolution_element}


def choose_pixels(wave_lo: float, wave_hi: float, resolving_power: np.ndarray,
                  operator_pixels: int | None = None) -> GridChoice:
    """The pixel count of a log-uniform grid over [wave_lo, wave_hi] (Angstrom): the
    operator's when given, else PIXELS_PER_ELEMENT per resolution element at the
    PERCENTILE-th percentile of the stated resolving powers (NaN: none stated),
    rounded up to PIXEL_MULTIPLE within [MIN_PIXELS, MAX_PIXELS]; FALLBACK_PIXELS when
    no spectrum states R.
    """
    stated = resolving_power[np.isfinite(resolving_power) & (resolving_power > 0)]
    power = float(np.percentile(stated, PERCENTILE)) if len(stated) else None
    log_range = math.log(wave_hi / wave_lo)
    if operator_pixels:
        pixels, source = operator_pixels, "operator"
    elif power is None:
        pixels, source = FALLBACK_PIXELS, "auto"
    else:
        wanted = math.ceil(PIXELS_PER_ELEMENT * power * log_range / PIXEL_MULTIPLE)
        pixels, source = min(max(wanted * PIXEL_MULTIPLE, MIN_PIXELS), MAX_PIXELS), "auto"
    per_element = None if power is None else round(pixels / (power * log_range), 3)
    return GridChoice(pixels, source, power, per_element)


def resolving_powers(conn: sa.Connection, spectrum_id: np.ndarray) -> np.ndarray:
    """The resolving power each spectrum's file states (NaN where none), in the given order."""
    stated = dict(conn.execute(sa.select(spectra.c.spectrum_id, spectra.c.em_res_power)
                               .where(spectra.c.em_res_power.is_not(None))).all())
    return np.array([stated.get(int(i), np.nan) for i in spectrum_id], dtype=float)


def choose_grid(conn: sa.Connection, wave_min: np.ndarray, wave_max: np.ndarray,
                training_id: np.ndarray, training_min: np.ndarray, training_max: np.ndarray,
                operator_pixels: int | None = None) -> tuple[Grid, GridChoice]:
    """The grid over the range the archive's spectra (``wave_min``/``wave_max``, vacuum
    Angstrom) have in common, sized for the training spectra that cover it."""
    lo, hi = common_range(wave_min, wave_max)
    covering = (training_min <= lo) & (training_max >= hi)
    power = resolving_powers(conn, training_id[covering])
    choice = choose_pixels(lo, hi, power, operator_pixels)
    return common_grid(wave_min, wave_max, choice.pixels), choice


def describe(grid: Grid, choice: dict[str, Any] | None) -> str:
    """E.g. "grid 8,192 px, 6.5 km/s, 2.0 px per resolution element at R 22,500 (90th
    percentile), auto" for a run's summary; with a note when the choice fell back to the
    default or was capped."""
    text = f"grid {grid.n_pixels:,} px, {grid.velocity_step:.3g} km/s"
    if choice is None:
        return text
    power, per_element = choice["resolving_power"], choice["pixels_per_resolution_element"]
    if power is None:
        text += ", no resolving power stated by the files"
        if choice["source"] == "auto":
            text += f": the default {FALLBACK_PIXELS:,} px"
        return f"{text}, {choice['source']}"
    text += (f", {per_element:.1f} px per resolution element at R {power:,.0f} "
             f"({PERCENTILE:.0f}th percentile), {choice['source']}")
    if choice["source"] == "auto" and per_element < PIXELS_PER_ELEMENT:
        wanted = math.ceil(grid.n_pixels * PIXELS_PER_ELEMENT / per_element)
        text += (f" (WARNING: capped at {MAX_PIXELS:,} px; {PIXELS_PER_ELEMENT:.0f} px per "
                 f"element would need ~{wanted:,}; --pixels overrides)")
    return text
