"""Applying a label model's S/N-dependent error calibration, and its saved state.

``sigma^2 = (a(snr) sigma_ens)^2 + b^2`` with ``log a`` (and in general ``log b``)
polynomials in log10 S/N; ``ml.calibration`` fits it (scipy) and explains the choice.
This part is numpy only so that the web process (``vo_service.inference``) turns the
ONNX ensemble's outputs into the same errors as ``latentvo ml infer``, with the same code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class SigmaCalibration:
    """Per-label error calibration, ``sigma^2 = (a sigma_ens)^2 + b^2`` in standardised
    units, with ``log a`` (and in general ``log b``) polynomials in
    ``u = log10(snr / pivot)``."""

    log_scale: np.ndarray  # (degree + 1, labels), coefficients of u^0, u^1, ...
    log_floor: np.ndarray  # (degree + 1, labels); fitted ones have zero slopes
    pivot: float = 1.0  # S/N at u = 0
    u_range: tuple[float, float] = (0.0, 0.0)  # u is clipped to the fitted range

    @classmethod
    def identity(cls, n_labels: int) -> SigmaCalibration:
        """a = 1, b = 0: the ensemble's own variance."""
        return cls(np.zeros((1, n_labels)), np.full((1, n_labels), np.log(1e-12)))

    @classmethod
    def global_scale(cls, scale_floor: np.ndarray) -> SigmaCalibration:
        """The S/N-independent calibration of older artifacts: (2, labels) = (a, b)."""
        a, b = np.asarray(scale_floor, float)
        return cls(np.log(a)[None], np.log(np.maximum(b, 1e-12))[None])

    def _powers(self, snr: np.ndarray | None, n: int) -> np.ndarray:
        degree = len(self.log_scale) - 1
        if snr is None or degree == 0:
            return np.ones((n, 1))
        with np.errstate(divide="ignore", invalid="ignore"):
            u = np.log10(np.asarray(snr, float) / self.pivot)
        u = np.clip(np.nan_to_num(u, nan=self.u_range[0], neginf=self.u_range[0]),
                    *self.u_range)
        return np.vander(u, degree + 1, increasing=True)

    def factors(self, snr: np.ndarray | None, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(a, b), each (n, labels), for spectra of the given S/N."""
        powers = self._powers(snr, n)
        return np.exp(powers @ self.log_scale), np.exp(powers @ self.log_floor)

    def sigma(self, var: np.ndarray, snr: np.ndarray | None) -> np.ndarray:
        """Calibrated 1-sigma errors (standardised) from the ensemble's variances (n, labels).
        ``snr`` is required unless the calibration is S/N independent."""
        if snr is None and len(self.log_scale) > 1:
            raise ValueError("this calibration depends on S/N: pass the spectra's S/N")
        a, b = self.factors(snr, len(var))
        return np.sqrt(a**2 * var + b**2)

    def state(self) -> dict[str, Any]:
        """Lists and numbers only (the artifact loads with ``weights_only=True``)."""
        return {"form": "log a, log b polynomials in log10(snr / pivot)",
                "log_scale": self.log_scale.tolist(), "log_floor": self.log_floor.tolist(),
                "pivot": float(self.pivot), "u_range": [float(v) for v in self.u_range]}

    @classmethod
    def from_state(cls, state: Any) -> SigmaCalibration:
        """A calibration saved by :meth:`state`, or an older artifact's (2, labels) array
        (tensor or numpy) of global (a, b)."""
        if isinstance(state, dict):
            return cls(np.asarray(state["log_scale"], float),
                       np.asarray(state["log_floor"], float), float(state["pivot"]),
                       (float(state["u_range"][0]), float(state["u_range"][1])))
        values = state.numpy() if hasattr(state, "numpy") else state
        return cls.global_scale(np.asarray(values, float))

    def describe(self, quantities: list[str], label_scale: np.ndarray,
                 snrs: tuple[float, ...]) -> dict[str, Any]:
        """The scale a and floor b (physical units) per label at a few S/N, for metrics."""
        a, b = self.factors(np.asarray(snrs, float), len(snrs))
        return {"snr": [round(float(s), 3) for s in snrs],
                **{q: {"scale": a[:, j].round(4).tolist(),
                       "floor": (b[:, j] * label_scale[j]).tolist()}
                   for j, q in enumerate(quantities)}}
