"""Models and training on toy arrays (no database): learning, uncertainties, domain, seeds."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ml.domain import DomainModel, domain_dims
from ml.models.autoencoder import encode_arrays
from ml.preprocess import Grid, PreprocessError, preprocess, resample
from ml.snr import spectrum_snr
from ml.train import AutoencoderConfig, LabelConfig, train_autoencoder, train_label_model
from tests.ml import toy
from tests.ml.conftest import TOY_GRID, toy_arrays

CPU = torch.device("cpu")
AE = AutoencoderConfig(latent_dim=8, epochs=6, channels=(8, 16, 32), hidden=64)
STEP = TOY_GRID.velocity_step
ERRORS = np.array([50.0, 0.1, 0.05, 0.03])


def test_resampling_keeps_the_flux_level_and_gains_snr_on_a_coarser_grid():
    wave = np.linspace(5000, 5400, 2000)
    flux = np.full_like(wave, 3.0)
    ivar = np.full_like(wave, 100.0)
    flux_out, ivar_out = resample(toy.spectrum(wave, flux, ivar, "flat"), Grid(5010, 5390, 500))
    assert np.allclose(flux_out, 3.0)
    assert np.allclose(ivar_out, 100.0 * 4, rtol=0.1)  # 4 native pixels per grid pixel


def test_a_spectrum_not_covering_the_grid_is_refused_with_its_range():
    wave = np.linspace(5100, 5400, 500)
    spectrum = toy.spectrum(wave, np.ones(500), np.ones(500), "short")
    with pytest.raises(PreprocessError, match=r"short covers 5099.*needs 5009"):
        preprocess(spectrum, TOY_GRID)


def test_autoencoder_loss_decreases_and_training_is_reproducible(toy_data):
    flux, ivar = toy_data[0][:400], toy_data[1][:400]
    first = train_autoencoder(flux, ivar, AE, seed=3, device=CPU, velocity_step=STEP)
    history = first.history["val_loss"]
    assert history[-1] < 0.5 * history[0]
    assert first.history["train_loss"][-1] < first.history["train_loss"][0]
    again = train_autoencoder(flux, ivar, AE, seed=3, device=CPU, velocity_step=STEP)
    assert again.metrics["val_neg_elbo_per_pixel"] == first.metrics["val_neg_elbo_per_pixel"]
    assert np.array_equal(again.information, first.information)
    other = train_autoencoder(flux, ivar, AE, seed=4, device=CPU, velocity_step=STEP)
    assert other.metrics["val_neg_elbo_per_pixel"] != first.metrics["val_neg_elbo_per_pixel"]


@pytest.fixture(scope="module")
def label_model(toy_data):
    flux, ivar, labels, _ = toy_data
    rng = np.random.default_rng(0)
    noisy = labels + rng.normal(0, 1, labels.shape) * ERRORS
    errors = np.tile(ERRORS, (len(labels), 1))
    return train_label_model(flux, ivar, noisy, errors, np.arange(len(labels)),
                             toy.QUANTITIES, LabelConfig(epochs=20, members=2, learning_rate=3e-3,
                                                         channels=(8, 16, 32), hidden=64),
                             seed=1, device=CPU, velocity_step=STEP)


def test_label_model_beats_the_mean_and_its_uncertainties_are_calibrated(label_model):
    rng = np.random.default_rng(99)  # fresh stars, never seen in training or calibration
    labels = toy.draw_labels(300, rng)
    flux, ivar = toy_arrays(labels, rng.uniform(20, 120, 300), rng)
    pred, sigma = label_model.predictor.predict(flux, ivar, None, CPU)
    assert np.all(sigma > 0)
    for j in range(3):  # teff, logg, mh carry strong signals in the toy model
        rmse = np.sqrt(np.mean((pred[:, j] - labels[:, j]) ** 2))
        baseline = np.sqrt(np.mean((labels[:, j] - labels[:, j].mean()) ** 2))
        assert rmse < 0.4 * baseline, (toy.QUANTITIES[j], rmse, baseline)
        z = (pred[:, j] - labels[:, j]) / sigma[:, j]
        # calibrated on the ~100 held-out stars of 900 (a seeded 15 % per star): a toy
        # calibration, so only far-off sigmas (a factor 1.7) fail
        assert 0.6 < np.std(z) < 1.7, (toy.QUANTITIES[j], np.std(z))
    history = label_model.history["member0_train_nll"]
    assert history[-1] < history[0]


def test_domain_flag_separates_out_of_range_spectra(toy_data):
    """As in the archive: the autoencoder sees every star, labels exist only for cool ones."""
    flux, ivar, labels, _ = toy_data
    cool = labels[:, 0] < 5500
    ref = np.where(cool[:, None], labels, np.nan)
    errors = np.tile(ERRORS, (len(labels), 1))
    config = AutoencoderConfig(latent_dim=8, epochs=12, channels=(8, 16, 32), hidden=64)
    trained = train_autoencoder(flux, ivar, config, seed=0, device=CPU, velocity_step=STEP,
                                labels=ref, label_errors=errors, quantities=toy.QUANTITIES)
    rows = np.flatnonzero(cool)
    model = train_label_model(flux[rows], ivar[rows], labels[rows], errors[rows], rows,
                              toy.QUANTITIES, LabelConfig(epochs=10, members=1,
                                                          learning_rate=3e-3,
                                                          channels=(8, 16, 32), hidden=64),
                              seed=0, device=CPU, velocity_step=STEP,
                              template=trained.model.template)
    latent, _ = encode_arrays(trained.model, flux, ivar, None, CPU)
    train, val = rows[model.train_index], rows[model.val_index]
    pred, sigma = model.predictor.predict(flux, ivar, None, CPU)
    snr = spectrum_snr(flux, ivar)
    domain = DomainModel.fit(latent[train], latent[val],
                             domain_dims(trained.information, config.informative_nats,
                                         trained.model.n_guided),
                             (labels[train].min(axis=0), labels[train].max(axis=0)),
                             pred, np.isin(np.arange(len(pred)), train), pred[val], sigma[val],
                             snr[val])
    inside = domain.in_domain(domain.score(latent), pred, sigma, snr)
    far = labels[:, 0] > 6500
    assert (~inside[far]).mean() >= 0.9
    assert inside[val].mean() >= 0.9
    # The guided dimensions track their labels (at label_weight 1 they did not: r < 0).
    assert min(np.corrcoef(latent[cool, j], labels[cool, j])[0, 1] for j in range(3)) > 0.75


def test_coverage_flags_predictions_where_the_archive_has_no_training_spectra():
    """Predictions saturating at the training edge sit among unlabelled archive stars."""
    rng = np.random.default_rng(3)
    truth = rng.uniform(0, 2, (4000, 1))  # the archive; reference labels only below 1
    trained = (truth[:, 0] < 1) & (rng.random(4000) < 0.5)
    held_out = (truth[:, 0] < 1) & ~trained & (rng.random(4000) < 0.2)
    pred = np.minimum(truth, 1.05) + rng.normal(0, 0.02, truth.shape)  # saturates at the edge
    latent = rng.normal(0, 1, (4000, 2))
    snr = rng.uniform(20, 200, 4000)
    sigma = np.full_like(pred, 0.02)
    domain = DomainModel.fit(latent[trained], latent[held_out], np.arange(2),
                             (np.zeros(1), np.ones(1)), pred, trained, pred[held_out],
                             sigma[held_out], snr[held_out])
    covered = domain.covered(pred, snr)
    beyond, well_inside = truth[:, 0] > 1.15, truth[:, 0] < 0.9
    assert (~covered[beyond]).mean() >= 0.9
    assert covered[well_inside].mean() >= 0.95
    restored = DomainModel.from_state(domain.state())
    assert np.array_equal(restored.covered(pred, snr), covered)


def test_cosmic_ray_hits_without_a_mask_are_masked_and_lines_are_kept():
    wave = np.linspace(5000, 5400, 2000)
    flux = 1 - 0.7 * np.exp(-0.5 * ((wave - 5200) / 0.5) ** 2)
    flux[[500, 1500, 1501]] += [8.0, 3.0, 3.0]  # hits, with the file's ivar unaware of them
    flux += np.random.default_rng(0).normal(0, 0.01, len(wave))
    norm, ivar = preprocess(toy.spectrum(wave, flux, np.full_like(wave, 1e4), "hit"), TOY_GRID)
    grid = TOY_GRID.wavelength
    masked = grid[ivar == 0]
    assert len(masked) >= 2
    assert np.all(np.min(np.abs(masked[:, None] - wave[[500, 1500]]), axis=1) < 1.0)
    line = np.argmin(np.abs(grid - 5200))
    assert ivar[line] > 0 and norm[line] < 0.6


def test_mean_only_encoding_equals_the_full_posterior_means_at_any_batch(toy_data):
    from ml.models.autoencoder import SpectrumAutoencoder, encode_means

    flux, ivar = toy_data[0][:150], toy_data[1][:150]
    torch.manual_seed(0)
    model = SpectrumAutoencoder(flux.shape[1], 6, (8, 16, 32), 64, velocity_step=15.0)
    model.template.copy_(torch.as_tensor(1.0 - flux[:50]).median(dim=0).values)
    full, _ = encode_arrays(model, flux, ivar, None, CPU, batch_size=1024)
    np.testing.assert_allclose(encode_means(model, flux, ivar, None, CPU), full,
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(encode_means(model, flux, ivar, None, CPU, batch_size=7), full,
                               rtol=1e-5, atol=1e-5)


def test_profiles_name_their_sizes_and_unknown_ones_are_refused():
    from ml.errors import MLError
    from ml.profiles import profile_configs

    ae, labels = profile_configs("cpu", latent_dim=9)
    assert ae.latent_dim == 9 and ae.profile == labels.profile == "cpu"
    assert ae.channels == labels.channels == (8, 16, 16, 32, 32) and labels.members == 1
    assert profile_configs("default")[1].members == 3
    with pytest.raises(MLError, match="unknown model profile"):
        profile_configs("gpu-xl")
