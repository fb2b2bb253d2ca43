"""Native pixels onto the model grid: "box" (flat within each native pixel) or "spline".

Where native pixels are wider than grid pixels, the box resampling draws the native
pixels' staircase on the grid. The steps stay where the instrument's pixels are, so once
a spectrum is shifted to its rest frame the pattern depends on the star's RV; the spline
through the cumulative flux follows the lines inside the native pixels instead.
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from ml.errors import MLError
from ml.preprocess import Grid, preprocess, resample
from ml.rv import shift
from tests.ml.test_preprocess_gaps import GRID, _chips, _in_gap
from vo_service.archive.spectrum import Spectrum, SpectrumMeta

C_KMS = 299792.458
# a FEROS-like file: 1.2 A native pixels, lines two native pixels wide (FWHM)
NATIVE = np.arange(5000.0, 5600.0, 1.2)
FINE = Grid(5050.0, 5550.0, 3000)  # 0.18 A pixels: the native ones are ~6.5 wide
CENTRES = np.random.default_rng(5).uniform(5040.0, 5560.0, 120)
DEPTHS = np.random.default_rng(6).uniform(0.1, 0.6, 120)


def _star(rv_kms: float) -> Spectrum:
    """Noise-free absorption lines, Doppler-shifted, each native pixel the mean of the
    shifted spectrum over it (the instrument's pixel integration)."""
    sub = np.linspace(-0.5, 0.5, 21)[None, :] * 1.2 + NATIVE[:, None]  # points per pixel
    rest = sub / (1 + rv_kms / C_KMS)
    sigma = 2 * 1.2 / 2.3548
    lines = DEPTHS * np.exp(-0.5 * ((rest[..., None] - CENTRES) / sigma) ** 2)
    flux = np.prod(1 - lines, axis=-1).mean(axis=1)
    return Spectrum(NATIVE, flux, np.full(len(NATIVE), 1e4),
                    SpectrumMeta(obs_id="star", ra=1.0, dec=2.0))


def _rest_frame_scatter(grid: Grid) -> float:
    """RMS change of the star's rest-frame spectrum (flux units) over RVs spanning one
    native pixel, against RV 0."""
    rvs = np.linspace(0.0, 1.2 / 5300 * C_KMS, 9)
    flux = np.stack([resample(_star(rv), grid)[0] for rv in rvs])
    rest, _ = shift(torch.as_tensor(flux), torch.ones(flux.shape, dtype=torch.float64),
                    torch.as_tensor(rvs / grid.velocity_step))
    inner = slice(100, -100)  # away from the ends, where shifted-in pixels are filled
    return float(np.sqrt(np.mean((rest[1:, inner] - rest[0, inner]).numpy() ** 2)))


def test_the_spline_leaves_a_shifted_star_s_rest_frame_spectrum_far_steadier():
    box = _rest_frame_scatter(FINE)
    spline = _rest_frame_scatter(replace(FINE, resampling="spline"))
    assert box > 0.01  # the staircase: more than the noise at S/N 100
    assert spline < 0.4 * box


def test_the_spline_conserves_the_flux_and_deepens_undersampled_lines():
    """The spline's cumulative flux passes through the box's at every native pixel edge,
    so the flux over the grid agrees; inside native pixels it follows the lines."""
    star = _star(12.0)
    grid = Grid(5010.0, 5590.0, 2000, resampling="spline")
    flux, ivar = resample(star, grid)
    box_flux, box_ivar = resample(star, replace(grid, resampling="box"))
    np.testing.assert_array_equal(ivar, box_ivar)  # the variance is the box's
    width = np.diff(grid.edges())
    assert (flux * width).sum() == pytest.approx((box_flux * width).sum(), rel=1e-6)
    assert flux.min() < box_flux.min() - 0.02  # line cores deeper than the pixel means


def test_a_cosmic_ray_hit_leaves_no_ringing_in_the_spline():
    """An unflagged hit (a file without a mask) is dropped before the spline is fitted:
    the grid pixels it covers lose their information, its neighbours are as without it."""
    grid = replace(FINE, resampling="spline")
    clean = _star(0.0)
    hit = Spectrum(NATIVE, clean.flux.copy(), clean.ivar, clean.meta)
    at = 200
    hit.flux[at] = 12.0
    flux, ivar = resample(hit, grid)
    expected, _ = resample(clean, grid)
    near = np.abs(grid.wavelength - NATIVE[at]) < 6.0
    assert np.all(ivar[near & (np.abs(grid.wavelength - NATIVE[at]) < 0.5)] == 0)
    kept = near & (ivar > 0)
    assert kept.sum() > 40
    np.testing.assert_allclose(flux[kept], expected[kept], atol=0.05)
    box_flux, box_ivar = resample(hit, FINE)  # the box keeps it for normalise to mask
    assert box_flux.max() > 10 and np.all(box_ivar > 0)


def test_gaps_stay_gaps_with_the_spline():
    full, chips = _chips()
    grid = replace(GRID, resampling="spline")
    flux, ivar = resample(chips, grid)
    wave = grid.wavelength
    assert np.all(ivar[_in_gap(wave)] == 0)
    assert np.all(flux[_in_gap(wave, -1.0)] == 0)  # nothing interpolated across
    norm_flux, norm_ivar = preprocess(chips, grid)
    assert np.all(norm_flux[_in_gap(wave)] == 1.0)
    # a chip's own stretch of spline forgets the other chips within a few native pixels
    flux_full, _ = resample(full, grid)
    well_inside = ~_in_gap(wave, margin=5.0)
    np.testing.assert_allclose(flux[well_inside], flux_full[well_inside], rtol=1e-6)


def test_grids_record_the_resampling():
    box = Grid(5050.0, 5550.0, 3000)
    assert "resampling" not in json.loads(box.to_json())  # as recorded before the choice
    spline = replace(box, resampling="spline")
    assert json.loads(spline.to_json())["resampling"] == "spline"
    assert Grid.from_json(spline.to_json()) == spline and spline.key != box.key
    assert Grid.from_json(box.to_json()).resampling == "box"
    with pytest.raises(MLError, match="unknown resampling 'cubic'"):
        Grid(5050.0, 5550.0, 3000, resampling="cubic")
