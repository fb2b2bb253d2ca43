"""Detector gaps stay gaps: a three-chip spectrum on the model grid and in the rest frame.

The spectrum is built from one continuous sampling with two stretches of pixels taken
out (the gaps between chips), so the chips' own pixels are exactly those of the
gap-free spectrum: grid pixels well inside a chip must come out the same from both.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ml.preprocess import (
    GAP_STEP_RATIO,
    MAX_BAD_FRACTION,
    Grid,
    native_pixel_bounds,
    normalise,
    preprocess,
    resample,
)
from ml.rv import shift
from vo_service.archive.spectrum import Spectrum, SpectrumMeta

WAVE_MIN, WAVE_MAX, NATIVE = 15000.0, 17000.0, 7214
GAPS = ((15600.0, 15680.0), (16300.0, 16420.0))  # Angstrom, between the chips
GRID = Grid(15010.0, 16990.0, 4096)


def _spectrum(wave: np.ndarray, seed: int = 3) -> tuple[Spectrum, np.ndarray]:
    """Lines on a sloped continuum, S/N 100; also returns the noise-free flux."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(99).uniform(WAVE_MIN, WAVE_MAX, 150)
    lines = np.exp(-0.5 * ((wave[:, None] - centres[None, :]) / 0.8) ** 2).sum(axis=1)
    truth = (1.0 + 0.2 * (wave - 16000.0) / 1000.0) * (1 - 0.5 * np.clip(lines, 0, 1))
    sigma = truth / 100.0
    noisy = truth + rng.normal(0, 1, len(wave)) * sigma
    meta = SpectrumMeta(obs_id="chips", ra=1.0, dec=2.0)
    return Spectrum(wave, noisy, 1 / sigma**2, meta), truth


def _chips() -> tuple[Spectrum, Spectrum]:
    """(gap-free spectrum, the same with the two gaps' pixels removed)."""
    wave = np.exp(np.linspace(np.log(WAVE_MIN), np.log(WAVE_MAX), NATIVE))
    full, _ = _spectrum(wave)
    keep = np.ones(NATIVE, bool)
    for lo, hi in GAPS:
        keep &= ~((wave > lo) & (wave < hi))
    chips = Spectrum(wave[keep], full.flux[keep], full.ivar[keep], full.meta)
    return full, chips


def _in_gap(wave: np.ndarray, margin: float = 0.0) -> np.ndarray:
    return np.any([(wave > lo - margin) & (wave < hi + margin) for lo, hi in GAPS], axis=0)


def test_gaps_are_found_from_the_pixel_steps():
    _, chips = _chips()
    left, right = native_pixel_bounds(chips.wavelength)
    holes = left[1:] > right[:-1]
    assert holes.sum() == len(GAPS)
    for (lo, hi), at in zip(GAPS, np.flatnonzero(holes), strict=True):
        step = chips.wavelength[at] - chips.wavelength[at - 1]
        assert right[at] == pytest.approx(chips.wavelength[at] + step / 2, abs=0.01 * step)
        assert right[at] < lo + step and left[at + 1] > hi - step
    # a grid recorded before gap detection bridges every step, as it used to
    left, right = native_pixel_bounds(chips.wavelength, 0.0)
    assert np.array_equal(left[1:], right[:-1])


def test_every_grid_pixel_inside_a_gap_has_no_information():
    _, chips = _chips()
    flux, ivar = resample(chips, GRID)
    wave = GRID.wavelength
    inside = _in_gap(wave)
    assert inside.sum() > 150  # the gaps span ~250 grid pixels
    assert np.all(ivar[inside] == 0)
    assert np.all(flux[_in_gap(wave, -1.0)] == 0)  # nothing interpolated across
    assert np.all(ivar[~_in_gap(wave, margin=2.0)] > 0)  # the chips keep every pixel

    norm_flux, norm_ivar = preprocess(chips, GRID)
    assert np.all(norm_ivar[inside] == 0)
    assert np.all(norm_flux[inside] == 1.0)  # the continuum, not an edge pixel repeated


