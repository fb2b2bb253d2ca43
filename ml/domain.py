"""Training-domain flag: whether a spectrum resembles the label model's training sample.

Two tests, both needed for ``in_domain``:

* **Latent distance.** In the autoencoder's latent space, restricted to the dimensions
  that track the labels (the guided ones; for an unguided autoencoder its informative
  learned ones; never the RV coordinate: a velocity does not take a star out of the
  domain) and each scaled by its spread in the training sample, the mean distance
  to the k nearest *training* spectra, divided by the same quantity among the training
  spectra themselves; 1 is typical inside the sample. This is ``domain_score``. The
  autoencoder has seen every spectrum of the archive, including stars unlike any
  labelled one, so those land away from the training sample. The threshold is the
  ``quantile`` of held-out (in-domain by construction) validation stars.
* **Predicted-label range.** A prediction more than ``box_sigmas`` of its own
  uncertainty outside the training labels' range is an extrapolation, whatever the
  distance says (label networks saturate rather than extrapolate, so this catches the
  stars just beyond the edge that still have close latent neighbours).
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
    box_lo: np.ndarray  # training label range per quantity
    box_hi: np.ndarray
    box_sigmas: float = 2.0

    @classmethod
    def fit(cls, train_latent: np.ndarray, val_latent: np.ndarray, dims: np.ndarray,
            box: tuple[np.ndarray, np.ndarray], k: int = 10,
            quantile: float = 0.98) -> DomainModel:
        dims = np.asarray(dims if len(dims) else np.arange(train_latent.shape[1]))
        ref = train_latent[:, dims]
        centre, scale = ref.mean(axis=0), ref.std(axis=0) + 1e-6
        model = cls((ref - centre) / scale, dims, centre, scale, 1.0, np.inf, k,
                    np.asarray(box[0], float), np.asarray(box[1], float))
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

    def in_range(self, pred: np.ndarray, sigma: np.ndarray) -> np.ndarray:
        """Predictions within the training label range (to ``box_sigmas`` of their error)."""
        margin = self.box_sigmas * sigma
        return np.all((pred >= self.box_lo - margin) & (pred <= self.box_hi + margin), axis=1)

    def in_domain(self, scores: np.ndarray, pred: np.ndarray, sigma: np.ndarray) -> np.ndarray:
        return (scores <= self.threshold) & self.in_range(pred, sigma)

    def state(self) -> dict:
        """Tensors and numbers only, so artifacts load with ``weights_only=True``."""
        return {"reference": torch.as_tensor(self.reference, dtype=torch.float32),
                "dims": torch.as_tensor(self.dims), "centre": torch.as_tensor(self.centre),
                "scale": torch.as_tensor(self.scale),
                "typical": self.typical, "threshold": self.threshold, "k": self.k,
                "box_lo": torch.as_tensor(self.box_lo), "box_hi": torch.as_tensor(self.box_hi),
                "box_sigmas": self.box_sigmas}

    @classmethod
    def from_state(cls, state: dict) -> DomainModel:
        return cls(state["reference"].numpy(), state["dims"].numpy(),
                   state["centre"].numpy(), state["scale"].numpy(),
                   float(state["typical"]), float(state["threshold"]), int(state["k"]),
                   state["box_lo"].numpy(), state["box_hi"].numpy(),
                   float(state["box_sigmas"]))


def domain_dims(information: np.ndarray, informative_nats: float,
                n_guided: int = 0) -> np.ndarray:
    """The label-guided dimensions, else the informative learned ones (not the last, RV)."""
    if n_guided:
        return np.arange(n_guided)
    return np.flatnonzero(information[:-1] > informative_nats)
