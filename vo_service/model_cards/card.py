"""A model's card as one JSON-ready dict, built from the database alone.

The web process does not load models (no torch), so everything a card says comes from
the model's registry row (``latentvo.models``: provenance, hyper-parameters, metrics
as the training job recorded them), the reference-label set it was trained on
(``latentvo_ops.reference_label_sets`` / ``reference_labels``) and the analysis tables
of an autoencoder (``latentvo.latent_dimensions``, ``latent_mutual_information``).
What a model's record lacks (older models were trained before some figures were
recorded) is ``null`` in the card and listed in ``not_recorded``; nothing is estimated.

The format (:data:`CARD_FORMAT`) is documented in docs/ml.md, "Model cards";
:func:`card_problems` checks a card against it (the tests use it).
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from pathlib import PurePath
from typing import Any

import sqlalchemy as sa

from schema.tables import (
    AUTOENCODER,
    LABEL_REGRESSOR,
    latent_dimensions,
    latent_mutual_information,
    models,
    reference_label_sets,
    reference_labels,
)
from vo_service.config import ServiceSettings
from vo_service.urls import PublicURLs

CARD_FORMAT = "latentvo-model-card/1"

GOAL_RANGES: dict[str, tuple[float, float]] = {
    "z_std": (0.9, 1.1), "coverage_68": (0.65, 0.71), "coverage_95": (0.92, 0.98)}
FLAG_RATE_MAX = 0.03
GOALS: dict[str, Any] = {**{k: list(v) for k, v in GOAL_RANGES.items()},
                         "flagged_fraction_max": FLAG_RATE_MAX}
"""Issue 18's goals per S/N bin on held-out stars: z-std within 0.9-1.1, 68 % / 95 % interval
coverage within 3 points of nominal, at most 3 % of in-distribution stars flagged."""

BOOKKEEPING = ("epochs_run", "best_epoch", "train_seconds", "device")
"""Training bookkeeping the training job records in ``metrics``."""

NOISE_LIMIT = (
    "The Cramer-Rao bound (the smallest label error the spectra's noise allows) needs the "
    "model that generated the spectra, which real archives do not have, so this card does "
    "not compute it. It is measured on latentvo's synthetic archive, whose forward model is "
    "known: bench/ml_quality.py reports RMSE / bound per S/N bin, and docs/ml.md records "
    "the figures and the commands that produced them.")

_CALIBRATION = {
    LABEL_REGRESSOR: (
        "Each predicted 1-sigma uncertainty is the ensemble's own predicted spread, rescaled "
        "on held-out stars (split by star, not by spectrum) so that standardised residuals "
        "against the reference labels have unit spread; the recorded parameters and the "
        "validation z-std per label are below. The reference labels' own errors are part "
        "of the residuals being calibrated."),
    AUTOENCODER: (
        "An autoencoder predicts no uncertainties; its latent vectors carry no error bars."),
}

_DOMAIN = {
    LABEL_REGRESSOR: (
        "in_domain is true only when the spectrum passes every test recorded below: its "
        "latent vector lies among the training spectra (domain_score, the mean distance to "
        "its nearest training spectra in units of the training sample's own spread, under "
        "domain_threshold), its predicted labels lie where the training sample covers the "
        "archive (coverage test), and every predicted label lies within the training label "
        "range. Thresholds are set on held-out stars (docs/ml.md, \"Pipeline\")."),
    AUTOENCODER: (
        "An autoencoder has no domain flag: it encodes every spectrum that covers its "
        "wavelength grid. The label models built on it flag their own domain."),
}

_USE = {
    LABEL_REGRESSOR: [
        "Stellar labels (the quantities listed under label sets) with calibrated 1-sigma "
        "uncertainties for spectra of this archive that cover the model's wavelength grid.",
        "Use the labels of spectra with in_domain true; outside the domain the predictions "
        "and their uncertainties are extrapolations.",
    ],
    AUTOENCODER: [
        "Latent vectors for similarity search (latentvo.latent, DataLink #counterpart) and "
        "for the label models trained on them.",
        "Compare spectra within this model's latent space only: the vectors of different "
        "models are not comparable.",
    ],
}

_LIMITS = {
    LABEL_REGRESSOR: [
        "Trained on the archive's reference-label set: the labels inherit that catalogue's "
        "scale, systematics and coverage, and are no better than it.",
        "Only spectra covering the model's wavelength grid are labelled; resampling to the "
        "grid loses detail finer than its pixels.",
        "Uncertainties are calibrated on held-out stars of the training distribution; the "
        "calibration per S/N bin, where recorded, is below.",
        "Spectral types, resolutions and instruments unlike the training sample are outside "
        "the domain even when in_domain happens to be true for some of them.",
    ],
    AUTOENCODER: [
        "Trained on the archive's own spectra: the latent space describes what the archive "
        "held at training time, and spectra unlike them are encoded poorly.",
        "Only spectra covering the model's wavelength grid are encoded.",
        "Which latent dimensions carry information, and about which physical quantity, is "
        "measured after training (below, when analysed); the others are noise.",
    ],
}


def _json(text: str | None) -> Any:
    """A JSON column's value; a broken one is kept as its text rather than refused."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _finite(value: Any) -> Any:
    """``value`` with non-finite floats as None: JSON has no NaN."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _scalars(record: dict[str, Any], exclude: tuple[str, ...] = ()) -> dict[str, Any]:
    """The plain (non-list, non-dict) entries of ``record``, by name."""
    return {k: v for k, v in sorted(record.items())
            if k not in exclude and not isinstance(v, (list, dict))}


def _instant(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _label_set(conn: sa.Connection, name: str | None) -> dict[str, Any] | None:
    """What the card says about a reference-label set; the source file by name only (its
    path on the operator's host is none of a reader's business)."""
    if name is None:
        return None
    row = conn.execute(sa.select(reference_label_sets).where(
        reference_label_sets.c.name == name)).mappings().first()
    if row is None:
        return {"name": name, "source_file": None, "source_sha256": None, "rows": None,
                "key_column": None, "quantities": None, "attached": None,
                "note": "the set is no longer attached to this archive"}
    quantities = conn.scalars(sa.select(reference_labels.c.quantity).distinct().where(
        reference_labels.c.label_set == name).order_by(reference_labels.c.quantity)).all()
    return {"name": name, "source_file": PurePath(row["source_path"]).name,
            "source_sha256": row["source_sha256"], "rows": row["n_rows"],
            "key_column": row["key_column"], "quantities": list(quantities),
            "attached": _instant(row["loaded_at"])}


def _latent_space(conn: sa.Connection, model_id: str) -> dict[str, Any] | None:
    """Per-dimension information and mutual information of an analysed autoencoder."""
    dims = conn.execute(sa.select(latent_dimensions).where(
        latent_dimensions.c.model_id == model_id).order_by(latent_dimensions.c.dim)
    ).mappings().all()
    if not dims:
        return None
    mi = conn.execute(sa.select(latent_mutual_information).where(
        latent_mutual_information.c.model_id == model_id,
        latent_mutual_information.c.basis == "latent")).mappings().all()
    by_dim: dict[int, dict[str, float]] = {}
    for row in mi:
        by_dim.setdefault(row["component"], {})[row["quantity"]] = row["mutual_information"]
    return {
        "informative_dims": [d["dim"] for d in dims if d["informative"]],
        "dimensions": [_finite({"dim": d["dim"], "informative": d["informative"],
                                "information": d["information"], "stddev": d["stddev"],
                                "mutual_information_nats": dict(sorted(
                                    by_dim.get(d["dim"], {}).items()))})
                       for d in dims],
    }


def _by_snr(metrics: dict[str, Any]) -> list[dict[str, Any]] | None:
    """``metrics["by_snr"]`` with each bin checked against :data:`GOALS`."""
    bins = metrics.get("by_snr")
    if not isinstance(bins, list):
        return None
    out = []
    for b in bins:
        if not isinstance(b, dict):
            continue
        checked = dict(b)
        flagged = b.get("flagged_fraction")
        checked["flag_goal_met"] = (flagged <= FLAG_RATE_MAX
                                    if isinstance(flagged, (int, float)) else None)
        labels = {}
        stored = b.get("labels")
        for q, figures in (stored.items() if isinstance(stored, dict) else ()):
            figures = dict(figures) if isinstance(figures, dict) else {}
            for key in ("z_std", "coverage_68", "coverage_95"):
                value = figures.get(key)
                low, high = GOAL_RANGES[key]
                figures[f"{key}_goal_met"] = (low <= value <= high
                                              if isinstance(value, (int, float)) else None)
            labels[q] = figures
        checked["labels"] = labels
        out.append(checked)
    return _finite(out)


def _matching(record: dict[str, Any], words: tuple[str, ...]) -> dict[str, Any]:
    """The entries of ``record`` whose name contains one of ``words``."""
    return {k: v for k, v in sorted(record.items()) if any(w in k for w in words)}


def build_card(conn: sa.Connection, model_id: str, urls: PublicURLs,
               service: ServiceSettings) -> dict[str, Any] | None:
    """The card of ``model_id``, or None when no such model is registered.

    ``conn`` is the owner's: the reference-label sets are hidden from the read-only role.
    """
    row = conn.execute(sa.select(models).where(models.c.model_id == model_id)
                       ).mappings().first()
    if row is None:
        return None
    kind = row["kind"]
    hyper = _json(row["hyperparameters"])
    hyper = hyper if isinstance(hyper, dict) else {}
    metrics = _json(row["metrics"])
    metrics = metrics if isinstance(metrics, dict) else {}
    grid = _json(row["wavelength_grid"])
    label_set = _label_set(conn, row["reference_label_source"])
    base_set = None
    if row["base_model_id"] is not None:
        base_source = conn.scalar(sa.select(models.c.reference_label_source).where(
            models.c.model_id == row["base_model_id"]))
        if base_source is not None and base_source != row["reference_label_source"]:
            base_set = _label_set(conn, base_source)
    by_snr = _by_snr(metrics) if kind == LABEL_REGRESSOR else None
    card: dict[str, Any] = {
        "format": CARD_FORMAT,
        "model_id": model_id,
        "kind": kind,
        "profile": hyper.get("profile"),
        "architecture": _json(row["architecture"]),
        "created": _instant(row["created_at"]),
        "code_version": row["code_version"],
        "random_seed": row["random_seed"],
        "base_model_id": row["base_model_id"],
        "latent_dim": row["latent_dim"],
        "distance_metric": row["distance_metric"],
        "artifact_sha256": row["artifact_sha256"],
        "urls": {
            "models": urls.models,
            "card": urls.model_card(model_id),
            "card_json": urls.model_card_json(model_id),
            "registry_row": urls.tap_query(
                "SELECT * FROM latentvo.models WHERE model_id = '"
                + model_id.replace("'", "''") + "'"),
            "base_model_card": (urls.model_card(row["base_model_id"])
                                if row["base_model_id"] is not None else None),
        },
        "training_data": {
            "selection": row["training_selection"],
            "size": row["training_size"],
            "checksum": row["training_checksum"],
            "checksum_covers": "SHA-256 over the ordered training spectra (file checksums) "
                               "and, for label-guided training, their reference labels",
            "label_set": label_set,
            "grid": grid,
            "grid_choice": hyper.get("grid_choice"),
        },
        "label_sets": [s for s in (label_set, base_set) if s is not None],
        "metrics": {
            "validation": _finite(_scalars(metrics, exclude=BOOKKEEPING)),
            "by_snr": by_snr,
            "goals": GOALS if kind == LABEL_REGRESSOR else None,
            "training": _finite({k: metrics.get(k) for k in BOOKKEEPING}),
        },
        "calibration": {
            "method": _CALIBRATION.get(kind),
            "recorded": _finite({**_matching(hyper, ("calib",)),
                                 **_matching(metrics, ("calib", "z_std", "median_sigma"))}),
        },
        "domain": {
            "definition": _DOMAIN.get(kind),
            "recorded": _finite({**_matching(hyper, ("domain",)),
                                 **_matching(metrics, ("domain",))}),
        },
        "noise_limit": {
            "statement": NOISE_LIMIT,
            "measured_in": ["docs/ml.md", "bench/ml_quality.py"],
            "recorded": _finite(_matching(metrics, ("crb",))) or None,
        },
        "latent_space": (_latent_space(conn, model_id) if kind == AUTOENCODER else None),
        "intended_use": _USE.get(kind, []),
        "limitations": _LIMITS.get(kind, []),
        "service": {"title": service.title, "publisher": service.publisher,
                    "contact": service.contact_email, "license": service.license,
                    "license_url": service.license_url},
    }
    card["not_recorded"] = _missing(card, kind)
    return card


def _missing(card: dict[str, Any], kind: str) -> list[str]:
    """The card's keys (dotted) that the model's record does not provide."""
    wanted = ["profile", "code_version", "random_seed", "training_data.size",
              "training_data.label_set", "training_data.grid_choice",
              *(f"metrics.training.{k}" for k in BOOKKEEPING)]
    if kind == LABEL_REGRESSOR:
        wanted.append("metrics.by_snr")
    if kind == AUTOENCODER:
        wanted.append("latent_space")
    missing = []
    for key in wanted:
        value: Any = card
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if value is None:
            missing.append(key)
    return missing


def model_list(conn: sa.Connection, urls: PublicURLs) -> list[dict[str, Any]]:
    """Every registered model, newest first, with the URLs of its card."""
    rows = conn.execute(sa.select(models.c.model_id, models.c.kind, models.c.created_at,
                                  models.c.training_size, models.c.reference_label_source,
                                  models.c.base_model_id)
                        .order_by(models.c.created_at.desc(), models.c.model_id.desc())
                        ).mappings().all()
    return [{"model_id": r["model_id"], "kind": r["kind"], "created": _instant(r["created_at"]),
             "training_size": r["training_size"],
             "label_set": r["reference_label_source"], "base_model_id": r["base_model_id"],
             "card": urls.model_card(r["model_id"]),
             "card_json": urls.model_card_json(r["model_id"])} for r in rows]


_TOP_KEYS = {"format": str, "model_id": str, "kind": str, "urls": dict, "training_data": dict,
             "label_sets": list, "metrics": dict, "calibration": dict, "domain": dict,
             "noise_limit": dict, "intended_use": list, "limitations": list, "service": dict,
             "not_recorded": list}


def card_problems(card: Any) -> list[str]:
    """What makes ``card`` (parsed JSON) not a card of :data:`CARD_FORMAT`; empty when fine."""
    if not isinstance(card, dict):
        return ["a card is a JSON object"]
    found = [f"{key} must be a JSON {kind.__name__}" for key, kind in _TOP_KEYS.items()
             if not isinstance(card.get(key), kind)]
    if card.get("format") != CARD_FORMAT:
        found.append(f"format must be {CARD_FORMAT!r}")
    if found:
        return found
    for key in ("selection", "size", "checksum", "label_set", "grid", "grid_choice"):
        if key not in card["training_data"]:
            found.append(f"training_data.{key} missing")
    for key in ("validation", "by_snr", "goals", "training"):
        if key not in card["metrics"]:
            found.append(f"metrics.{key} missing")
    for b in card["metrics"].get("by_snr") or []:
        for key in ("snr_min", "snr_max", "n", "labels"):
            if key not in b:
                found.append(f"metrics.by_snr bin without {key}")
    for key, value in (("card", card["urls"].get("card")),
                       ("card_json", card["urls"].get("card_json"))):
        if not isinstance(value, str) or not value:
            found.append(f"urls.{key} missing")
    return found
