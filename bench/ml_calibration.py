"""Offline study of the label model's error calibration, on arrays saved by
``bench/ml_quality.py --no-db --save-arrays DIR``.

    python bench/ml_quality.py --n 20000 --no-db --profile cpu --save-arrays out/arr
    python bench/ml_calibration.py out/arr/cpu.npz

Refits the calibration (``ml.calibration.fit_calibration``) on the same networks'
held-out stars in several ways and judges each as ``bench/ml_quality.py`` does (issue 18
item 3: per S/N decile of the in-range stars without reference labels, z-std within
0.9-1.1 and 68 %/95 % coverage within 3 points, against the true labels), printing how
many (decile, label, figure) cells each meets:

- ``reference``: as trained, against the held-out stars' reference labels (their errors
  deconvolved);
- ``oracle``: against the held-out stars' true labels: what noiseless reference labels
  would give;
- ``degree 0`` / ``degree 2``: log a constant / quadratic in log S/N;
- ``outliers``: a Gaussian plus a 2 % share of 4x wider errors as the likelihood, so that
  a few outliers do not widen every star's error;
- ``best of the form``: fitted on the judged stars' own true labels, the most any
  calibration of this form can reach on them.

Then the mean residual of log g per S/N decile for the judged, held-out and training
stars against their true labels: a bias that varies with S/N is not noise, and no error
calibration removes it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy.optimize import minimize

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ml import quality  # noqa: E402
from ml.calibration import by_snr, fit_calibration  # noqa: E402
from ml.sigma_calibration import SigmaCalibration  # noqa: E402

OUTLIER_SHARE, OUTLIER_WIDTH = 0.02, 4.0


def cells(rows: list[dict]) -> tuple[int, int, str]:
    """(cells met, cells, ranges of z-std and 68 % coverage) of ``by_snr`` rows."""
    met = total = 0
    z, c68 = [], []
    for row in rows:
        for v in row["labels"].values():
            met += (abs(v["z_std"] - 1) <= 0.1) + (abs(v["coverage_68"] - 0.6827) <= 0.03) \
                + (abs(v["coverage_95"] - 0.9545) <= 0.03)
            total += 3
            z.append(v["z_std"])
            c68.append(v["coverage_68"])
    return met, total, (f"z-std {min(z):.2f}-{max(z):.2f}, "
                        f"68 % coverage {min(c68):.1%}-{max(c68):.1%}")


def fit_with_outliers(pred: np.ndarray, sigma: np.ndarray, labels: np.ndarray,
                      errors: np.ndarray, snr: np.ndarray) -> SigmaCalibration:
    """``fit_calibration``'s form (degree 1, one floor) by maximum likelihood of a
    Gaussian mixed with an ``OUTLIER_SHARE`` of ``OUTLIER_WIDTH`` times wider errors."""
    pivot = float(np.median(snr))
    u = np.log10(np.clip(snr, 1e-3, None) / pivot)
    powers = np.vander(u, 2, increasing=True)
    log_scale, log_floor = np.zeros((2, pred.shape[1])), np.full((2, pred.shape[1]), -27.6)
    log_floor[1] = 0.0
    for j in range(pred.shape[1]):
        ok = np.isfinite(labels[:, j])
        resid2 = (labels[ok, j] - pred[ok, j]) ** 2
        s2, err2, p = sigma[ok, j] ** 2, np.nan_to_num(errors[ok, j]) ** 2, powers[ok]

        def nll(theta: np.ndarray, resid2=resid2, s2=s2, err2=err2, p=p) -> float:
            var = np.exp(2 * p @ theta[:2]) * s2 + np.exp(2 * theta[2])
            core, wide = var + err2, OUTLIER_WIDTH**2 * var + err2
            like = ((1 - OUTLIER_SHARE) * np.exp(-0.5 * resid2 / core) / np.sqrt(core)
                    + OUTLIER_SHARE * np.exp(-0.5 * resid2 / wide) / np.sqrt(wide))
            return float(-np.mean(np.log(like + 1e-300)))

        start = np.array([0.0, 0.0, np.log(0.1 * np.sqrt(np.median(s2)) + 1e-9)])
        fit = minimize(nll, start, method="L-BFGS-B", bounds=[(-6, 6), (-6, 6), (-28, 6)])
        log_scale[:, j], log_floor[0, j] = fit.x[:2], fit.x[2]
    return SigmaCalibration(log_scale, log_floor, pivot, (float(u.min()), float(u.max())))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("arrays", type=Path, help="an npz of bench/ml_quality.py --save-arrays")
    args = parser.parse_args()
    d = np.load(args.arrays)
    quantities = [str(q) for q in d["quantities"]]
    true, pred, ens, snr = d["true"], d["pred"], d["ensemble_sigma"], d["snr"]
    labels, errors, held, ok = d["labels"], d["errors"], d["held_out"], d["ok"]
    reference = d["reference_star"]
    training = ok & reference & ~held & np.isfinite(labels).all(axis=1)
    inside, _ = quality.domain_truth(true, *quality.training_range(true[reference]))
    judged = ok & ~reference & inside
    # Standardised units as training uses them (the fits are invariant to the choice).
    mean, scale = labels[training].mean(axis=0), labels[training].std(axis=0)
    print(f"{args.arrays}: {held.sum()} held-out spectra of "
          f"{len(np.unique(d['star'][held]))} stars, {judged.sum()} judged in-range spectra")

    Arrays5 = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]

    def inputs(rows: np.ndarray, against: np.ndarray, against_err: np.ndarray) -> Arrays5:
        return ((pred[rows] - mean) / scale, ens[rows] / scale, (against[rows] - mean) / scale,
                against_err[rows] / scale, snr[rows])

    no_errors = np.zeros_like(errors)
    variants = {
        "reference": fit_calibration(*inputs(held, labels, errors)),
        "oracle": fit_calibration(*inputs(held, true, no_errors)),
        "degree 0": fit_calibration(*inputs(held, labels, errors), degree=0),
        "degree 2": fit_calibration(*inputs(held, labels, errors), degree=2),
        "outliers": fit_with_outliers(*inputs(held, labels, errors)),
        "best of the form": fit_calibration(*inputs(judged, true, no_errors), degree=2),
    }
    print("\ncalibration fitted on the held-out stars (unless said), judged per S/N decile:")
    for name, calibration in variants.items():
        sigma = calibration.sigma((ens[judged] / scale) ** 2, snr[judged]) * scale
        rows = by_snr(pred[judged], sigma, true[judged], np.zeros_like(true[judged]),
                      d["true_snr"][judged], quantities)
        met, total, ranges = cells(rows)
        print(f"  {name:<17s} {met:3d} of {total} cells; {ranges}")
    j = quantities.index("logg")
    tsnr = d["true_snr"]
    edges = np.quantile(tsnr[judged], np.linspace(0, 1, 11))
    print("\nmean log g residual against the true labels per S/N decile: judged / held-out / "
          "training stars")
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        part = (tsnr >= lo) & (tsnr <= hi)
        means = [np.mean(pred[rows & part, j] - true[rows & part, j])
                 for rows in (judged, held, training)]
        print(f"  {lo:5.0f}-{hi:<5.0f} " + " / ".join(f"{m:+.3f}" for m in means))


if __name__ == "__main__":
    main()
