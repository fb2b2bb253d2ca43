"""Cramer-Rao bound of spectrum parameters: the best precision any unbiased estimator can reach.

For a noise-free forward model ``f(theta)`` (one spectrum's flux on its own pixels) and
Gaussian noise of known inverse variance ``ivar`` per pixel (0 = masked), the Fisher
information is ``F = J^T diag(ivar) J`` with ``J = df/dtheta``, and no unbiased estimate of
parameter i scatters less than ``sqrt((F^-1)_ii)``. All parameters are inverted jointly, so
degeneracies between them (Teff with [M/H], the labels with the radial velocity or a
continuum tilt) widen the bound: the nuisance parameters are marginalised, not fixed.
Fixing a parameter instead is inverting the sub-matrix without it (:func:`bound`'s
``free``).

``J`` comes from central finite differences, one step per parameter, given by the caller in
the parameter's own unit: small against the scale on which the model bends (so the
O(h^2) truncation error is negligible) and large against float64 round-off. The noise is
taken as known (its dependence on theta would add about 1/(2 S/N^2) relative information
per pixel, far below anything measured here).

numpy only, vectorised over many spectra: the forward model is called once for all
2 x P shifted parameter vectors of all spectra.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

ForwardModel = Callable[[np.ndarray], np.ndarray]
"""Maps parameters (S, K, P) -- K parameter vectors for each of S spectra -- to flux (S, K, N)."""

RCOND = 1e-10
"""Eigenvalues of the normalised Fisher matrix below RCOND x the largest count as zero."""


@dataclass(frozen=True)
class Bound:
    """Per-spectrum Cramer-Rao bounds.

    ``sigma`` (S, P) is ``sqrt((F^-1)_ii)``; it is ``inf`` where ``degenerate`` is set: the
    data hold no information on that parameter (zero derivative on every unmasked pixel),
    or a combination of it with others leaves the model unchanged (F singular along a
    direction involving it), so no finite precision is possible.
    """

    sigma: np.ndarray
    degenerate: np.ndarray
    fisher: np.ndarray

    def reason(self, spectrum: int, names: list[str]) -> str:
        """Why spectrum ``spectrum``'s bounds are infinite, or '' when all are finite."""
        bad = [n for n, d in zip(names, self.degenerate[spectrum], strict=True) if d]
        if not bad:
            return ""
        diag = np.diag(self.fisher[spectrum])
        blind = [n for n, d, b in zip(names, diag, self.degenerate[spectrum], strict=True)
                 if b and d <= 0]
        if blind:
            return f"no information on {', '.join(blind)} (zero derivative on every unmasked pixel)"
        return f"{', '.join(bad)} degenerate: a combination of them leaves the model unchanged"


def jacobian(model: ForwardModel, theta: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """``df/dtheta`` (S, N, P) at ``theta`` (S, P) by central differences of ``steps`` (P,)."""
    theta = np.asarray(theta, dtype=np.float64)
    steps = np.asarray(steps, dtype=np.float64)
    n_spec, n_par = theta.shape
    shift = np.concatenate([np.diag(steps), -np.diag(steps)])  # (2P, P)
    shifted = theta[:, None, :] + shift[None, :, :]
    flux = np.asarray(model(shifted), dtype=np.float64)
    if flux.shape[:2] != (n_spec, 2 * n_par):
        raise ValueError(f"model returned shape {flux.shape}, expected ({n_spec}, {2 * n_par}, N)")
    return np.moveaxis((flux[:, :n_par] - flux[:, n_par:]) / (2.0 * steps[None, :, None]), 1, 2)


def fisher(jac: np.ndarray, ivar: np.ndarray) -> np.ndarray:
    """Fisher matrices (S, P, P) of Jacobians (S, N, P) under inverse variances (S, N)."""
    weights = np.where(np.isfinite(ivar) & (ivar > 0), ivar, 0.0)
    return np.einsum("snp,sn,snq->spq", jac, weights, jac)


def bound(information: np.ndarray, free: np.ndarray | None = None) -> Bound:
    """Cramer-Rao bounds from Fisher matrices (S, P, P), jointly over the ``free`` parameters.

    Parameters outside ``free`` (a boolean mask (P,), default all) are held fixed at the
    truth; their bound is reported as NaN. The matrix is normalised to unit diagonal before
    the eigen-decomposition so that parameters in very different units (K and dex) do not
    make a well-posed problem look singular.
    """
    information = np.asarray(information, dtype=np.float64)
    n_spec, n_par, _ = information.shape
    free = np.ones(n_par, bool) if free is None else np.asarray(free, bool)
    sub = information[:, free][:, :, free]
    diag = np.einsum("spp->sp", sub)
    blind = ~(diag > 0)
    scale = np.where(blind, 1.0, 1.0 / np.sqrt(np.where(blind, 1.0, diag)))
    norm = sub * scale[:, :, None] * scale[:, None, :]
    norm[blind] = 0.0
    norm.transpose(0, 2, 1)[blind] = 0.0
    values, vectors = np.linalg.eigh(norm)
    zero = values <= RCOND * np.maximum(values[:, -1:], np.finfo(float).tiny)
    inverse = np.where(zero, 0.0, 1.0 / np.where(zero, 1.0, values))
    variance = np.einsum("spk,sk,spk->sp", vectors, inverse, vectors) * scale**2
    # A parameter touched by a null direction cannot be estimated at all.
    degenerate = blind | (np.einsum("spk,sk->sp", vectors**2, zero.astype(float)) > 1e-6)
    sigma = np.full((n_spec, n_par), np.nan)
    sigma[:, free] = np.where(degenerate, np.inf, np.sqrt(np.maximum(variance, 0.0)))
    flags = np.zeros((n_spec, n_par), bool)
    flags[:, free] = degenerate
    return Bound(sigma, flags, information)


def cramer_rao(model: ForwardModel, theta: np.ndarray, steps: np.ndarray, ivar: np.ndarray,
               free: np.ndarray | None = None) -> Bound:
    """Bounds (S, P) of ``model``'s parameters at ``theta`` (S, P) for noise ``ivar`` (S, N)."""
    return bound(fisher(jacobian(model, theta, steps), ivar), free)
