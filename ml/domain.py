"""Training-domain flag: whether a spectrum resembles the label model's training sample.

Three tests, all needed for ``in_domain``:

* **Latent distance.** In the autoencoder's latent space, restricted to the dimensions
  that track the labels (the guided ones; for an unguided autoencoder its informative
  learned ones; never the RV coordinate: a velocity does not take a star out of the
  domain) and each scaled by its spread in the training sample, the mean distance
  to the k nearest *training* spectra, divided by the same quantity among the training
  spectra themselves; 1 is typical inside the sample. This is ``domain_score``.
  It catches spectra unlike anything the training sample holds.
* **Training coverage.** Label networks saturate instead of extrapolating, so a
  7,800 K or [M/H] -2 star gets a prediction at the training range's edge, next to
  real training stars, and neither its distance nor its prediction gives it away. What
  does is the archive around it: among the ``coverage_k`` spectra of an archive sample
  nearest to its prediction (labels scaled by the training spread), almost none are
  training spectra, because the reference labels were only taken inside the domain.
  ``coverage`` is that fraction. Only which spectra have reference labels is used,
  never a truth.
* **Predicted-label range.** A prediction more than ``box_sigmas`` of its own
  uncertainty outside the training labels' range is an extrapolation, whatever the
  other two say.

Noise moves both scores: a low-S/N spectrum lies farther from its neighbours in latent
space and its prediction wanders into thinner parts of the sample. One threshold per
test therefore flagged in-domain spectra mostly at low S/N. So each score is judged
against held-out (in-domain by construction) stars *of its S/N*: its typical value and
spread are functions of log10 S/N (the conditional median, and the log of the median
absolute deviation from it, each quadratic in log S/N -- linear with fewer than 200
held-out stars --, fitted by quantile regression on the held-out stars; the S/N comes
from the spectrum's own arrays, ``ml.snr``). A spectrum is out when its score lies more
than ``cut`` such spreads on the bad side (log distance above, coverage below). The two
cuts flag the same share of held-out stars, chosen so that the three tests together
(they are OR-ed) flag ``false_flag_rate`` of them (2 %). On 20,000 synthetic spectra
(``bench/ml_quality.py --flag-rates``) that flags 1.1-3.0 % of new in-range stars in every
S/N decile and 91-93 % of the stars clearly outside the training range; 1 % flags fewer
in-range stars (0.5-1.3 %) but only 85-90 % of those outside. The held-out stars must be
stars whose labels the autoencoder never learnt (``ml.train.split_by_group``): when they
were not, their latent positions sat closer to the training sample than new stars' and
the same 2 % cut flagged up to 4.9 % of new stars.

Evaluating the cuts and the range test (``ml.domain_cuts``, numpy) is shared with the web
process, which decides on uploaded spectra exactly as ``latentvo ml infer`` does; the
fitting and the k-NN searches stay here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from numpy.polynomial.polynomial import polyval
from sklearn.linear_model import QuantileRegressor
from sklearn.neighbors import NearestNeighbors

from ml.domain_cuts import (
    SnrCut,
    cuts_from_state,
    distance_value,
    log_snr,
    shortfall_value,
    within_range,
)

FALSE_FLAG_RATE = 0.02  # held-out in-domain stars the three tests together flag
STARS_PER_DEGREE = (20, 200)  # held-out stars for a slope in log S/N, for a curvature
FIT_SAMPLE = 3000  # held-out stars the median and spread curves are fitted on, at most


def fit_snr_cut(values: np.ndarray, snr: np.ndarray) -> SnrCut:
    """Centre and spread of held-out (in-domain) values as functions of S/N; the cut is
    set later (:func:`fit_cuts`)."""
    u = log_snr(snr)
    if len(values) == 0:
        return SnrCut.fixed(np.inf)
    u_range = (float(u.min()), float(u.max()))
    if len(values) > FIT_SAMPLE:  # the linear programme grows fast; medians do not need it
        keep = np.random.default_rng(0).choice(len(values), FIT_SAMPLE, replace=False)
        u, values = u[keep], np.asarray(values)[keep]
    degree = 0 if np.ptp(u) < 1e-3 else int(np.searchsorted(STARS_PER_DEGREE,
                                                             len(values), "right"))
    centre = _median_polynomial(u, values, degree)
    deviation = np.abs(values - polyval(u, centre))
    log_deviation = np.log(np.maximum(deviation, 1e-6 * (np.median(deviation) + 1e-12)))
    log_spread = _median_polynomial(u, log_deviation, degree)
    return SnrCut(centre, log_spread, np.inf, u_range)


def _median_polynomial(u: np.ndarray, values: np.ndarray, degree: int) -> np.ndarray:
    """Coefficients (lowest power first) of the conditional median as a polynomial in u
    (quantile regression: robust to the tail the cut is about)."""
    if degree == 0:
        return np.array([np.median(values)])
    features = np.vander(u, degree + 1, increasing=True)[:, 1:]
    fit = QuantileRegressor(quantile=0.5, alpha=0.0, solver="highs").fit(features, values)
    return np.concatenate([[fit.intercept_], fit.coef_])


def fit_cuts(distance: np.ndarray, shortfall: np.ndarray, outside_range: np.ndarray,
             snr: np.ndarray, rate: float = FALSE_FLAG_RATE) -> tuple[SnrCut, SnrCut]:
    """S/N-dependent cuts on the log distance and on the coverage shortfall (minus the
    coverage) of held-out in-domain stars, each flagging the same share of them, that
    share chosen so that with ``outside_range`` (the range test) they flag ``rate``."""
    cuts = fit_snr_cut(distance, snr), fit_snr_cut(shortfall, snr)
    z = [cut.standardised(values, snr) for cut, values in zip(cuts, (distance, shortfall),
                                                               strict=True)]

    def flagged(share: float) -> float:
        levels = [np.quantile(zi, 1 - share) if len(zi) else np.inf for zi in z]
        return float(np.mean(outside_range | (z[0] > levels[0]) | (z[1] > levels[1])))

    lo, hi = 0.0, rate  # share per test: combined rate rises with it
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if flagged(mid) <= rate else (lo, mid)
    for cut, zi in zip(cuts, z, strict=True):
        cut.cut = float(np.quantile(zi, 1 - lo)) if len(zi) else np.inf
    return cuts


@dataclass
class DomainModel:
    """Decides whether a label prediction may be trusted: whether the spectrum resembles
    the training spectra (k-NN distance in latent space) and whether its predicted
    labels lie where the training set had stars (coverage of an archive sample) and
    inside the training range, each judged against held-out stars of the same S/N.
    Built by :meth:`fit`; stored with the label model.
    """

    reference: np.ndarray  # (m, d) scaled latents of the training spectra
    dims: np.ndarray  # latent dimensions used
    centre: np.ndarray
    scale: np.ndarray
    typical: float  # median k-NN distance among the training spectra
    distance_cut: SnrCut  # on log(domain_score)
    k: int
    box_lo: np.ndarray  # training label range per quantity
    box_hi: np.ndarray
    population: np.ndarray  # (p, quantities) scaled predicted labels of an archive sample
    population_trained: np.ndarray  # (p,) bool: a training spectrum of the label model
    label_centre: np.ndarray
    label_scale: np.ndarray
    coverage_cut: SnrCut  # on minus the coverage
    coverage_k: int = 50
    box_sigmas: float = 2.0
    false_flag_rate: float = FALSE_FLAG_RATE
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
            population_trained: np.ndarray, val_pred: np.ndarray, val_sigma: np.ndarray,
            val_snr: np.ndarray, k: int = 10, coverage_k: int = 50,
            false_flag_rate: float = FALSE_FLAG_RATE) -> DomainModel:
        """``population_pred``: predicted labels of an archive sample that holds the training
        spectra (flagged by ``population_trained``) and the validation ones; ``val_*``: the
        held-out stars' latents, predictions, calibrated errors and S/N (``ml.snr``)."""
        dims = np.asarray(dims if len(dims) else np.arange(train_latent.shape[1]))
        ref = train_latent[:, dims]
        centre, scale = ref.mean(axis=0), ref.std(axis=0) + 1e-6
        trained = np.asarray(population_trained, bool)
        label_centre = population_pred[trained].mean(axis=0)
        label_scale = population_pred[trained].std(axis=0) + 1e-9
        model = cls((ref - centre) / scale, dims, centre, scale, 1.0, SnrCut.fixed(np.inf), k,
                    np.asarray(box[0], float), np.asarray(box[1], float),
                    ((population_pred - label_centre) / label_scale).astype(np.float32),
                    trained, label_centre, label_scale, SnrCut.fixed(np.inf), coverage_k,
                    false_flag_rate=false_flag_rate)
        own = model._knn((ref - centre) / scale, skip_self=True)
        model.typical = float(np.median(own)) or 1.0
        model.distance_cut, model.coverage_cut = model.fit_cuts(val_latent, val_pred, val_sigma,
                                                                val_snr)
        return model

    def _test_values(self, latent: np.ndarray, pred: np.ndarray, sigma: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(log distance score, minus the coverage, outside the range) per spectrum."""
        return (distance_value(self.score(latent)), shortfall_value(self.coverage(pred)),
                ~self.in_range(pred, sigma))

    def fit_cuts(self, latent: np.ndarray, pred: np.ndarray, sigma: np.ndarray,
                 snr: np.ndarray) -> tuple[SnrCut, SnrCut]:
        """The distance and coverage cuts from these held-out stars (see :func:`fit_cuts`)."""
        return fit_cuts(*self._test_values(latent, pred, sigma), snr, self.false_flag_rate)

    def held_out_flags(self, latent: np.ndarray, pred: np.ndarray, sigma: np.ndarray,
                       snr: np.ndarray, halves: np.ndarray) -> np.ndarray:
        """Out-of-domain flags of held-out stars, each half judged by cuts fitted on the
        other half (``ml.calibration.evaluation_halves``): the false-flag rate on stars the
        cuts were not fitted on."""
        distance, shortfall, outside = self._test_values(latent, pred, sigma)
        flags = outside.copy()
        for half in (halves, ~halves):
            other = ~half
            if not half.any() or not other.any():
                continue
            cuts = fit_cuts(distance[other], shortfall[other], outside[other], snr[other],
                            self.false_flag_rate)
            flags[half] |= ((cuts[0].standardised(distance[half], snr[half]) > cuts[0].cut)
                            | (cuts[1].standardised(shortfall[half], snr[half])
                               > cuts[1].cut))
        return flags

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
        return within_range(pred, sigma, self.box_lo, self.box_hi, self.box_sigmas)

    def in_domain(self, scores: np.ndarray, pred: np.ndarray, sigma: np.ndarray,
                  snr: np.ndarray | None) -> np.ndarray:
        """Whether each prediction is in the domain: a distance score and a coverage
        within the cuts for the spectrum's S/N, and labels within the training range.
        ``snr`` (``ml.snr.spectrum_snr``) may be None only for a model of fixed thresholds.
        """
        return self.near(scores, snr) & self.covered(pred, snr) & self.in_range(pred, sigma)

    def near(self, scores: np.ndarray, snr: np.ndarray | None) -> np.ndarray:
        """Distance scores within the cut for the spectra's S/N."""
        return self.distance_cut.passes(distance_value(scores), snr)

    def covered(self, pred: np.ndarray, snr: np.ndarray | None) -> np.ndarray:
        """Predictions whose training coverage is within the cut for the spectra's S/N."""
        return self.coverage_cut.passes(shortfall_value(self.coverage(pred)), snr)

    def threshold(self, snr: float) -> float:
        """The ``domain_score`` above which a spectrum of this S/N is out of domain."""
        return float(np.exp(self.distance_cut.threshold(snr)))

    def describe(self, snrs: tuple[float, ...]) -> dict[str, Any]:
        """The test definitions with their thresholds at a few S/N, for the metrics."""
        return {"snr": [round(float(s), 3) for s in snrs],
                "score_threshold": [round(self.threshold(s), 4) for s in snrs],
                "coverage_threshold": [round(-self.coverage_cut.threshold(s), 4)
                                       for s in snrs],
                "distance_cut": self.distance_cut.state(),
                "coverage_cut": self.coverage_cut.state(),
                "false_flag_rate": self.false_flag_rate, "box_sigmas": self.box_sigmas}

    def state(self) -> dict:
        """Tensors and numbers only, so artifacts load with ``weights_only=True``."""
        return {"reference": torch.as_tensor(self.reference, dtype=torch.float32),
                "dims": torch.as_tensor(self.dims), "centre": torch.as_tensor(self.centre),
                "scale": torch.as_tensor(self.scale),
                "typical": self.typical, "distance_cut": self.distance_cut.state(),
                "k": self.k,
                "box_lo": torch.as_tensor(self.box_lo), "box_hi": torch.as_tensor(self.box_hi),
                "population": torch.as_tensor(self.population),
                "population_trained": torch.as_tensor(self.population_trained),
                "label_centre": torch.as_tensor(self.label_centre),
                "label_scale": torch.as_tensor(self.label_scale),
                "coverage_cut": self.coverage_cut.state(), "coverage_k": self.coverage_k,
                "box_sigmas": self.box_sigmas, "false_flag_rate": self.false_flag_rate}

    @classmethod
    def from_state(cls, state: dict) -> DomainModel:
        """The domain model saved by :meth:`state`, or by a version whose thresholds did
        not depend on S/N (``threshold``, ``coverage_threshold``: kept exactly)."""
        distance, coverage = cuts_from_state(state)
        return cls(state["reference"].numpy(), state["dims"].numpy(),
                   state["centre"].numpy(), state["scale"].numpy(),
                   float(state["typical"]), distance, int(state["k"]),
                   state["box_lo"].numpy(), state["box_hi"].numpy(),
                   state["population"].numpy(), state["population_trained"].numpy(),
                   state["label_centre"].numpy(), state["label_scale"].numpy(),
                   coverage, int(state["coverage_k"]), float(state["box_sigmas"]),
                   float(state.get("false_flag_rate", FALSE_FLAG_RATE)))


def domain_dims(information: np.ndarray, informative_nats: float,
                n_guided: int = 0) -> np.ndarray:
    """The label-guided dimensions, else the informative learned ones (not the last, RV)."""
    if n_guided:
        return np.arange(n_guided)
    return np.flatnonzero(information[:-1] > informative_nats)
