"""What the explorer page reads from the database, as plain values (no HTTP here).

Every query runs as the read-only role. Labels shown beside spectra come from the
current label model built on the chosen autoencoder (``models.base_model_id``), else
from the current label model of any autoencoder; a spectrum without labels shows none.
The neighbours of a point come from ``schema.latent_index.top_k_sql``, the query the
model's HNSW index serves, exactly as ``vo_service.datalink.similar`` asks it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sqlalchemy as sa

from schema.latent_index import MAX_INDEX_TOP, index_plan, top_k_sql
from schema.tables import AUTOENCODER, LABEL_REGRESSOR, MODEL_RANK
from vo_service.dali import DALIError

MAP_COLOURS = ("teff", "logg", "mh", "in_domain")
"""The quantities the 2-D map can be coloured by (labels columns)."""


@dataclass(frozen=True)
class ExploredModel:
    """An autoencoder the page can explore and the label model that labels its spectra."""

    model_id: str
    latent_dim: int
    metric: str
    label_model: str | None


@dataclass(frozen=True)
class SpectrumRow:
    """One archive spectrum with its stored latent vector of the explored model."""

    spectrum_id: int
    did: str
    target_name: str | None
    file_sha256: str
    vector: np.ndarray
    labels: dict[str, object]


def models(engine: sa.Engine) -> list[dict[str, object]]:
    """The autoencoders with latent vectors, current first, with their sizes and whether
    ``latentvo ml analyse`` has mapped them."""
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            f"SELECT m.model_id, m.latent_dim, m.distance_metric, r.rank, "
            "(SELECT count(*) FROM latentvo.latent_map AS p WHERE p.model_id = m.model_id) "
            "AS map_points FROM latentvo.models AS m "
            f"JOIN {MODEL_RANK} AS r USING (model_id) "
            "WHERE m.kind = :kind AND m.latent_dim IS NOT NULL "
            "AND EXISTS (SELECT 1 FROM latentvo.latent AS v WHERE v.model_id = m.model_id) "
            "ORDER BY r.rank"), {"kind": AUTOENCODER}).all()
    return [{"model_id": r.model_id, "latent_dim": r.latent_dim,
             "metric": r.distance_metric or "l2", "map_points": r.map_points} for r in rows]


def explored_model(engine: sa.Engine, model_id: str | None) -> ExploredModel:
    """The autoencoder ``model_id`` (the current one when None); 404 DALIError if unknown."""
    with engine.connect() as conn:
        query = (f"SELECT m.model_id, m.latent_dim, m.distance_metric FROM latentvo.models "
                 f"AS m JOIN {MODEL_RANK} AS r USING (model_id) WHERE m.kind = :kind "
                 "AND m.latent_dim IS NOT NULL")
        args: dict[str, object] = {"kind": AUTOENCODER}
        if model_id:
            query += " AND m.model_id = :model"
            args["model"] = model_id
        row = conn.execute(sa.text(query + " ORDER BY r.rank LIMIT 1"), args).first()
        if row is None:
            raise DALIError(f"NotFoundFault: no autoencoder {model_id}" if model_id else
                            "NotFoundFault: no autoencoder is registered", 404)
        label_model = conn.scalar(sa.text(
            f"SELECT m.model_id FROM latentvo.models AS m JOIN {MODEL_RANK} AS r "
            "USING (model_id) WHERE m.kind = :kind "
            "ORDER BY (m.base_model_id IS NOT DISTINCT FROM :ae) DESC, r.rank LIMIT 1"),
            {"kind": LABEL_REGRESSOR, "ae": row.model_id})
    return ExploredModel(row.model_id, int(row.latent_dim), row.distance_metric or "l2",
                         label_model)


def dimensions(engine: sa.Engine, model: ExploredModel) -> list[dict[str, object]]:
    """One slider per informative dimension: its index, what it tracks (the quantity of
    highest mutual information, with the MI in nats) and its range in the archive
    (mean +- 3 standard deviations of the encoded spectra)."""
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT d.dim, d.mean, d.stddev, mi.quantity, mi.mutual_information "
            "FROM latentvo.latent_dimensions AS d LEFT JOIN LATERAL ("
            "  SELECT quantity, mutual_information FROM latentvo.latent_mutual_information "
            "  WHERE model_id = d.model_id AND basis = 'latent' AND component = d.dim "
            "  ORDER BY mutual_information DESC LIMIT 1) AS mi ON true "
            "WHERE d.model_id = :model AND d.informative ORDER BY d.dim"),
            {"model": model.model_id}).all()
    return [{"dim": r.dim, "tracks": r.quantity, "mutual_information": r.mutual_information,
             "min": r.mean - 3 * r.stddev, "max": r.mean + 3 * r.stddev, "mean": r.mean}
            for r in rows]


def map_points(engine: sa.Engine, model: ExploredModel, limit: int) -> dict[str, list]:
    """The 2-D map's points (at most ``limit``), column by column, with the label model's
    Teff, log g, [M/H] and domain flag (None where a spectrum has no labels)."""
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT p.x, p.y, s.obs_publisher_did AS did, l.teff, l.logg, l.mh, l.in_domain "
            "FROM latentvo.latent_map AS p JOIN latentvo.spectra AS s USING (spectrum_id) "
            "LEFT JOIN latentvo.labels AS l ON l.spectrum_id = p.spectrum_id "
            "AND l.model_id = :labels WHERE p.model_id = :model "
            "ORDER BY p.spectrum_id LIMIT :limit"),
            {"model": model.model_id, "labels": model.label_model, "limit": limit}).all()
    columns = ("x", "y", "did", *MAP_COLOURS)
    return {c: [getattr(r, c) for r in rows] for c in columns}


def search(engine: sa.Engine, model: ExploredModel, text: str, limit: int
           ) -> list[dict[str, object]]:
    """Spectra with a latent vector of ``model`` whose target name contains ``text``
    (case-insensitive), or whose publisher DID or observation id is ``text``."""
    pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT s.obs_publisher_did AS did, s.target_name, s.obs_id "
            "FROM latentvo.spectra AS s JOIN latentvo.latent AS v "
            "ON v.spectrum_id = s.spectrum_id AND v.model_id = :model "
            "WHERE s.target_name ILIKE :pattern OR s.obs_publisher_did = :text "
            "OR s.obs_id = :text ORDER BY s.target_name, s.obs_id LIMIT :limit"),
            {"model": model.model_id, "pattern": pattern, "text": text, "limit": limit}).all()
    return [{"did": r.did, "target_name": r.target_name, "obs_id": r.obs_id} for r in rows]


def spectrum(engine: sa.Engine, model: ExploredModel, did: str) -> SpectrumRow:
    """The spectrum ``did`` with its stored latent vector of ``model`` and its labels.

    Raises
    ------
    DALIError
        404 for an unknown spectrum or one the model has not encoded.
    """
    with engine.connect() as conn:
        row = conn.execute(sa.text(
            "SELECT s.spectrum_id, s.obs_publisher_did AS did, s.target_name, "
            "s.file_sha256, v.vec::text AS vec FROM latentvo.spectra AS s "
            "LEFT JOIN latentvo.latent AS v ON v.spectrum_id = s.spectrum_id "
            "AND v.model_id = :model WHERE s.obs_publisher_did = :did"),
            {"did": did, "model": model.model_id}).first()
        if row is None:
            raise DALIError(f"NotFoundFault: no spectrum with ID {did}", 404)
        if row.vec is None:
            raise DALIError(f"NotFoundFault: spectrum {did} has no latent vector from "
                            f"model {model.model_id}", 404)
        labels = _labels(conn, model, [row.spectrum_id]).get(row.spectrum_id, {})
    return SpectrumRow(row.spectrum_id, row.did, row.target_name, row.file_sha256,
                       np.array(row.vec.strip("[]").split(","), dtype=np.float32), labels)


def nearest(engine: sa.Engine, model: ExploredModel, vector: np.ndarray, k: int
            ) -> list[dict[str, object]]:
    """The ``k`` archive spectra nearest to ``vector`` in ``model``'s latent space, nearest
    first, with distances and labels (index scan where the plan has one, exact otherwise
    or when the scan ends short)."""
    plan = index_plan(model.latent_dim, model.metric)
    args = {"query": "[" + ",".join(f"{v:.9g}" for v in vector) + "]",
            "model_id": model.model_id, "k": k}
    with engine.connect() as conn:
        conn.execute(sa.text("SET LOCAL transaction_read_only = on"))
        use_index = plan.indexed and k <= MAX_INDEX_TOP
        if use_index:
            for key, value in plan.session_settings(k).items():
                conn.execute(sa.text(f"SET LOCAL {key} = '{value}'"))
        rows = _nearest(conn, top_k_sql(plan.dim, plan.metric, exact=not use_index), args)
        if use_index and len(rows) < k:
            rows = _nearest(conn, top_k_sql(plan.dim, plan.metric, exact=True), args)
        labels = _labels(conn, model, [r.spectrum_id for r in rows])
    return [{"did": r.did, "target_name": r.target_name, "distance": float(r.distance),
             **labels.get(r.spectrum_id, {})} for r in rows]


def _nearest(conn: sa.Connection, top_k: str, args: dict[str, object]) -> list[sa.Row]:
    return list(conn.execute(sa.text(
        f"SELECT nn.spectrum_id, nn.distance, s.obs_publisher_did AS did, s.target_name "
        f"FROM ({top_k}) AS nn JOIN latentvo.spectra AS s USING (spectrum_id) "
        "ORDER BY nn.distance"), args).all())


def _labels(conn: sa.Connection, model: ExploredModel, ids: list[int]
            ) -> dict[int, dict[str, object]]:
    if model.label_model is None or not ids:
        return {}
    rows = conn.execute(sa.text(
        "SELECT spectrum_id, teff, logg, mh, in_domain FROM latentvo.labels "
        "WHERE model_id = :labels AND spectrum_id = ANY(:ids)"),
        {"labels": model.label_model, "ids": ids}).all()
    return {r.spectrum_id: {c: getattr(r, c) for c in MAP_COLOURS} for r in rows}
