"""From a file's spectrum to the fixed model input: one grid, vacuum, continuum-normalised.

Every model works on one wavelength grid (log-uniform, vacuum Angstrom) that is
stored with it (``models.wavelength_grid``), so spectra from different instruments and
formats meet the network identically. Resampling conserves flux and propagates the
variance (so a coarser grid has correspondingly higher S/N), bad pixels stay
zero-weight, detector gaps stay gaps (see :func:`native_pixel_bounds`), and a
pseudo-continuum (an upper-envelope Chebyshev fit, or where the grid says so a running
mean) is divided out because real archives' flux calibration is not good enough to carry
physics.
A grid may span more than a spectrum covers (``Grid.min_coverage`` < 1: a grid over the
union of the archive's ranges); the pixels outside a spectrum's own coverage are then
handled like a detector gap (ivar 0), and so are the strong telluric bands when the
grid records ``telluric_mask`` (see :data:`TELLURIC_BANDS_AIR`).
Files without a mask or error array (HARPS s1d-like) still carry cosmic-ray hits; a
narrow positive spike far above its neighbours is no stellar feature, so it is masked
here: left in, it dominates the RV cross-correlation and the networks' inputs.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from ml.errors import MLError
from vo_service.archive.spectrum import Spectrum, air_to_vacuum

MAX_BAD_FRACTION = 0.2  # a grid pixel more than this bad or uncovered (gap) gets ivar 0
GAP_STEP_RATIO = 1.5  # a pixel step this many times the neighbouring steps is a gap
GAP_NEIGHBOURS = 3  # steps on each side that set the local pixel step
SPIKE_REACH = 4  # a spike is compared with pixels 4-5 away on each side (hits: 1-4 pixels)
SPIKE_FLOOR = 0.5  # continuum units; no absorption-line pattern rises this far above it
COVERAGE_TOLERANCE = 1e-7  # relative: wavelength bounds rounded in a file's header

# The strong absorption bands of the Earth's atmosphere between 3,000 and 10,000 A (air
# Angstrom, as the atlases give them): the Fraunhofer B (6867) and A (7594) band heads of
# O2 with their P branches, and the H2O bands at 0.72, 0.82 and 0.94 micron, limits
# rounded outwards from the telluric transmission spectrum of the Arcturus atlas (Hinkle,
# Wallace, Valenti & Harmer 2000, "Visible and Near Infrared Atlas of the Arcturus
# Spectrum 3727-9300 A") and the molecfit transmission models (Smette et al. 2015, A&A
# 576, A77). They do not move with the star, vary with airmass and water vapour (which
# no label describes) and are tens of per cent deep to saturated, so a grid that reaches
# them masks them.
# Weaker bands (O2 gamma 6277-6310, H2O 5880-6000 and 6470-6600, a few % deep) stay:
# masking them would cost Na D and H-alpha's wings for little. ml/synth/telluric.py draws
# these same five bands (heads 6867, 7160, 7594, 8120, 8950 A air) within these limits.
TELLURIC_BANDS_AIR = ((6866.0, 6920.0),  # O2 B
                      (7160.0, 7340.0),  # H2O
                      (7594.0, 7705.0),  # O2 A
                      (8120.0, 8350.0),  # H2O
                      (8950.0, 9800.0))  # H2O (rho sigma tau band)
# Archive files are often barycentric-corrected, which moves the bands by up to +-30 km/s
# (Earth's orbit and rotation); each band is widened by that much on both sides.
TELLURIC_MARGIN_KMS = 30.0
TELLURIC_BANDS = tuple((float(lo), float(hi)) for lo, hi in air_to_vacuum(
    np.array(TELLURIC_BANDS_AIR)) * np.array([1 - TELLURIC_MARGIN_KMS / 299792.458,
                                               1 + TELLURIC_MARGIN_KMS / 299792.458]))


RESAMPLINGS = {
    "box": "each grid pixel the average of the native pixels over it (flat within each)",
    "spline": "each grid pixel the mean over it of a cubic Hermite spline through the "
              "cumulative flux at the native pixel edges (flux-conserving, quadratic "
              "within native pixels; not across gaps)",
}
"""Grid.resampling values. Where native pixels are wider than grid pixels, "box" puts a
staircase of native pixel steps on the grid; the steps stay where the instrument's
pixels are when a spectrum is shifted to its rest frame, so that pattern moves with RV
relative to the lines (noise-free synthetic stars shifted by one grid pixel: 0.7-1.0 %
RMS on the union grid, about the noise at S/N 100; bench/ml_resampling.py). The spline
follows the lines within native pixels and leaves 1.5-4x less of it."""


class PreprocessError(MLError):
    """A spectrum that cannot be put on the model's grid (e.g. it does not cover it)."""


