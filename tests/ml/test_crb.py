"""The Cramer-Rao bound (ml.crb) against closed forms, and the synthetic forward model it uses."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from ml import crb
from ml.synth import write_archive
from ml.synth.replay import PARAMETERS, STEPS, ArchiveReplay, archive_bounds


def test_linear_model_bound_is_the_least_squares_covariance() -> None:
    """f = A theta: J = A exactly, so the bound is sqrt(diag((A^T W A)^-1)) for every spectrum."""
    rng = np.random.default_rng(1)
    n_spec, n_pix, n_par = 5, 60, 3
    design = rng.normal(size=(n_spec, n_pix, n_par))
    ivar = rng.uniform(0.5, 4.0, (n_spec, n_pix))
    ivar[:, ::7] = 0.0  # masked pixels carry no information
    theta = rng.normal(size=(n_spec, n_par))

    def model(shifted: np.ndarray) -> np.ndarray:
        return np.einsum("snp,skp->skn", design, shifted)

    result = crb.cramer_rao(model, theta, np.array([0.1, 1.0, 10.0]), ivar)
    for s in range(n_spec):
        cov = np.linalg.inv(design[s].T @ (ivar[s, :, None] * design[s]))
        assert result.sigma[s] == pytest.approx(np.sqrt(np.diag(cov)), rel=1e-9)
    assert not result.degenerate.any()
    # Holding parameter 2 fixed: the bound of the others is the sub-matrix's inverse.
    fixed = crb.bound(result.fisher, np.array([True, True, False]))
    sub = np.linalg.inv(result.fisher[0][:2, :2])
    assert fixed.sigma[0, :2] == pytest.approx(np.sqrt(np.diag(sub)), rel=1e-9)
    assert np.isnan(fixed.sigma[:, 2]).all()


def test_gaussian_line_depth_and_centre_match_the_analytic_bound() -> None:
    """Line f(x) = 1 - d exp(-(x - c)^2 / (2 s^2)), pixels of width D, white noise sigma.

    With g = exp(-(x - c)^2 / (2 s^2)): df/dd = -g and df/dc = -d g (x - c) / s^2. Pixels
    much finer than s turn the Fisher sums into integrals (x 1 / (sigma^2 D)):
    F_dd = int g^2 dx = sqrt(pi) s, F_cc = d^2 int g^2 (x - c)^2 / s^4 dx = d^2 sqrt(pi) / (2 s),
    and F_dc = 0 (odd integrand). Hence
    sigma_d = sigma sqrt(D / (sqrt(pi) s)) and sigma_c = (sigma / d) sqrt(2 s D / sqrt(pi)).
    """
    x = np.arange(-50.0, 50.0, 0.05)
    width, noise = 1.3, 0.02
    theta = np.array([[0.4, 0.3], [0.8, -1.1]])  # (depth, centre) of two spectra

    def model(shifted: np.ndarray) -> np.ndarray:
        depth, centre = shifted[..., :1], shifted[..., 1:]
        return 1.0 - depth * np.exp(-0.5 * ((x - centre) / width) ** 2)

    ivar = np.full((2, len(x)), noise**-2)
    result = crb.cramer_rao(model, theta, np.array([1e-4, 1e-4]), ivar)
    step = x[1] - x[0]
    depth_bound = noise * math.sqrt(step / (math.sqrt(math.pi) * width))
    for (depth, _), sigma in zip(theta, result.sigma, strict=True):
        centre_bound = noise / depth * math.sqrt(2.0 * width * step / math.sqrt(math.pi))
        assert sigma == pytest.approx([depth_bound, centre_bound], rel=1e-6)


def test_singular_fisher_gives_infinite_bounds_with_a_reason() -> None:
    """Two parameters entering only as a sum cannot be told apart; a third one still can."""
    x = np.linspace(0.0, 1.0, 50)

    def model(shifted: np.ndarray) -> np.ndarray:
        a, b, c = (shifted[..., i : i + 1] for i in range(3))
        return (a + b) * x + c

    theta = np.array([[1.0, 2.0, 0.5]])
    result = crb.cramer_rao(model, theta, np.full(3, 1e-3), np.ones((1, 50)))
    assert result.degenerate[0].tolist() == [True, True, False]
    assert np.isinf(result.sigma[0, :2]).all()
    assert result.sigma[0, 2] == pytest.approx(np.sqrt(np.linalg.pinv(result.fisher[0])[2, 2]))
    assert "degenerate" in result.reason(0, ["a", "b", "c"])

    masked = crb.cramer_rao(model, theta, np.full(3, 1e-3), np.zeros((1, 50)))
    assert np.isinf(masked.sigma).all()
    assert "no information" in masked.reason(0, ["a", "b", "c"])


def test_replay_reproduces_the_written_files_within_their_noise(tmp_path: Path) -> None:
    """The bound's forward model is the generator's: files minus the noise-free re-render
    are pure noise (chi2/pixel ~ 1), and defect pixels are masked out of the bound."""
    write_archive(tmp_path, 20, seed=5, progress=False, workers=1, n_pixels=1500)
    replay = ArchiveReplay(tmp_path)
    checked = 0
    for number in range(len(replay.chunks)):
        chunk = replay.chunk(number)
        noise_free = chunk.noise_free()
        for row, obs_id in enumerate(chunk.obs_ids):
            flux, file_ivar = replay.read_file(obs_id)
            good = chunk.ivar[row] > 0
            chi2 = np.mean(((flux - noise_free[row]) ** 2 * chunk.ivar[row])[good])
            assert chi2 == pytest.approx(1.0, abs=0.15), obs_id
            # The written flux is the replayed one (up to the file's float32).
            assert flux == pytest.approx(chunk.flux[row], rel=1e-5, abs=1e-6 * np.abs(flux).max())
            if not obs_id.startswith("LVS-HARPS-"):  # HARPS files carry no error column
                assert np.all(file_ivar[~good] == 0)
                assert file_ivar[good] == pytest.approx(chunk.ivar[row][good], rel=1e-5)
            checked += 1
    assert checked == 20

    chunk = replay.chunk(0)
    rows = np.arange(min(3, len(chunk.obs_ids)))
    result = crb.cramer_rao(lambda t: chunk.model(rows, t), chunk.theta[rows], STEPS,
                            chunk.ivar[rows])
    assert np.isfinite(result.sigma).all()
    teff = PARAMETERS.index("teff")
    assert (result.sigma[:, teff] > 0).all() and (result.sigma[:, teff] < 500).all()
    # Freeing the continuum nuisances can only widen the labels' bounds.
    known_continuum = crb.bound(result.fisher, np.arange(len(PARAMETERS)) < 5)
    assert (known_continuum.sigma[:, :5] <= result.sigma[:, :5] * (1 + 1e-9)).all()
    # archive_bounds: any order of obs_ids, spectra of several chunks, same figures.
    wanted = [replay.chunk(c).obs_ids[0] for c in range(len(replay.chunks))][::-1]
    wanted += chunk.obs_ids[: len(rows)]
    wave = replay.chunk(0).wavelength
    everything, red_half = (0.0, 1e6), (float(np.median(wave)), 1e6)
    bounds = archive_bounds(replay, wanted, ranges=[everything, red_half])
    free, known = bounds.free, bounds.known
    assert free[-len(rows):] == pytest.approx(result.sigma, rel=1e-9)
    # A range holding every pixel gives the whole file's bound; half the pixels, wider ones.
    assert bounds.within[everything] == pytest.approx(free, rel=1e-9)
    assert (bounds.within[red_half][-len(rows):, :4] > free[-len(rows):, :4]).all()
    assert known[-len(rows):, :5] == pytest.approx(known_continuum.sigma[:, :5], rel=1e-9)
    assert np.isnan(known[:, 5:]).all() and np.isfinite(free).all()
