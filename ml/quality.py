"""The quality figures of a model pair against true labels, and the targets they must meet.

Used by ``bench/ml_quality.py`` and the model report. "The training sample's label
range" is the box spanned by the *true* labels of the reference (training) stars: the
range of the stars the label model learnt from. (The box of their noisy reference
labels reaches one or two reference errors further, e.g. 3,860 K for a sample cut at
4,000 K, and would count unsampled stars as inside.) A star is inside when all its
true labels lie in the box, and clearly outside when one lies beyond it by more than
``CLEAR_MARGIN`` of the box's width; stars in the margin between count for neither
domain figure, as a label one reference error past the edge cannot be told apart.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.neighbors import NearestNeighbors

HIGH_SNR = 50.0
CLEAR_MARGIN = 0.15
# Targets of issue 3.
RMSE_TARGETS = {"teff": 75.0, "logg": 0.12, "mh": 0.06}
Z_STD_RANGE = (0.8, 1.2)
IN_DOMAIN_KEPT = 0.90  # in-range spectra flagged in domain, at least
OUT_DOMAIN_CAUGHT = 0.90  # clearly out-of-range spectra flagged, at least
NEIGHBOURS = 10
NEIGHBOUR_TARGETS = {"teff": 150.0, "mh": 0.1}  # median |difference| to the 10 nearest


@dataclass
class Figure:
    """One quality figure of a model, against its target."""

    name: str
    value: float
    target: str
    met: bool

    def line(self) -> str:
        """The figure as a row of the quality report."""
        return f"{self.name:<44s} {self.value:>10.4g}   target {self.target:<14s} " + \
            ("MET" if self.met else "NOT MET")


def training_range(truth_of_training_stars: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) per quantity of the true labels of the training sample."""
    return (truth_of_training_stars.min(axis=0), truth_of_training_stars.max(axis=0))


def domain_truth(truth: np.ndarray, box_lo: np.ndarray, box_hi: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(inside the training box, clearly outside it) for true labels (n, quantities)."""
    width = box_hi - box_lo
    inside = np.all((truth >= box_lo) & (truth <= box_hi), axis=1)
    clearly_out = np.any((truth < box_lo - CLEAR_MARGIN * width) |
                         (truth > box_hi + CLEAR_MARGIN * width), axis=1)
    return inside, clearly_out


def label_figures(quantities: list[str], pred: np.ndarray, sigma: np.ndarray,
                  truth: np.ndarray, snr: np.ndarray, inside: np.ndarray,
                  clearly_out: np.ndarray, flagged_in: np.ndarray) -> list[Figure]:
    """Quality figures of label predictions against the true labels of synthetic stars.

    Accuracy figures use the high-S/N stars inside the training range; domain figures
    compare ``flagged_in`` (the model's in-domain flag) with ``inside`` and
    ``clearly_out``.
    """
    figures = []
    good = inside & (snr >= HIGH_SNR)
    for j, q in enumerate(quantities):
        resid = pred[good, j] - truth[good, j]
        rmse = float(np.sqrt(np.mean(resid**2))) if good.any() else float("nan")
        target = RMSE_TARGETS.get(q, np.inf)
        figures.append(Figure(f"RMSE {q} (S/N>={HIGH_SNR:g}, in range)", rmse,
                              f"<= {target:g}" if np.isfinite(target) else "(reported)",
                              rmse <= target))
    for j, q in enumerate(quantities):
        z = (pred[inside, j] - truth[inside, j]) / sigma[inside, j]
        value = float(np.std(z)) if inside.any() else float("nan")
        lo, hi = Z_STD_RANGE
        figures.append(Figure(f"std of (pred-true)/sigma {q} (in range)", value,
                              f"{lo:g}..{hi:g}", lo <= value <= hi))
    kept = float(flagged_in[inside].mean()) if inside.any() else float("nan")
    caught = float((~flagged_in[clearly_out]).mean()) if clearly_out.any() else float("nan")
    figures.append(Figure("in-range spectra flagged in domain", kept,
                          f">= {IN_DOMAIN_KEPT:g}", kept >= IN_DOMAIN_KEPT))
    figures.append(Figure("clearly out-of-range spectra flagged out", caught,
                          f">= {OUT_DOMAIN_CAUGHT:g}", caught >= OUT_DOMAIN_CAUGHT))
    return figures


def mi_figures(mi_latent: np.ndarray, mi_pca: np.ndarray, quantities: list[str]
               ) -> list[Figure]:
    """Best single latent dimension vs best single PCA component (as many), per quantity."""
    figures = []
    for j, q in enumerate(quantities):
        if q == "alpha_m":
            continue
        lat, pca = float(mi_latent[:, j].max()), float(mi_pca[:, j].max())
        figures.append(Figure(f"max MI {q}: latent / PCA ({lat:.2f}/{pca:.2f} nats)",
                              lat / pca if pca > 0 else np.inf, ">= 1", lat >= pca))
    return figures


def neighbour_figures(latent: np.ndarray, truth: dict[str, np.ndarray], seed: int = 0,
                      queries: int = 2000) -> list[Figure]:
    """Median |difference| between random queries and their 10 nearest latent neighbours."""
    rng = np.random.default_rng(seed)
    query = rng.choice(len(latent), min(queries, len(latent)), replace=False)
    _, nn = NearestNeighbors(n_neighbors=NEIGHBOURS + 1).fit(latent).kneighbors(latent[query])
    partner = rng.choice(len(latent), (len(query), NEIGHBOURS))
    figures = []
    for name, values in truth.items():
        near = float(np.median(np.abs(values[query][:, None] - values[nn[:, 1:]])))
        rand = float(np.median(np.abs(values[query][:, None] - values[partner])))
        target = NEIGHBOUR_TARGETS.get(name, np.inf)
        figures.append(Figure(f"{NEIGHBOURS}-NN median |d{name}| (random pairs {rand:.3g})",
                              near, f"< {target:g}", near < target))
    return figures
