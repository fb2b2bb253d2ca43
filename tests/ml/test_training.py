"""Training mechanics: early stopping, bookkeeping in the metrics, memory-mapped training
arrays and the semi-supervised start of the label network from the encoder."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from ml.errors import MLError
from ml.models.autoencoder import SpectrumAutoencoder
from ml.models.inputs import conditioning
from ml.models.label_cnn import (
    LabelCNN,
    gaussian_nll,
    init_from_encoder,
    nll_sums,
    validation_loss,
)
from ml.spectra_cache import SpectraCache
from ml.train import (
    AutoencoderConfig,
    EarlyStopping,
    LabelConfig,
    _validation_sums,
    epoch_order,
    history_names,
    rest_frame_inputs,
    split_by_group,
    standardise,
    through_coverage,
    train_autoencoder,
    train_label_model,
    with_added_noise,
)
from tests.ml import toy
from tests.ml.conftest import TOY_GRID

CPU = torch.device("cpu")
STEP = TOY_GRID.velocity_step
BOOKKEEPING = ("epochs_run", "best_epoch", "train_seconds", "device")


def test_early_stopping_stops_after_patience_and_restores_the_best_weights():
    model = nn.Linear(2, 1)
    stopping = EarlyStopping(patience=2, min_delta=0.01)
    losses = [1.0, 0.5, 0.495, 0.6, 0.7, 0.1]  # 0.495 is within min_delta: no better
    stopped_at, kept = None, None
    for epoch, loss in enumerate(losses):
        with torch.no_grad():
            model.weight.fill_(float(epoch))
        if epoch == 1:
            kept = model.weight.clone()
        if stopping.update(epoch, loss, model):
            stopped_at = epoch
            break
    assert stopped_at == 3 and stopping.best_epoch == 1 and stopping.best == 0.5
    stopping.restore(model)
    assert torch.equal(model.weight, kept)


def test_the_validation_loss_is_the_nll_and_its_scale_free_form_ignores_the_error_scale():
    rng = np.random.default_rng(3)
    mean = torch.as_tensor(rng.normal(0, 1, (500, 3)))
    target = mean + torch.as_tensor(rng.normal(0, 0.5, (500, 3)))
    target[::7, 1] = float("nan")  # a missing label is skipped by both
    logvar = torch.as_tensor(rng.normal(np.log(0.2), 0.3, (500, 3)))
    target_var = torch.full_like(target, 0.0)
    # summed over two batches, the plain form is the NLL of the whole set
    sums = (nll_sums(mean[:200], logvar[:200], target[:200], target_var[:200])
            + nll_sums(mean[200:], logvar[200:], target[200:], target_var[200:]))
    assert torch.isclose(validation_loss(sums, scale_free=False),
                         gaussian_nll(mean, logvar, target, target_var))
    # errors 3x too small: a worse NLL, the same scale-free loss; and the scale-free loss
    # is the NLL after the best variance scale, so never above the plain one
    smaller = nll_sums(mean, logvar + 2 * np.log(1 / 3), target, target_var)
    whole = nll_sums(mean, logvar, target, target_var)
    assert validation_loss(smaller, False) > validation_loss(whole, False) + 0.5
    assert torch.isclose(validation_loss(smaller, True), validation_loss(whole, True))
    assert validation_loss(whole, True) <= validation_loss(whole, False)
    # worse means raise it
    shifted = nll_sums(mean + 0.3, logvar, target, target_var)
    assert validation_loss(shifted, True) > validation_loss(whole, True) + 0.05
    # a label no spectrum of the set has adds nothing (and no NaN)
    target[:, 2] = float("nan")
    absent = nll_sums(mean, logvar, target, target_var)
    for scale_free in (False, True):
        assert torch.isclose(validation_loss(absent, scale_free),
                             validation_loss(absent[:, :2], scale_free))


def test_an_unknown_early_stopping_loss_or_weight_average_is_refused():
    with pytest.raises(MLError, match="stop_on"):
        LabelConfig(stop_on="rmse")
    with pytest.raises(MLError, match="weight_average_epochs"):
        LabelConfig(weight_average_epochs=-1.0)


@pytest.mark.parametrize("weight_average_epochs", [0.0, 0.5])
def test_label_training_stops_when_validation_rises_and_keeps_its_best_epoch(toy_data,
                                                                              weight_average_epochs):
    """Labels unrelated to the spectra: the network can only memorise the training stars,
    so the validation NLL rises after the first epochs and training must stop there. With
    a weight average, it is the average that is judged and kept."""
    flux, ivar = toy_data[0][:300], toy_data[1][:300]
    rng = np.random.default_rng(5)
    labels = rng.normal(0, 1, (len(flux), 2))
    errors = np.full_like(labels, 0.01)
    config = LabelConfig(epochs=40, members=1, learning_rate=3e-3, channels=(8, 16, 32),
                         hidden=64, patience=3, min_delta=0.0, batch_size=16,
                         weight_average_epochs=weight_average_epochs)
    trained = train_label_model(flux, ivar, labels, errors, np.arange(len(flux)), ["a", "b"],
                                config, seed=2, device=CPU, velocity_step=STEP)
    val = trained.history[history_names(0, config)[-1]]  # the loss early stopping judged
    assert trained.metrics["epochs_run"] == [len(val)] and len(val) < config.epochs
    best = int(np.argmin(val))
    assert trained.metrics["best_epoch"] == [best]
    assert len(val) == best + 1 + config.patience
    # the member kept is the best epoch's: its validation NLL is the minimum of the history
    template = trained.predictor.ensemble.template
    x, _, _ = rest_frame_inputs(flux, ivar, template, STEP, CPU)
    _, _, y, yvar = standardise(labels, errors, trained.train_index)
    cond = conditioning(None, len(flux), trained.predictor.ensemble.frame["default_power"])
    member = trained.predictor.ensemble.members[0]
    sums = _validation_sums(member, x, cond, y, yvar, trained.val_index)
    assert np.isclose(validation_loss(sums, config.stop_on == "scale-free"), val[best],
                      rtol=1e-5, atol=1e-6)


def test_both_models_record_their_training_bookkeeping(toy_data):
    flux, ivar, labels, _ = toy_data
    flux, ivar, labels = flux[:240], ivar[:240], labels[:240]
    ae = train_autoencoder(flux, ivar, AutoencoderConfig(latent_dim=6, epochs=3,
                                                         channels=(8, 16, 32), hidden=64),
                           seed=0, device=CPU, velocity_step=STEP)
    assert all(key in ae.metrics for key in BOOKKEEPING)
    assert ae.metrics["epochs_run"] == len(ae.history["val_loss"]) == 3
    assert 0 <= ae.metrics["best_epoch"] < 3 and ae.metrics["device"].startswith("cpu")
    lab = train_label_model(flux, ivar, labels, np.tile([50.0, 0.1, 0.05, 0.03], (240, 1)),
                            np.arange(240), toy.QUANTITIES,
                            LabelConfig(epochs=2, members=2, channels=(8, 16, 32), hidden=64),
                            seed=0, device=CPU, velocity_step=STEP,
                            template=ae.model.template, encoder=ae.model)
    assert all(key in lab.metrics for key in BOOKKEEPING)
    assert len(lab.metrics["epochs_run"]) == len(lab.metrics["best_epoch"]) == 2
    assert lab.metrics["pretrained_trunk"] is True


def test_a_star_is_held_out_whatever_other_stars_are_in_the_set():
    stars = np.array([f"star-{i}" for i in range(400)]).repeat(2)  # two spectra per star
    _, held = split_by_group(stars, 0.15, seed=3)
    held_stars = set(stars[held])
    assert 0.08 < len(held_stars) / 400 < 0.22
    subset = stars[::3]  # e.g. the labelled spectra among all of them
    train, val = split_by_group(subset, 0.15, seed=3)
    assert set(subset[val]) == held_stars & set(subset)
    assert not set(subset[train]) & set(subset[val])  # a star is on one side only
    assert set(stars[split_by_group(stars, 0.15, seed=4)[1]]) != held_stars
    one, two = np.array(["a"]), np.array(["a", "b"])
    assert len(split_by_group(one, 0.15, 0)[1]) == 0
    assert len(split_by_group(two, 0.0, 0)[1]) == 1 and len(split_by_group(two, 1.0, 0)[0]) == 1


def test_the_guided_term_never_sees_the_label_models_held_out_stars(toy_data):
    flux, ivar, labels, _ = toy_data
    flux, ivar, labels = flux[:240], ivar[:240], labels[:240]
    stars = np.array([f"s{i // 2}" for i in range(240)])
    errors = np.tile([50.0, 0.1, 0.05, 0.03], (240, 1))
    config = AutoencoderConfig(latent_dim=6, epochs=2, channels=(8, 16, 32), hidden=64)
    ae = train_autoencoder(flux, ivar, config, seed=5, device=CPU, velocity_step=STEP,
                           groups=stars, labels=labels, label_errors=errors,
                           quantities=toy.QUANTITIES)
    labelled = np.arange(0, 240, 3)  # the label model sees a third of the spectra
    lab = train_label_model(flux[labelled], ivar[labelled], labels[labelled],
                            errors[labelled], stars[labelled], toy.QUANTITIES,
                            LabelConfig(epochs=1, members=1, channels=(8, 16, 32), hidden=64,
                                        val_fraction=config.guided_holdout),
                            seed=0, device=CPU, velocity_step=STEP, split_seed=5,
                            template=ae.model.template)
    _, reserved = split_by_group(stars, config.guided_holdout, 5)
    assert ae.metrics["guided_labels_withheld"] == len(reserved) > 0
    assert set(stars[labelled][lab.val_index]) == set(stars[reserved]) & set(stars[labelled])


def test_memory_mapped_training_arrays_equal_the_in_memory_ones(tmp_path):
    rng = np.random.default_rng(1)
    n = 37
    flux = rng.normal(1, 0.1, (n, TOY_GRID.n_pixels)).astype(np.float32)
    ivar = rng.uniform(10, 100, (n, TOY_GRID.n_pixels)).astype(np.float32)
    keys = [f"sha{i:03d}" for i in range(n)]
    cache = SpectraCache(tmp_path / "cache", TOY_GRID)
    cache.add(keys[:20], list(flux[:20]), list(ivar[:20]), [3000.0] * 20)  # two shards
    cache.add(keys[20:], list(flux[20:]), list(ivar[20:]), [np.nan] * (n - 20))
    order = list(rng.permutation(keys))

    def no_file(key: str) -> str:
        raise AssertionError(f"{key} is cached: no file should be read")

    in_memory = cache.load(order, no_file)
    mapped = cache.load(order, no_file, into=tmp_path / "run")
    assert isinstance(mapped.flux, np.memmap) and isinstance(mapped.ivar, np.memmap)
    assert np.array_equal(mapped.flux, in_memory.flux)
    assert np.array_equal(mapped.ivar, in_memory.ivar)
    assert np.array_equal(mapped.ok, in_memory.ok) and mapped.ok.all()
    assert np.array_equal(mapped.resolving_power, in_memory.resolving_power, equal_nan=True)
    rows = [keys.index(k) for k in order]
    assert np.array_equal(mapped.flux, flux[rows])
    assert np.array_equal(np.load(tmp_path / "run" / "ivar.npy"), ivar[rows])


def test_the_label_network_starts_from_the_encoders_weights():
    torch.manual_seed(0)
    encoder = SpectrumAutoencoder(TOY_GRID.n_pixels, 6, (8, 16, 32), 64)
    member = LabelCNN(TOY_GRID.n_pixels, 4, (8, 16, 32), 64)
    assert not torch.equal(member.features[0].weight, encoder.features[0].weight)
    assert init_from_encoder(member, encoder)
    for name, value in encoder.features.state_dict().items():
        assert torch.equal(member.features.state_dict()[name], value), name
    assert torch.equal(member.head[0].weight, encoder.head[0].weight)
    assert torch.equal(member.head[0].bias, encoder.head[0].bias)
    narrower = LabelCNN(TOY_GRID.n_pixels, 4, (4, 8, 16), 64)
    before = {k: v.clone() for k, v in narrower.state_dict().items()}
    assert not init_from_encoder(narrower, encoder)
    assert all(torch.equal(before[k], v) for k, v in narrower.state_dict().items())


@pytest.mark.parametrize(("weight_average_epochs", "coverage_dropout"),
                         [(0.0, 0.0), (0.5, 0.0), (0.5, 0.5)])
def test_members_trained_together_are_the_members_trained_one_after_another(
        toy_data, weight_average_epochs, coverage_dropout):
    """The one-step ensemble (CUDA's default, forced here on the CPU) fits the same model per
    member as the sequential loop: same initial weights, batch orders and optimiser (and
    weight average, and coverage donors), so the histories, stopping epochs and
    predictions agree to float rounding. (Added noise is drawn for all members at once,
    so it is off here.)"""
    flux, ivar, labels, _ = toy_data
    flux, ivar, labels = flux[:240], ivar[:240].copy(), labels[:240]
    ivar[::3, : flux.shape[1] // 3] = 0  # a third of the stars lack the blue third
    errors = np.tile([50.0, 0.1, 0.05, 0.03], (240, 1))
    config = LabelConfig(epochs=3, members=3, channels=(8, 16, 32), hidden=64, batch_size=32,
                         weight_average_epochs=weight_average_epochs,
                         coverage_dropout=coverage_dropout, noise_augment=0.0)
    runs = {together: train_label_model(flux, ivar, labels, errors, np.arange(240),
                                        toy.QUANTITIES, config, seed=4, device=CPU,
                                        velocity_step=STEP, train_together=together)
            for together in (False, True)}
    apart, joint = runs[False], runs[True]
    assert apart.metrics["members_trained"] == "one after another"
    assert joint.metrics["members_trained"] == "together"
    assert joint.metrics["epochs_run"] == apart.metrics["epochs_run"] == [3, 3, 3]
    assert joint.metrics["best_epoch"] == apart.metrics["best_epoch"]
    assert joint.history.keys() == apart.history.keys()
    for key, values in apart.history.items():
        assert np.allclose(joint.history[key], values, rtol=1e-4), key
    for ours, theirs in zip(joint.predictor.ensemble.members, apart.predictor.ensemble.members,
                            strict=True):
        for name, value in theirs.state_dict().items():
            assert torch.allclose(ours.state_dict()[name], value, rtol=1e-3, atol=1e-5), name
    assert np.allclose(joint.val_prediction[0], apart.val_prediction[0], rtol=1e-4)


def test_coverage_donors_mask_what_they_do_not_cover():
    x = torch.stack([torch.full((2, 6), 0.3), torch.full((2, 6), 0.2)])
    x[:, 0] = torch.tensor([-0.1, -0.2, -0.3, -0.4, -0.5, -0.6])
    donor = x.clone()
    donor[0, 1, :2] = 1.0  # the first donor lacks the first two pixels (noise 1, flux 0)
    donor[0, 0, :2] = 0.0
    seen = through_coverage(x, donor)
    assert seen[0, :, :2].tolist() == [[0.0, 0.0], [1.0, 1.0]]
    assert torch.equal(seen[0, :, 2:], x[0, :, 2:]) and torch.equal(seen[1], x[1])


def test_an_epoch_order_with_coverage_dropout_pairs_rows_with_donors():
    rows = torch.arange(100, 1100)
    plain = epoch_order(rows, torch.Generator().manual_seed(3), CPU)
    paired = epoch_order(rows, torch.Generator().manual_seed(3), CPU, coverage_dropout=0.3)
    assert paired.shape == (2, 1000) and torch.equal(paired[0], plain)
    others = paired[1] != paired[0]
    assert 0.25 < others.float().mean() < 0.35
    assert bool(torch.isin(paired[1], rows).all())
    with pytest.raises(MLError, match=r"coverage_dropout must be in \[0, 1\)"):
        LabelConfig(coverage_dropout=1.0)


def test_added_noise_lowers_the_snr_of_the_chosen_spectra_and_says_so():
    """Half the spectra get noise whose level the noise channel states (the flux over the
    new sigma is unit-normal); their S/N falls log-uniformly from their own to the floor
    (10); uncovered pixels and the other half stay as they were."""
    torch.manual_seed(0)
    n, pixels = 4000, 256
    sigma = torch.full((n, 1, pixels), 0.01)
    sigma[:, :, :40] = 1.0  # uncovered: flux - 1 = 0, noise 1
    flux = torch.where(sigma < 1, 0.01 * torch.randn(n, 1, pixels), 0.0)
    seen = with_added_noise(torch.cat([flux, sigma], 1), torch.full((n,), 100.0), 0.5)
    assert torch.equal(seen[:, :, :40], torch.cat([flux, sigma], 1)[:, :, :40])
    factor = seen[:, 1, 100] / 0.01
    chosen = factor > 1 + 1e-4
    assert 0.47 < chosen.float().mean() < 0.53
    assert torch.equal(seen[~chosen], torch.cat([flux, sigma], 1)[~chosen])
    assert float(factor.max()) <= 10.0 + 1e-3
    assert abs(float(torch.log10(factor[chosen]).mean()) - 0.5) < 0.02  # log-uniform in 1-10
    z = seen[chosen][:, 0, 40:] / seen[chosen][:, 1, 40:]
    assert abs(float(z.std()) - 1.0) < 0.01
    low = with_added_noise(torch.cat([flux, sigma], 1)[:5], torch.full((5,), 8.0), 1.0)
    assert torch.equal(low, torch.cat([flux, sigma], 1)[:5])  # already below the floor
    with pytest.raises(MLError, match=r"noise_augment must be in \[0, 1\]"):
        LabelConfig(noise_augment=1.5)


@pytest.mark.parametrize("together", [False, True])
def test_label_training_with_added_noise_repeats_itself_and_differs_from_without(toy_data,
                                                                                together):
    """A seeded CPU run with noise augmentation gives the same networks twice (the noise
    comes from the seeded generator), on both training paths, and not those of a run
    without it."""
    flux, ivar, labels, _ = toy_data
    flux, ivar, labels = flux[:200], ivar[:200], labels[:200]
    errors = np.tile([50.0, 0.1, 0.05, 0.03], (200, 1))

    def run(share: float) -> np.ndarray:
        config = LabelConfig(epochs=2, members=2, channels=(8, 16, 32), hidden=64,
                             batch_size=32, noise_augment=share)
        return train_label_model(flux, ivar, labels, errors, np.arange(200), toy.QUANTITIES,
                                 config, seed=5, device=CPU, velocity_step=STEP,
                                 train_together=together).val_prediction[0]

    augmented = run(0.5)
    assert np.array_equal(augmented, run(0.5))
    assert not np.allclose(augmented, run(0.0))


@pytest.mark.parametrize("weight_average_epochs", [0.0, 0.5])
def test_members_trained_together_stop_each_at_their_own_best_epoch(toy_data,
                                                                   weight_average_epochs):
    """Unrelated labels (validation NLL rises after a few epochs): every member trained in
    the one-step ensemble has its own history, stops ``patience`` epochs after its own best
    one and is restored to that epoch's weights."""
    flux, ivar = toy_data[0][:300], toy_data[1][:300]
    labels = np.random.default_rng(5).normal(0, 1, (len(flux), 2))
    errors = np.full_like(labels, 0.01)
    config = LabelConfig(epochs=40, members=3, learning_rate=3e-3, channels=(8, 16, 32),
                         hidden=64, patience=3, min_delta=0.0, batch_size=16,
                         weight_average_epochs=weight_average_epochs)
    trained = train_label_model(flux, ivar, labels, errors, np.arange(len(flux)), ["a", "b"],
                                config, seed=2, device=CPU, velocity_step=STEP,
                                train_together=True)
    template = trained.predictor.ensemble.template
    x, _, _ = rest_frame_inputs(flux, ivar, template, STEP, CPU)
    _, _, y, yvar = standardise(labels, errors, trained.train_index)
    cond = conditioning(None, len(flux), trained.predictor.ensemble.frame["default_power"])
    for k, member in enumerate(trained.predictor.ensemble.members):
        val = trained.history[history_names(k, config)[-1]]
        assert len(trained.history[f"member{k}_train_nll"]) == len(val) < config.epochs
        best = int(np.argmin(val))
        assert trained.metrics["best_epoch"][k] == best
        assert trained.metrics["epochs_run"][k] == len(val) == best + 1 + config.patience
        sums = _validation_sums(member, x, cond, y, yvar, trained.val_index)
        assert np.isclose(validation_loss(sums, config.stop_on == "scale-free"), val[best],
                          rtol=1e-5, atol=1e-6)
