"""Training loops for the autoencoder and the label ensemble, on in-memory arrays.

They take preprocessed arrays, not database rows, so the same code trains from the
archive (``ml.archive_reader``) or straight from files and arrays (``bench/``), on CPU
or GPU. Runs are reproducible: one seed fixes the split, the initial weights and the
batch order; early stopping keeps the weights of the best validation epoch. Spectra
are shifted to the rest frame once, before training (``ml.rv``), with a template
built from the training spectra and stored in the model.

The arrays may be memory-mapped (``SpectraCache.load(..., into=...)``): they are read in
device-sized slices once, when the rest-frame inputs are built, and never again per
epoch. On CUDA the forward passes run under bf16 autocast (the losses stay float32);
the CPU stays float32, where bf16 is no faster and less precise. Early stopping on the
validation loss keeps the best epoch's weights and records which epoch that was.

On a GPU a training step is mostly launch overhead, so it never waits for the device:
batches are indexed from the resident tensors with an order copied once per epoch, and
the label ensemble's members are trained together, one vmapped step for all of them
(``train_members_together``), each still with its own weights, batch order and early
stopping. The CPU keeps the sequential loop and torch's default optimisers.
"""

from __future__ import annotations

import copy
import math
import time
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from ml.calibration import SigmaCalibration, calibrate_held_out
from ml.device import prepare_training, to_device
from ml.errors import MLError
from ml.models.autoencoder import SpectrumAutoencoder, encode_arrays, information
from ml.models.inputs import conditioning, default_power, network_input
from ml.models.label_cnn import (
    LabelCNN,
    LabelEnsemble,
    LabelPredictor,
    gaussian_nll,
    init_from_encoder,
    nll_sums,
    validation_loss,
)
from ml.rv import build_template, to_rest_frame
from ml.snr import spectrum_snr
from ml.step_graph import TrainingStep, graphs_usable, optimiser_options

Progress = Callable[[int], None]
TEMPLATE_SAMPLE = 4000  # spectra the RV template is built from
BATCH = 2048  # spectra per device batch outside training steps
WEIGHT_DECAY = 1e-4  # AdamW's, of the label networks
NOISE_AUGMENT_MIN_SNR = 10.0  # the lowest S/N noise augmentation takes a spectrum down to


def seed_everything(seed: int) -> None:
    """Seed torch's and numpy's global generators, so a run repeats with its seed."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)


def autocast(device: torch.device, enabled: bool) -> torch.autocast:
    """bf16 autocast on CUDA when ``enabled``; a no-op context elsewhere. Casts are not
    cached, which a recorded step (``ml.step_graph``) requires; each weight is cast once
    per pass anyway."""
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16,
                          enabled=enabled and device.type == "cuda", cache_enabled=False)


@dataclass
class EarlyStopping:
    """Tracks the best validation loss and its weights; says when to stop.

    An epoch counts as better only when it lowers the loss by more than ``min_delta``;
    after ``patience`` epochs without one, training stops and the best weights return.
    """

    patience: int
    min_delta: float
    best: float = math.inf
    best_epoch: int = -1
    best_state: dict | None = None
    stale: int = 0

    def update(self, epoch: int, loss: float, model: torch.nn.Module | MemberWeights) -> bool:
        """Record ``epoch``'s validation loss; True when training should stop."""
        if loss < self.best - self.min_delta:
            self.best, self.best_epoch, self.stale = loss, epoch, 0
            self.best_state = copy.deepcopy(model.state_dict())
            return False
        self.stale += 1
        return self.stale >= self.patience

    def restore(self, model: torch.nn.Module) -> None:
        """Load the best epoch's weights into ``model``."""
        assert self.best_state is not None, "no epoch gave a finite validation loss"
        model.load_state_dict(self.best_state)


def split_by_group(groups: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray,
                                                                            np.ndarray]:
    """Train/validation indices with every group (star) wholly on one side (no leakage).

    A star is held out when a hash of (seed, star) falls below ``fraction``: the decision
    does not depend on which other stars are in the set, so the label model (trained on
    the labelled spectra) holds out exactly the stars whose labels the autoencoder
    (trained on all of them, same seed) kept out of its guided term
    (``AutoencoderConfig.guided_holdout``). Otherwise the autoencoder's guided dimensions
    -- the label networks' starting trunk and the domain flag's space -- would have
    learnt the very labels the label model is calibrated on, and the calibration would
    promise errors smaller than those of stars never seen. At least one star lands on
    each side when there are two or more.
    """
    unique = np.unique(groups)
    draws = np.array([zlib.crc32(f"{seed}\0{g}".encode()) / 2**32 for g in unique])
    is_val_group = draws < fraction
    if len(unique) > 1 and not is_val_group.any():
        is_val_group[np.argmin(draws)] = True
    if len(unique) > 1 and is_val_group.all():
        is_val_group[np.argmax(draws)] = False
    if len(unique) <= 1:
        is_val_group[:] = False
    is_val = np.isin(groups, unique[is_val_group])
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


