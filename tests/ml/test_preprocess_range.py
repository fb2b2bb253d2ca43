"""A grid wider than a spectrum: partial coverage, its limit, telluric bands, old records."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ml.preprocess import (
    TELLURIC_BANDS,
    TELLURIC_BANDS_AIR,
    Grid,
    PreprocessError,
    _envelope_continuum,
    grid_between,
    preprocess,
    preprocess_many,
    resample,
)
from ml.synth.instruments import INSTRUMENTS
from ml.synth.model import observed_flux
from ml.synth.telluric import TELLURIC
from vo_service.archive.spectrum import Spectrum, SpectrumMeta

UNION = grid_between(4000.0, 6000.0, 2048, min_coverage=0.25)


def _spectrum(lo: float, hi: float, name: str = "part", n: int = 6000) -> Spectrum:
    """A lined spectrum over [lo, hi] (vacuum Angstrom) with a sloped continuum."""
    rng = np.random.default_rng(2)
    wave = np.exp(np.linspace(np.log(lo), np.log(hi), n))
    centres = rng.uniform(lo, hi, 80)
    lines = (0.5 * np.exp(-0.5 * ((wave[:, None] - centres) / 0.3) ** 2)).sum(axis=1)
    flux = (1 + (wave - lo) / (hi - lo)) * np.clip(1 - lines, 0.05, None)
    meta = SpectrumMeta(obs_id=name, ra=1.0, dec=2.0)
    return Spectrum(wave, flux, np.full(n, 1e4), meta)


def test_pixels_outside_a_partial_spectrum_are_masked_and_those_inside_unchanged():
    spectrum = _spectrum(4800.0, 5600.0)
    flux, ivar = resample(spectrum, UNION)
    edges = UNION.edges()
    inside = (edges[:-1] >= 4800.0) & (edges[1:] <= 5600.0)
    outside = (edges[1:] <= 4800.0) | (edges[:-1] >= 5600.0)
    assert np.all(ivar[outside] == 0) and np.all(flux[outside] == 0)
    assert np.all(ivar[inside] > 0)
    # the same pixels on a grid the spectrum covers whole
    first, last = np.flatnonzero(inside)[[0, -1]]
    wave = UNION.wavelength
    sub = Grid(float(wave[first]), float(wave[last]), int(last - first + 1))
    sub_flux, sub_ivar = resample(spectrum, sub)
    np.testing.assert_allclose(flux[first:last + 1], sub_flux, rtol=1e-7)
    np.testing.assert_allclose(ivar[first:last + 1], sub_ivar, rtol=1e-6)
    # normalised: the uncovered pixels sit at the continuum with no weight
    norm_flux, norm_ivar = preprocess(spectrum, UNION)
    assert np.all(norm_flux[outside] == 1) and np.all(norm_ivar[outside] == 0)
    assert np.median(norm_flux[inside]) == pytest.approx(1, abs=0.05)


def test_a_spectrum_below_the_minimum_coverage_is_refused_with_a_clear_message():
    assert UNION.covered_by(4800.0, 5600.0) and not UNION.covered_by(4800.0, 4900.0)
    np.testing.assert_array_equal(UNION.covered_by(np.array([3000.0, 5900.0]),
                                                   np.array([9000.0, 7000.0])), [True, False])
    narrow = _spectrum(4800.0, 4900.0, name="narrow")
    message = (r"narrow covers 4800\.0-4900\.0 Angstrom \(vacuum\) \(5% of it\) but the model "
               r"grid needs at least 25% of 4000\.0-6000\.0 Angstrom \(vacuum\)")
    with pytest.raises(PreprocessError, match=message):
        resample(narrow, UNION)
    results = preprocess_many([narrow, _spectrum(4500.0, 6500.0)], UNION)
    assert isinstance(results[0], PreprocessError) and not isinstance(results[1], Exception)


def test_grids_recorded_before_keep_their_text_and_key():
    # Grid(5010.0, 5390.0, 512).to_json() as main recorded it before min_coverage existed
    before = ('{"continuum_degree": 4, "continuum_iterations": 3, "frame": "vacuum", '
              '"gap_step_ratio": 1.5, "kind": "log-uniform", "n_pixels": 512, '
              '"normalisation": "flux / upper-envelope Chebyshev continuum, positive spikes '
              'masked, detector gaps and masked pixels at the continuum with ivar 0", '
              '"spike_sigma": 5.0, "start": 5010.0, "stop": 5390.0, "unit": "Angstrom"}')
    grid = Grid.from_json(before)
    assert grid.min_coverage == 1.0 and grid.telluric_mask is False
    assert grid.to_json() == before and grid.key == "1b1327cc5a9705c7"
    assert not grid.covered_by(5100.0, 6000.0)  # must still cover all of it
    with pytest.raises(PreprocessError, match=r"needs 5009\.\d-5390\.\d Angstrom \(vacuum\)$"):
        resample(_spectrum(5100.0, 6000.0), grid)
    recorded = json.loads(UNION.to_json())
    assert recorded["min_coverage"] == 0.25 and Grid.from_json(UNION.to_json()) == UNION


def test_telluric_bands_are_masked_in_the_file_frame_and_recorded():
    grid = grid_between(6500.0, 7900.0, 4096, telluric_mask=True, min_coverage=0.25)
    assert json.loads(grid.to_json())["telluric_mask"] is True
    assert Grid.from_json(grid.to_json()).telluric_pixels().sum() == grid.telluric_pixels().sum()
    flux, ivar = resample(_spectrum(6450.0, 7950.0, name="red"), grid)
    wave = grid.wavelength
    in_band = np.zeros(len(wave), dtype=bool)
    for lo, hi in TELLURIC_BANDS:
        in_band |= (wave > lo) & (wave < hi)
    assert in_band.any() and np.all(ivar[in_band] == 0)
    assert np.all(ivar[~grid.telluric_pixels()] > 0)
    unmasked = grid_between(6500.0, 7900.0, 4096, min_coverage=0.25)
    assert np.all(resample(_spectrum(6450.0, 7950.0), unmasked)[1] > 0)
    # O2 B (6867 A air) lies within its band, in vacuum, whatever star's RV
    assert any(lo < 6868.9 < hi for lo, hi in TELLURIC_BANDS)


def test_the_synthetic_archive_s_telluric_bands_lie_within_the_masked_ranges():
    for head, extent in zip(TELLURIC.head, TELLURIC.extent, strict=True):
        assert any(lo <= head and head + extent <= hi for lo, hi in TELLURIC_BANDS_AIR), head


def test_a_continuum_exploding_outside_the_coverage_keeps_every_covered_pixel():
    """A degree-10 envelope fitted to a HARPS-like spectrum (3800-6900 A) on a 3700-9200 A
    grid runs off to hundreds of times the flux beyond the spectrum's red end. Only the
    covered pixels may set the scale below which a continuum counts as non-positive;
    before, that extrapolation did, and 40 % of the synthetic archive's HARPS and UVES
    spectra lost a fifth to a third of their pixels on the union grid."""
    grid = grid_between(3700.0, 9200.0, 4096, min_coverage=0.25, continuum_degree=10,
                        continuum_iterations=6)
    rng = np.random.default_rng(3)
    labels = {"teff": rng.uniform(4000, 7000, 8), "logg": rng.uniform(1, 5, 8),
              "mh": rng.uniform(-2, 0.5, 8), "alpha_m": rng.uniform(0, 0.4, 8),
              "rv": rng.normal(0, 30, 8)}
    harps = next(i for i in INSTRUMENTS if i.name == "HARPS")
    wave = np.exp(np.linspace(np.log(harps.wave_min), np.log(harps.wave_max), 8000))
    flux = observed_flux(labels, wave, 5000, frame="vacuum",
                         response=harps.response(wave)[None])[0]
    spectrum = Spectrum(wave, flux, np.full(len(wave), 1e4) / flux.mean() ** 2,
                        SpectrumMeta(obs_id="harps-like", ra=1.0, dec=2.0))
    resampled, ivar = resample(spectrum, grid)
    covered = ivar > 0
    continuum = _envelope_continuum(resampled[None], covered[None], 10, 6)[0]
    # the old scale: a thousandth of the largest |continuum| anywhere on the grid
    assert (continuum[covered] < 1e-3 * np.abs(continuum).max()).sum() > 100
    _, out_ivar = preprocess(spectrum, grid)
    assert np.all(out_ivar[covered] > 0)
