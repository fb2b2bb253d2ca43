"""Training loops for the autoencoder and the label ensemble, on in-memory arrays.

They take preprocessed arrays, not database rows, so the same code trains from the
archive (``ml.training_store``) or straight from files and arrays (``bench/``), on CPU
or GPU. Runs are reproducible: one seed fixes the split, the initial weights and the
batch order; early stopping keeps the weights of the best validation epoch.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch

from ml.errors import MLError
from ml.models.autoencoder import SpectrumAutoencoder
from ml.models.inputs import network_input
from ml.models.label_cnn import LabelCNN, LabelEnsemble, LabelPredictor, gaussian_nll

Progress = Callable[[int], None]


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)


def split_by_group(groups: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray,
                                                                            np.ndarray]:
    """Train/validation indices with every group (star) wholly on one side (no leakage)."""
    unique = np.unique(groups)
    rng = np.random.default_rng(seed)
    n_val = max(1, int(round(fraction * len(unique)))) if len(unique) > 1 else 0
    val_groups = set(rng.choice(unique, size=n_val, replace=False).tolist())
    is_val = np.array([g in val_groups for g in groups])
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


def _batches(n: int, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
    return list(torch.randperm(n, generator=generator).split(batch_size))


@dataclass
class AutoencoderConfig:
    latent_dim: int = 32
    epochs: int = 30
    batch_size: int = 128
    learning_rate: float = 2e-3
    channels: tuple[int, ...] = (16, 32, 64)
    hidden: int = 256
    val_fraction: float = 0.1
    patience: int = 6
    kl_warmup_epochs: int = 3
    informative_nats: float = 0.05  # mean KL above which a dimension counts as informative


@dataclass
class TrainedAutoencoder:
    model: SpectrumAutoencoder
    config: AutoencoderConfig
    history: dict[str, list[float]]
    metrics: dict[str, float]
    information: np.ndarray  # mean KL per latent dimension on validation spectra, nats
    train_index: np.ndarray
    val_index: np.ndarray


def train_autoencoder(flux: np.ndarray, ivar: np.ndarray, config: AutoencoderConfig,
                      seed: int, device: torch.device, groups: np.ndarray | None = None,
                      progress: Progress | None = None) -> TrainedAutoencoder:
    """Fit the VAE by minimising the negative ELBO (KL weight warmed up from 0 to 1)."""
    if len(flux) < 10:
        raise MLError(f"need at least 10 spectra to train an autoencoder, got {len(flux)}")
    seed_everything(seed)
    groups = np.arange(len(flux)) if groups is None else groups
    train_idx, val_idx = split_by_group(groups, config.val_fraction, seed)
    model = SpectrumAutoencoder(flux.shape[1], config.latent_dim, config.channels,
                                config.hidden).to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, config.epochs)
    x_all, ivar_all = network_input(flux, ivar), torch.as_tensor(ivar)
    generator = torch.Generator().manual_seed(seed)
    n_pix = flux.shape[1]
    history: dict[str, list[float]] = {"train_loss": [], "val_loss": [], "val_chi2": [],
                                       "val_kl": []}
    best, best_state, stale = math.inf, None, 0
    started = time.monotonic()
    for epoch in range(config.epochs):
        beta = min(1.0, (epoch + 1) / max(1, config.kl_warmup_epochs))
        model.train()
        total = 0.0
        for batch in _batches(len(train_idx), config.batch_size, generator):
            idx = torch.as_tensor(train_idx)[batch]
            loss, _, _ = model.loss(x_all[idx].to(device), ivar_all[idx].to(device), beta)
            optimiser.zero_grad()
            loss.mean().backward()
            optimiser.step()
            total += float(loss.detach().sum())
        scheduler.step()
        val_loss, val_chi2, kl = _evaluate_autoencoder(model, x_all[val_idx],
                                                       ivar_all[val_idx], device)
        history["train_loss"].append(total / len(train_idx) / n_pix)
        history["val_loss"].append(val_loss / n_pix)
        history["val_chi2"].append(val_chi2 / n_pix)
        history["val_kl"].append(float(kl.sum()))
        if progress:
            progress(1)
        if val_loss < best - 1e-6:
            best, best_state, stale = val_loss, copy.deepcopy(model.state_dict()), 0
        else:
            stale += 1
            if stale >= config.patience and beta >= 1.0:
                break
    model.load_state_dict(best_state)
    _, chi2, kl = _evaluate_autoencoder(model, x_all[val_idx], ivar_all[val_idx], device)
    information = kl.numpy()
    metrics = {"val_neg_elbo_per_pixel": best / n_pix, "val_chi2_per_pixel": 2 * chi2 / n_pix,
               "val_kl_nats": float(kl.sum()),
               "n_informative": int((information > config.informative_nats).sum()),
               "epochs_run": len(history["train_loss"]),
               "train_seconds": round(time.monotonic() - started, 1),
               "n_train": int(len(train_idx)), "n_val": int(len(val_idx))}
    return TrainedAutoencoder(model.cpu(), config, history, metrics, information,
                              train_idx, val_idx)


@torch.no_grad()
def _evaluate_autoencoder(model: SpectrumAutoencoder, x: torch.Tensor, ivar: torch.Tensor,
                          device: torch.device) -> tuple[float, float, torch.Tensor]:
    """Mean negative ELBO, mean 0.5 chi2 and mean KL per dimension over a set."""
    model.eval()
    loss_sum, chi2_sum = 0.0, 0.0
    kl_sum = torch.zeros(model.latent_dim)
    for start in range(0, len(x), 512):
        loss, chi2, kl = model.loss(x[start:start + 512].to(device),
                                    ivar[start:start + 512].to(device))
        loss_sum += float(loss.sum())
        chi2_sum += float(chi2.sum())
        kl_sum += kl.sum(dim=0).cpu()
    n = max(1, len(x))
    return loss_sum / n, chi2_sum / n, kl_sum / n


@dataclass
class LabelConfig:
    epochs: int = 40
    batch_size: int = 64
    learning_rate: float = 3e-3
    members: int = 3
    channels: tuple[int, ...] = (16, 32, 64)
    hidden: int = 128
    val_fraction: float = 0.15
    patience: int = 8


@dataclass
class TrainedLabelModel:
    predictor: LabelPredictor
    config: LabelConfig
    history: dict[str, list[float]]
    metrics: dict[str, float]
    train_index: np.ndarray
    val_index: np.ndarray
    val_prediction: tuple[np.ndarray, np.ndarray]  # physical mean, calibrated sigma


def train_label_model(flux: np.ndarray, ivar: np.ndarray, labels: np.ndarray,
                      errors: np.ndarray, groups: np.ndarray, quantities: list[str],
                      config: LabelConfig, seed: int, device: torch.device,
                      progress: Progress | None = None) -> TrainedLabelModel:
    """Train ``config.members`` CNNs on (flux, labels +- errors); calibrate sigma on validation.

    ``labels`` and ``errors`` are (n, len(quantities)); NaN marks a missing label or error.
    """
    if len(flux) < 20:
        raise MLError(f"need at least 20 labelled spectra to train a label model, got "
                      f"{len(flux)}")
    seed_everything(seed)
    train_idx, val_idx = split_by_group(groups, config.val_fraction, seed)
    mean = np.nanmean(labels[train_idx], axis=0)
    scale = np.nanstd(labels[train_idx], axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    y = torch.as_tensor((labels - mean) / scale, dtype=torch.float32)
    yvar = torch.as_tensor(np.nan_to_num(errors / scale, nan=0.0) ** 2, dtype=torch.float32)
    x_all = network_input(flux, ivar)
    history: dict[str, list[float]] = {}
    members = []
    started = time.monotonic()
    for k in range(config.members):
        torch.manual_seed(seed * 1000 + k)
        member = LabelCNN(flux.shape[1], len(quantities), config.channels,
                          config.hidden).to(device)
        generator = torch.Generator().manual_seed(seed * 1000 + k)
        members.append(_train_member(member, x_all, y, yvar, train_idx, val_idx, config,
                                     generator, device, history, k, progress))
    predictor = LabelPredictor(LabelEnsemble(members).cpu(), quantities, mean, scale,
                               np.ones(len(quantities)))
    pred, sigma = predictor.predict(flux[val_idx], ivar[val_idx], device)
    predictor.calibration = calibrate_sigma(pred, sigma, labels[val_idx], errors[val_idx])
    sigma = sigma * predictor.calibration
    metrics = label_metrics(pred, sigma, labels[val_idx], errors[val_idx], labels[train_idx],
                            quantities)
    metrics.update({"train_seconds": round(time.monotonic() - started, 1),
                    "n_train": int(len(train_idx)), "n_val": int(len(val_idx)),
                    **{f"sigma_calibration_{q}": float(c)
                       for q, c in zip(quantities, predictor.calibration, strict=True)}})
    return TrainedLabelModel(predictor, config, history, metrics, train_idx, val_idx,
                             (pred, sigma))


def _train_member(member: LabelCNN, x_all: torch.Tensor, y: torch.Tensor, yvar: torch.Tensor,
                  train_idx: np.ndarray, val_idx: np.ndarray, config: LabelConfig,
                  generator: torch.Generator, device: torch.device,
                  history: dict[str, list[float]], k: int,
                  progress: Progress | None) -> LabelCNN:
    optimiser = torch.optim.AdamW(member.parameters(), lr=config.learning_rate,
                                  weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, config.epochs)
    history[f"member{k}_train_nll"], history[f"member{k}_val_nll"] = [], []
    best, best_state, stale = math.inf, None, 0
    for _ in range(config.epochs):
        member.train()
        total, count = 0.0, 0
        for batch in _batches(len(train_idx), config.batch_size, generator):
            idx = torch.as_tensor(train_idx)[batch]
            mean, logvar = member(x_all[idx].to(device))
            loss = gaussian_nll(mean, logvar, y[idx].to(device), yvar[idx].to(device))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += float(loss.detach()) * len(idx)
            count += len(idx)
        scheduler.step()
        val = _member_nll(member, x_all[val_idx], y[val_idx], yvar[val_idx], device)
        history[f"member{k}_train_nll"].append(total / count)
        history[f"member{k}_val_nll"].append(val)
        if progress:
            progress(1)
        if val < best - 1e-5:
            best, best_state, stale = val, copy.deepcopy(member.state_dict()), 0
        else:
            stale += 1
            if stale >= config.patience:
                break
    member.load_state_dict(best_state)
    return member


@torch.no_grad()
def _member_nll(member: LabelCNN, x: torch.Tensor, y: torch.Tensor, yvar: torch.Tensor,
                device: torch.device) -> float:
    member.eval()
    total = 0.0
    for start in range(0, len(x), 512):
        mean, logvar = member(x[start:start + 512].to(device))
        nll = gaussian_nll(mean, logvar, y[start:start + 512].to(device),
                           yvar[start:start + 512].to(device))
        total += float(nll) * len(mean)
    return total / max(1, len(x))


def calibrate_sigma(pred: np.ndarray, sigma: np.ndarray, labels: np.ndarray,
                    errors: np.ndarray) -> np.ndarray:
    """Per-label factor c making (ref - pred) / sqrt((c sigma)^2 + ref_err^2) unit-variance."""
    factors = np.ones(pred.shape[1])
    for j in range(pred.shape[1]):
        ok = np.isfinite(labels[:, j]) & np.isfinite(pred[:, j])
        if ok.sum() < 10:
            continue
        resid2 = (labels[ok, j] - pred[ok, j]) ** 2
        err2 = np.nan_to_num(errors[ok, j], nan=0.0) ** 2
        s2 = sigma[ok, j] ** 2

        def z_var(c: float, resid2=resid2, s2=s2, err2=err2) -> float:
            return float(np.mean(resid2 / (c * c * s2 + err2)))

        lo, hi = 1e-2, 1e2
        if z_var(lo) < 1:  # even tiny sigmas over-cover: the reference errors dominate
            factors[j] = lo
            continue
        for _ in range(60):  # bisection in log space; z_var falls monotonically with c
            mid = math.sqrt(lo * hi)
            lo, hi = (mid, hi) if z_var(mid) > 1 else (lo, mid)
        factors[j] = math.sqrt(lo * hi)
    return factors


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
    data = asdict(config)
    data["channels"] = list(data["channels"])
    return data
