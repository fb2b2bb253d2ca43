"""Convolutional label regressor with per-star uncertainties (a small deep ensemble).

Each member predicts a mean and a log-variance per label from the rest-frame spectrum
and its resolving power, and is trained with the Gaussian negative log-likelihood in
which the reference label's own error is added to the predicted variance, so the
predicted sigma is the error against the *true* label, not against the noisy
reference. Ensemble spread adds the model's own (epistemic) uncertainty. The ensemble
carries the RV template of its autoencoder, so it shifts its input to the same rest
frame at inference.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from ml.calibration import SigmaCalibration
from ml.device import inference_batch
from ml.models.encoder import conv_stack, float32_output
from ml.models.inputs import batches, conditioning, network_input
from ml.rv import to_rest_frame
from ml.snr import spectrum_snr

if TYPE_CHECKING:
    from ml.models.autoencoder import SpectrumAutoencoder


class LabelCNN(nn.Module):
    """One ensemble member: rest-frame spectrum and resolving power -> label means and
    log-variances, in standardised units.

    Parameters
    ----------
    n_pixels
        Length of the model's wavelength grid.
    n_labels
        Number of labels predicted.
    channels, hidden
        Widths of the convolution stack and of the fully connected layers.
    """

    def __init__(self, n_pixels: int, n_labels: int,
                 channels: tuple[int, ...] = (16, 32, 32, 64, 64), hidden: int = 256) -> None:
        super().__init__()
        # The constructor's arguments, stored in the artifact to rebuild the network.
        self.config: dict[str, Any] = {"n_pixels": n_pixels, "n_labels": n_labels,
                                       "channels": list(channels), "hidden": hidden}
        convs, flat = conv_stack(n_pixels, tuple(channels))
        self.features = convs
        self.head = nn.Sequential(nn.Linear(flat + 1, hidden), nn.GELU(),
                                  nn.Linear(hidden, hidden), nn.GELU(),
                                  nn.Linear(hidden, 2 * n_labels))

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Standardised label means and log-variances, each (batch, n_labels)."""
        mean, logvar = float32_output(self.head, torch.cat([self.features(x), cond],
                                                           dim=1)).chunk(2, dim=1)
        return mean, logvar.clamp(-14.0, 8.0)


def init_from_encoder(member: LabelCNN, encoder: SpectrumAutoencoder) -> bool:
    """Start ``member`` from an autoencoder's encoder (semi-supervised pretraining).

    The autoencoder learned its convolutional trunk, and the dense layer on top of it,
    from every spectrum of the archive, labelled or not; the label network sees only the
    labelled ones. Both read the same input (rest-frame spectrum and noise, then log R),
    so the trunk's features transfer and fine-tuning starts from them instead of from
    random weights. Copies the convolutions and the first dense layer where their shapes
    match; returns whether anything was copied (False: the widths differ).
    """
    features = encoder.features.state_dict()
    mine = member.features.state_dict()
    if features.keys() != mine.keys() or any(features[k].shape != mine[k].shape
                                             for k in mine):
        return False
    with torch.no_grad():
        member.features.load_state_dict(features)
        first, own = encoder.head[0].state_dict(), member.head[0].state_dict()
        if all(first[k].shape == v.shape for k, v in own.items()):
            member.head[0].load_state_dict(first)
    return True