def epoch_order(rows: torch.Tensor, generator: torch.Generator, device: torch.device,
                coverage_dropout: float = 0.0) -> torch.Tensor:
    """``rows`` in this epoch's random order, on ``device``: one copy per epoch, so a
    training step indexes the resident tensors without a host-to-device copy (which on
    a GPU would also wait for the queued kernels). The order comes from a CPU generator,
    so a seed gives the same batches on every device.

    With ``coverage_dropout`` > 0: (2, n), the rows and the row whose coverage each is
    seen through (:func:`through_coverage`): itself, or with that probability another
    random training row."""
    order = rows[torch.randperm(len(rows), generator=generator)]
    if coverage_dropout > 0:
        others = rows[torch.randint(len(rows), (len(rows),), generator=generator)]
        own = torch.rand(len(rows), generator=generator) >= coverage_dropout
        order = torch.stack([order, torch.where(own, order, others)])
    return to_device(order, device)


def through_coverage(x: torch.Tensor, donor: torch.Tensor) -> torch.Tensor:
    """Network inputs ``x`` (..., 2, pixels) with the pixels ``donor`` (same shape) has
    no information on set as uncovered ones are (flux - 1 = 0, noise 1: ml.models.inputs)."""
    covered = donor[..., 1:2, :] < 1.0
    return torch.cat([torch.where(covered, x[..., 0:1, :], 0.0),
                      torch.where(covered, x[..., 1:2, :], 1.0)], dim=-2)


def batch_rows(x_all: torch.Tensor, idx: torch.Tensor, dropout: bool
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """(rows, inputs) of a batch: ``idx`` as :func:`epoch_order` gives it (the rows, or
    with ``dropout`` the rows and their coverage donors on the second-to-last axis)."""
    if not dropout:
        return idx, x_all[idx]
    rows, donors = idx.select(-2, 0), idx.select(-2, 1)
    return rows, through_coverage(x_all[rows], x_all[donors])


def with_added_noise(x: torch.Tensor, snr: torch.Tensor, share: float,
                     min_snr: float = NOISE_AUGMENT_MIN_SNR) -> torch.Tensor:
    """Network inputs ``x`` (..., 2, pixels) with ``share`` of the spectra (drawn anew per
    call) seen at a lower S/N: Gaussian noise added to the covered pixels' flux and their
    noise channel raised to match. Each chosen spectrum's new S/N is drawn log-uniformly
    between ``min_snr`` and its own ``snr`` (shape ``x.shape[:-2]``), so a labelled star at
    S/N 150 also teaches the networks what it looks like at 20 or 50.

    The draws come from torch's global generator on ``x``'s device, so a CUDA graph that
    records the step draws anew at every replay and a seeded CPU run repeats itself.
    The continuum stays the one normalised at the spectrum's own S/N: for a running mean
    that is what a noisier file would give too (``bench/ml_continuum.py``).
    """
    pick, level = torch.rand((2, *snr.shape), device=x.device)
    top = (snr / min_snr).clamp_min(1.0)
    factor = torch.where(pick < share, top**level, 1.0)[..., None, None]  # sigma x this
    flux, sigma = x[..., 0:1, :], x[..., 1:2, :]
    covered = sigma < 1.0
    extra = sigma * torch.sqrt(factor**2 - 1.0)
    return torch.cat([torch.where(covered, flux + extra * torch.randn_like(flux), flux),
                      torch.where(covered, (sigma * factor).clamp_max(0.99), sigma)], dim=-2)


def fit_template(flux: np.ndarray, ivar: np.ndarray, index: np.ndarray, velocity_step: float,
                 seed: int, device: torch.device) -> torch.Tensor:
    """RV template from (a seeded sample of) the training spectra."""
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(index, min(len(index), TEMPLATE_SAMPLE), replace=False))
    return build_template(torch.as_tensor(flux[sample]).to(device),
                          torch.as_tensor(ivar[sample]).to(device), velocity_step).cpu()


def rest_frame_inputs(flux: np.ndarray, ivar: np.ndarray, template: torch.Tensor,
                      velocity_step: float, device: torch.device
                      ) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """Network inputs and inverse variances of the rest-frame spectra (on ``device``), RVs."""
    xs, ivars, rvs = [], [], []
    template = template.to(device)
    for start in range(0, len(flux), BATCH):
        f = torch.as_tensor(flux[start:start + BATCH]).to(device)
        iv = torch.as_tensor(ivar[start:start + BATCH]).to(device)
        rest_flux, rest_ivar, rv = to_rest_frame(f, iv, template, velocity_step)
        xs.append(network_input(rest_flux, rest_ivar))
        ivars.append(rest_ivar)
        rvs.append(rv.cpu())
    return torch.cat(xs), torch.cat(ivars), torch.cat(rvs).numpy()


def device_name(device: torch.device) -> str:
    """What trained a model, for its metrics: 'cpu (2 threads)' or the GPU's name."""
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    return f"{device.type} ({torch.get_num_threads()} threads)"


