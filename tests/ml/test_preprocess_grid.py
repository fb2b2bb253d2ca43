"""The autoencoder's grid follows the archive's resolving power unless the operator says."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ml.errors import MLError
from ml.grid_choice import (
    FALLBACK_PIXELS,
    MAX_PIXELS,
    PIXEL_MULTIPLE,
    UNION_MIN_COVERAGE,
    choose_pixels,
    describe,
    grid_for,
)
from ml.preprocess import common_grid
from ml.profiles import profile_range
from ml.train import AutoencoderConfig
from ml.training_runs import train_autoencoder_run
from vo_service.archive.ingest import Ingester
from vo_service.archive.readers import eso_phase3
from vo_service.archive.spectrum import Spectrum, SpectrumMeta

C_KMS = 299792.458
TINY = AutoencoderConfig(latent_dim=4, epochs=1, channels=(8, 16), hidden=32, profile="cpu")


def _per_element(grid, power: float) -> float:
    """Grid pixels per resolution element c / R, from the grid itself."""
    return (C_KMS / power) / grid.velocity_step


def test_auto_samples_r_22500_at_two_pixels_per_element():
    lo, hi = 15000.0, 17000.0  # the near-infrared spectrograph
    power = np.full(500, 22500.0)
    choice = choose_pixels(lo, hi, power)
    assert choice.source == "auto" and choice.resolving_power == 22500.0
    assert choice.pixels % PIXEL_MULTIPLE == 0
    assert choice.pixels == pytest.approx(2 * 22500 * math.log(hi / lo), abs=PIXEL_MULTIPLE)
    grid = common_grid(np.array([lo]), np.array([hi]), choice.pixels)
    assert _per_element(grid, 22500.0) >= 2.0
    assert choice.pixels_per_resolution_element == pytest.approx(
        _per_element(grid, 22500.0), rel=2e-3)
    summary = describe(grid, choice.record())
    assert summary.startswith(f"grid {choice.pixels:,} px, ")
    assert "2.0 px per resolution element at R 22,500 (90th percentile), auto" in summary


def test_a_high_percentile_serves_the_sharpest_spectra_of_a_mixed_archive():
    power = np.concatenate([np.full(80, 2000.0), np.full(20, 40000.0), [np.nan] * 30])
    choice = choose_pixels(4800.0, 6800.0, power)
    assert choice.resolving_power == 40000.0  # NaN (R not stated) left out


def test_the_operator_overrides_and_the_cap_binds_only_the_automatic_choice():
    power = np.full(10, 115000.0)  # HARPS over 4800-6800 A: ~80,000 pixels for 2/element
    auto = choose_pixels(4800.0, 6800.0, power)
    assert auto.pixels == MAX_PIXELS and auto.pixels_per_resolution_element < 2
    grid = common_grid(np.array([4800.0]), np.array([6800.0]), auto.pixels)
    assert "WARNING: capped at 16,384 px" in describe(grid, auto.record())
    operator = choose_pixels(4800.0, 6800.0, power, operator_pixels=32768)
    assert operator.pixels == 32768 and operator.source == "operator"
    assert operator.resolving_power == 115000.0
    grid = common_grid(np.array([4800.0]), np.array([6800.0]), 32768)
    assert describe(grid, operator.record()).endswith("(90th percentile), operator")


def test_without_a_stated_resolving_power_the_default_is_used_and_said():
    choice = choose_pixels(4800.0, 6800.0, np.full(5, np.nan))
    assert choice.record() == {"pixels": FALLBACK_PIXELS, "source": "auto",
                               "resolving_power": None, "pixels_per_resolution_element": None}
    grid = common_grid(np.array([4800.0]), np.array([6800.0]), choice.pixels)
    assert "no resolving power stated by the files: the default 2,048 px" in describe(
        grid, choice.record())


def _r22500_archive(directory, n: int = 48):
    """Phase 3 files of a 5000-5100 A spectrograph with SPEC_RES = 22,500."""
    rng = np.random.default_rng(4)
    wave = np.exp(np.linspace(np.log(4995.0), np.log(5105.0), 1800))
    centres = rng.uniform(5000.0, 5100.0, 40)
    for i in range(n):
        depth = rng.uniform(0.1, 0.6, len(centres))
        lines = depth * np.exp(-0.5 * ((wave[:, None] - centres) / 0.1) ** 2)
        flux = 1 - lines.sum(axis=1) + rng.normal(0, 0.01, len(wave))
        meta = SpectrumMeta(obs_id=f"r22500-{i}", target_name=f"star {i}", ra=10.0 + i,
                            dec=-20.0, resolving_power=22500.0)
        eso_phase3.write(Spectrum(wave, flux, np.full(len(wave), 1e4), meta),
                         directory / f"r22500-{i}.fits")
    return sorted(directory.glob("*.fits"))


def test_training_on_an_r22500_archive_records_the_choice(clean_archive, settings, tmp_path):
    files = _r22500_archive(tmp_path)
    assert Ingester(clean_archive.engine, settings, workers=1).run(files).ingested == len(files)

    auto = train_autoencoder_run(clean_archive.engine, settings, model_id="grid-auto",
                                 config=TINY, seed=1, progress=False)
    choice = auto.record.hyperparameters["grid_choice"]
    assert choice["source"] == "auto" and choice["resolving_power"] == 22500.0
    assert choice["pixels"] == auto.record.grid.n_pixels
    assert choice["pixels_per_resolution_element"] >= 2.0
    assert _per_element(auto.record.grid, 22500.0) >= 2.0
    assert "px per resolution element at R 22,500 (90th percentile), auto" in auto.summary()

    chosen = train_autoencoder_run(clean_archive.engine, settings, model_id="grid-operator",
                                   config=TINY, n_pixels=256, seed=1, progress=False)
    assert chosen.record.grid.n_pixels == 256
    assert chosen.record.hyperparameters["grid_choice"]["source"] == "operator"
    assert chosen.record.hyperparameters["grid_choice"]["pixels_per_resolution_element"] < 1


def _two_range_archive(directory, n: int = 24):
    """Phase 3 files of two spectrographs: 4995-5105 A and 5045-5305 A, both R 22,500."""
    rng = np.random.default_rng(5)
    for name, lo, hi in (("blue", 4995.0, 5105.0), ("red", 5045.0, 5305.0)):
        wave = np.exp(np.linspace(np.log(lo), np.log(hi), 2400))
        centres = rng.uniform(lo, hi, 60)
        for i in range(n):
            depth = rng.uniform(0.1, 0.6, len(centres))
            lines = depth * np.exp(-0.5 * ((wave[:, None] - centres) / 0.1) ** 2)
            flux = 1 - lines.sum(axis=1) + rng.normal(0, 0.01, len(wave))
            meta = SpectrumMeta(obs_id=f"{name}-{i}", target_name=f"{name} star {i}",
                                ra=10.0 + i, dec=-20.0 if name == "blue" else 20.0,
                                resolving_power=22500.0)
            eso_phase3.write(Spectrum(wave, flux, np.full(len(wave), 1e4), meta),
                             directory / f"{name}-{i}.fits")
    return sorted(directory.glob("*.fits"))


def test_union_and_common_ranges_on_an_archive_of_two_coverages(clean_archive, settings,
                                                                tmp_path):
    files = _two_range_archive(tmp_path)
    assert Ingester(clean_archive.engine, settings, workers=1).run(files).ingested == len(files)
    with pytest.raises(MLError, match="must be one of common, union, got 'all'"):
        train_autoencoder_run(clean_archive.engine, settings, model_id="grid-all", config=TINY,
                              wavelength_range="all", progress=False)

    common = train_autoencoder_run(clean_archive.engine, settings, model_id="grid-common",
                                   config=TINY, n_pixels=256, wavelength_range="common",
                                   seed=1, progress=False).record
    union_run = train_autoencoder_run(clean_archive.engine, settings, model_id="grid-union",
                                      config=TINY, n_pixels=256, wavelength_range="union",
                                      seed=1, progress=False)
    union = union_run.record
    assert common.grid.bounds() == pytest.approx((5045.0, 5105.0), abs=0.5)
    assert common.grid.min_coverage == 1.0
    assert union.grid.bounds() == pytest.approx((4995.0, 5305.0), abs=3.0)
    assert union.grid.min_coverage == UNION_MIN_COVERAGE and not union.grid.telluric_mask
    choice = union.hyperparameters["grid_choice"]
    assert choice["range"] == "union" and choice["min_coverage"] == UNION_MIN_COVERAGE
    assert (choice["wavelength_min"], choice["wavelength_max"]) == pytest.approx(
        union.grid.bounds(), abs=0.01)
    assert common.hyperparameters["grid_choice"]["range"] == "common"
    assert union.training_size == common.training_size == len(files)
    assert "union range 4,995-5,305 A (spectra cover at least 25% of it)" in union_run.summary()
    # the default profile reads the union, the cpu profile the common range
    assert profile_range("default") == "union" and profile_range("cpu") == "common"
    # auto pixels follow the wider range: same sampling, more pixels
    wide = choose_pixels(*union.grid.bounds(), np.full(4, 22500.0))
    narrow = choose_pixels(*common.grid.bounds(), np.full(4, 22500.0))
    assert wide.pixels > 3 * narrow.pixels


def test_grid_for_is_the_benchmark_s_grid_of_either_range():
    wave_min = np.array([3800.0, 4800.0, 3800.0, 3800.0, 3700.0] * 20)
    wave_max = np.array([6900.0, 6800.0, 8900.0, 9200.0, 9000.0] * 20)
    common = grid_for(wave_min, wave_max, 1024, "common")
    union = grid_for(wave_min, wave_max, 1024, "union")
    assert common.bounds() == pytest.approx((4800.0, 6800.0))
    assert union.bounds() == pytest.approx((3700.0, 9200.0))
    assert union.telluric_mask and not common.telluric_mask
    assert union.covered_by(wave_min, wave_max).all()
    assert union.continuum_fit == "running-mean" and common.continuum_fit == "upper-envelope"
    assert common.continuum_degree == 4
    # an envelope over the union range grows its degree with the range
    assert grid_for(wave_min, wave_max, 1024, "union", continuum="upper-envelope"
                    ).continuum_degree > 4
