"""Training steps replayed from CUDA graphs (``ml.step_graph``) fit the same models as
steps launched one kernel at a time. CUDA graphs exist only on a GPU: these tests skip
on a machine without one (CI). On a GPU machine without the service's own dependencies
(the suite's top-level conftest imports the database packages), run them with
``python -m pytest --confcutdir=tests/ml tests/ml/test_step_graph.py`` (``tests/ml``'s
conftest still needs astropy, cdshealpix, SQLAlchemy and PyYAML);
``bench/ml_training.py`` against ``--no-cuda-graphs`` measures the speed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ml.step_graph import TrainingStep, graphs_usable, optimiser_options
from ml.train import (
    AutoencoderConfig,
    LabelConfig,
    train_autoencoder,
    train_label_model,
    with_added_noise,
)
from tests.ml import toy
from tests.ml.conftest import TOY_GRID

CPU = torch.device("cpu")


def test_a_cpu_never_records_and_keeps_torchs_optimiser_defaults():
    assert not graphs_usable(CPU, True)
    assert optimiser_options(CPU, 1e-3, graphed=False) == {"lr": 1e-3}
    calls = []
    step = TrainingStep(calls.append, (4,), CPU, enabled=True)
    for rows in torch.arange(10).split(4):
        step(rows)
    assert not step.recorded and [len(c) for c in calls] == [4, 4, 2]


cuda_only = pytest.mark.skipif(not torch.cuda.is_available(),
                               reason="needs a CUDA GPU (CUDA graphs)")


@cuda_only
def test_a_recorded_step_fits_what_eager_steps_fit():
    """Least squares with Adam and a cosine learning rate: full batches replay the graph,
    the short last batch of each epoch runs eagerly, and the weights end where eager
    steps take them."""
    device = torch.device("cuda")
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(250, 8, generator=gen).to(device)
    y = (x @ torch.arange(1.0, 9.0, device=device))[:, None] + 0.1
    finals = {}
    for graphed in (False, True):
        torch.manual_seed(1)
        model = torch.nn.Linear(8, 1).to(device)
        optimiser = torch.optim.Adam(model.parameters(),
                                     **optimiser_options(device, 0.05, graphed))
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, 20)
        total = torch.zeros((), device=device)

        def step(rows: torch.Tensor, model=model, optimiser=optimiser,
                 total=total) -> None:
            optimiser.zero_grad(set_to_none=True)
            loss = ((model(x[rows]) - y[rows]) ** 2).mean()
            loss.backward()
            optimiser.step()
            total.add_(loss.detach())

        run = TrainingStep(step, (32,), device, graphed)
        order = torch.Generator().manual_seed(2)
        for _ in range(20):
            for rows in torch.randperm(250, generator=order).to(device).split(32):
                run(rows)
            scheduler.step()
        assert run.recorded == graphed
        finals[graphed] = (model.weight.detach().cpu(), float(total))
    assert torch.allclose(finals[True][0], finals[False][0], rtol=1e-4, atol=1e-5)
    assert np.isclose(finals[True][1], finals[False][1], rtol=1e-4)


def _train_labels_on_cuda(toy_data, config: LabelConfig):
    """The one-step ensemble trained on 240 toy spectra on the GPU."""
    flux, ivar, labels, _ = toy_data
    errors = np.tile([50.0, 0.1, 0.05, 0.03], (240, 1))
    return train_label_model(flux[:240], ivar[:240], labels[:240], errors, np.arange(240),
                             toy.QUANTITIES, config, seed=4, device=torch.device("cuda"),
                             velocity_step=TOY_GRID.velocity_step)


@cuda_only
@pytest.mark.parametrize("weight_average_epochs", [0.0, 0.5])
def test_graphed_label_ensemble_matches_the_eager_one(toy_data, weight_average_epochs):
    """The one-step ensemble with and without CUDA graphs (float32, so the two differ by
    kernel rounding only): same histories, stopping epochs and predictions; with a weight
    average, its update is recorded in the graph too."""
    runs = {graphed: _train_labels_on_cuda(toy_data, LabelConfig(
                epochs=4, members=3, channels=(8, 16, 32), hidden=64, batch_size=32,
                mixed_precision=False, cuda_graphs=graphed,
                weight_average_epochs=weight_average_epochs, noise_augment=0.0))
            for graphed in (False, True)}
    eager, graphed = runs[False], runs[True]
    assert graphed.metrics["cuda_graphs"] and not eager.metrics["cuda_graphs"]
    assert graphed.metrics["members_trained"] == "together"
    assert graphed.metrics["epochs_run"] == eager.metrics["epochs_run"]
    for key, values in eager.history.items():
        assert np.allclose(graphed.history[key], values, rtol=1e-3), key
    assert np.allclose(graphed.val_prediction[0], eager.val_prediction[0], rtol=1e-3,
                       atol=1e-2)


@cuda_only
def test_a_recorded_step_adds_fresh_noise_at_every_replay():
    """``with_added_noise`` inside a recorded step: each replay draws new noise (torch's
    graph-safe generator moves on), so no noise pattern repeats from batch to batch."""
    cuda = torch.device("cuda")
    x_all = torch.zeros((8, 2, 64), device=cuda)
    x_all[:, 1] = 0.01
    snr = torch.full((8,), 100.0, device=cuda)
    seen = torch.zeros((4, 2, 64), device=cuda)
    step = TrainingStep(lambda rows: seen.copy_(with_added_noise(x_all[rows], snr[rows], 1.0)),
                        (4,), cuda, enabled=True)
    rows = torch.arange(4, device=cuda)
    outputs = []
    for _ in range(6):  # three eager warm-up steps, then recorded and replayed
        step(rows)
        outputs.append(seen.clone())
    assert step.recorded
    assert not torch.equal(outputs[-1], outputs[-2]) and not torch.equal(outputs[-2],
                                                                          outputs[-3])
    assert bool((outputs[-1][:, 1] >= 0.01).all())


@cuda_only
def test_graphed_label_ensemble_with_added_noise_trains_like_the_eager_one(toy_data):
    """With noise augmentation the recorded ensemble's training loss follows the eager
    run's to a few per cent (the noise draws differ, so no closer)."""
    histories = {graphed: np.array(_train_labels_on_cuda(toy_data, LabelConfig(
                     epochs=6, members=3, channels=(8, 16, 32), hidden=64, batch_size=32,
                     mixed_precision=False, cuda_graphs=graphed, noise_augment=1.0,
                     patience=10)).history["member0_train_nll"])
                 for graphed in (False, True)}
    assert len(histories[True]) == len(histories[False]) == 6
    assert not np.array_equal(histories[True], histories[False])
    assert np.allclose(histories[True], histories[False], rtol=0.1, atol=0.05)


@cuda_only
def test_graphed_autoencoder_trains_like_the_eager_one(toy_data):
    """The VAE's step draws random numbers and reads the KL weight of each epoch from a
    device tensor: recorded, its losses follow the eager run's (the draws differ, so only
    to a few per cent)."""
    flux, ivar, _, _ = toy_data
    losses = {}
    for graphed in (False, True):
        config = AutoencoderConfig(latent_dim=6, epochs=6, channels=(8, 16, 32), hidden=64,
                                   batch_size=32, kl_warmup_epochs=3, cuda_graphs=graphed)
        trained = train_autoencoder(flux[:300], ivar[:300], config, seed=3,
                                    device=torch.device("cuda"),
                                    velocity_step=TOY_GRID.velocity_step)
        assert trained.metrics["cuda_graphs"] == graphed
        losses[graphed] = np.array(trained.history["val_loss"])
    assert len(losses[True]) == len(losses[False])
    assert np.allclose(losses[True], losses[False], rtol=0.05)