def standardise(labels: np.ndarray, errors: np.ndarray, rows: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, torch.Tensor, torch.Tensor]:
    """(mean, scale) over ``rows``, and the standardised labels and error variances."""
    mean = np.nanmean(labels[rows], axis=0)
    scale = np.nanstd(labels[rows], axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    y = torch.as_tensor((labels - mean) / scale, dtype=torch.float32)
    yvar = torch.as_tensor(np.nan_to_num(errors / scale, nan=0.0) ** 2, dtype=torch.float32)
    return mean, scale, y, yvar


@dataclass
class AutoencoderConfig:
    """Training and network settings of an autoencoder (recorded in the registry)."""

    latent_dim: int = 16  # learned dimensions + the RV coordinate
    epochs: int = 30
    batch_size: int = 128
    learning_rate: float = 2e-3
    channels: tuple[int, ...] = (16, 32, 32, 64, 64)
    hidden: int = 256
    val_fraction: float = 0.1
    patience: int = 6
    kl_warmup_epochs: int = 3
    informative_nats: float = 0.05  # mean KL above which a dimension counts as informative
    label_weight: float = 1000.0  # guided-label term weight (see ml.models.autoencoder)
    # Share of the labelled stars (split_by_group, same seed) whose labels the guided term
    # never sees: the label model holds out the same stars to stop and calibrate on.
    guided_holdout: float = 0.15
    rv_scale_kms: float = 300.0  # km/s per unit of the RV coordinate (its weight in distances)
    profile: str = "default"  # the preset these sizes come from (ml.profiles)
    # Fast training: an epoch must lower the validation loss (per pixel) by more than
    # min_delta to count as better; bf16 autocast on CUDA. cuda_graphs: on CUDA, steps
    # replayed from a CUDA graph (ml.step_graph); the CPU ignores it.
    min_delta: float = 1e-4
    mixed_precision: bool = True
    cuda_graphs: bool = True


@dataclass
class TrainedAutoencoder:
    """A trained autoencoder with its validation figures and the train/validation split."""

    model: SpectrumAutoencoder
    config: AutoencoderConfig
    history: dict[str, list[float]]
    metrics: dict[str, Any]  # figures, and the training bookkeeping (epochs, device)
    information: np.ndarray  # mean KL per latent dimension on validation spectra, nats
    train_index: np.ndarray
    val_index: np.ndarray


def train_autoencoder(flux: np.ndarray, ivar: np.ndarray, config: AutoencoderConfig,
                      seed: int, device: torch.device, *, velocity_step: float,
                      resolving_power: np.ndarray | None = None,
                      groups: np.ndarray | None = None, labels: np.ndarray | None = None,
                      label_errors: np.ndarray | None = None,
                      quantities: list[str] | None = None,
                      progress: Progress | None = None) -> TrainedAutoencoder:
    """Fit the VAE by minimising the negative ELBO (KL weight warmed up from 0 to 1).

    With ``labels`` (n, len(quantities), NaN = none) and their errors, the first latent
    dimensions are guided by the reference labels (see ``ml.models.autoencoder``).
    """
    if len(flux) < 10:
        raise MLError(f"need at least 10 spectra to train an autoencoder, got {len(flux)}")
    seed_everything(seed)
    groups = np.arange(len(flux)) if groups is None else groups
    train_idx, val_idx = split_by_group(groups, config.val_fraction, seed)
    power = (np.full(len(flux), np.nan) if resolving_power is None
             else np.asarray(resolving_power, float))
    guided, y, yvar = None, None, None
    withheld = 0
    if labels is not None and quantities:
        _, reserved = split_by_group(groups, config.guided_holdout, seed)
        withheld = int(np.isfinite(labels[reserved]).any(axis=1).sum())
        labels = labels.copy()
        labels[reserved] = np.nan
        labelled = train_idx[np.isfinite(labels[train_idx]).any(axis=1)]
        if len(labelled) < 10:
            raise MLError(f"need at least 10 labelled spectra to guide the latent space, got "
                          f"{len(labelled)}")
        assert label_errors is not None, "labels come with their errors"
        mean, scale, y, yvar = standardise(labels, label_errors, labelled)
        guided = {"quantities": list(quantities), "mean": mean.tolist(),
                  "scale": scale.tolist()}
        y, yvar = y.to(device), yvar.to(device)
    model = SpectrumAutoencoder(flux.shape[1], config.latent_dim, config.channels,
                                config.hidden, velocity_step, config.rv_scale_kms,
                                default_power(power[train_idx]), guided)
    model.template.copy_(fit_template(flux, ivar, train_idx, velocity_step, seed, device))
    model.to(device)
    x_all, ivar_all, _ = rest_frame_inputs(flux, ivar, model.template, velocity_step, device)
    cond_all = model.condition(power, len(flux))
    prepare_training(device)
    graphed = graphs_usable(device, config.cuda_graphs)
    optimiser = torch.optim.Adam(model.parameters(),
                                 **optimiser_options(device, config.learning_rate, graphed))
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, config.epochs)
    generator = torch.Generator().manual_seed(seed)
    n_pix = flux.shape[1]
    history: dict[str, list[float]] = {"train_loss": [], "val_loss": [], "val_chi2": [],
                                       "val_kl": []}
    stopping = EarlyStopping(config.patience, config.min_delta)
    amp = config.mixed_precision
    beta = torch.zeros((), device=device)  # the KL weight, read by a recorded step
    total = torch.zeros((), device=device)  # summed on the device: no sync per step

    def step(idx: torch.Tensor) -> None:
        optimiser.zero_grad(set_to_none=True)
        with autocast(device, amp):
            loss, _, _ = model.loss(x_all[idx], ivar_all[idx], cond_all[idx], beta,
                                    None if y is None else y[idx],
                                    None if yvar is None else yvar[idx],
                                    config.label_weight)
        loss.mean().backward()
        optimiser.step()
        total.add_(loss.detach().sum())

    run_step = TrainingStep(step, (config.batch_size,), device, graphed)
    started = time.monotonic()
    train_t = torch.as_tensor(train_idx)
    for epoch in range(config.epochs):
        kl_weight = min(1.0, (epoch + 1) / max(1, config.kl_warmup_epochs))
        beta.fill_(kl_weight)
        model.train()
        total.zero_()
        for idx in epoch_order(train_t, generator, device).split(config.batch_size):
            run_step(idx)
        scheduler.step()
        val_loss, val_chi2, kl = _evaluate_autoencoder(model, x_all, ivar_all, cond_all,
                                                       val_idx, y, yvar, config.label_weight,
                                                       amp)
        history["train_loss"].append(float(total) / len(train_idx) / n_pix)
        history["val_loss"].append(val_loss / n_pix)
        history["val_chi2"].append(val_chi2 / n_pix)
        history["val_kl"].append(float(kl.sum()))
        if progress:
            progress(1)
        # Stopping waits for the KL weight to reach 1: earlier losses are not comparable.
        if stopping.update(epoch, val_loss / n_pix, model) and kl_weight >= 1.0:
            break
    stopping.restore(model)
    _, chi2, _ = _evaluate_autoencoder(model, x_all, ivar_all, cond_all, val_idx, y, yvar,
                                       config.label_weight, amp)
    info = information(encode_arrays(model, flux[val_idx], ivar[val_idx], power[val_idx],
                                     device))
    metrics = {"val_neg_elbo_per_pixel": stopping.best,
               "val_chi2_per_pixel": 2 * chi2 / n_pix,
               "val_kl_nats": float(info[:-1].sum()),
               "n_informative": int((info > config.informative_nats).sum()),
               "epochs_run": len(history["train_loss"]), "best_epoch": stopping.best_epoch,
               "train_seconds": round(time.monotonic() - started, 1),
               "device": device_name(device), "cuda_graphs": run_step.recorded,
               "n_train": int(len(train_idx)), "n_val": int(len(val_idx))}
    if guided:
        metrics["n_guided"] = len(guided["quantities"])
        metrics["guided_labels_withheld"] = withheld
    return TrainedAutoencoder(model.cpu(), config, history, metrics, info, train_idx, val_idx)