@dataclass(frozen=True)
class Grid:
    """A log-uniform vacuum wavelength grid plus the normalisation applied on it."""

    start: float  # Angstrom, vacuum, centre of the first pixel
    stop: float  # Angstrom, vacuum, centre of the last pixel
    n_pixels: int
    continuum_degree: int = 4
    continuum_iterations: int = 3
    spike_sigma: float = 5.0  # mask pixels this many sigma (+ SPIKE_FLOOR) above its surroundings
    gap_step_ratio: float = GAP_STEP_RATIO  # native steps this much above the local one: gaps
    # the fraction of the grid's log-wavelength span a spectrum must cover (1: all of it);
    # grid pixels outside a spectrum's coverage get ivar 0
    min_coverage: float = 1.0
    telluric_mask: bool = False  # TELLURIC_BANDS (observed frame) get ivar 0
    # "upper-envelope" or "running-mean" (see normalise); grids recorded before the
    # choice existed are envelopes
    continuum_fit: str = "upper-envelope"
    continuum_window_kms: float = 0.0  # running-mean: the smoothing's sigma (km/s)
    # how native pixels are spread over grid pixels (see RESAMPLINGS); grids recorded
    # before the choice existed are "box"
    resampling: str = "box"

    def __post_init__(self) -> None:
        if self.continuum_fit not in CONTINUUM_FITS:
            raise MLError(f"unknown continuum fit {self.continuum_fit!r}; choose one of "
                          f"{', '.join(CONTINUUM_FITS)}")
        if self.resampling not in RESAMPLINGS:
            raise MLError(f"unknown resampling {self.resampling!r}; choose one of "
                          f"{', '.join(RESAMPLINGS)}")
        if self.continuum_fit == "running-mean" and not self.continuum_window_kms > 0:
            raise MLError("a running-mean continuum needs continuum_window_kms > 0, not "
                          f"{self.continuum_window_kms!r}")

    @property
    def wavelength(self) -> np.ndarray:
        """Pixel centres (vacuum Angstrom)."""
        return np.exp(np.linspace(np.log(self.start), np.log(self.stop), self.n_pixels))

    @property
    def velocity_step(self) -> float:
        """Pixel size in km/s (constant on a log-uniform grid)."""
        return float(np.log(self.stop / self.start) / (self.n_pixels - 1) * 299792.458)

    def edges(self) -> np.ndarray:
        """Pixel boundaries (vacuum Angstrom), ``n_pixels + 1`` of them, for flux-conserving
        resampling.
        """
        loglam = np.linspace(np.log(self.start), np.log(self.stop), self.n_pixels)
        step = loglam[1] - loglam[0]
        return np.exp(np.concatenate([loglam - step / 2, [loglam[-1] + step / 2]]))

    def bounds(self) -> tuple[float, float]:
        """The outer pixel edges (vacuum Angstrom): the span the grid's pixels cover."""
        half = np.log(self.stop / self.start) / (self.n_pixels - 1) / 2
        return float(self.start * np.exp(-half)), float(self.stop * np.exp(half))

    def to_json(self) -> str:
        """The grid as recorded in the registry, with a description of the normalisation
        for readers of the published model metadata. ``min_coverage`` and
        ``telluric_mask`` are written only where they differ from what a grid recorded
        before them did (full coverage, no mask), so that such grids keep their text and
        :attr:`key` (and with it their preprocessed caches).
        """
        fields = asdict(self)
        for name, before in (("min_coverage", 1.0), ("telluric_mask", False),
                             ("continuum_fit", "upper-envelope"),
                             ("continuum_window_kms", 0.0), ("resampling", "box")):
            if fields[name] == before:
                del fields[name]
        return json.dumps({"kind": "log-uniform", "unit": "Angstrom", "frame": "vacuum",
                           **fields,
                           "normalisation": f"flux / {CONTINUUM_FITS[self.continuum_fit]}, "
                                            "positive spikes masked, detector gaps and "
                                            "masked pixels at the continuum with ivar 0"},
                          sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Grid:
        """The grid recorded by :meth:`to_json` (older records included)."""
        data = json.loads(text)
        data.setdefault("spike_sigma", 0.0)  # grids recorded before spike masking: none
        data.setdefault("gap_step_ratio", 0.0)  # before gap detection: every jump bridged
        data.setdefault("min_coverage", 1.0)  # before partial coverage: all of the grid
        data.setdefault("telluric_mask", False)
        data.setdefault("continuum_fit", "upper-envelope")
        data.setdefault("continuum_window_kms", 0.0)
        data.setdefault("resampling", "box")
        return cls(**{k: data[k] for k in cls.__dataclass_fields__})

    @property
    def key(self) -> str:
        """Short stable identifier (cache directories)."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]

    def coverage(self, wave_min, wave_max):
        """The fraction of the grid's log-wavelength span (pixel edges) that spectra
        spanning [wave_min, wave_max] (vacuum Angstrom; numbers or arrays) cover, 0-1."""
        first, last = self.bounds()
        lo = np.maximum(np.asarray(wave_min, dtype=float), first)
        hi = np.minimum(np.asarray(wave_max, dtype=float), last)
        return np.clip(np.log(np.maximum(hi, lo) / lo) / np.log(last / first), 0, 1)

    def covered_by(self, wave_min, wave_max):
        """Whether spectra spanning [wave_min, wave_max] (vacuum Angstrom; numbers or
        arrays) cover the grid: all of it, or at least ``min_coverage`` of its span."""
        if self.min_coverage < 1:
            return self.coverage(wave_min, wave_max) >= self.min_coverage - COVERAGE_TOLERANCE
        first, last = self.bounds()
        return (np.asarray(wave_min) <= first * (1 + COVERAGE_TOLERANCE)) & \
            (np.asarray(wave_max) >= last / (1 + COVERAGE_TOLERANCE))

    def requirement(self) -> str:
        """What a spectrum must cover, for messages: "4800.0-6800.0 Angstrom (vacuum)" or
        "at least 25% of 3700.0-9200.0 Angstrom (vacuum)"."""
        first, last = self.bounds()
        span = f"{first:.1f}-{last:.1f} Angstrom (vacuum)"
        return span if self.min_coverage >= 1 else f"at least {self.min_coverage:.0%} of {span}"

    def telluric_pixels(self) -> np.ndarray:
        """Boolean mask of the pixels that touch a TELLURIC_BANDS range (none without
        ``telluric_mask``); read-only, computed once per grid."""
        return _telluric_pixels(self)


@functools.lru_cache(maxsize=16)
def _telluric_pixels(grid: Grid) -> np.ndarray:
    edges = grid.edges()
    hit = np.zeros(grid.n_pixels, dtype=bool)
    if grid.telluric_mask:
        for lo, hi in TELLURIC_BANDS:
            hit |= (edges[1:] > lo) & (edges[:-1] < hi)
    hit.flags.writeable = False
    return hit


def common_range(wave_min: np.ndarray, wave_max: np.ndarray,
                 quantile: float = 0.01) -> tuple[float, float]:
    """The range (vacuum Angstrom) covered by all but ``quantile`` of the spectra."""
    lo = float(np.quantile(wave_min, 1 - quantile))
    hi = float(np.quantile(wave_max, quantile))
    if not hi > lo * 1.01:
        raise PreprocessError(
            f"the spectra have no common wavelength range ({lo:.1f}-{hi:.1f} Angstrom)")
    return lo, hi


def common_grid(wave_min: np.ndarray, wave_max: np.ndarray, n_pixels: int,
                quantile: float = 0.01) -> Grid:
    """The grid covered by all but ``quantile`` of the spectra (vacuum Angstrom bounds)."""
    return grid_between(*common_range(wave_min, wave_max, quantile), n_pixels)


def union_range(wave_min: np.ndarray, wave_max: np.ndarray,
                quantile: float = 0.01) -> tuple[float, float]:
    """The range (vacuum Angstrom) from the ``quantile`` quantile of the spectra's blue
    ends to the 1 - ``quantile`` quantile of their red ends: what the archive covers,
    less a few outliers."""
    lo = float(np.quantile(wave_min, quantile))
    hi = float(np.quantile(wave_max, 1 - quantile))
    if not hi > lo * 1.01:
        raise PreprocessError(f"the spectra span no wavelength range ({lo:.1f}-{hi:.1f} "
                              "Angstrom)")
    return lo, hi


def grid_between(lo: float, hi: float, n_pixels: int, **fields) -> Grid:
    """The ``n_pixels`` grid whose pixel edges span exactly [lo, hi] (vacuum Angstrom)."""
    step = np.log(hi / lo) / n_pixels
    return Grid(start=float(lo * np.exp(step / 2)), stop=float(hi * np.exp(-step / 2)),
                n_pixels=n_pixels, **fields)


def native_pixel_bounds(wave: np.ndarray, gap_step_ratio: float = GAP_STEP_RATIO
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Left and right edges (same unit as ``wave``) of each native pixel.

    Neighbouring pixels meet half-way between their centres, except across a gap: a
    step more than ``gap_step_ratio`` times the median of the GAP_NEIGHBOURS steps on
    each side of it (a detector gap, or any hole in the sampling). There each pixel
    extends half a local step only, and the hole between them is covered by nothing;
    otherwise the edge pixels would spread their flux over half the gap each. A ratio
    of 0 bridges every step (grids recorded before gaps were detected).
    """
    step = np.diff(wave)
    mid = (wave[1:] + wave[:-1]) / 2
    left = np.concatenate([[wave[0] - step[0] / 2], mid])
    right = np.concatenate([mid, [wave[-1] + step[-1] / 2]])
    if gap_step_ratio > 0 and len(step) > 2:
        k, n = GAP_NEIGHBOURS, len(step)
        padded = np.concatenate([np.full(k, step[0]), step, np.full(k, step[-1])])
        # candidates first (the neighbours' minimum is at most their median), so that
        # the median is taken for a handful of steps instead of all of them
        smallest = padded[:n].copy()
        for j in (*range(1, k), *range(k + 1, 2 * k + 1)):
            np.minimum(smallest, padded[j:j + n], out=smallest)
        candidates = np.flatnonzero(step > gap_step_ratio * smallest)
        if not len(candidates):
            return left, right
        neighbours = padded[candidates[:, None] + np.delete(np.arange(2 * k + 1), k)]
        local_at = np.median(neighbours, axis=1)
        is_gap = step[candidates] > gap_step_ratio * local_at
        gap, local = candidates[is_gap], local_at[is_gap]
        right[gap] = wave[gap] + local / 2
        left[gap + 1] = wave[gap + 1] - local / 2
        if len(gap) and gap[0] == 0:  # the first pixel lies beyond a gap
            left[0] = wave[0] - local[0] / 2
        if len(gap) and gap[-1] == n - 1:
            right[-1] = wave[-1] + local[-1] / 2
    return left, right


def smooth_cumulative(target: np.ndarray, left: np.ndarray, right: np.ndarray,
                      density: np.ndarray, flat: np.ndarray) -> np.ndarray:
    """The cumulative of ``density`` at ``target`` through a cubic Hermite spline: exact
    at every native pixel edge (so flux-conserving), and within each native pixel a
    quadratic density (as in the piecewise parabolic method) whose value at an edge is
    interpolated to fourth order from the two pixels on each side, 7/12 (d0 + d1) -
    1/12 (d-1 + d2), or is the mean of the two that meet there near a gap or an end, or
    the pixel's own at it. ``flat`` is the cumulative with the density flat within
    pixels, kept where a target lies outside every pixel (a gap, beyond the ends).

    Hand-written rather than scipy's CubicSpline: the web process preprocesses uploads
    with this module and stays free of scipy, and the local stencil keeps whatever one
    native pixel does within two of its neighbours (a global spline spreads it further).
    On the synthetic archive's stars it steadies the rest frame nearly as much as
    CubicSpline did (bench/ml_resampling.py; docs/ml.md, "Resampling")."""
    width = right - left
    joined = np.append(left[1:] <= right[:-1], False)  # pixel i meets pixel i + 1
    after, before = np.roll(density, -1), np.roll(density, 1)
    fourth = (7 * (density + after) - before - np.roll(density, -2)) / 12
    wide = joined & np.roll(joined, 1) & np.roll(joined, -1)
    wide[[0, -1]] = False
    slope_right = np.where(wide, fourth, np.where(joined, (density + after) / 2, density))
    slope_left = np.where(np.roll(joined, 1) & (np.arange(len(left)) > 0),
                          np.roll(slope_right, 1), density)
    pixel = np.clip(np.searchsorted(right, target), 0, len(left) - 1)
    inside = (target >= left[pixel]) & (target <= right[pixel])
    t = np.clip((target - left[pixel]) / width[pixel], 0.0, 1.0)
    below = np.concatenate([[0.0], np.cumsum(density * width)])[pixel]
    hermite = below + width[pixel] * (
        (3 * t**2 - 2 * t**3) * density[pixel]
        + (t**3 - 2 * t**2 + t) * slope_left[pixel]
        + (t**3 - t**2) * slope_right[pixel])
    return np.where(inside, hermite, flat)


LEVEL_BLOCK = 256  # native pixels per block of native_level


def native_level(flux: np.ndarray, good: np.ndarray) -> np.ndarray:
    """A pseudo-continuum of a file's own flux for the native spike test: the 90th
    percentile of the good pixels of each LEVEL_BLOCK-pixel block, interpolated between
    the blocks' centres. High enough to ignore absorption bands, too high in rank for one
    cosmic-ray hit to move it."""
    n = len(flux)
    blocks = max(1, n // LEVEL_BLOCK)
    edges = np.linspace(0, n, blocks + 1).astype(int)
    values = np.array([np.percentile(flux[a:b][good[a:b]], 90) if good[a:b].any() else np.nan
                       for a, b in zip(edges[:-1], edges[1:], strict=True)])
    known = np.isfinite(values)
    if not known.any():
        return np.ones(n)
    centres = (edges[:-1] + edges[1:]) / 2
    return np.abs(np.interp(np.arange(n), centres[known], values[known]))


def resample(spectrum: Spectrum, grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """Flux-conserving rebinning of flux and variance onto ``grid``.

    A grid pixel averages the native pixels that cover it; one more than
    MAX_BAD_FRACTION covered by bad native pixels or by nothing (a gap, or beyond the
    spectrum's ends on a grid of ``min_coverage`` < 1) gets ivar 0, and one covered by
    nothing at all gets flux 0 (``normalise`` then puts every ivar-0 pixel at the
    continuum): nothing is interpolated across a gap. With ``telluric_mask`` the
    telluric bands get ivar 0 too, here in the file's frame, before any RV shift.
    """
    wave = spectrum.vacuum_wavelength()
    left, right = native_pixel_bounds(wave, grid.gap_step_ratio)
    target = grid.edges()
    if not grid.covered_by(left[0], right[-1]):
        share = f" ({grid.coverage(left[0], right[-1]):.0%} of it)" \
            if grid.min_coverage < 1 else ""
        raise PreprocessError(
            f"spectrum {spectrum.meta.obs_id} covers {left[0]:.1f}-{right[-1]:.1f} Angstrom "
            f"(vacuum){share} but the model grid needs {grid.requirement()}")
    partial = left[0] > target[0] or right[-1] < target[-1]
    flux, ivar = spectrum.flux.astype(np.float64), spectrum.ivar.astype(np.float64)
    good = np.isfinite(flux) & np.isfinite(ivar) & (ivar > 0)
    if grid.resampling == "spline":  # a spline would ring around a cosmic-ray hit
        good &= ~spikes(np.where(good, flux, 0.0)[None, :], np.where(good, ivar, 0.0)[None, :],
                        grid.spike_sigma, native_level(flux, good)[None, :])[0]
    if good.sum() < 2:
        raise PreprocessError(f"spectrum {spectrum.meta.obs_id} has no usable pixels")
    flux = np.where(good, flux, np.interp(wave, wave[good], flux[good]))
    var = np.where(good, 1.0 / np.where(good, ivar, 1.0), 0.0)
    width = right - left
    holes = np.flatnonzero(left[1:] > right[:-1])  # pixel i ends before pixel i + 1 starts
    breaks = np.insert(np.append(left, right[-1]), holes + 1, right[holes])

    def cumulative_at(density: np.ndarray) -> np.ndarray:
        """Integral of a per-native-pixel density up to each grid pixel edge, the density
        flat within each native pixel (and 0 in holes)."""
        cumulative = np.concatenate([[0.0], np.cumsum(density * width)])
        if len(holes):
            cumulative = np.insert(cumulative, holes + 1, cumulative[holes + 1])
        return np.interp(target, breaks, cumulative)

    def integral(density: np.ndarray) -> np.ndarray:
        """Integral of a per-native-pixel density over each grid pixel (0 in holes)."""
        return np.diff(cumulative_at(density))

    bin_width = np.diff(target)
    covered = integral(np.ones_like(wave)) if len(holes) or partial else bin_width
    covered_good = integral(good.astype(np.float64))
    seen = covered > 0
    span = np.where(seen, covered, 1.0)
    local_width = np.interp((target[1:] + target[:-1]) / 2, wave, width)
    if grid.resampling == "spline":
        flux_integral = np.diff(smooth_cumulative(target, left, right, flux,
                                                  cumulative_at(flux)))
    else:
        flux_integral = integral(flux)
    out_flux = np.where(seen, flux_integral / span, 0.0)
    out_var = integral(var * width) / (span * np.maximum(span, local_width))
    out_var = out_var / np.clip(covered_good / span, 1e-3, None)
    ok = (covered_good >= (1 - MAX_BAD_FRACTION) * bin_width) & (out_var > 0)
    if grid.telluric_mask:
        ok &= ~grid.telluric_pixels()
    out_ivar = np.where(ok, 1.0 / np.where(ok, out_var, 1.0), 0.0)
    return out_flux, out_ivar


CONTINUUM_FITS = {
    "upper-envelope": "upper-envelope Chebyshev continuum",
    "running-mean": "running mean of the good pixels (Gaussian-like, sigma "
                    "continuum_window_kms)",
}
"""Grid.continuum_fit values and how the recorded grid describes each."""
BOX_PASSES = 3  # box filters in cascade: a Gaussian to within a few per cent


def normalise(flux: np.ndarray, ivar: np.ndarray, grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """Divide a batch (rows) by a continuum of the grid's kind; ivar scales along.

    Only pixels with ivar > 0 shape the continuum, and pixels without information come
    out at the continuum (1) with ivar 0. ``grid.continuum_fit`` picks the continuum:

    - "running-mean" (union-range grids, ``ml.grid_choice.CONTINUUM_FITS``): the mean of
      the good pixels in a window of
      ``continuum_window_kms``, lines included: a pseudo-continuum that line blanketing
      pulls below the true one. It is linear in the flux, so its expectation is the same
      at every S/N; what the lines do to it depends on the labels alone, which the
      networks learn. (A Chebyshev polynomial through all pixels, tried first, swings
      below zero near Ca H and K on a 3,700-9,200 A grid.)
    - "upper-envelope" (common-range grids and every grid recorded before the choice): a
      Chebyshev fit that clips pixels below it, to follow the continuum between lines.
      At low S/N the pixels it keeps are those whose noise is positive, so the continuum
      rises with the noise: on the synthetic archive's files the normalised flux sat 4 %
      (common range) to 6-7 % (union) low at S/N 10-20, and on the union range its
      64-pixel medians blue of 4500 A scattered by 1-3 % at S/N >= 80, several times the
      noise of such a median (docs/ml.md, "The continuum"). The networks see the noise
      level too and learn much of that offset; which of the two serves them better is
      measured there.
    """
    flux = np.atleast_2d(flux)
    ivar = np.atleast_2d(ivar)
    informative = ivar > 0
    if grid.continuum_fit == "running-mean":
        width = grid.continuum_window_kms / grid.velocity_step
        continuum = _running_mean_continuum(flux, ivar, informative, width,
                                            grid.spike_sigma)
    else:
        continuum = _envelope_continuum(flux, informative, grid.continuum_degree,
                                        grid.continuum_iterations)
    top = np.where(informative, np.abs(continuum), 0.0).max(axis=1, keepdims=True)
    positive = continuum > 1e-3 * top
    safe = np.where(positive, continuum, 1.0)
    return mask_spikes(np.where(positive & informative, flux / safe, 1.0),
                       np.where(positive, ivar * safe**2, 0.0), grid.spike_sigma)


def _running_mean_continuum(flux: np.ndarray, ivar: np.ndarray, informative: np.ndarray,
                            sigma_pixels: float, spike_sigma: float) -> np.ndarray:
    """Normalised convolution of the good pixels with a Gaussian-like kernel of
    ``sigma_pixels``: smooth(flux x kept) / smooth(kept), so gaps, masks and the edges of
    a spectrum's coverage do not pull it down. Done twice: the second time without the
    spikes the first one's normalised flux shows (:func:`spikes`), since a cosmic ray
    100x the flux would lift the mean around it by a third. No clipping by residual:
    between lines a high-S/N spectrum lies many sigma above a mean that includes the
    lines, so any such clip would eat the spectrum from the top. Unweighted: weights
    from a file's ivar (estimated from the data for some formats) would make it depend
    on the noise draw again. Box filters in cascade (running sums, :func:`box_sums`)
    cost O(pixels) whatever the width."""
    # each box of width w has variance (w^2 - 1) / 12; BOX_PASSES of them add up
    box = max(1, int(round(np.sqrt(12.0 * sigma_pixels**2 / BOX_PASSES + 1.0))))

    def mean_of(kept: np.ndarray) -> np.ndarray:
        weight, total = kept.astype(np.float64), np.where(kept, flux, 0.0)
        for _ in range(BOX_PASSES):
            weight, total = box_sums(weight, box), box_sums(total, box)
        return np.where(weight > 1e-6 * box**BOX_PASSES,
                        total / np.maximum(weight, 1e-300), 1.0)

    first = mean_of(informative)
    positive = first > 0
    safe = np.where(positive, first, 1.0)
    hit = spikes(np.where(positive & informative, flux / safe, 1.0),
                 np.where(positive & informative, ivar * safe**2, 0.0), spike_sigma)
    return mean_of(informative & ~hit) if hit.any() else first


def box_sums(values: np.ndarray, width: int) -> np.ndarray:
    """Each row's sums over ``width`` pixels around every pixel (nothing beyond the ends),
    from cumulative sums. Written here rather than taken from ``scipy.ndimage``: the web
    service preprocesses uploaded spectra, and its process stays free of scipy (and torch,
    sklearn; tests/test_similar.py checks its memory maps)."""
    n = values.shape[1]
    running = np.zeros((values.shape[0], n + 1))
    np.cumsum(values, axis=1, out=running[:, 1:])
    start = np.arange(n) - width // 2
    return running[:, np.clip(start + width, 0, n)] - running[:, np.clip(start, 0, n)]


def _envelope_continuum(flux: np.ndarray, informative: np.ndarray, degree: int,
                        iterations: int) -> np.ndarray:
    """Chebyshev fits of ``degree`` (unweighted), each keeping the pixels from 0.5 below
    to 3 above the previous residuals' scale."""
    t = np.linspace(-1, 1, flux.shape[1])
    basis = np.polynomial.chebyshev.chebvander(t, degree)  # (n, k)
    mask = informative
    filler = median_filler(informative)
    continuum = np.ones_like(flux)
    for _ in range(iterations):
        weight = mask.astype(np.float64)
        lhs = np.einsum("bn,nk,nl->bkl", weight, basis, basis, optimize=True)
        lhs += 1e-9 * np.eye(basis.shape[1])
        rhs = (weight * flux) @ basis
        continuum = np.linalg.solve(lhs, rhs[..., None])[..., 0] @ basis.T
        resid = flux - continuum
        centre = np.median(np.where(informative, resid, filler), axis=1, keepdims=True)
        deviation = np.where(informative, np.abs(resid - centre), filler)
        scale = 1.4826 * np.median(deviation, axis=1, keepdims=True)
        keep = (resid > -0.5 * scale) & (resid < 3 * scale) & informative
        mask = np.where(keep.sum(axis=1, keepdims=True) > basis.shape[1] * 4, keep, informative)
    return continuum


def median_filler(selected: np.ndarray) -> np.ndarray:
    """Values to put in place of the unselected entries of each row so that the row's
    median is that of its selected entries: alternately -inf and +inf leave the middle
    among the selected ones (to half a rank when the unselected are odd in number), at
    the cost of one ``np.median`` (``np.nanmedian`` loops over the rows in Python).
    """
    return np.where(np.cumsum(~selected, axis=1) % 2 == 1, -np.inf, np.inf)


def spikes(flux: np.ndarray, ivar: np.ndarray, n_sigma: float,
           level: np.ndarray | None = None) -> np.ndarray:
    """Boolean mask of the narrow positive outliers of normalised rows.

    A pixel is a spike when it lies more than ``n_sigma`` of its noise plus SPIKE_FLOOR
    above the higher of its two reference pairs SPIKE_REACH pixels to the left and to the
    right (outside a hit up to SPIKE_REACH pixels wide); 0 disables the test. Four shifted
    maxima instead of a running median: the median filter costs as much as the continuum fit.
    ``level``: rows in the file's own flux units, not normalised; the floor is then
    SPIKE_FLOOR times this continuum level (same shape as ``flux``).
    """
    if n_sigma <= 0:
        return np.zeros(flux.shape, dtype=bool)
    reach = SPIKE_REACH
    padded = np.pad(flux, ((0, 0), (reach + 1, reach + 1)), mode="edge")
    n = flux.shape[1]
    left = np.maximum(padded[:, 0:n], padded[:, 1:n + 1])
    right = np.maximum(padded[:, 2 * reach + 1:n + 2 * reach + 1],
                       padded[:, 2 * reach + 2:n + 2 * reach + 2])
    noise = 1.0 / np.sqrt(np.where(ivar > 0, ivar, 1.0))
    floor = SPIKE_FLOOR if level is None else SPIKE_FLOOR * level
    return (ivar > 0) & (flux - np.maximum(left, right) > n_sigma * noise + floor)


def mask_spikes(flux: np.ndarray, ivar: np.ndarray, n_sigma: float
                ) -> tuple[np.ndarray, np.ndarray]:
    """Normalised rows with their :func:`spikes` set to the continuum at ivar 0 (float32)."""
    spike = spikes(flux, ivar, n_sigma)
    flux, ivar = np.where(spike, 1.0, flux), np.where(spike, 0.0, ivar)
    return flux.astype(np.float32), ivar.astype(np.float32)


def preprocess(spectrum: Spectrum, grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """Normalised flux and its inverse variance on ``grid`` (float32, 1D each)."""
    (result,) = preprocess_many([spectrum], grid)
    if isinstance(result, PreprocessError):
        raise result
    return result


def preprocess_many(spectra: Sequence[Spectrum], grid: Grid
                    ) -> list[tuple[np.ndarray, np.ndarray] | PreprocessError]:
    """``preprocess`` for several spectra, with one continuum fit for all of them.

    Each row's fit is independent of the others; batching only saves the per-call cost
    of the fit's numpy operations, which exceeds the per-row arithmetic at ~4,000 pixels.
    A spectrum that cannot be put on the grid gets its error in its place.
    """
    results: list[tuple[np.ndarray, np.ndarray] | PreprocessError | None] = []
    fluxes, ivars = [], []
    for spectrum in spectra:
        try:
            flux, ivar = resample(spectrum, grid)
            if not np.any(ivar > 0):
                raise PreprocessError(
                    f"spectrum {spectrum.meta.obs_id} has no good pixel on the grid")
        except PreprocessError as exc:
            results.append(exc)
            continue
        results.append(None)
        fluxes.append(flux)
        ivars.append(ivar)
    rows: Iterator[tuple[np.ndarray, np.ndarray]] = iter(())
    if fluxes:
        rows = iter(zip(*normalise(np.stack(fluxes), np.stack(ivars), grid), strict=True))
    return [next(rows) if r is None else r for r in results]
