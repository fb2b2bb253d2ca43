"""Training-domain score: how far a spectrum lies from the label model's training sample.

Measured in the autoencoder's latent space (informative dimensions, each scaled by its
spread in the training sample) as the mean distance to the k nearest training
spectra, divided by the same quantity for the training spectra themselves; 1 is
typical inside the sample, and a spectrum whose labels lie outside the training range
sits beyond the sample's edge and scores high. The in-domain threshold is the
``quantile`` of held-out (in-domain by construction) validation spectra.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.neighbors import NearestNeighbors


@dataclass
class DomainModel:
    reference: np.ndarray  # (m, d) scaled latents of the training spectra
    dims: np.ndarray  # latent dimensions used
    centre: np.ndarray
    scale: np.ndarray
    typical: float  # median k-NN distance among the training spectra
    threshold: float  # scores above this are out of domain
    k: int

    @classmethod
    def fit(cls, train_latent: np.ndarray, val_latent: np.ndarray, dims: np.ndarray,
            k: int = 10, quantile: float = 0.99) -> DomainModel:
        dims = np.asarray(dims if len(dims) else np.arange(train_latent.shape[1]))
        ref = train_latent[:, dims]
        centre, scale = ref.mean(axis=0), ref.std(axis=0) + 1e-6
        model = cls((ref - centre) / scale, dims, centre, scale, 1.0, np.inf, k)
        own = model._knn((ref - centre) / scale, skip_self=True)
        model.typical = float(np.median(own)) or 1.0
        model.threshold = float(np.quantile(model.score(val_latent), quantile))
        return model

    def _knn(self, points: np.ndarray, skip_self: bool = False) -> np.ndarray:
        k = min(self.k + int(skip_self), len(self.reference))
        index = NearestNeighbors(n_neighbors=k).fit(self.reference)
        dist, _ = index.kneighbors(points)
        return dist[:, int(skip_self):].mean(axis=1)

    def score(self, latent: np.ndarray) -> np.ndarray:
        if len(latent) == 0:
            return np.zeros(0)
        return self._knn((latent[:, self.dims] - self.centre) / self.scale) / self.typical

    def in_domain(self, scores: np.ndarray) -> np.ndarray:
        return scores <= self.threshold

    def state(self) -> dict:
        """Tensors and numbers only, so artifacts load with ``weights_only=True``."""
        return {"reference": torch.as_tensor(self.reference, dtype=torch.float32),
                "dims": torch.as_tensor(self.dims), "centre": torch.as_tensor(self.centre),
                "scale": torch.as_tensor(self.scale),
                "typical": self.typical, "threshold": self.threshold, "k": self.k}

    @classmethod
    def from_state(cls, state: dict) -> DomainModel:
        return cls(state["reference"].numpy(), state["dims"].numpy(),
                   state["centre"].numpy(), state["scale"].numpy(),
                   float(state["typical"]), float(state["threshold"]), int(state["k"]))