@torch.no_grad()
def _evaluate_autoencoder(model: SpectrumAutoencoder, x: torch.Tensor, ivar: torch.Tensor,
                          cond: torch.Tensor, index: np.ndarray, y: torch.Tensor | None,
                          yvar: torch.Tensor | None, label_weight: float, amp: bool = False
                          ) -> tuple[float, float, torch.Tensor]:
    """Mean negative ELBO, mean 0.5 chi2 and mean KL per learned dimension over a set."""
    model.eval()
    loss_sum = torch.zeros((), dtype=torch.float64, device=x.device)
    chi2_sum = torch.zeros_like(loss_sum)
    kl_sum = torch.zeros(model.n_learned, dtype=torch.float64, device=x.device)
    for idx in to_device(torch.as_tensor(index), x.device).split(BATCH):
        with autocast(x.device, amp):
            loss, chi2, kl = model.loss(x[idx], ivar[idx], cond[idx], 1.0,
                                        None if y is None else y[idx],
                                        None if yvar is None else yvar[idx], label_weight)
        loss_sum += loss.sum()
        chi2_sum += chi2.sum()
        kl_sum += kl.sum(dim=0)
    n = max(1, len(index))
    return float(loss_sum) / n, float(chi2_sum) / n, (kl_sum / n).float().cpu()


