"""Variational autoencoder of rest-frame spectra, with an explicit RV coordinate.

A VAE rather than a plain autoencoder because its KL term per dimension is the
information (in nats) that dimension carries about the spectrum: unused dimensions
collapse to the prior, which is what makes "informative dimensions" well defined
(``latent_dimensions.information``). The reconstruction term is the noise-weighted
chi-square, so the balance between the two follows from the data's own S/N.

The published latent vector is ``[posterior mean of the learned dimensions, RV /
rv_scale_kms]``. The network encodes the spectrum shifted to its rest frame
(``ml.rv``), conditioned on the resolving power, so the learned dimensions describe
the star, not its velocity or the spectrograph; the velocity, measured by
cross-correlation with the template stored in this module, is the last coordinate,
with its Cramér-Rao width (from the model spectrum's slope and the noise) as its
posterior. Decoding shifts the rest-frame model back by that coordinate.

Optionally the first learned dimensions are *guided*: the model is then the joint
generative model of the spectrum and, where the training set has them, its reference
labels, p(y_j | z) = N(z_j; standardised y_j, s_j^2 + err_j^2) with a learned s_j.
Unlabelled spectra only contribute through the spectrum. One label against thousands of
pixels at S/N up to 200 would leave the label term's gradient negligible (the guided
dimensions then track nothing: correlation < 0.3 with [M/H] at weight 1), so the
label term is weighted as if each reference label were ``label_weight`` observations.
This aligns one dimension with each label (what users ask the latent space about)
without any label at inference time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from ml.device import inference_batch
from ml.models.encoder import conv_stack, float32_output
from ml.models.inputs import batches, conditioning, network_input, pixel_weight
from ml.rv import shift, to_rest_frame


class SpectrumAutoencoder(nn.Module):
    """The autoencoder network; see the module notes for the model it implements.

    Parameters
    ----------
    n_pixels
        Length of the model's wavelength grid.
    latent_dim
        Length of the published latent vector: ``latent_dim - 1`` learned dimensions
        plus the RV coordinate.
    channels, hidden
        Widths of the convolution stack and of the fully connected layers.
    velocity_step
        km/s per pixel of the (log-uniform) grid.
    rv_scale_kms
        Velocity that maps to 1 in the RV coordinate.
    default_power
        Resolving power assumed for spectra that state none.
    guided
        ``{"quantities": [...], "mean": [...], "scale": [...]}``: the reference labels
        the first learned dimensions are aligned with, and how they are standardised.
        None for an unguided model.
    """

    template: torch.Tensor  # RV cross-correlation template (a buffer: saved with the weights)

    def __init__(self, n_pixels: int, latent_dim: int = 16,
                 channels: tuple[int, ...] = (16, 32, 32, 64, 64), hidden: int = 256,
                 velocity_step: float = 1.0, rv_scale_kms: float = 300.0,
                 default_power: float = 2500.0, guided: dict[str, Any] | None = None) -> None:
        super().__init__()
        if latent_dim < 2:
            raise ValueError("latent_dim must be at least 2 (one learned + the RV coordinate)")
        guided = guided or {"quantities": [], "mean": [], "scale": []}
        # The constructor's arguments, stored in the artifact to rebuild the network.
        self.config: dict[str, Any] = {"n_pixels": n_pixels, "latent_dim": latent_dim,
                       "channels": list(channels), "hidden": hidden,
                       "velocity_step": velocity_step, "rv_scale_kms": rv_scale_kms,
                       "default_power": default_power, "guided": guided}
        self.latent_dim = latent_dim
        self.n_learned = latent_dim - 1
        self.n_guided = len(guided["quantities"])
        if self.n_guided > self.n_learned:
            raise ValueError(f"{self.n_guided} guided labels need more than {latent_dim} "
                             "latent dimensions")
        convs, flat = conv_stack(n_pixels, tuple(channels))
        self.features = convs
        self.head = nn.Sequential(nn.Linear(flat + 1, hidden), nn.GELU(),
                                  nn.Linear(hidden, 2 * self.n_learned))
        self.decoder = nn.Sequential(nn.Linear(self.n_learned + 1, hidden), nn.GELU(),
                                     nn.Linear(hidden, 2 * hidden), nn.GELU(),
                                     nn.Linear(2 * hidden, n_pixels))
        self.label_logvar = nn.Parameter(torch.full((self.n_guided,), -3.0))
        self.register_buffer("template", torch.zeros(n_pixels))

    def architecture(self) -> dict[str, Any]:
        """Description of the network for the model registry and the service metadata."""
        return {"class": "SpectrumAutoencoder",
                "type": "conditional variational autoencoder of rest-frame spectra",
                "encoder": f"Conv1d x{len(self.config['channels'])} (stride 2) + MLP, "
                           "conditioned on log resolving power",
                "decoder": "MLP (latent + log resolving power) -> rest-frame spectrum, "
                           "shifted by the RV coordinate",
                "rv": "cross-correlation with a stored template; last latent coordinate",
                **self.config}

    def condition(self, resolving_power: np.ndarray | torch.Tensor | None,
                  n: int) -> torch.Tensor:
        """Conditioning input (n, 1) for ``n`` spectra, on the network's device."""
        return conditioning(resolving_power, n, self.config["default_power"]).to(
            self.template.device)

    def rest_frame(self, flux: torch.Tensor,
                   ivar: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Flux and ivar shifted to the rest frame, and the RV (km/s) measured to do so."""
        return to_rest_frame(flux, ivar, self.template, self.config["velocity_step"])

    def encode(self, x: torch.Tensor, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and log-variance of the learned dimensions for rest-frame inputs
        ``x`` (batch, 2, pixels) and conditions (batch, 1)."""
        mu, logvar = float32_output(self.head, torch.cat([self.features(x), cond],
                                                         dim=1)).chunk(2, dim=1)
        return mu, logvar.clamp(-12.0, 6.0)

    def decode_rest(self, z: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Rest-frame normalised flux minus one from the learned dimensions."""
        return float32_output(self.decoder, torch.cat([z, cond], dim=1))

    def decode(self, latent: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Observed-frame normalised flux minus one from full latent vectors."""
        rest = self.decode_rest(latent[:, :-1], cond)
        pixels = -latent[:, -1] * self.config["rv_scale_kms"] / self.config["velocity_step"]
        observed, _ = shift(rest, torch.ones_like(rest), pixels, 0.0)
        return observed

    def loss(self, x: torch.Tensor, ivar: torch.Tensor, cond: torch.Tensor,
             beta: float | torch.Tensor = 1.0,
             labels: torch.Tensor | None = None, label_var: torch.Tensor | None = None,
             label_weight: float = 1.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Negative ELBO per spectrum on rest-frame inputs: (total, 0.5 chi-square, KL per
        learned dimension); with ``labels`` (standardised, NaN = none) the guided term too,
        times ``label_weight``."""
        mu, logvar = self.encode(x, cond)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if self.training else mu
        recon = self.decode_rest(z, cond)
        chi2 = (pixel_weight(ivar) * (recon - x[:, 0]) ** 2).sum(dim=1)
        kl = 0.5 * (mu**2 + logvar.exp() - 1.0 - logvar)
        total = 0.5 * chi2 + beta * kl.sum(dim=1)
        if labels is not None and self.n_guided:
            assert label_var is not None, "labels come with their variances"
            present = torch.isfinite(labels)
            var = self.label_logvar.exp()[None, :] + torch.where(present, label_var, 0.0)
            resid = torch.where(present, z[:, :self.n_guided] - labels, 0.0)
            guided = (0.5 * (resid**2 / var + var.log()) * present).sum(dim=1)
            total = total + label_weight * guided
        return total, 0.5 * chi2, kl

    @torch.no_grad()
    def latent_mean(self, flux: torch.Tensor, ivar: torch.Tensor,
                    cond: torch.Tensor) -> torch.Tensor:
        """Full latent vectors (posterior means) of observed normalised spectra: what is
        published, without the decoder pass that only the RV width needs."""
        rest_flux, rest_ivar, rv = self.rest_frame(flux, ivar)
        return self.latent_from_rest(network_input(rest_flux, rest_ivar), rv, cond)

    @torch.no_grad()
    def latent_from_rest(self, x: torch.Tensor, rv: torch.Tensor,
                         cond: torch.Tensor) -> torch.Tensor:
        """Full latent vectors from rest-frame network inputs and their RVs (km/s), for a
        caller that shifts spectra once for several networks (``ml.infer``)."""
        mu, _ = self.encode(x, cond)
        return torch.cat([mu, (rv / self.config["rv_scale_kms"])[:, None]], dim=1)

    @torch.no_grad()
    def latent(self, flux: torch.Tensor, ivar: torch.Tensor,
               cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Full latent vectors (mean, log-variance) of observed normalised spectra."""
        rest_flux, rest_ivar, rv = self.rest_frame(flux, ivar)
        x = network_input(rest_flux, rest_ivar)
        mu, logvar = self.encode(x, cond)
        # Cramér-Rao width of the velocity: 1 / sum(w (dF/dv)^2) on the model spectrum.
        recon = self.decode_rest(mu, cond)
        slope = torch.zeros_like(recon)
        slope[:, 1:-1] = 0.5 * (recon[:, 2:] - recon[:, :-2]) / self.config["velocity_step"]
        fisher = (pixel_weight(rest_ivar) * slope**2).sum(dim=1).clamp_min(1e-12)
        scale = self.config["rv_scale_kms"]
        rv_logvar = -torch.log(fisher) - 2 * np.log(scale)
        return (torch.cat([mu, (rv / scale)[:, None]], dim=1),
                torch.cat([logvar, rv_logvar[:, None]], dim=1))


def _batched(model: SpectrumAutoencoder, encode: Callable[..., Any], flux: np.ndarray,
             ivar: np.ndarray, resolving_power: np.ndarray | None, device: torch.device,
             batch_size: int | None) -> list[Any]:
    model.eval()
    with torch.inference_mode():
        return [encode(f, iv, model.condition(power, len(f)))
                for _, f, iv, power in batches(flux, ivar, resolving_power, device,
                                               batch_size or inference_batch(device))]


def encode_arrays(model: SpectrumAutoencoder, flux: np.ndarray, ivar: np.ndarray,
                  resolving_power: np.ndarray | None, device: torch.device,
                  batch_size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Latent means and log-variances (numpy, float32) of preprocessed observed spectra."""
    parts = _batched(model, model.latent, flux, ivar, resolving_power, device, batch_size)
    if not parts:
        empty = torch.zeros((0, model.latent_dim))
        return empty.numpy(), empty.numpy()
    return (torch.cat([mu.cpu() for mu, _ in parts]).numpy(),
            torch.cat([lv.cpu() for _, lv in parts]).numpy())


def encode_means(model: SpectrumAutoencoder, flux: np.ndarray, ivar: np.ndarray,
                 resolving_power: np.ndarray | None, device: torch.device,
                 batch_size: int | None = None) -> np.ndarray:
    """Latent means alone (numpy, float32): the published vectors, at inference cost."""
    parts = _batched(model, model.latent_mean, flux, ivar, resolving_power, device,
                     batch_size)
    if not parts:
        return np.zeros((0, model.latent_dim), np.float32)
    return torch.cat([mu.cpu() for mu in parts]).numpy()


def information(posterior: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Mean KL divergence of the posteriors from the N(0, 1) prior per dimension (nats)."""
    mu, logvar = posterior
    return (0.5 * (mu**2 + np.exp(logvar) - 1.0 - logvar)).mean(axis=0)
