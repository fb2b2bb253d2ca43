"""Training-domain flag: whether a spectrum resembles the label model's training sample.

Three tests, all needed for ``in_domain``:

* **Latent distance.** In the autoencoder's latent space, restricted to the dimensions
  that track the labels (the guided ones; for an unguided autoencoder its informative
  learned ones; never the RV coordinate: a velocity does not take a star out of the
  domain) and each scaled by its spread in the training sample, the mean distance
  to the k nearest *training* spectra, divided by the same quantity among the training
  spectra themselves; 1 is typical inside the sample. This is ``domain_score``; the
  threshold is the ``quantile`` of held-out (in-domain by construction) validation stars.
  It catches spectra unlike anything the training sample holds.
* **Training coverage.** Label networks saturate instead of extrapolating, so a
  7,800 K or [M/H] -2 star gets a prediction at the training range's edge, next to
  real training stars, and neither its distance nor its prediction gives it away. What
  does is the archive around it: among the ``coverage_k`` spectra of an archive sample
  nearest to its prediction (labels scaled by the training spread), almost none are
  training spectra, because the reference labels were only taken inside the domain.
  ``coverage`` is that fraction; the threshold is its ``coverage_quantile`` over the
  held-out validation stars (which are in the sample as non-training spectra, like any
  archive spectrum). Only which spectra have reference labels is used, never a truth.
* **Predicted-label range.** A prediction more than ``box_sigmas`` of its own
  uncertainty outside the training labels' range is an extrapolation, whatever the
  other two say.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from sklearn.neighbors import NearestNeighbors


@dataclass
class DomainModel:
    """Decides whether a label prediction may be trusted: whether the spectrum resembles
    the training spectra (k-NN distance in latent space) and whether its predicted
    labels lie where the training set had stars (coverage of an archive sample) and
    inside the training range. Built by :meth:`fit`; stored with the label model.
    """

    reference: np.ndarray  # (m, d) scaled latents of the training spectra
    dims: np.ndarray  # latent dimensions used
    centre: np.ndarray
    scale: np.ndarray
    typical: float  # median k-NN distance among the training spectra
    threshold: float  # scores above this are out of domain
    k: int
    box_lo: np.ndarray  # training label range per quantity
    box_hi: np.ndarray
    population: np.ndarray  # (p, quantities) scaled predicted labels of an archive sample
    population_trained: np.ndarray  # (p,) bool: a training spectrum of the label model
    label_centre: np.ndarray
    label_scale: np.ndarray
    coverage_threshold: float  # coverage at or below this is out of domain
    coverage_k: int = 50
    box_sigmas: float = 2.0
    # fitted neighbour searches over reference / population, built once per loaded model
    # (an inference run asks them once per chunk)
    _searches: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def _search(self, name: str, points: np.ndarray, k: int) -> NearestNeighbors:
        if name not in self._searches:
            self._searches[name] = NearestNeighbors(n_neighbors=k).fit(points)
        return self._searches[name]

    @classmethod
    def fit(cls, train_latent: np.ndarray, val_latent: np.ndarray, dims: np.ndarray,
            box: tuple[np.ndarray, np.ndarray], population_pred: np.ndarray,
            population_trained: np.ndarray, val_pred: np.ndarray, k: int = 10,
            quantile: float = 0.98, coverage_k: int = 50,
            coverage_quantile: float = 0.02) -> DomainModel:
        """``population_pred``: predicted labels of an archive sample that holds the training
        spectra (flagged by ``population_trained``) and the validation ones."""
        dims = np.asarray(dims if len(dims) else np.arange(train_latent.shape[1]))
        ref = train_latent[:, dims]
        centre, scale = ref.mean(axis=0), ref.std(axis=0) + 1e-6
        trained = np.asarray(population_trained, bool)
        label_centre = population_pred[trained].mean(axis=0)
        label_scale = population_pred[trained].std(axis=0) + 1e-9
        model = cls((ref - centre) / scale, dims, centre, scale, 1.0, np.inf, k,
                    np.asarray(box[0], float), np.asarray(box[1], float),
                    ((population_pred - label_centre) / label_scale).astype(np.float32),
                    trained, label_centre, label_scale, -np.inf, coverage_k)
        own = model._knn((ref - centre) / scale, skip_self=True)
        model.typical = float(np.median(own)) or 1.0
        model.threshold = float(np.quantile(model.score(val_latent), quantile))
        model.coverage_threshold = float(np.quantile(model.coverage(val_pred),
                                                     coverage_quantile))
        return model

    def _knn(self, points: np.ndarray, skip_self: bool = False) -> np.ndarray:
        k = min(self.k + int(skip_self), len(self.reference))
        dist, _ = self._search("reference", self.reference, k).kneighbors(points, k)
        return dist[:, int(skip_self):].mean(axis=1)

    def score(self, latent: np.ndarray) -> np.ndarray:
        """Mean distance of each latent vector to its ``k`` nearest training spectra, in
        units of the typical distance among training spectra (1 = typical).
        """
        if len(latent) == 0:
            return np.zeros(0)
        return self._knn((latent[:, self.dims] - self.centre) / self.scale) / self.typical

    def coverage(self, pred: np.ndarray) -> np.ndarray:
        """Fraction of training spectra among the archive sample nearest to ``pred``."""
        if len(pred) == 0 or len(self.population) == 0:
            return np.ones(len(pred))
        k = min(self.coverage_k, len(self.population))
        _, nearest = self._search("population", self.population, k).kneighbors(
            (pred - self.label_centre) / self.label_scale, k)
        return self.population_trained[nearest].mean(axis=1)

    def in_range(self, pred: np.ndarray, sigma: np.ndarray) -> np.ndarray:
        """Predictions within the training label range (to ``box_sigmas`` of their error)."""
        margin = self.box_sigmas * sigma
        return np.all((pred >= self.box_lo - margin) & (pred <= self.box_hi + margin), axis=1)

    def in_domain(self, scores: np.ndarray, pred: np.ndarray, sigma: np.ndarray) -> np.ndarray:
        """Whether each prediction is in the domain: a score at most ``threshold``, labels
        where the training set was dense enough, and within the training range.
        """
        return ((scores <= self.threshold) & (self.coverage(pred) > self.coverage_threshold)
                & self.in_range(pred, sigma))

    def state(self) -> dict:
        """Tensors and numbers only, so artifacts load with ``weights_only=True``."""
        return {"reference": torch.as_tensor(self.reference, dtype=torch.float32),
                "dims": torch.as_tensor(self.dims), "centre": torch.as_tensor(self.centre),
                "scale": torch.as_tensor(self.scale),
                "typical": self.typical, "threshold": self.threshold, "k": self.k,
                "box_lo": torch.as_tensor(self.box_lo), "box_hi": torch.as_tensor(self.box_hi),
                "population": torch.as_tensor(self.population),
                "population_trained": torch.as_tensor(self.population_trained),
                "label_centre": torch.as_tensor(self.label_centre),
                "label_scale": torch.as_tensor(self.label_scale),
                "coverage_threshold": self.coverage_threshold, "coverage_k": self.coverage_k,
                "box_sigmas": self.box_sigmas}

    @classmethod
    def from_state(cls, state: dict) -> DomainModel:
        """The domain model saved by :meth:`state`."""
        return cls(state["reference"].numpy(), state["dims"].numpy(),
                   state["centre"].numpy(), state["scale"].numpy(),
                   float(state["typical"]), float(state["threshold"]), int(state["k"]),
                   state["box_lo"].numpy(), state["box_hi"].numpy(),
                   state["population"].numpy(), state["population_trained"].numpy(),
                   state["label_centre"].numpy(), state["label_scale"].numpy(),
                   float(state["coverage_threshold"]), int(state["coverage_k"]),
                   float(state["box_sigmas"]))


def domain_dims(information: np.ndarray, informative_nats: float,
                n_guided: int = 0) -> np.ndarray:
    """The label-guided dimensions, else the informative learned ones (not the last, RV)."""
    if n_guided:
        return np.arange(n_guided)
    return np.flatnonzero(information[:-1] > informative_nats)
