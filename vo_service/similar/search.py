"""The query spectrum's place in the latent space and its K nearest archive spectra.

An upload is read like an ingested file (``vo_service.archive.readers``), then
preprocessed and encoded by the model's exported networks (``vo_service.inference``)
exactly as ``latentvo ml infer`` encodes the archive, so a copy of an archive file
lands on that file's stored vector. An ``ID`` takes the spectrum's stored vector and
labels instead (the same search, no network run).

The neighbours come from the model's HNSW index, through the same
:class:`~schema.latent_index.IndexPlan` as the index DDL, DataLink's ``similar`` and
ADQL: distance ``CAST(vec AS vector(N)) <op> q``, model predicate, ``LIMIT k``. Label
filters join the label model's rows; pgvector 0.8's iterative scan
(``hnsw.iterative_scan = strict_order``, set by ``IndexPlan.session_settings``) keeps
walking the graph until K rows pass the filter, from a longer candidate list
(``FILTERED_EF_SEARCH``), so a filtered top-K keeps its recall.
An index scan that ends short of K (a filter so selective that the scan gives up, or
nodes the graph does not reach) is answered again by an exact scan, as is any K above
``MAX_INDEX_TOP``. Unlike DataLink's ``similar`` the query spectrum itself is not left
out: an archive spectrum asked by ID is its own first neighbour, at distance 0, like
an uploaded copy of its file.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import sqlalchemy as sa

from schema.latent_index import MAX_INDEX_TOP, exact_order, index_plan
from schema.tables import LABEL_QUANTITIES
from vo_service.archive.readers import read_spectrum
from vo_service.archive.spectrum import SpectrumError
from vo_service.config import Settings
from vo_service.dali import DALIError
from vo_service.errors import OperatorError
from vo_service.inference.runtime import load_runtime, resolve_models
from vo_service.similar.request import SimilarRequest

QUERY_CANCELED = "57014"  # SQLSTATE of a statement past its statement_timeout
FILTERED_EF_SEARCH = 400
"""``hnsw.ef_search`` of a filtered search (at most pgvector's 1000). Few candidates pass a
filter, so the iterative scan must leave the query's own region of the graph; a longer
candidate list lets it reach the passing spectra there. On clumped synthetic vectors
(bench/similarity.py, 128 dimensions, TEFF and IN_DOMAIN filter) recall@10 rose from
0.85 at 40 to 0.95 at 400, for ~1 ms more per search."""


@dataclass
class QuerySpectrum:
    """The spectrum searched with: its latent vector and what the models say of it."""

    source: str  # "upload", or the publisher DID asked by ID
    latent: np.ndarray
    rv_kms: float | None = None
    snr: float | None = None
    labels: dict[str, float] = field(default_factory=dict)
    sigma: dict[str, float] = field(default_factory=dict)
    in_domain: bool | None = None
    domain_score: float | None = None


@dataclass
class SimilarResult:
    """The answer: the models used, the query spectrum and its neighbours, nearest first."""

    model_id: str
    label_model_id: str | None
    metric: str
    query: QuerySpectrum
    rows: list[sa.Row]
    exact: bool  # whether the neighbours came from an exact scan (not the index)


def vector_text(vector: np.ndarray) -> str:
    """A pgvector literal holding the float32 values exactly."""
    return "[" + ",".join(f"{v:.9g}" for v in np.asarray(vector, np.float32)) + "]"


def encode_upload(settings: Settings, engine: sa.Engine, request: SimilarRequest
                  ) -> tuple[str, str | None, str, QuerySpectrum]:
    """(autoencoder, label model, metric, query) of an uploaded file.

    Raises
    ------
    DALIError
        400 for a file that is no readable spectrum or does not cover the model's grid
        (the ingest's messages); 404 for an unknown or unexported model.
    """
    runtime = load_runtime(settings, engine, request.model)
    assert request.upload is not None
    settings.tmp_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=settings.tmp_dir) as folder:
        path = Path(folder) / "upload"
        path.write_bytes(request.upload)
        try:
            spectrum = read_spectrum(path)
        except SpectrumError as exc:
            raise DALIError(f"UPLOAD is not a spectrum this service reads: {exc}") from None
    try:
        encoded = runtime.encode(spectrum)
    except OperatorError as exc:  # ml.preprocess.PreprocessError: not on the model grid
        raise DALIError(f"UPLOAD cannot be encoded by model {runtime.model_id}: {exc}") \
            from None
    query = QuerySpectrum("upload", encoded.latent, encoded.rv_kms, encoded.snr)
    if runtime.label_model_id is not None:
        prediction = runtime.predict(encoded)
        query.labels, query.sigma = prediction.labels, prediction.sigma
        query.in_domain, query.domain_score = prediction.in_domain, prediction.domain_score
    metric = index_plan(runtime.latent_dim, runtime.distance_metric or "l2").metric
    return runtime.model_id, runtime.label_model_id, metric, query


def stored_query(engine: sa.Engine, request: SimilarRequest
                 ) -> tuple[str, str | None, str, QuerySpectrum]:
    """(autoencoder, label model, metric, query) of an archive spectrum asked by ID.

    Raises
    ------
    DALIError
        404 for an unknown spectrum or model, or a spectrum without a vector of it.
    """
    ae_row, label_row = resolve_models(engine, request.model)
    label_model = None if label_row is None else label_row.model_id
    assert request.did is not None
    with engine.connect() as conn:
        row = conn.execute(sa.text(
            "SELECT s.spectrum_id, s.snr, v.vec::real[] AS vec FROM latentvo.spectra AS s "
            "LEFT JOIN latentvo.latent AS v ON v.spectrum_id = s.spectrum_id "
            "AND v.model_id = :m WHERE s.obs_publisher_did = :did"),
            {"m": ae_row.model_id, "did": request.did}).first()
        if row is None:
            raise DALIError(f"NotFoundFault: no spectrum with ID {request.did}", 404)
        if row.vec is None:
            raise DALIError(f"NotFoundFault: spectrum {request.did} has no latent vector of "
                            f"model {ae_row.model_id}", 404)
        query = QuerySpectrum(request.did, np.asarray(row.vec, np.float32), snr=row.snr)
        query.rv_kms = None
        if label_model is not None:
            labels = conn.execute(sa.text(
                "SELECT * FROM latentvo.labels WHERE model_id = :m AND spectrum_id = :s"),
                {"m": label_model, "s": row.spectrum_id}).mappings().first()
            if labels is not None:
                query.labels = {q: labels[q] for q in LABEL_QUANTITIES
                                if labels[q] is not None}
                query.sigma = {q: labels[f"{q}_err"] for q in LABEL_QUANTITIES
                               if labels[f"{q}_err"] is not None}
                query.in_domain, query.domain_score = labels["in_domain"], labels["domain_score"]
    metric = index_plan(int(ae_row.latent_dim), ae_row.distance_metric or "l2").metric
    return ae_row.model_id, label_model, metric, query


def top_k_filtered_sql(latent_dim: int, metric: str, request: SimilarRequest, *,
                       exact: bool) -> tuple[str, dict[str, object]]:
    """SQL (params :model_id, :query, :k, :label_model and the bounds) of the K nearest
    vectors of the model whose label-model rows pass the request's filters.

    The ORDER BY key is the index plan's distance, so the model's HNSW index serves it
    (an iterative scan when filtered), or its exact form (a scan and sort).
    """
    distance = index_plan(latent_dim, metric).distance("v.vec", ":query")
    key = exact_order(distance) if exact else distance
    where = ["v.model_id = :model_id"]
    args: dict[str, object] = {}
    for column, (lo, hi) in request.ranges.items():
        if np.isfinite(lo):
            where.append(f"l.{column} >= :{column}_lo")
            args[f"{column}_lo"] = lo
        if np.isfinite(hi):
            where.append(f"l.{column} <= :{column}_hi")
            args[f"{column}_hi"] = hi
    if request.in_domain is not None:
        where.append("l.in_domain = :in_domain")
        args["in_domain"] = request.in_domain
    join = ("JOIN latentvo.labels AS l ON l.spectrum_id = v.spectrum_id "
            "AND l.model_id = :label_model " if request.filtered else "")
    return (f"SELECT v.spectrum_id, {distance} AS distance FROM latentvo.latent AS v {join}"
            f"WHERE {' AND '.join(where)} ORDER BY {key} LIMIT :k", args)


def _columns() -> str:
    labels = ", ".join(f"l.{q}, l.{q}_err" for q in LABEL_QUANTITIES)
    return (f"nn.spectrum_id, nn.distance, s.obs_publisher_did, s.target_name, s.s_ra, "
            f"s.s_dec, s.snr, s.instrument_name, {labels}, l.in_domain, l.domain_score")


def neighbours(conn: sa.Connection, model_id: str, label_model: str | None, metric: str,
               latent_dim: int, vector: np.ndarray, request: SimilarRequest
               ) -> tuple[list[sa.Row], bool]:
    """The K nearest spectra with their labels, nearest first; and whether exactly."""
    plan = index_plan(latent_dim, metric)
    use_index = plan.indexed and request.k <= MAX_INDEX_TOP
    if use_index:
        settings = plan.session_settings(request.k)
        if request.filtered:
            settings["hnsw.ef_search"] = str(max(int(settings["hnsw.ef_search"]),
                                                 FILTERED_EF_SEARCH))
        for key, value in settings.items():
            conn.execute(sa.text(f"SET LOCAL {key} = '{value}'"))
    args = {"query": vector_text(vector), "model_id": model_id, "k": request.k,
            "label_model": label_model}

    def run(exact: bool) -> list[sa.Row]:
        sql, bounds = top_k_filtered_sql(latent_dim, metric, request, exact=exact)
        return list(conn.execute(sa.text(
            f"SELECT {_columns()} FROM ({sql}) AS nn "
            "JOIN latentvo.spectra AS s USING (spectrum_id) "
            "LEFT JOIN latentvo.labels AS l ON l.spectrum_id = nn.spectrum_id "
            "AND l.model_id = :label_model ORDER BY nn.distance"), {**args, **bounds}).all())

    rows = run(exact=not use_index)
    if use_index and len(rows) < request.k:  # the index scan ended short: ask exactly
        return run(exact=True), True
    return rows, not use_index


def find_similar(settings: Settings, engine: sa.Engine, request: SimilarRequest
                 ) -> SimilarResult:
    """The answer to a ``/similar`` request (``engine``: the read-only role's).

    Raises
    ------
    DALIError
        400 for a bad upload, a label filter without a label model or a search past
        ``[similar] timeout``; 404 for an unknown spectrum or model.
    """
    if request.upload is not None:
        model_id, label_model, metric, query = encode_upload(settings, engine, request)
    else:
        model_id, label_model, metric, query = stored_query(engine, request)
    if request.filtered and label_model is None:
        raise DALIError(f"TEFF, LOGG, MH and IN_DOMAIN filter on predicted labels, but "
                        f"autoencoder {model_id} has no label model")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SET LOCAL transaction_read_only = on"))
            conn.execute(sa.text(
                f"SET LOCAL statement_timeout = {int(settings.similar.timeout) * 1000}"))
            rows, exact = neighbours(conn, model_id, label_model, metric, len(query.latent),
                                     query.latent, request)
    except sa.exc.OperationalError as exc:
        if getattr(exc.orig, "pgcode", None) != QUERY_CANCELED:
            raise
        raise DALIError(f"the neighbour search ran longer than this service's limit of "
                        f"{settings.similar.timeout} s ([similar] timeout)") from None
    return SimilarResult(model_id, label_model, metric, query, rows, exact)