@dataclass
class LabelConfig:
    """Training and network settings of a label model (recorded in the registry)."""

    epochs: int = 40
    batch_size: int = 64
    learning_rate: float = 1e-3
    members: int = 3
    channels: tuple[int, ...] = (16, 32, 32, 64, 64)
    hidden: int = 256
    val_fraction: float = 0.15
    patience: int = 8
    profile: str = "default"  # the preset these sizes come from (ml.profiles)
    # Fast training: an epoch must lower the validation NLL by more than min_delta to
    # count as better; bf16 autocast on CUDA. cuda_graphs: as in AutoencoderConfig.
    min_delta: float = 1e-4
    mixed_precision: bool = True
    cuda_graphs: bool = True
    # Early stopping on the validation NLL after the one variance scale per label that
    # minimises it ("scale-free", ml.models.label_cnn.validation_loss; the calibration
    # sets that scale after training) or taken as is ("nll").
    stop_on: str = "scale-free"
    # Validation, early stopping and the weights kept use an exponential moving average of
    # the weights over about this many epochs (0: the weights themselves). It follows the
    # weights from the end of the first epoch (WeightAverage). Counted in epochs, not
    # steps, so that it means the same on a small archive (few steps per epoch) as on a
    # large one. docs/ml.md, "Issue 18, fifth round", has the runs that chose both
    # defaults (2.5 epochs: a decay of 0.995 per step on 5,000 training spectra).
    weight_average_epochs: float = 2.5
    # Semi-supervised: start each member's convolutional trunk (and the first dense
    # layer) from the autoencoder's encoder, pretrained on every spectrum, where the
    # sizes match (ml.models.label_cnn.init_from_encoder).
    pretrained_trunk: bool = True
    # The share of training batches' spectra seen through another training spectrum's
    # wavelength coverage (its uncovered pixels made uncovered here too), so that on a
    # union grid the spectra of every instrument could teach the networks to read the
    # shorter ranges, which otherwise learn from their own instrument's stars alone. At
    # 0.5 the labels moved by less than a run's scatter (docs/ml.md, "Issue 18, sixth
    # round"), so it is off (0) by default.
    coverage_dropout: float = 0.0
    # The share of training batches' spectra seen with added noise at a lower S/N, drawn
    # anew at every step (with_added_noise): more examples at low S/N from the same
    # labelled stars, and noise the networks cannot learn by heart. On the union grid
    # (20,000 spectra, two archives, three pairs of runs) it lowered the RMSE of every
    # label by 8-25 % at S/N 10-20 and 6-19 % at 20-50; at 100-200 by -2 to 13 %. Those
    # pairs met 6-9 fewer calibration cells, a fourth pair 3 more, and an offline refit
    # found the errors as calibratable as without (docs/ml.md, "Issue 18, seventh round"
    # and "eighth round").
    noise_augment: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.noise_augment <= 1.0:
            raise MLError(f"noise_augment must be in [0, 1], got {self.noise_augment}")
        if not 0.0 <= self.coverage_dropout < 1.0:
            raise MLError(f"coverage_dropout must be in [0, 1), got {self.coverage_dropout}")
        if self.stop_on not in ("nll", "scale-free"):
            raise MLError(f"stop_on must be 'nll' or 'scale-free', got {self.stop_on!r}")
        if not self.weight_average_epochs >= 0.0:
            raise MLError(f"weight_average_epochs must be >= 0, got "
                          f"{self.weight_average_epochs}")


@dataclass
class TrainedLabelModel:
    """A trained label model with its validation figures and predictions."""

    predictor: LabelPredictor
    config: LabelConfig
    history: dict[str, list[float]]
    metrics: dict[str, Any]  # figures, and the training bookkeeping (epochs, device)
    train_index: np.ndarray
    val_index: np.ndarray
    val_prediction: tuple[np.ndarray, np.ndarray]  # physical mean, calibrated sigma


def train_label_model(flux: np.ndarray, ivar: np.ndarray, labels: np.ndarray,
                      errors: np.ndarray, groups: np.ndarray, quantities: list[str],
                      config: LabelConfig, seed: int, device: torch.device, *,
                      velocity_step: float, resolving_power: np.ndarray | None = None,
                      template: torch.Tensor | None = None,
                      encoder: SpectrumAutoencoder | None = None,
                      progress: Progress | None = None,
                      train_together: bool | None = None,
                      split_seed: int | None = None) -> TrainedLabelModel:
    """Train ``config.members`` CNNs on (rest-frame flux, labels +- errors); calibrate sigma
    on held-out stars.

    ``labels`` and ``errors`` are (n, len(quantities)); NaN marks a missing label or error.
    ``template`` is the RV template to share (an autoencoder's); by default one is built.
    ``encoder``: the autoencoder trained on every spectrum, labelled or not; with
    ``config.pretrained_trunk`` each member starts from its encoder's weights.
    ``train_together``: fit the members in one step per batch
    (:func:`train_members_together`) or one after another; by default together on
    CUDA only (``members_together``), so CPU results stay those of the sequential loop.
    ``split_seed`` (default ``seed``): the seed of the held-out stars, the autoencoder's
    when it was guided, so that they are the stars its guided term never saw.
    """
    if len(flux) < 20:
        raise MLError(f"need at least 20 labelled spectra to train a label model, got "
                      f"{len(flux)}")
    seed_everything(seed)
    train_idx, val_idx = split_by_group(groups, config.val_fraction,
                                        seed if split_seed is None else split_seed)
    power = (np.full(len(flux), np.nan) if resolving_power is None
             else np.asarray(resolving_power, float))
    if template is None:
        template = fit_template(flux, ivar, train_idx, velocity_step, seed, device)
    mean, scale, y, yvar = standardise(labels, errors, train_idx)
    x_all, _, _ = rest_frame_inputs(flux, ivar, template, velocity_step, device)
    fallback = default_power(power[train_idx])
    cond_all = conditioning(power, len(flux), fallback).to(device)
    y, yvar = y.to(device), yvar.to(device)
    snr_all = (torch.as_tensor(spectrum_snr(flux, ivar), dtype=torch.float32).to(device)
               if config.noise_augment > 0 else None)
    history: dict[str, list[float]] = {}
    members, generators, pretrained = [], [], []
    started = time.monotonic()
    for k in range(config.members):  # each member: its own initial weights and batch order
        torch.manual_seed(seed * 1000 + k)
        member = LabelCNN(flux.shape[1], len(quantities), config.channels, config.hidden)
        pretrained.append(config.pretrained_trunk and encoder is not None
                          and init_from_encoder(member, encoder))
        members.append(member.to(device))
        generators.append(torch.Generator().manual_seed(seed * 1000 + k))
    prepare_training(device)
    together = len(members) > 1 and (members_together(device) if train_together is None
                                      else train_together)
    if together:
        stoppings, recorded = train_members_together(members, x_all, cond_all, y, yvar,
                                                     train_idx, val_idx, config, generators,
                                                     history, progress, snr_all)
    else:
        runs = [_train_member(member, x_all, cond_all, y, yvar, train_idx, val_idx,
                              config, generators[k], history, k, progress, snr_all)
                for k, member in enumerate(members)]
        stoppings, recorded = [s for s, _ in runs], all(r for _, r in runs)
    epochs_run = [len(history[f"member{k}_val_nll"]) for k in range(len(members))]
    best_epochs = [stopping.best_epoch for stopping in stoppings]
    ensemble = LabelEnsemble(members, velocity_step, fallback)
    ensemble.template.copy_(template)
    predictor = LabelPredictor(ensemble.cpu(), quantities, mean, scale,
                               SigmaCalibration.identity(len(quantities)))
    pred, sigma = predictor.predict(flux[val_idx], ivar[val_idx], power[val_idx], device)
    calibrated = calibrate_held_out(pred, sigma, labels[val_idx], errors[val_idx],
                                    spectrum_snr(flux[val_idx], ivar[val_idx]), groups[val_idx],
                                    mean, scale, quantities, seed)
    predictor.calibration, sigma = calibrated.calibration, calibrated.sigma
    metrics: dict[str, Any] = dict(label_metrics(pred, sigma, labels[val_idx],
                                                 errors[val_idx], labels[train_idx], quantities))
    metrics.update({"train_seconds": round(time.monotonic() - started, 1),
                    "epochs_run": epochs_run, "best_epoch": best_epochs,
                    "device": device_name(device), "pretrained_trunk": any(pretrained),
                    "members_trained": "together" if together else "one after another",
                    "cuda_graphs": recorded,
                    "n_train": int(len(train_idx)), "n_val": int(len(val_idx)),
                    **calibrated.metrics})
    return TrainedLabelModel(predictor, config, history, metrics, train_idx, val_idx,
                             (pred, sigma))


