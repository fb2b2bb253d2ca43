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

The grid's range is either the one (almost) every spectrum covers ("common") or the
union of the spectra's ranges ("union"), where each spectrum's pixels outside its own
coverage get ivar 0 like a detector gap. On the synthetic five-instrument archive the
common range is 4800-6800 A, and the labels' Cramer-Rao bound on it is 2.0-3.5x
(median per instrument) the bound of the whole file: the union grid (3700-9200 A)
lets the networks see the rest, at ~2.5x the pixels for the same sampling.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import sqlalchemy as sa

from ml.errors import MLError
from ml.preprocess import (
    TELLURIC_BANDS,
    Grid,
    common_range,
    grid_between,
    union_range,
)
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
RANGES = ("common", "union")
# The continuum fit (ml.preprocess.normalise) was tuned at Chebyshev degree 4 with 3
# clipping iterations over 4800-6800 A. On noise-free synthetic spectra of the five
# instruments over the union grid 3704-9192 A (``python bench/ml_continuum.py``: 16 stars
# each, |normalised / true - 1| in 64-pixel medians) degree 4 leaves 1.11-1.15 % (median;
# 90th percentile 2.6-2.8 %) red of 4500 A on the spectra covering the whole range,
# against 0.03-0.19 % (90th percentile <= 0.69 %) on the common grid. Degree 10 with 6
# iterations brings that to 0.00-0.23 % (90th percentile <= 0.82 %). Blue of 4500 A,
# where line blanketing leaves the upper envelope few continuum points, stays at
# 0.56-1.04 % (median; 0.78-1.23 % at degree 4); degree 12 chases the blanketing there
# (90th percentile 6-12 %). So the degree grows with the grid's log-range, 4 per
# CONTINUUM_LOG_RANGE (the range it was tuned on), to at most 10, and the wider fits clip
# twice as often.
# The envelope's level follows the noise (normalised flux 7 % low at S/N 10, 0.3-0.4 %
# at S/N 150 on the common range, worse on the union's at degree 10;
# ``bench/ml_continuum.py --noise``); a running mean ("running-mean",
# ml.preprocess.normalise) does not. On the common range the label networks did not gain
# from the mean on the whole (cpu profile, 4,000 spectra, three archives: Teff at S/N
# 10-20 7-17 % better, log g and [M/H] at S/N >= 100 up to 28 % and 45 % worse, fewer
# calibration cells); on the union range, where the envelope needs degree 10 and errs by
# 1-3 % blue of 4500 A even at S/N >= 80, they did better with it (docs/ml.md, "The
# continuum"). So each range has its own; ``grid_for(..., continuum=)`` and
# ``bench/ml_quality.py --continuum`` choose another. The mean's sigma, ~150 A at
# 5500 A, spans many lines and still follows a blaze or flux-calibration slope.
CONTINUUM_FITS = {"common": "upper-envelope", "union": "running-mean"}
CONTINUUM_WINDOW_KMS = 8000.0
CONTINUUM_LOG_RANGE = math.log(6800.0 / 4800.0)  # per 4 degrees
CONTINUUM_MAX_DEGREE = 10
WIDE_CONTINUUM_ITERATIONS = 6
# On a union grid a spectrum must cover a quarter of its log-wavelength span: every
# instrument of the synthetic archive covers 38 % (UVES, 4800-6800 of 3700-9200 A) or
# more, while a narrow echelle order or a 300 A snippet (5-10 %) would leave the
# encoder three quarters of padding and the continuum fit a sliver to work on.
UNION_MIN_COVERAGE = 0.25


@dataclass(frozen=True)
class GridChoice:
    """The pixel count of a grid and where it came from (``hyperparameters["grid_choice"]``)."""

    pixels: int
    source: str  # "auto" or "operator"
    resolving_power: float | None  # the PERCENTILE-th percentile; None: no file states it
    pixels_per_resolution_element: float | None  # at that R; None without one
    range: str | None = None  # "common" or "union" once the grid's range is chosen
    bounds: tuple[float, float] | None = None  # its pixel edges, vacuum Angstrom
    min_coverage: float = 1.0

    def record(self) -> dict[str, Any]:
        """The choice as the autoencoder's registry record keeps it."""
        record = {"pixels": self.pixels, "source": self.source,
                  "resolving_power": self.resolving_power,
                  "pixels_per_resolution_element": self.pixels_per_resolution_element}
        if self.range is not None and self.bounds is not None:
            record.update({"range": self.range, "wavelength_min": round(self.bounds[0], 2),
                           "wavelength_max": round(self.bounds[1], 2),
                           "min_coverage": self.min_coverage})
        return record


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


