"""Calibration of the label model's uncertainties as a function of S/N, and its figures.

The ensemble's variance is not the error it makes: one global scale and floor per
label left errors too small at low S/N and too large at high S/N while the average
looked right. So the calibrated error is

    sigma^2 = (a(snr) * sigma_ens)^2 + b^2,   log a a polynomial in log10 S/N

(degree 1 by default; S/N from the spectrum's own arrays, ``ml.snr``), fitted per label
by maximum likelihood of ``ref - pred ~ N(0, sigma^2 + ref_err^2)`` on held-out stars.
Outside the S/N range it was fitted on, a and b keep their values at the range's edge
(no extrapolation). The floor b (what the network does not know, e.g. the reference
labels' systematics) is one number per label: letting it vary with S/N as well
overfitted a few hundred held-out stars (log g errors 1.45x too small at S/N 150 on a
3,000-spectrum archive). The state keeps room for polynomial floors (``log_floor``
rows), which is also how a calibration of degree 0 is the old global (a, b) that
artifacts written before this module load as.

To judge the calibration on stars it was not fitted on, the held-out stars are split
by star into two halves; each half's errors are calibrated by the fit on the other
half (cross-fitting), and the figures per S/N bin (:func:`by_snr`) are computed on
those. The calibration stored with the model is fitted on all held-out stars.

Applying a calibration (:class:`SigmaCalibration`, its state) is ``ml.sigma_calibration``,
numpy only, which the web process shares; the fitting here needs scipy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import minimize

from ml.sigma_calibration import SigmaCalibration

__all__ = ["SigmaCalibration", "by_snr", "calibrate_held_out", "cross_fitted_sigma",
           "evaluation_halves", "fit_calibration", "snr_bins"]

DEGREE = 1  # log a and log b linear in log10 S/N
MIN_STARS_PER_COEFFICIENT = 20  # fewer held-out values per label: a lower degree
STARS_PER_SNR_BIN = 30  # by_snr uses deciles when there are 10x this many stars


def _fit_label(resid2: np.ndarray, s2: np.ndarray, err2: np.ndarray,
               powers: np.ndarray) -> tuple[np.ndarray, float]:
    """Maximum-likelihood polynomial coefficients of log a and the log floor, one label."""
    k = powers.shape[1]

    def nll(theta: np.ndarray) -> tuple[float, np.ndarray]:
        a2 = np.exp(2 * powers @ theta[:k]) * s2
        b2 = np.exp(2 * theta[k])
        var = a2 + b2 + err2
        value = np.mean(np.log(var) + resid2 / var)
        dvar = (1 / var - resid2 / var**2) / len(var)
        return float(value), np.concatenate([powers.T @ (2 * a2 * dvar),
                                             [np.sum(2 * b2 * dvar)]])

    start = np.zeros(k + 1)
    start[k] = np.log(0.1 * np.sqrt(np.median(s2)) + 1e-9)
    bounds = [(-6.0, 6.0)] * k + [(-28.0, 6.0)]
    fit = minimize(nll, start, jac=True, method="L-BFGS-B", bounds=bounds)
    return fit.x[:k], float(fit.x[k])


def fit_calibration(pred: np.ndarray, sigma: np.ndarray, labels: np.ndarray,
                    errors: np.ndarray, snr: np.ndarray,
                    degree: int = DEGREE) -> SigmaCalibration:
    """Per label, the maximum-likelihood S/N-dependent (a, b) on held-out stars.

    All values standardised; ``sigma`` is the ensemble's uncalibrated 1-sigma, NaN
    labels are skipped (missing reference errors count as 0). A label with too few
    stars for ``degree`` gets a lower degree (0: global a, b; none at all: a = 1, b = 0).
    """
    snr = np.asarray(snr, float)
    finite = snr[np.isfinite(snr) & (snr > 0)]
    pivot = float(np.median(finite)) if len(finite) else 1.0
    u = np.log10(np.clip(np.nan_to_num(snr, nan=pivot), 1e-3, None) / pivot)
    u_range = (float(u.min()), float(u.max())) if len(u) else (0.0, 0.0)
    n_labels = pred.shape[1]
    log_scale = np.zeros((degree + 1, n_labels))
    log_floor = np.full((degree + 1, n_labels), np.log(1e-12))
    log_floor[1:] = 0.0
    for j in range(n_labels):
        ok = np.isfinite(labels[:, j]) & np.isfinite(pred[:, j]) & (sigma[:, j] > 0)
        usable = min(degree, ok.sum() // MIN_STARS_PER_COEFFICIENT - 2)  # + the floor
        if ok.sum() < 10:
            continue
        powers = np.vander(u[ok], max(usable, 0) + 1, increasing=True)
        fitted_a, fitted_b = _fit_label((labels[ok, j] - pred[ok, j]) ** 2,
                                        sigma[ok, j] ** 2,
                                        np.nan_to_num(errors[ok, j], nan=0.0) ** 2, powers)
        log_scale[:len(fitted_a), j], log_floor[0, j] = fitted_a, fitted_b
    return SigmaCalibration(log_scale, log_floor, pivot, u_range)


def evaluation_halves(groups: np.ndarray, seed: int) -> np.ndarray:
    """Which held-out spectra are in the second half (bool), every star wholly in one."""
    unique = np.unique(groups)
    rng = np.random.default_rng(seed + 7919)
    second = set(rng.permutation(unique)[: len(unique) // 2].tolist())
    return np.array([g in second for g in groups], bool)


def cross_fitted_sigma(pred: np.ndarray, sigma: np.ndarray, labels: np.ndarray,
                       errors: np.ndarray, snr: np.ndarray, halves: np.ndarray,
                       degree: int = DEGREE) -> np.ndarray:
    """Calibrated errors of the held-out stars, each half's by the fit on the other half
    (standardised units, like the inputs): for figures not judged on the fitted stars."""
    out = np.array(sigma, float)
    for half in (halves, ~halves):
        other = ~half
        if not half.any() or not other.any():
            continue
        calibration = fit_calibration(pred[other], sigma[other], labels[other],
                                      errors[other], snr[other], degree)
        out[half] = calibration.sigma(sigma[half] ** 2, snr[half])
    return out


def snr_bins(snr: np.ndarray) -> np.ndarray:
    """Bin edges: S/N deciles of the stars, or fewer quantiles when there are few."""
    count = int(np.clip(len(snr) // STARS_PER_SNR_BIN, 1, 10))
    edges = np.quantile(snr, np.linspace(0, 1, count + 1)) if len(snr) else np.zeros(2)
    return np.unique(edges)


def by_snr(pred: np.ndarray, sigma: np.ndarray, labels: np.ndarray, errors: np.ndarray,
           snr: np.ndarray, quantities: list[str],
           flagged: np.ndarray | None = None) -> list[dict[str, Any]]:
    """Figures per S/N bin of held-out stars (physical units): RMSE against the reference,
    z-std of ``(pred - ref) / sqrt(sigma^2 + ref_err^2)``, the fractions inside the 68 % and
    95 % intervals, and (with ``flagged``) the fraction flagged out of domain."""
    edges = snr_bins(snr)
    rows = []
    for k, (lo, hi) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
        inside = (snr >= lo) & ((snr < hi) | (k == len(edges) - 2))
        row: dict[str, Any] = {"snr_min": float(lo), "snr_max": float(hi),
                               "n": int(inside.sum())}
        if flagged is not None:
            row["flagged_fraction"] = float(np.mean(flagged[inside])) if inside.any() else 0.0
        row["labels"] = {}
        for j, q in enumerate(quantities):
            ok = inside & np.isfinite(labels[:, j]) & np.isfinite(pred[:, j])
            if not ok.any():
                continue
            resid = pred[ok, j] - labels[ok, j]
            z = resid / np.sqrt(sigma[ok, j] ** 2 + np.nan_to_num(errors[ok, j]) ** 2)
            row["labels"][q] = {"rmse": float(np.sqrt(np.mean(resid**2))),
                                "z_std": float(np.std(z)),
                                "coverage_68": float(np.mean(np.abs(z) <= 1.0)),
                                "coverage_95": float(np.mean(np.abs(z) <= 1.959964))}
        rows.append(row)
    return rows


@dataclass
class HeldOutCalibration:
    """A label model's calibration, its held-out stars' cross-fitted errors and figures."""

    calibration: SigmaCalibration  # fitted on all held-out stars: the one stored
    sigma: np.ndarray  # (n, labels) physical errors of the held-out stars, cross-fitted
    metrics: dict[str, Any]  # "calibration", "by_snr", sigma_scale_<q>, sigma_floor_<q>


def calibrate_held_out(pred: np.ndarray, sigma: np.ndarray, labels: np.ndarray,
                       errors: np.ndarray, snr: np.ndarray, groups: np.ndarray,
                       label_mean: np.ndarray, label_scale: np.ndarray,
                       quantities: list[str], seed: int) -> HeldOutCalibration:
    """Calibrate a label model on its held-out stars (physical units in and out; ``sigma``
    uncalibrated). Figures (``by_snr``, without the domain flag, which the caller adds)
    come from cross-fitted errors (:func:`cross_fitted_sigma`, halves by star)."""
    def std(values: np.ndarray) -> np.ndarray:
        return (values - label_mean) / label_scale

    args = (std(pred), sigma / label_scale, std(labels), errors / label_scale, snr)
    calibration = fit_calibration(*args)
    held_out = cross_fitted_sigma(*args, evaluation_halves(groups, seed)) * label_scale
    at = tuple(np.quantile(snr, [0.1, 0.5, 0.9])) if len(snr) else (1.0,)
    a, b = calibration.factors(np.array([at[len(at) // 2]]), 1)
    metrics = {"calibration": {**calibration.describe(quantities, label_scale, at),
                               "judged_on": "held-out stars cross-fitted: each half (by star) "
                                            "calibrated by the fit on the other half"},
               "by_snr": by_snr(pred, held_out, labels, errors, snr, quantities),
               **{f"sigma_scale_{q}": float(a[0, j]) for j, q in enumerate(quantities)},
               **{f"sigma_floor_{q}": float(b[0, j] * label_scale[j])
                  for j, q in enumerate(quantities)}}
    return HeldOutCalibration(calibration, held_out, metrics)
