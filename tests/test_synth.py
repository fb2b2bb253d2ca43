"""Synthetic spectra and archive: reproducibility, physics directions, noise, RV, tellurics."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from ml.synth import draw_population, normalised_flux, render_batch, write_archive
from ml.synth.model import C_KMS, continuum
from vo_service.archive.readers import read_spectrum

GRID = np.logspace(np.log10(3800.0), np.log10(9200.0), 4000)  # SDSS-like
R = 2000.0
SUN = {"teff": 5777.0, "logg": 4.44, "mh": 0.0, "alpha_m": 0.0}


def star(**changes: float) -> dict[str, float]:
    return {**SUN, **changes}


def ew(labels: dict, lo: float, hi: float, grid: np.ndarray = GRID, power: float = R) -> float:
    """Equivalent width (Angstrom) of the normalised model between lo and hi."""
    flux = normalised_flux(labels, grid, power)[0]
    inside = (grid > lo) & (grid < hi)
    return float(np.trapezoid(1.0 - flux[inside], grid[inside]))


def digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_archive_is_byte_reproducible_and_complete(tmp_path: Path) -> None:
    one = write_archive(tmp_path / "a", 60, seed=7, progress=False, workers=1, n_pixels=1000)
    write_archive(tmp_path / "b", 60, seed=7, progress=False, workers=2, n_pixels=1000)
    write_archive(tmp_path / "c", 60, seed=8, progress=False, workers=1, n_pixels=1000)
    first, second = digest(tmp_path / "a"), digest(tmp_path / "b")
    assert first == second
    assert first != digest(tmp_path / "c")

    truth = list(csv.DictReader((tmp_path / "a" / "truth.csv").open()))
    assert len(truth) == 60 == one.n_spectra
    assert len({row["obs_id"] for row in truth}) == 60
    assert {row["format"] for row in truth} == {
        "eso-phase3",
        "fits-1d-wcs",
        "sdss",
        "spectrum-votable",
    }
    for row in truth[:12]:
        spectrum = read_spectrum(tmp_path / "a" / row["path"])
        assert spectrum.meta.obs_id == row["obs_id"]
        assert spectrum.meta.target_name == row["target_name"]
        assert spectrum.source_format == row["format"]
        assert len(spectrum.wavelength) == 1000

    reference = list(csv.DictReader((tmp_path / "a" / "reference_labels.csv").open()))
    assert reference and len(reference) == one.n_reference_stars
    names = {row["target_name"]: row for row in truth}
    for ref in reference:
        true = names[ref["target_name"]]
        assert 4000.0 <= float(true["teff"]) <= 7000.0 and float(true["mh"]) > -1.5
        assert abs(float(ref["teff"]) - float(true["teff"])) < 6 * float(ref["teff_err"])
        assert float(ref["logg_err"]) > 0

    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert manifest["seed"] == 7 and manifest["n_spectra"] == 60
    assert sum(manifest["counts"]["format"].values()) == 60


def test_render_is_deterministic() -> None:
    labels = {k: np.full(3, v) for k, v in SUN.items()}
    a = render_batch(labels, GRID, R, 50.0, np.random.default_rng(1))
    b = render_batch(labels, GRID, R, 50.0, np.random.default_rng(1))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_population_is_plausible() -> None:
    obs = draw_population(3000, np.random.default_rng(0), snr_range=(20.0, 80.0))
    assert len(obs) == 3000
    dwarfs, giants = obs[obs["kind"] == "dwarf"], obs[obs["kind"] == "giant"]
    assert dwarfs["teff"].min() >= 3500 and dwarfs["teff"].max() <= 8000
    assert dwarfs["logg"].min() >= 4.0 and giants["logg"].max() <= 3.5
    assert giants["teff"].min() >= 3800 and giants["teff"].max() <= 5500
    assert np.corrcoef(dwarfs["teff"], dwarfs["logg"])[0, 1] < -0.5
    assert np.corrcoef(obs["mh"], obs["alpha_m"])[0, 1] < -0.5
    assert obs["mh"].min() >= -2.5 and obs["mh"].max() <= 0.5 and (obs["mh"] < -1.5).any()
    assert np.abs(obs["rv"]).max() <= 150 and np.mean(np.abs(obs["rv"]) < 60) > 0.7
    assert obs["snr"].min() >= 20.0 and obs["snr"].max() <= 80.0
    counts = np.bincount(obs["star_id"])
    assert counts.max() > 1 and np.mean(counts[counts > 0] > 1) > 0.1
    repeats = obs[obs["star_id"] == np.argmax(counts)]
    assert len(set(repeats["mjd"])) == len(repeats) and len(set(repeats["teff"])) == 1


def test_balmer_lines_strengthen_with_teff_and_get_gravity_wings() -> None:
    hbeta = [ew(star(teff=t, logg=4.3), 4800, 4920) for t in (4500, 5500, 6500, 7500)]
    assert np.all(np.diff(hbeta) > 0)
    assert ew(star(teff=7500, logg=4.5), 4800, 4920) > 1.2 * ew(
        star(teff=7500, logg=3.5), 4800, 4920
    )


def test_metal_lines_scale_with_metallicity_and_alpha() -> None:
    fe = [ew(star(mh=m), 5360, 5460) for m in (-2.0, -1.0, 0.0, 0.4)]
    assert np.all(np.diff(fe) > 0) and fe[-1] > 5 * fe[0]
    mgb_alpha = ew(star(alpha_m=0.4), 5160, 5190) / ew(star(alpha_m=0.0), 5160, 5190)
    fe_alpha = ew(star(alpha_m=0.4), 5360, 5460) / ew(star(alpha_m=0.0), 5360, 5460)
    assert mgb_alpha > 1.15 > fe_alpha


def test_gravity_and_temperature_sensitive_lines() -> None:
    uves = np.linspace(4800.0, 6800.0, 4000)
    nad_cool, nad_hot = (ew(star(teff=t), 5880, 5905, uves, 5800) for t in (4500, 6500))
    assert nad_cool > 2 * nad_hot
    mgb_dwarf = ew(star(teff=4800, logg=4.6), 5160, 5195, uves, 5800)
    mgb_giant = ew(star(teff=4800, logg=2.3), 5160, 5195, uves, 5800)
    assert mgb_dwarf > 1.3 * mgb_giant
    fe2_dwarf = ew(star(teff=4800, logg=4.6), 5015, 5022, uves, 5800)
    fe2_giant = ew(star(teff=4800, logg=2.3), 5015, 5022, uves, 5800)
    assert fe2_giant > fe2_dwarf  # ionised lines strengthen at low gravity
    tio_cool, tio_warm = (ew(star(teff=t, logg=4.7), 7050, 7200) for t in (3600, 4500))
    assert tio_cool > 5 * tio_warm and tio_cool > 10


def _lag_kms(a: np.ndarray, b: np.ndarray, grid: np.ndarray) -> float:
    """Velocity shift of ``b`` relative to ``a`` on a log grid, by cross-correlation."""
    a, b = a - a.mean(), b - b.mean()
    corr = np.correlate(b, a, mode="full")
    k = int(np.argmax(corr))
    y0, y1, y2 = corr[k - 1 : k + 2]
    lag = k - (len(a) - 1) + 0.5 * (y0 - y2) / (y0 - 2 * y1 + y2)
    return float(np.expm1(lag * np.log(grid[1] / grid[0])) * C_KMS)


def test_rv_shifts_star_but_not_tellurics() -> None:
    grid = np.logspace(np.log10(4800.0), np.log10(7800.0), 6000)
    cool = star(teff=5000.0, pwv=4.0, airmass=1.5)
    blue, red = (normalised_flux(dict(cool, rv=v), grid, 6000.0)[0] for v in (-100.0, 100.0))
    stellar = (grid > 5100) & (grid < 5600)
    telluric = (grid > 7585) & (grid < 7720)
    assert _lag_kms(blue[stellar], red[stellar], grid) == pytest.approx(200.0, abs=2.0)
    assert abs(_lag_kms(blue[telluric], red[telluric], grid)) < 3.0


def test_rv_measured_from_noisy_spectrum() -> None:
    grid = np.logspace(np.log10(4800.0), np.log10(5800.0), 4000)
    labels = star(teff=5200.0, rv=37.0)
    flux, _ = render_batch(labels, grid, 5000.0, 100.0, np.random.default_rng(5), defects=False)
    observed = flux[0] / continuum(grid, np.array([5200.0]), np.array([0.0]))[0]
    template = normalised_flux(star(teff=5200.0), grid, 5000.0)[0]
    assert _lag_kms(template, observed, grid) == pytest.approx(37.0, abs=1.5)


def test_noise_matches_snr_and_defects_are_masked() -> None:
    labels = {k: np.full(20, v) for k, v in star(rv=0.0).items()}
    flux, ivar = render_batch(labels, GRID, R, 50.0, np.random.default_rng(2))
    model = continuum(GRID, labels["teff"], labels["mh"]) * normalised_flux(labels, GRID, R)
    good = ivar > 0
    pulls = ((flux - model) * np.sqrt(ivar))[good]
    assert np.std(pulls) == pytest.approx(1.0, abs=0.02)
    assert np.median(flux[good] * np.sqrt(ivar[good])) == pytest.approx(50.0, rel=0.05)
    bad = ~good
    assert 0 < bad.sum() < 0.01 * bad.size
    assert np.all(np.isfinite(flux)) and np.all(ivar >= 0)
