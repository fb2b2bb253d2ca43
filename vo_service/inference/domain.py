"""The label model's training-domain flag (``ml.domain.DomainModel``) without torch.

The web process has neither torch nor scikit-learn, so the k-NN searches of
``ml.domain`` (latent distance to the training spectra, training coverage of the archive
sample around the prediction) are done here by brute force on the arrays the model's
ONNX export stores (``inference.npz``, keys ``domain_<name>`` of ``DomainModel.state()``);
the rest of that state (numbers, the S/N-dependent cuts) is the manifest's ``domain``.
The decision itself -- the cuts for the spectrum's S/N and the range test -- is
``ml.domain_cuts``, the code ``latentvo ml infer`` runs. One uploaded spectrum against a
few thousand reference points is a millisecond.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ml.domain_cuts import cuts_from_state, distance_value, shortfall_value, within_range


def _mean_knn_distance(points: np.ndarray, reference: np.ndarray, k: int) -> np.ndarray:
    d2 = ((points[:, None, :] - reference[None, :, :]) ** 2).sum(axis=2)
    k = min(k, reference.shape[0])
    nearest = np.sort(np.partition(d2, k - 1, axis=1)[:, :k], axis=1)
    return np.sqrt(np.maximum(nearest, 0.0)).mean(axis=1)


class DomainCheck:
    """A label model's exported domain model and its decision."""

    def __init__(self, arrays: Mapping[str, np.ndarray], state: Mapping[str, Any]) -> None:
        """``arrays``: the export's ``domain_*`` arrays; ``state``: its manifest's
        ``domain`` (the non-tensor part of ``DomainModel.state()``)."""
        self._arrays = arrays
        self.distance_cut, self.coverage_cut = cuts_from_state(state)
        self.typical = float(state["typical"])
        self.k = int(state["k"])
        self.coverage_k = int(state["coverage_k"])
        self.box_sigmas = float(state["box_sigmas"])

    def _get(self, name: str) -> np.ndarray:
        return self._arrays[f"domain_{name}"]

    def score(self, latent: np.ndarray) -> np.ndarray:
        """Mean distance to the ``k`` nearest training spectra (1 = typical)."""
        dims = self._get("dims").astype(int)
        scaled = (latent[:, dims] - self._get("centre")) / self._get("scale")
        return _mean_knn_distance(scaled, self._get("reference"), self.k) / self.typical

    def coverage(self, pred: np.ndarray) -> np.ndarray:
        """Fraction of training spectra among the archive sample nearest to ``pred``."""
        population = self._get("population")
        if len(population) == 0:
            return np.ones(len(pred))
        k = min(self.coverage_k, len(population))
        scaled = (pred - self._get("label_centre")) / self._get("label_scale")
        d2 = ((scaled[:, None, :] - population[None, :, :]) ** 2).sum(axis=2)
        nearest = np.argsort(d2, axis=1, kind="stable")[:, :k]
        return self._get("population_trained").astype(bool)[nearest].mean(axis=1)

    def in_domain(self, scores: np.ndarray, pred: np.ndarray, sigma: np.ndarray,
                  snr: np.ndarray) -> np.ndarray:
        """Whether each prediction is in the training domain: distance score and
        coverage within the cuts for the spectrum's S/N (``ml.snr.spectrum_snr``), labels
        within the training range."""
        return (self.distance_cut.passes(distance_value(scores), snr)
                & self.coverage_cut.passes(shortfall_value(self.coverage(pred)), snr)
                & within_range(pred, sigma, self._get("box_lo"), self._get("box_hi"),
                               self.box_sigmas))
