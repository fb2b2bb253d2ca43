"""The label model's training-domain flag (``ml.domain.DomainModel``) in numpy.

The web process has neither torch nor scikit-learn, so the three tests of
``ml.domain`` (latent k-NN distance to the training spectra, training coverage of the
archive sample around the prediction, predicted labels inside the training range) are
evaluated here by brute force on the arrays the model's ONNX export stores
(``inference.npz``, keys ``domain_<name>`` of ``DomainModel.state()``). One uploaded
spectrum against a few thousand reference points is a millisecond.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _mean_knn_distance(points: np.ndarray, reference: np.ndarray, k: int) -> np.ndarray:
    d2 = ((points[:, None, :] - reference[None, :, :]) ** 2).sum(axis=2)
    k = min(k, reference.shape[0])
    nearest = np.sort(np.partition(d2, k - 1, axis=1)[:, :k], axis=1)
    return np.sqrt(np.maximum(nearest, 0.0)).mean(axis=1)


@dataclass(frozen=True)
class DomainCheck:
    """The stored state of a label model's domain model and its decision."""

    arrays: dict[str, np.ndarray]

    def _get(self, name: str) -> np.ndarray:
        return self.arrays[f"domain_{name}"]

    def _number(self, name: str) -> float:
        return float(self._get(name))

    def score(self, latent: np.ndarray) -> np.ndarray:
        """Mean distance to the ``k`` nearest training spectra (1 = typical)."""
        dims = self._get("dims").astype(int)
        scaled = (latent[:, dims] - self._get("centre")) / self._get("scale")
        return (_mean_knn_distance(scaled, self._get("reference"), int(self._number("k")))
                / self._number("typical"))

    def coverage(self, pred: np.ndarray) -> np.ndarray:
        """Fraction of training spectra among the archive sample nearest to ``pred``."""
        population = self._get("population")
        if len(population) == 0:
            return np.ones(len(pred))
        k = min(int(self._number("coverage_k")), len(population))
        scaled = (pred - self._get("label_centre")) / self._get("label_scale")
        d2 = ((scaled[:, None, :] - population[None, :, :]) ** 2).sum(axis=2)
        nearest = np.argsort(d2, axis=1, kind="stable")[:, :k]
        return self._get("population_trained").astype(bool)[nearest].mean(axis=1)

    def in_range(self, pred: np.ndarray, sigma: np.ndarray) -> np.ndarray:
        """Predictions within the training label range, to ``box_sigmas`` of their error."""
        margin = self._number("box_sigmas") * sigma
        return np.all((pred >= self._get("box_lo") - margin)
                      & (pred <= self._get("box_hi") + margin), axis=1)

    def in_domain(self, scores: np.ndarray, pred: np.ndarray, sigma: np.ndarray) -> np.ndarray:
        """Whether each prediction is in the training domain (all three tests)."""
        return ((scores <= self._number("threshold"))
                & (self.coverage(pred) > self._number("coverage_threshold"))
                & self.in_range(pred, sigma))
