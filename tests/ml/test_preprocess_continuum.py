"""The continuum divided out on the model grid: the upper envelope, whose level follows the
noise, and the running mean, whose level does not."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ml.errors import MLError
from ml.grid_choice import CONTINUUM_WINDOW_KMS, grid_for
from ml.preprocess import Grid, grid_between, normalise

LO, HI, PIXELS = 4800.0, 6800.0, 4096
MEAN = grid_between(LO, HI, PIXELS, continuum_fit="running-mean",
                    continuum_window_kms=CONTINUUM_WINDOW_KMS)
ENVELOPE = grid_between(LO, HI, PIXELS)


def _truth(grid: Grid) -> np.ndarray:
    """A blaze-like continuum times 300 absorption lines, on the grid's pixels."""
    wave = grid.wavelength
    centres = np.random.default_rng(5).uniform(LO, HI, 300)
    depth = np.random.default_rng(6).uniform(0.1, 0.7, 300)
    lines = (depth * np.exp(-0.5 * ((wave[:, None] - centres) / 0.6) ** 2)).sum(axis=1)
    continuum = 1000.0 * np.exp(-0.5 * ((wave - 5600.0) / 1500.0) ** 2)
    return continuum * np.clip(1 - lines, 0.05, None)


def _draws(grid: Grid, snr: float, n: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """(mean over ``n`` noise draws of the normalised flux, the noise-free normalised flux)."""
    truth = _truth(grid)
    sigma = truth.mean() / snr
    rng = np.random.default_rng(int(snr))
    flux = truth + rng.normal(0.0, sigma, (n, len(truth)))
    ivar = np.full(flux.shape, 1.0 / sigma**2)
    noisy, _ = normalise(flux, ivar, grid)
    clean, _ = normalise(truth, ivar[:1], grid)
    return noisy.mean(axis=0), clean[0]


@pytest.mark.parametrize("snr", [10.0, 200.0])
def test_the_running_mean_s_level_does_not_follow_the_noise(snr):
    mean, clean = _draws(MEAN, snr)
    # 64-pixel means of the bias; what 200 draws leave of the noise is ~0.15 % at S/N 10
    bias = (mean - clean)[128:-128].reshape(-1, 64).mean(axis=1)
    assert np.abs(bias).max() < 0.004


def test_the_upper_envelope_sits_high_at_low_snr():
    """The envelope keeps the pixels whose noise is positive: its continuum sits high."""
    mean, clean = _draws(ENVELOPE, 10.0)
    assert np.median(mean - clean) < -0.02
    mean, clean = _draws(ENVELOPE, 200.0)
    assert abs(np.median(mean - clean)) < 0.004


def test_a_cosmic_ray_neither_lifts_the_mean_nor_survives():
    truth = _truth(MEAN)
    ivar = np.full(PIXELS, 1.0 / 1.0**2)
    hit = truth.copy()
    hit[2000] *= 100.0
    a, ia = normalise(truth, ivar, MEAN)
    b, ib = normalise(hit, ivar, MEAN)
    assert ib[0, 2000] == 0 and b[0, 2000] == 1.0
    near = np.r_[1900:1999, 2002:2100]
    np.testing.assert_allclose(b[0, near], a[0, near], rtol=1e-3)


def test_uncovered_pixels_do_not_pull_the_mean_at_a_coverage_edge():
    flat = np.full(PIXELS, 50.0)
    ivar = np.full(PIXELS, 1e4)
    ivar[: PIXELS // 2] = 0  # the blue half uncovered, its flux whatever the resampler left
    flux = np.where(ivar > 0, flat, 0.0)
    normalised, out_ivar = normalise(flux, ivar, MEAN)
    covered = out_ivar[0] > 0
    np.testing.assert_allclose(normalised[0, covered], 1.0, rtol=1e-6)
    assert np.all(normalised[0, ~covered] == 1.0)


def test_each_range_records_its_continuum_and_old_records_read_as_the_envelope():
    wave_min, wave_max = np.array([LO, LO - 1000]), np.array([HI, HI + 2000])
    common = grid_for(wave_min, wave_max, 1024, "common")
    assert common.continuum_fit == "upper-envelope"
    assert "continuum_fit" not in json.loads(common.to_json())  # as recorded before
    union = grid_for(wave_min, wave_max, 1024, "union")
    assert union.continuum_fit == "running-mean"
    assert union.continuum_window_kms == CONTINUUM_WINDOW_KMS
    recorded = json.loads(union.to_json())
    assert recorded["continuum_fit"] == "running-mean" and "running mean" in \
        recorded["normalisation"]
    assert Grid.from_json(union.to_json()) == union
    del recorded["continuum_fit"], recorded["continuum_window_kms"]
    legacy = Grid.from_json(json.dumps(recorded))
    assert legacy.continuum_fit == "upper-envelope" and legacy.key != union.key
    other = grid_for(wave_min, wave_max, 1024, "common", continuum="running-mean")
    assert other.continuum_fit == "running-mean" and other.key != common.key


def test_a_bad_continuum_record_is_refused():
    with pytest.raises(MLError, match="unknown continuum fit 'spline'"):
        grid_between(LO, HI, 512, continuum_fit="spline")
    with pytest.raises(MLError, match="needs continuum_window_kms > 0"):
        grid_between(LO, HI, 512, continuum_fit="running-mean")
    with pytest.raises(MLError, match="unknown continuum fit 'spline'"):
        grid_for(np.array([LO]), np.array([HI]), 512, continuum="spline")
    with pytest.raises(MLError, match="must be one of common, union, got 'all'"):
        grid_for(np.array([LO]), np.array([HI]), 512, "all", continuum="running-mean")