def test_pixels_inside_chips_are_unchanged_by_the_gaps():
    full, chips = _chips()
    flux_full, ivar_full = resample(full, GRID)
    flux_chips, ivar_chips = resample(chips, GRID)
    well_inside = ~_in_gap(GRID.wavelength, margin=3.0)
    np.testing.assert_allclose(flux_chips[well_inside], flux_full[well_inside], rtol=1e-10)
    np.testing.assert_allclose(ivar_chips[well_inside], ivar_full[well_inside], rtol=1e-10)


def test_a_gap_free_spectrum_resamples_as_without_gap_detection():
    full, _ = _chips()
    legacy = Grid(GRID.start, GRID.stop, GRID.n_pixels, gap_step_ratio=0.0)
    for got, before in zip(resample(full, GRID), resample(full, legacy), strict=True):
        np.testing.assert_allclose(got, before, rtol=1e-10)


def test_a_grid_pixel_at_a_chip_edge_averages_only_the_chip():
    """On a coarser grid, a pixel straddling a chip edge is the overlap-weighted mean of
    the chip's pixels it covers (not diluted by the hole) and keeps its information as
    long as the hole takes at most MAX_BAD_FRACTION of it."""
    _, chips = _chips()
    coarse = Grid(15010.0, 16990.0, 300)
    flux, ivar = resample(chips, coarse)
    left, right = native_pixel_bounds(chips.wavelength)
    edges = coarse.edges()
    overlap = np.clip(np.minimum(right[None, :], edges[1:, None])
                      - np.maximum(left[None, :], edges[:-1, None]), 0, None)
    coverage = overlap.sum(axis=1) / np.diff(edges)
    straddling = np.flatnonzero((coverage > 0.05) & (coverage < 0.999))
    assert len(straddling) == 2 * len(GAPS)
    for i in straddling:
        expected = (overlap[i] * chips.flux).sum() / overlap[i].sum()
        assert flux[i] == pytest.approx(expected, rel=1e-9)
        assert (ivar[i] > 0) == (coverage[i] >= 1 - MAX_BAD_FRACTION)


def test_the_rest_frame_shift_never_gives_a_gap_pixel_information():
    _, chips = _chips()
    flux, ivar = preprocess(chips, GRID)
    rows = torch.as_tensor(np.stack([flux] * 4)), torch.as_tensor(np.stack([ivar] * 4))
    lags = torch.tensor([-7.4, -0.5, 0.3, 12.8])
    shifted_flux, shifted_ivar = shift(*rows, lags)
    source = np.arange(GRID.n_pixels)[None, :] + lags.numpy()[:, None]  # out(n) = in(n+lag)
    gap = np.flatnonzero(ivar == 0)
    near_gap = np.isin(np.floor(source), gap) | np.isin(np.ceil(source), gap)
    assert np.all(shifted_ivar.numpy()[near_gap] == 0)
    assert np.all(shifted_flux.numpy()[near_gap] == 1.0)


def test_the_continuum_ignores_pixels_without_information():
    """Gap pixels (any flux, ivar 0) do not move the continuum of the chips."""
    _, chips = _chips()
    flux, ivar = resample(chips, GRID)
    gap = ivar == 0
    filled = np.where(gap, 50.0, flux)
    a, _ = normalise(flux, ivar, GRID)
    b, _ = normalise(filled, ivar, GRID)
    np.testing.assert_array_equal(a, b)


def test_grids_record_the_gap_rule():
    recorded = Grid.from_json(GRID.to_json())
    assert recorded.gap_step_ratio == GAP_STEP_RATIO
    legacy = GRID.to_json().replace(f'"gap_step_ratio": {GAP_STEP_RATIO}, ', "")
    assert "gap_step_ratio" not in legacy
    assert Grid.from_json(legacy).gap_step_ratio == 0.0
    assert Grid.from_json(legacy).key != GRID.key
