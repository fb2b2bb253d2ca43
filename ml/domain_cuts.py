"""The domain flag's decision once its scores are known: S/N-dependent cuts, in numpy.

``ml.domain`` fits the domain model (quantile regression, k-NN searches: scikit-learn,
torch states); the web process (``vo_service.inference.domain``) must decide exactly as
``latentvo ml infer`` does without either library. Both therefore evaluate the cuts,
the range test and their saved state here. Numpy only: the web process may import it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.polynomial.polynomial import polyval


def log_snr(snr: np.ndarray) -> np.ndarray:
    """log10 S/N, a missing S/N counting as 1 and a non-positive one as 1e-3."""
    return np.log10(np.clip(np.nan_to_num(np.asarray(snr, float), nan=1.0), 1e-3, None))


def distance_value(scores: np.ndarray) -> np.ndarray:
    """What the distance cut judges: log of the k-NN distance score."""
    return np.log(np.maximum(scores, 1e-12))


def shortfall_value(coverage: np.ndarray) -> np.ndarray:
    """What the coverage cut judges: minus the coverage (larger is worse)."""
    return -np.asarray(coverage, float)


@dataclass
class SnrCut:
    """An S/N-dependent cut on a score where larger is worse: out when
    ``(value - centre(u)) / spread(u) > cut``, with ``centre`` and ``log spread``
    polynomials in ``u = log10 S/N`` (clipped to the range fitted on); the spread is the
    median absolute deviation from the centre. Fitted by ``ml.domain.fit_snr_cut``."""

    centre: np.ndarray  # polynomial coefficients in u, lowest power first
    log_spread: np.ndarray
    cut: float
    u_range: tuple[float, float]

    @classmethod
    def fixed(cls, threshold: float) -> SnrCut:
        """One threshold at every S/N (out when value > threshold), as older models had."""
        return cls(np.array([threshold]), np.zeros(1), 0.0, (0.0, 0.0))

    def standardised(self, values: np.ndarray, snr: np.ndarray | None) -> np.ndarray:
        """How many S/N-dependent spreads each value lies above the typical value."""
        u = np.clip(log_snr(snr) if snr is not None else np.zeros(len(values)),
                    *self.u_range)
        return ((np.asarray(values, float) - polyval(u, self.centre))
                / np.exp(polyval(u, self.log_spread)))

    def passes(self, values: np.ndarray, snr: np.ndarray | None) -> np.ndarray:
        """Values within the cut for their spectra's S/N."""
        return self.standardised(values, snr) <= self.cut

    def threshold(self, snr: float) -> float:
        """The value above which a spectrum of this S/N is out."""
        u = float(np.clip(log_snr(np.array([snr]))[0], *self.u_range))
        return float(polyval(u, self.centre) + self.cut * np.exp(polyval(u, self.log_spread)))

    def state(self) -> dict[str, Any]:
        return {"centre": [float(v) for v in self.centre],
                "log_spread": [float(v) for v in self.log_spread], "cut": float(self.cut),
                "u_range": [float(v) for v in self.u_range]}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> SnrCut:
        return cls(np.asarray(state["centre"], float),
                   np.asarray(state["log_spread"], float), float(state["cut"]),
                   (float(state["u_range"][0]), float(state["u_range"][1])))


def cuts_from_state(state: Mapping[str, Any]) -> tuple[SnrCut, SnrCut]:
    """(distance cut, coverage cut) of a saved domain model: its ``distance_cut`` and
    ``coverage_cut``, or the fixed ``threshold`` and ``coverage_threshold`` of a version
    whose thresholds did not depend on S/N (kept exactly)."""
    if "distance_cut" in state:
        return (SnrCut.from_state(state["distance_cut"]),
                SnrCut.from_state(state["coverage_cut"]))
    distance = SnrCut.fixed(float(np.log(max(float(state["threshold"]), 1e-12))))
    # old rule: out when coverage <= threshold; the fractions are multiples of
    # 1/coverage_k, so a hair below the threshold keeps the ties flagged
    coverage = SnrCut.fixed(-float(state["coverage_threshold"]) - 1e-9)
    return distance, coverage


def within_range(pred: np.ndarray, sigma: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                 sigmas: float) -> np.ndarray:
    """Predictions (rows) inside the training label range [lo, hi], to ``sigmas`` of
    their own errors."""
    margin = sigmas * sigma
    return np.all((pred >= lo - margin) & (pred <= hi + margin), axis=1)