def average_decay(config: LabelConfig, n_train: int) -> float:
    """The weight average's decay per step: a time scale of ``weight_average_epochs``."""
    steps = config.weight_average_epochs * math.ceil(n_train / config.batch_size)
    return 1.0 - 1.0 / max(steps, 1.0)


class WeightAverage:
    """An exponential moving average of training weights, updated after every step.

    Between the noise of the last steps and a learning rate that has not decayed yet, one
    epoch's weights scatter: validation losses jump by 0.1 in NLL from epoch to epoch, the
    predictions at high S/N keep that scatter, and early stopping picks an epoch partly by
    luck. The average is updated on the device with no host synchronisation, so it can
    be recorded in a CUDA graph with the step. It starts from the weights at the end of the
    first epoch, so that the initial weights do not linger in it.
    """

    def __init__(self, weights: list[torch.Tensor], decay: float,
                 into: list[torch.Tensor] | None = None) -> None:
        """``into``: tensors (a copy of the weights) that hold the average in place."""
        self.weights = [w.detach() for w in weights]  # views: the optimiser updates in place
        self.average = into if into is not None else [w.clone() for w in self.weights]
        self.decay = decay

    @torch.no_grad()
    def update(self) -> None:
        """Move the average towards the current weights (inside the training step)."""
        torch._foreach_lerp_(self.average, self.weights, 1.0 - self.decay)

    @torch.no_grad()
    def restart(self) -> None:
        """Set the average to the current weights (end of the first epoch)."""
        torch._foreach_copy_(self.average, self.weights)


def _train_member(member: LabelCNN, x_all: torch.Tensor, cond_all: torch.Tensor,
                  y: torch.Tensor, yvar: torch.Tensor, train_idx: np.ndarray,
                  val_idx: np.ndarray, config: LabelConfig, generator: torch.Generator,
                  history: dict[str, list[float]], k: int, progress: Progress | None,
                  snr_all: torch.Tensor | None = None) -> tuple[EarlyStopping, bool]:
    """Fit one member in place (best epoch's weights restored); returns its stopping record
    and whether its steps were replayed from a CUDA graph. ``snr_all``: every spectrum's
    S/N, for ``config.noise_augment``."""
    device = x_all.device
    graphed = graphs_usable(device, config.cuda_graphs)
    optimiser = torch.optim.AdamW(member.parameters(), weight_decay=WEIGHT_DECAY,
                                  **optimiser_options(device, config.learning_rate, graphed))
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, config.epochs)
    for name in history_names(k, config):
        history[name] = []
    stopping = EarlyStopping(config.patience, config.min_delta)
    amp = config.mixed_precision
    total = torch.zeros((), device=device)  # summed on the device: no sync per step
    judged, average = member, None  # the network validated and kept
    if config.weight_average_epochs:
        judged = copy.deepcopy(member)
        average = WeightAverage(list(member.parameters()),
                                average_decay(config, len(train_idx)),
                                into=list(judged.parameters()))

    dropout = config.coverage_dropout > 0

    def step(idx: torch.Tensor) -> None:
        optimiser.zero_grad(set_to_none=True)
        rows, x = batch_rows(x_all, idx, dropout)
        if snr_all is not None:
            x = with_added_noise(x, snr_all[rows], config.noise_augment)
        with autocast(device, amp):
            mean, logvar = member(x, cond_all[rows])
        loss = gaussian_nll(mean.float(), logvar.float(), y[rows], yvar[rows])
        loss.backward()
        optimiser.step()
        if average is not None:
            average.update()
        total.add_(loss.detach() * rows.shape[-1])

    run_step = TrainingStep(step, (2, config.batch_size) if dropout else (config.batch_size,),
                            device, graphed)
    train_t = torch.as_tensor(train_idx)
    for epoch in range(config.epochs):
        member.train()
        total.zero_()
        order = epoch_order(train_t, generator, device, config.coverage_dropout)
        for idx in order.split(config.batch_size, dim=-1):
            run_step(idx)
        scheduler.step()
        if average is not None and epoch == 0:
            average.restart()
        val = record_epoch(history, k, config, float(total) / len(train_idx),
                           _validation_sums(judged, x_all, cond_all, y, yvar, val_idx, amp))
        if progress:
            progress(1)
        if stopping.update(epoch, val, judged):
            break
    stopping.restore(member)
    return stopping, run_step.recorded


