"""Variational autoencoder of spectra: a few informative latent dimensions and a decoder.

A VAE rather than a plain autoencoder because its KL term per dimension is the
information (in nats) that dimension carries about the spectrum: unused dimensions
collapse to the prior, which is what makes "informative dimensions" well defined
(``latent_dimensions.information``). The reconstruction term is the noise-weighted
chi-square, so the balance between the two follows from the data's own S/N.
The published latent vector is the posterior mean.
"""

from __future__ import annotations

import torch
from torch import nn

from ml.models.encoder import conv_stack
from ml.models.inputs import network_input, pixel_weight


class SpectrumAutoencoder(nn.Module):
    def __init__(self, n_pixels: int, latent_dim: int = 32,
                 channels: tuple[int, ...] = (16, 32, 64), hidden: int = 256):
        super().__init__()
        self.config = {"n_pixels": n_pixels, "latent_dim": latent_dim,
                       "channels": list(channels), "hidden": hidden}
        self.latent_dim = latent_dim
        convs, flat = conv_stack(n_pixels, tuple(channels))
        self.encoder = nn.Sequential(convs, nn.Linear(flat, hidden), nn.GELU(),
                                     nn.Linear(hidden, 2 * latent_dim))
        self.decoder = nn.Sequential(nn.Linear(latent_dim, hidden), nn.GELU(),
                                     nn.Linear(hidden, 2 * hidden), nn.GELU(),
                                     nn.Linear(2 * hidden, n_pixels))

    def architecture(self) -> dict:
        return {"class": "SpectrumAutoencoder", "type": "variational autoencoder",
                "encoder": f"strided Conv1d x{len(self.config['channels'])} + MLP",
                "decoder": "MLP", **self.config}

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and log-variance for network inputs ``x`` (batch, 2, pixels)."""
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        return mu, logvar.clamp(-12.0, 6.0)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Normalised flux minus one."""
        return self.decoder(z)

    def loss(self, x: torch.Tensor, ivar: torch.Tensor,
             beta: float = 1.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Negative ELBO per spectrum: (total, 0.5 chi-square, KL per dimension)."""
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if self.training else mu
        recon = self.decode(z)
        chi2 = (pixel_weight(ivar) * (recon - x[:, 0]) ** 2).sum(dim=1)
        kl = 0.5 * (mu**2 + logvar.exp() - 1.0 - logvar)
        return 0.5 * chi2 + beta * kl.sum(dim=1), 0.5 * chi2, kl


@torch.no_grad()
def encode_arrays(model: SpectrumAutoencoder, flux, ivar, device: torch.device,
                  batch_size: int = 512) -> tuple:
    """Posterior means and log-variances (numpy, float32) of preprocessed arrays."""
    model.eval()
    mus, logvars = [], []
    for start in range(0, len(flux), batch_size):
        x = network_input(flux[start:start + batch_size], ivar[start:start + batch_size])
        mu, logvar = model.encode(x.to(device))
        mus.append(mu.cpu())
        logvars.append(logvar.cpu())
    if not mus:
        empty = torch.zeros((0, model.latent_dim))
        return empty.numpy(), empty.numpy()
    return torch.cat(mus).numpy(), torch.cat(logvars).numpy()
