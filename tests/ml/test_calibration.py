"""S/N-aware error calibration, S/N-dependent domain cuts and the per-S/N figures."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from ml.calibration import SigmaCalibration, by_snr, calibrate_held_out, fit_calibration
from ml.domain import DomainModel, fit_cuts
from ml.snr import spectrum_snr
from ml.train import LabelConfig, train_label_model
from tests.ml import toy
from tests.ml.conftest import TOY_GRID

SNR_RANGE = (10.0, 300.0)


def deciles(snr: np.ndarray) -> list[np.ndarray]:
    edges = np.quantile(snr, np.linspace(0, 1, 11))
    return [(snr >= lo) & (snr <= hi) for lo, hi in zip(edges[:-1], edges[1:], strict=True)]


def draw_residuals(n: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Residuals whose true error is 2/snr (+ a 0.004 floor) while the network's sigma goes
    as snr^-0.7: too small at low S/N, too large at high S/N, right only on average."""
    snr = np.exp(rng.uniform(np.log(SNR_RANGE[0]), np.log(SNR_RANGE[1]), n))
    sigma_net = np.column_stack([snr**-0.7, 0.5 * snr**-0.7])
    sigma_true = np.column_stack([np.hypot(2 / snr, 0.004), np.hypot(1 / snr, 0.002)])
    ref_err = np.full((n, 2), 0.003)
    truth = rng.normal(0, 1, (n, 2))
    pred = truth + rng.normal(0, 1, (n, 2)) * sigma_true
    reference = truth + rng.normal(0, 1, (n, 2)) * ref_err
    return pred, sigma_net, reference, ref_err, snr


def z_std_per_decile(calibration: SigmaCalibration, draws: tuple[np.ndarray, ...]
                     ) -> np.ndarray:
    pred, sigma_net, reference, ref_err, snr = draws
    sigma = calibration.sigma(sigma_net**2, snr)
    z = (pred - reference) / np.sqrt(sigma**2 + ref_err**2)
    return np.array([np.std(z[b], axis=0) for b in deciles(snr)])


def test_calibration_recovers_an_snr_dependent_error_law():
    rng = np.random.default_rng(5)
    calibration = fit_calibration(*draw_residuals(3000, rng))
    fresh = draw_residuals(30000, rng)
    assert np.all((z_std_per_decile(calibration, fresh) > 0.9)
                  & (z_std_per_decile(calibration, fresh) < 1.1))
    # a global scale and floor (the old calibration) gets the average right, not the deciles
    pred, sigma_net, reference, ref_err, snr = draw_residuals(3000, rng)
    flat = fit_calibration(pred, sigma_net, reference, ref_err, snr, degree=0)
    per_decile = z_std_per_decile(flat, fresh)
    assert per_decile[0].min() > 1.1 and per_decile[-1].max() < 0.9


def test_calibration_state_round_trips_and_old_global_calibrations_load():
    calibration = fit_calibration(*draw_residuals(2000, np.random.default_rng(1)))
    buffer = io.BytesIO()
    torch.save({"calibration": calibration.state()}, buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)["calibration"]
    restored = SigmaCalibration.from_state(state)
    var, snr = np.full((3, 2), 1e-4), np.array([5.0, 50.0, 500.0])
    assert np.allclose(restored.sigma(var, snr), calibration.sigma(var, snr))
    old = torch.tensor([[1.5, 0.8], [0.01, 0.0]])  # artifacts before S/N: (a, b) per label
    legacy = SigmaCalibration.from_state(old)
    expected = np.sqrt(np.array([1.5, 0.8]) ** 2 * var + np.array([0.01, 0.0]) ** 2)
    assert np.allclose(legacy.sigma(var, None), expected)
    assert np.allclose(legacy.sigma(var, snr), expected)
    with pytest.raises(ValueError, match="S/N"):
        calibration.sigma(var, None)