def history_names(k: int, config: LabelConfig) -> list[str]:
    """Member ``k``'s history entries: training NLL, validation NLL and, when early
    stopping judges another loss, that loss (the last name is the one it judges)."""
    names = [f"member{k}_train_nll", f"member{k}_val_nll"]
    return names + ([f"member{k}_val_scale_free_nll"] if config.stop_on == "scale-free"
                    else [])


def record_epoch(history: dict[str, list[float]], k: int, config: LabelConfig,
                 train: float, sums: torch.Tensor) -> float:
    """Append member ``k``'s epoch to its history (validation ``sums`` from
    :func:`nll_sums`); returns the loss early stopping judges."""
    names = history_names(k, config)
    history[names[0]].append(train)
    history[names[1]].append(float(validation_loss(sums, scale_free=False)))
    if len(names) > 2:
        history[names[2]].append(float(validation_loss(sums, scale_free=True)))
    return history[names[-1]][-1]


@torch.no_grad()
def _validation_sums(member: LabelCNN, x: torch.Tensor, cond: torch.Tensor, y: torch.Tensor,
                     yvar: torch.Tensor, index: np.ndarray, amp: bool = False) -> torch.Tensor:
    """The member's :func:`nll_sums` over the spectra ``index``."""
    member.eval()
    sums = torch.zeros((3, y.shape[1]), dtype=torch.float64, device=x.device)
    for idx in to_device(torch.as_tensor(index), x.device).split(BATCH):
        with autocast(x.device, amp):
            mean, logvar = member(x[idx], cond[idx])
        sums += nll_sums(mean.float(), logvar.float(), y[idx], yvar[idx])
    return sums


def members_together(device: torch.device) -> bool:
    """Whether ``train_label_model`` fits its members in one step by default: on CUDA, where
    a member's step is too little work to fill the GPU and the launches dominate; a CPU is
    busy with one member already, so it keeps the sequential loop (and its results)."""
    return device.type == "cuda"


class MemberWeights:
    """Member ``k``'s weights inside the stacked ones, read as a module's ``state_dict``
    (what :class:`EarlyStopping` keeps of the best epoch)."""

    def __init__(self, stacked: dict[str, torch.Tensor], k: int) -> None:
        self.stacked, self.k = stacked, k

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {name: value[self.k].detach().clone() for name, value in self.stacked.items()}