def check_range(wavelength_range: str) -> str:
    """``wavelength_range`` if it names one of RANGES, else an operator error."""
    if wavelength_range not in RANGES:
        raise MLError(f"the wavelength range must be one of {', '.join(RANGES)}, got "
                      f"{wavelength_range!r}")
    return wavelength_range


def grid_for(wave_min: np.ndarray, wave_max: np.ndarray, n_pixels: int,
             wavelength_range: str = "common", continuum: str | None = None) -> Grid:
    """The ``n_pixels`` grid of the ``wavelength_range`` mode for spectra spanning
    ``wave_min``-``wave_max`` (vacuum Angstrom arrays): over the range all but 1 % of
    them cover ("common"), or from the 1st percentile of their blue ends to the 99th of
    their red ends, each spectrum covering at least UNION_MIN_COVERAGE of it ("union").
    Either masks the strong telluric bands where it reaches them. ``continuum``:
    "upper-envelope" or "running-mean" (default: the range's, CONTINUUM_FITS)."""
    fit = continuum or CONTINUUM_FITS[check_range(wavelength_range)]
    if check_range(wavelength_range) == "common":
        lo, hi = common_range(wave_min, wave_max)
        fields: dict[str, Any] = {}
    else:
        lo, hi = union_range(wave_min, wave_max)
        fields = {"min_coverage": UNION_MIN_COVERAGE}
    reaches = any(band_lo < hi and band_hi > lo for band_lo, band_hi in TELLURIC_BANDS)
    return grid_between(lo, hi, n_pixels, telluric_mask=reaches,
                        **continuum_for(lo, hi, fit), **fields)


def continuum_for(lo: float, hi: float, fit: str) -> dict[str, Any]:
    """The continuum's Grid fields for a grid over [lo, hi] (Angstrom). A running mean
    has its window; an upper-envelope fit has degree 4 and 3 iterations up to
    CONTINUUM_LOG_RANGE, the degree growing with the log-range beyond it (at most
    CONTINUUM_MAX_DEGREE) with WIDE_CONTINUUM_ITERATIONS."""
    if fit == "running-mean":
        return {"continuum_fit": fit, "continuum_window_kms": CONTINUUM_WINDOW_KMS}
    if fit != "upper-envelope":
        raise MLError(f"unknown continuum fit {fit!r}; choose running-mean or upper-envelope")
    degree = round(4 * math.log(hi / lo) / CONTINUUM_LOG_RANGE)
    if degree <= 4:
        return {"continuum_degree": 4, "continuum_iterations": 3}
    return {"continuum_degree": min(degree, CONTINUUM_MAX_DEGREE),
            "continuum_iterations": WIDE_CONTINUUM_ITERATIONS}


def choose_grid(conn: sa.Connection, wave_min: np.ndarray, wave_max: np.ndarray,
                training_id: np.ndarray, training_min: np.ndarray, training_max: np.ndarray,
                operator_pixels: int | None = None, wavelength_range: str = "common"
                ) -> tuple[Grid, GridChoice]:
    """The grid over the range the archive's spectra (``wave_min``/``wave_max``, vacuum
    Angstrom) have in common, or (``wavelength_range="union"``) over the union of the
    training spectra's ranges, sized for the training spectra that cover it."""
    if wavelength_range == "union":
        wave_min, wave_max = training_min, training_max
    shape = grid_for(wave_min, wave_max, MIN_PIXELS, wavelength_range)
    lo, hi = shape.bounds()
    covering = shape.covered_by(training_min, training_max)
    power = resolving_powers(conn, training_id[covering])
    choice = choose_pixels(lo, hi, power, operator_pixels)
    grid = grid_for(wave_min, wave_max, choice.pixels, wavelength_range)
    return grid, replace(choice, range=wavelength_range, bounds=grid.bounds(),
                         min_coverage=grid.min_coverage)


def describe(grid: Grid, choice: dict[str, Any] | None) -> str:
    """E.g. "grid 8,192 px, 6.5 km/s, 2.0 px per resolution element at R 22,500 (90th
    percentile), auto" for a run's summary; with a note when the choice fell back to the
    default or was capped."""
    text = f"grid {grid.n_pixels:,} px, {grid.velocity_step:.3g} km/s"
    if choice is None:
        return text
    if "range" in choice:
        text += (f", {choice['range']} range {choice['wavelength_min']:,.0f}-"
                 f"{choice['wavelength_max']:,.0f} A")
        if choice["min_coverage"] < 1:
            text += f" (spectra cover at least {choice['min_coverage']:.0%} of it)"
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