def draw_scores(n: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """In-domain test values whose centre and spread shrink with S/N (noise), a skewed
    coverage shortfall and a rare range failure."""
    snr = np.exp(rng.uniform(np.log(SNR_RANGE[0]), np.log(SNR_RANGE[1]), n))
    distance = 0.1 + 1.5 / np.sqrt(snr) + 0.9 / np.sqrt(snr) * rng.standard_normal(n)
    shortfall = -0.4 + rng.gamma(3.0, 0.15 / np.sqrt(snr))
    return distance, shortfall, rng.random(n) < 0.004, snr


def flagged_by(cuts, draws) -> np.ndarray:
    distance, shortfall, outside, snr = draws
    return (outside | (cuts[0].standardised(distance, snr) > cuts[0].cut)
            | (cuts[1].standardised(shortfall, snr) > cuts[1].cut))


@pytest.mark.parametrize("rate", [0.02, 0.01])
def test_domain_cuts_flag_the_chosen_share_of_in_domain_stars_at_every_snr(rate):
    rng = np.random.default_rng(11)
    cuts = fit_cuts(*draw_scores(3000, rng), rate)
    fresh = draw_scores(40000, rng)
    flagged = flagged_by(cuts, fresh)
    assert 0.5 * rate < flagged.mean() < 1.5 * rate
    rates = [flagged[b].mean() for b in deciles(fresh[3])]
    assert max(rates) < 2 * rate and min(rates) > 0.2 * rate, rates
    # one cut for all S/N (what the domain flag did before) flags mostly the low-S/N stars
    cutoff = np.quantile(draw_scores(3000, rng)[0], 0.99)
    fixed = [(fresh[0][b] > cutoff).mean() for b in deciles(fresh[3])]
    assert fixed[0] > 0.04 and fixed[-1] < 0.001


def test_domain_states_of_fixed_threshold_models_keep_their_rule():
    """A model saved with one distance and one coverage threshold flags as it did."""
    rng = np.random.default_rng(2)
    latent, pred = rng.normal(0, 1, (600, 2)), rng.uniform(0, 1, (600, 1))
    trained = np.arange(600) < 400
    domain = DomainModel.fit(latent[trained], latent[~trained], np.arange(2),
                             (np.zeros(1), np.ones(1)), pred, trained, pred[~trained],
                             np.full((200, 1), 0.01), rng.uniform(20, 200, 200))
    state = domain.state()
    del state["distance_cut"], state["coverage_cut"], state["false_flag_rate"]
    scores, coverage = domain.score(latent), domain.coverage(pred)
    state["threshold"], state["coverage_threshold"] = np.quantile(scores, 0.9), 0.6
    legacy = DomainModel.from_state(state)
    sigma = np.full_like(pred, 0.01)
    expected = (scores <= state["threshold"]) & (coverage > 0.6) & legacy.in_range(pred, sigma)
    assert np.array_equal(legacy.in_domain(scores, pred, sigma, None), expected)
    assert expected.mean() < 0.9 and (coverage == 0.6).any()  # ties at the threshold judged


def test_a_trained_toy_model_records_its_figures_per_snr_bin(toy_data):
    flux, ivar, labels, _ = toy_data
    errors = np.tile([50.0, 0.1, 0.05, 0.03], (len(labels), 1))
    model = train_label_model(flux, ivar, labels, errors, np.arange(len(labels)),
                              toy.QUANTITIES, LabelConfig(epochs=3, members=1,
                                                          channels=(8, 16), hidden=32,
                                                          val_fraction=0.4),
                              seed=0, device=torch.device("cpu"),
                              velocity_step=TOY_GRID.velocity_step)
    rows = model.metrics["by_snr"]
    assert len(rows) == 10  # 360 held-out stars: deciles
    assert sum(r["n"] for r in rows) == len(model.val_index)
    snr = spectrum_snr(flux[model.val_index], ivar[model.val_index])
    assert rows[0]["snr_min"] == pytest.approx(snr.min())
    assert rows[-1]["snr_max"] == pytest.approx(snr.max())
    for row in rows:
        assert row["snr_min"] < row["snr_max"] and set(row["labels"]) == set(toy.QUANTITIES)
        for figures in row["labels"].values():
            assert figures["rmse"] > 0 and figures["z_std"] > 0
            assert 0 <= figures["coverage_68"] <= figures["coverage_95"] <= 1
    calibration = model.metrics["calibration"]
    assert "cross-fitted" in calibration["judged_on"] and len(calibration["snr"]) == 3
    assert model.metrics["sigma_scale_teff"] > 0
    # the predictor applies the stored calibration at each spectrum's own S/N
    pred, sigma = model.predictor.predict(flux[:50], ivar[:50], None, torch.device("cpu"))
    a, b = model.predictor.calibration.factors(spectrum_snr(flux[:50], ivar[:50]), 50)
    assert np.all(sigma > 0) and pred.shape == sigma.shape == (50, 4)
    assert a.shape == b.shape == (50, 4)


def test_held_out_figures_are_cross_fitted_and_binned_by_snr():
    rng = np.random.default_rng(4)
    pred, sigma_net, reference, ref_err, snr = draw_residuals(1200, rng)
    groups = np.repeat(np.arange(600), 2)  # two spectra per star
    result = calibrate_held_out(pred, sigma_net, reference, ref_err, snr, groups,
                                np.zeros(2), np.ones(2), ["a", "b"], seed=0)
    assert not np.allclose(result.sigma, result.calibration.sigma(sigma_net**2, snr))
    for row in result.metrics["by_snr"]:
        for figures in row["labels"].values():
            assert 0.8 < figures["z_std"] < 1.25
    few = by_snr(pred[:40], sigma_net[:40], reference[:40], ref_err[:40], snr[:40], ["a", "b"],
                 np.zeros(40, bool))
    assert len(few) == 1 and few[0]["n"] == 40 and few[0]["flagged_fraction"] == 0.0


def test_snr_is_the_median_over_unmasked_pixels_of_the_spectrum_itself():
    rng = np.random.default_rng(0)
    flux = 1 + 0.02 * rng.standard_normal((3, 4096))
    flux[:, 100:140] = 0.3  # a line core lowers S/N only locally
    ivar = np.full_like(flux, 60.0**2)
    ivar[1, :2000] = 0  # half masked: the rest decides
    ivar[1, 2000:] = 30.0**2
    ivar[2] = 0  # nothing usable
    assert np.allclose(spectrum_snr(flux, ivar), [60.0, 30.0, 0.0], rtol=0.01)
    assert spectrum_snr(flux[0], ivar[0]) == pytest.approx(60.0, rel=0.01)
