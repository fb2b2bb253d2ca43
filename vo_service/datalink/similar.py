"""The K spectra nearest to one spectrum in a latent space (``/datalink/similar``).

The neighbours come from ``schema.latent_index.top_k_sql``, built from the model's
index plan like the index itself and the ADQL translation of ``TOP k ... WHERE
model_id = 'M' ORDER BY lvo_latent_distance(vec, q)``: ``CAST(vec AS vector(N))
<op> q ORDER BY ... LIMIT k`` over ``latentvo.latent`` restricted to the model,
which the model's partial HNSW index serves for K up to
``schema.latent_index.MAX_INDEX_TOP`` (approximate neighbours). An index scan may
end short of its limit (nodes its graph does not reach), so when it returns fewer
rows than asked, and for larger K, the exact scan answers: never fewer neighbours
than exist. The operator is the model's registered metric (L2 or cosine).
Without MODEL, the spectrum's vector from the highest-ranked autoencoder
(``latentvo.model_rank``) is used. The spectrum itself is left out of its
neighbours (K other spectra).

The result (``vo_service.datalink.document.similar_document``) is a VOTable, one
row per neighbour, nearest first, that is itself DataLink-aware: its
``obs_publisher_did`` column feeds a DataLink service descriptor, so clients can
go on from any neighbour to its files and labels.
"""

from __future__ import annotations

import sqlalchemy as sa

from schema.latent_index import MAX_INDEX_TOP, index_plan, top_k_sql
from schema.tables import MODEL_RANK, spectra
from schema.vo import ColumnMeta
from vo_service.config import DataLinkLimits
from vo_service.dali import DALIError, Params
from vo_service.formats.fields import Field

s = spectra.c
FIELDS = [
    Field.of("rank", ColumnMeta("int", ucd="meta.number",
                                description="1 for the nearest neighbour")),
    Field.from_column(s.obs_publisher_did),
    Field.of("distance", ColumnMeta("double", ucd="stat.value", description="Distance from "
                                    "the query spectrum in latent space (the model's metric)")),
    *(Field.from_column(c) for c in (s.spectrum_id, s.target_name, s.s_ra, s.s_dec, s.snr,
                                     s.instrument_name)),
]


METRICS = {"l2": "Euclidean (L2) distance", "cosine": "cosine distance"}


def neighbours(engine: sa.Engine, did: str, k: int, model: str | None
               ) -> tuple[str, str, list]:
    """The model searched, its metric and the ``k`` nearest other spectra, nearest first.

    ``engine`` is the read-only role's (``DataLink.database.reader_engine``).

    Raises
    ------
    DALIError
        404 (``NotFoundFault``) for an unknown spectrum or one without a latent vector
        of ``model`` (of any autoencoder when ``model`` is None).
    """
    with engine.connect() as conn:
        sid = conn.scalar(sa.select(spectra.c.spectrum_id).where(
            spectra.c.obs_publisher_did == did))
        if sid is None:
            raise DALIError(f"NotFoundFault: no spectrum with ID {did}", 404)
        query = ("SELECT v.model_id, v.vec::text AS vec, m.latent_dim, m.distance_metric "
                 "FROM latentvo.latent AS v JOIN latentvo.models AS m USING (model_id) "
                 f"JOIN {MODEL_RANK} AS r USING (model_id) "
                 "WHERE v.spectrum_id = :sid AND m.latent_dim IS NOT NULL ")
        args = {"sid": sid}
        if model:
            query += "AND v.model_id = :model "
            args["model"] = model
        query += "ORDER BY r.rank LIMIT 1"
        row = conn.execute(sa.text(query), args).first()
        if row is None:
            which = f"model {model}" if model else "any autoencoder"
            raise DALIError(f"NotFoundFault: spectrum {did} has no latent vector from {which}",
                            404)
        plan = index_plan(int(row.latent_dim), row.distance_metric)
        metric = plan.metric
        want = k + 1  # the spectrum itself is among them, at distance 0
        # SET LOCAL: for the rest of this connection's (auto-begun) transaction only
        conn.execute(sa.text("SET LOCAL transaction_read_only = on"))
        use_index = plan.indexed and want <= MAX_INDEX_TOP
        if use_index:
            for key, value in plan.session_settings(want).items():
                conn.execute(sa.text(f"SET LOCAL {key} = '{value}'"))
        args = {"query": row.vec, "model_id": row.model_id, "k": want}
        rows = _nearest(conn, top_k_sql(plan.dim, metric, exact=not use_index), args)
        if use_index and len(rows) < want:  # the index scan ended short: ask exactly
            rows = _nearest(conn, top_k_sql(plan.dim, metric, exact=True), args)
    found = [r for r in rows if r.spectrum_id != sid][:k]
    return row.model_id, metric, found


def _nearest(conn: sa.Connection, top_k: str, args: dict[str, object]) -> list[sa.Row]:
    """The rows of ``top_k`` with the spectra's columns, nearest first."""
    return list(conn.execute(sa.text(
        f"SELECT nn.spectrum_id, nn.distance, s.obs_publisher_did, s.target_name, "
        f"s.s_ra, s.s_dec, s.snr, s.instrument_name FROM ({top_k}) AS nn "
        "JOIN latentvo.spectra AS s USING (spectrum_id) ORDER BY nn.distance"), args).all())


def read_request(params: Params, limits: DataLinkLimits) -> tuple[str, int, str | None]:
    """``(ID, K, MODEL)`` of a similar-spectra request; :class:`DALIError` when malformed.

    K is ``limits.similar_k_default`` when not given, and at most ``similar_k_max``.
    """
    did = params.single("ID")
    if not did or not did.strip():
        raise DALIError("ID is missing: give the publisher DID of a spectrum")
    k_text = params.single("K")
    k_max = limits.similar_k_max
    try:
        k = int(k_text) if k_text not in (None, "") else limits.similar_k_default
    except ValueError:
        raise DALIError(f"K must be an integer from 1 to {k_max}, got {k_text!r}") from None
    if not 1 <= k <= k_max:
        raise DALIError(f"K must be an integer from 1 to {k_max}, got {k}")
    return did.strip(), k, (params.single("MODEL") or "").strip() or None