class LabelEnsemble(nn.Module):
    """Deep ensemble of :class:`LabelCNN` members built alike, with its RV frame.

    Parameters
    ----------
    members
        The trained members (at least one).
    velocity_step
        km/s per pixel of the grid, for the shift to the rest frame.
    default_power
        Resolving power assumed for spectra that state none.
    """

    template: torch.Tensor  # the autoencoder's RV template (a buffer: saved with the weights)

    def __init__(self, members: list[LabelCNN], velocity_step: float = 1.0,
                 default_power: float = 2500.0) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)
        self.config = members[0].config  # the members' common constructor arguments
        self.frame = {"velocity_step": velocity_step, "default_power": default_power}
        self.register_buffer("template", torch.zeros(members[0].config["n_pixels"]))

    def architecture(self) -> dict[str, Any]:
        """Description of the network for the model registry and the service metadata."""
        return {"class": "LabelEnsemble",
                "type": "CNN deep ensemble on rest-frame spectra + log resolving power, "
                        "Gaussian NLL", "members": len(self.members),
                **self.config, **self.frame}

    def condition(self, resolving_power: np.ndarray | torch.Tensor | None,
                  n: int) -> torch.Tensor:
        """Conditioning input (n, 1) for ``n`` spectra, on the network's device."""
        return conditioning(resolving_power, n, self.frame["default_power"]).to(
            self.template.device)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Ensemble mean and total variance (aleatoric + spread), standardised units."""
        outputs = [member(x, cond) for member in self.members]
        means = torch.stack([m for m, _ in outputs])
        variances = torch.stack([lv.exp() for _, lv in outputs])
        return means.mean(dim=0), variances.mean(dim=0) + means.var(dim=0, unbiased=False)


def gaussian_nll(mean: torch.Tensor, logvar: torch.Tensor, target: torch.Tensor,
                 target_var: torch.Tensor) -> torch.Tensor:
    """Mean NLL over the labels present (NaN targets are ignored)."""
    present = torch.isfinite(target)
    var = logvar.exp() + torch.where(present, target_var, torch.zeros_like(target_var))
    resid = torch.where(present, target - mean, torch.zeros_like(mean))
    nll = 0.5 * (torch.log(var) + resid**2 / var)
    return (nll * present).sum() / present.sum().clamp_min(1)


def nll_sums(mean: torch.Tensor, logvar: torch.Tensor, target: torch.Tensor,
             target_var: torch.Tensor) -> torch.Tensor:
    """Per label, over a batch: sum of log variance, sum of squared z, labels present (3, k).

    What :func:`validation_loss` needs, summed batch by batch over a validation set."""
    present = torch.isfinite(target)
    var = logvar.exp() + torch.where(present, target_var, torch.zeros_like(target_var))
    resid = torch.where(present, target - mean, torch.zeros_like(mean))
    zero = torch.zeros_like(var)
    return torch.stack([torch.where(present, torch.log(var), zero).sum(0),
                        torch.where(present, resid**2 / var, zero).sum(0),
                        present.sum(0).to(var.dtype)])


def validation_loss(sums: torch.Tensor, scale_free: bool) -> torch.Tensor:
    """The mean NLL from :func:`nll_sums` (``sums`` (..., 3, k)), over labels and spectra.

    ``scale_free``: each label's NLL after the one variance scale that minimises it
    (0.5 (<log var> + log <z^2> + 1)). The errors are calibrated on held-out stars after
    training anyway, so this judges the means and the *relative* errors but not the
    variance head's overall scale: a network growing overconfident on its training stars
    raises the plain NLL while its predictions still improve, and early stopping on it
    stops too soon.
    """
    logvar, z2, count = sums.unbind(-2)
    n = count.clamp_min(1)
    spread = torch.log(z2 / n) + 1 if scale_free else z2 / n
    per_label = torch.where(count > 0, 0.5 * (logvar / n + spread), 0.0)  # absent: no term
    return (per_label * count).sum(-1) / count.sum(-1).clamp_min(1)


def predict_arrays(model: LabelEnsemble, flux: np.ndarray, ivar: np.ndarray,
                   resolving_power: np.ndarray | None, device: torch.device,
                   batch_size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Standardised means and variances (numpy) of preprocessed observed spectra."""
    model.eval()
    batch_size = batch_size or inference_batch(device)
    means, variances = [], []
    with torch.inference_mode():
        for _, f, iv, power in batches(flux, ivar, resolving_power, device, batch_size):
            rest_flux, rest_ivar, _ = to_rest_frame(f, iv, model.template,
                                                    model.frame["velocity_step"])
            mean, var = model(network_input(rest_flux, rest_ivar), model.condition(power, len(f)))
            means.append(mean.cpu())
            variances.append(var.cpu())
    n_labels = model.config["n_labels"]
    if not means:
        empty = torch.zeros((0, n_labels))
        return empty.numpy(), empty.numpy()
    return torch.cat(means).numpy(), torch.cat(variances).numpy()


@dataclass
class LabelPredictor:
    """The ensemble plus what turns its outputs into physical labels and 1-sigma errors."""

    ensemble: LabelEnsemble
    quantities: list[str]
    label_mean: np.ndarray
    label_scale: np.ndarray
    calibration: SigmaCalibration  # S/N-dependent sigma^2 = (a sigma_ens)^2 + b^2

    def predict(self, flux: np.ndarray, ivar: np.ndarray, resolving_power: np.ndarray | None,
                device: torch.device, batch_size: int | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
        """Physical labels and their calibrated 1-sigma errors for preprocessed spectra
        (the calibration's S/N is measured on these arrays, ``ml.snr``).

        The ensemble visits ``device`` for the call and returns to the CPU after it.
        """
        mean, var = predict_arrays(self.ensemble.to(device), flux, ivar, resolving_power,
                                   device, batch_size)
        self.ensemble.cpu()
        return self.physical(mean, var, spectrum_snr(flux, ivar))

    def physical(self, mean: np.ndarray, var: np.ndarray, snr: np.ndarray | None
                 ) -> tuple[np.ndarray, np.ndarray]:
        """Labels and calibrated 1-sigma errors from the ensemble's standardised outputs
        for spectra of S/N ``snr`` (``ml.snr.spectrum_snr`` of their arrays; None only for
        a calibration that does not depend on S/N)."""
        sigma = self.calibration.sigma(var, snr) * self.label_scale
        return mean * self.label_scale + self.label_mean, sigma