def train_members_together(members: list[LabelCNN], x_all: torch.Tensor,
                           cond_all: torch.Tensor, y: torch.Tensor, yvar: torch.Tensor,
                           train_idx: np.ndarray, val_idx: np.ndarray, config: LabelConfig,
                           generators: list[torch.Generator], history: dict[str, list[float]],
                           progress: Progress | None, snr_all: torch.Tensor | None = None
                           ) -> tuple[list[EarlyStopping], bool]:
    """Fit every member in place at once; the same model as ``_train_member`` per member
    (with ``config.noise_augment`` the same in distribution: the added noise is drawn for
    all members at once).
    Returns their stopping records and whether the steps were replayed from a CUDA graph.

    The members' weights are stacked along a leading axis (``torch.func``) and one vmapped
    forward and backward pass serves all of them, each on its own batch (its own
    generator's order), so one step launches one set of kernels instead of one per
    member. Adam(W) updates every element on its own, so one optimiser over the stacked
    weights is each member's own optimiser. Each member keeps its own early stopping:
    once it stops, its best epoch is kept and its history ends there; it is still carried
    along (its later weights are discarded) until the last member stops.
    """
    device = x_all.device
    stacked, buffers = torch.func.stack_module_state(members)  # type: ignore[arg-type]
    skeleton = copy.deepcopy(members[0]).to("meta")

    def forward(weights: dict, own_buffers: dict, x: torch.Tensor,
                cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.func.functional_call(skeleton, (weights, own_buffers), (x, cond))

    own_batches = torch.func.vmap(forward)  # x (members, batch, 2, pixels)
    own_nll = torch.func.vmap(gaussian_nll)
    graphed = graphs_usable(device, config.cuda_graphs)
    optimiser = torch.optim.AdamW(stacked.values(), weight_decay=WEIGHT_DECAY,
                                  **optimiser_options(device, config.learning_rate, graphed))
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, config.epochs)
    stoppings = [EarlyStopping(config.patience, config.min_delta) for _ in members]
    for k in range(len(members)):
        for name in history_names(k, config):
            history[name] = []
    active = list(range(len(members)))
    amp = config.mixed_precision
    total = torch.zeros(len(members), device=device)  # on the device: no sync per step
    judged, average = stacked, None  # the weights validated and kept
    if config.weight_average_epochs:
        average = WeightAverage(list(stacked.values()), average_decay(config, len(train_idx)))
        judged = dict(zip(stacked, average.average, strict=True))

    dropout = config.coverage_dropout > 0

    def step(idx: torch.Tensor) -> None:  # idx: (members, [2,] batch) rows
        optimiser.zero_grad(set_to_none=True)
        rows, x = batch_rows(x_all, idx, dropout)
        if snr_all is not None:
            x = with_added_noise(x, snr_all[rows], config.noise_augment)
        with autocast(device, amp):
            mean, logvar = own_batches(stacked, buffers, x, cond_all[rows])
        loss = own_nll(mean.float(), logvar.float(), y[rows], yvar[rows])
        loss.sum().backward()  # members share no weights: each gets its own gradient
        optimiser.step()
        if average is not None:
            average.update()
        total.add_(loss.detach() * rows.shape[-1])

    shape = (len(members), *((2,) if dropout else ()), config.batch_size)
    run_step = TrainingStep(step, shape, device, graphed)
    train_t = torch.as_tensor(train_idx)
    for epoch in range(config.epochs):
        order = torch.stack([epoch_order(train_t, g, device, config.coverage_dropout)
                             for g in generators])
        total.zero_()
        for idx in order.split(config.batch_size, dim=-1):
            run_step(idx)
        scheduler.step()
        if average is not None and epoch == 0:
            average.restart()
        sums = _members_validation_sums(forward, judged, buffers, x_all, cond_all, y, yvar,
                                        val_idx, amp)
        train = [t / len(train_idx) for t in total.tolist()]
        for k in list(active):
            val = record_epoch(history, k, config, train[k], sums[k])
            if progress:
                progress(1)
            if stoppings[k].update(epoch, val, MemberWeights({**judged, **buffers}, k)):
                active.remove(k)
        if not active:
            break
    for member, stopping in zip(members, stoppings, strict=True):
        stopping.restore(member)
    return stoppings, run_step.recorded


@torch.no_grad()
def _members_validation_sums(forward: Callable[..., tuple[torch.Tensor, torch.Tensor]],
                             stacked: dict[str, torch.Tensor],
                             buffers: dict[str, torch.Tensor], x: torch.Tensor,
                             cond: torch.Tensor, y: torch.Tensor, yvar: torch.Tensor,
                             index: np.ndarray, amp: bool) -> torch.Tensor:
    """Each stacked member's :func:`nll_sums` over the spectra ``index`` (all see the same
    ones): (members, 3, labels)."""
    shared_batch = torch.func.vmap(forward, in_dims=(0, 0, None, None))
    sums_of = torch.func.vmap(nll_sums, in_dims=(0, 0, None, None))
    sums = torch.zeros((len(next(iter(stacked.values()))), 3, y.shape[1]),
                       dtype=torch.float64, device=x.device)
    for idx in to_device(torch.as_tensor(index), x.device).split(BATCH):
        with autocast(x.device, amp):
            mean, logvar = shared_batch(stacked, buffers, x[idx], cond[idx])
        sums += sums_of(mean.float(), logvar.float(), y[idx], yvar[idx])
    return sums


def label_metrics(pred: np.ndarray, sigma: np.ndarray, labels: np.ndarray, errors: np.ndarray,
                  train_labels: np.ndarray, quantities: list[str]) -> dict[str, float]:
    """Validation RMSE against the reference, RMSE of predicting the training mean, z std."""
    metrics: dict[str, float] = {}
    for j, q in enumerate(quantities):
        ok = np.isfinite(labels[:, j])
        if not ok.any():
            continue
        resid = labels[ok, j] - pred[ok, j]
        err2 = np.nan_to_num(errors[ok, j], nan=0.0) ** 2
        metrics[f"val_rmse_{q}"] = float(np.sqrt(np.mean(resid**2)))
        metrics[f"val_rmse_mean_baseline_{q}"] = float(
            np.sqrt(np.mean((labels[ok, j] - np.nanmean(train_labels[:, j])) ** 2)))
        metrics[f"val_z_std_{q}"] = float(np.std(resid / np.sqrt(sigma[ok, j] ** 2 + err2)))
        metrics[f"val_median_sigma_{q}"] = float(np.median(sigma[ok, j]))
    return metrics


def config_dict(config: AutoencoderConfig | LabelConfig) -> dict:
    """The configuration as JSON-ready values (for the registry's hyper-parameters)."""
    data = asdict(config)
    data["channels"] = list(data["channels"])
    return data
