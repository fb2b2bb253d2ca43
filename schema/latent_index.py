"""The per-model similarity index over ``latentvo.latent.vec`` (pgvector HNSW).

All models share one ``vec`` column of unconstrained dimension, so each model gets a
partial expression index ``latent_hnsw_<model>`` on ``CAST(vec AS <type>(N))``
restricted to its rows. A query is served by that index only when it orders by
the same expression, with the operator of the index's metric, under the same
``model_id`` predicate. :class:`IndexPlan` is that contract, written once: the
DDL here (:func:`ensure_index`), the query form here (:func:`top_k_sql`, used by
DataLink's ``similar``) and the ADQL translation (``vo_service.adql.latent``) all
build their SQL from a plan, never from their own copy of the rules.

pgvector's HNSW takes at most 2,000 dimensions for ``vector`` and 4,000 for
``halfvec`` (16-bit floats); beyond that no index is built and queries scan.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Literal, TypedDict

import sqlalchemy as sa

from schema.tables import models

VECTOR_MAX_DIM = 2000
HALFVEC_MAX_DIM = 4000
METRICS = {"l2": ("<->", "l2_ops"), "cosine": ("<=>", "cosine_ops")}
"""Distance metric -> (pgvector operator, operator-class suffix)."""
DEFAULT_METRIC = "l2"
MIN_EF_SEARCH = 40  # pgvector's default hnsw.ef_search
MAX_EF_SEARCH = 1000  # pgvector's upper bound for hnsw.ef_search
MAX_INDEX_TOP = MAX_EF_SEARCH // 2
"""The largest top-k an index serves (500): the candidate list (``hnsw.ef_search``)
is ``2 k``, so the top ``k`` come from a longer list; larger k are exact scans."""


def metric_of(distance_metric: str | None) -> str:
    """The metric a model's registry entry names (``models.distance_metric``), L2 by default."""
    metric = (distance_metric or DEFAULT_METRIC).strip().lower()
    return metric if metric in METRICS else DEFAULT_METRIC


class UnindexedRecord(TypedDict):
    """:meth:`IndexPlan.record` of a latent space too large for an index."""

    type: Literal["none"]
    reason: str | None
    metric: str


class HNSWRecord(TypedDict):
    """:meth:`IndexPlan.record` of a latent space with an HNSW index."""

    type: Literal["hnsw"]
    cast: str
    metric: str
    operator: str
    opclass: str


@dataclass(frozen=True)
class IndexPlan:
    """How a latent space of ``dim`` dimensions is indexed and queried.

    ``vtype`` is ``"vector"`` or ``"halfvec"``, or None when the space is too large
    for an HNSW index (``reason`` says why). Distances of an indexed space are
    computed on ``CAST(x AS <vtype>(dim))`` with the metric's operator; that is the
    expression the index stores, so the planner can match a query to it.
    """

    dim: int
    metric: str
    vtype: str | None
    reason: str | None = None

    @property
    def indexed(self) -> bool:
        """Whether the space has an HNSW index."""
        return self.vtype is not None

    @property
    def cast(self) -> str:
        """The SQL type the index expression casts ``vec`` to, e.g. ``halfvec(2048)``."""
        return f"{self.vtype or 'vector'}({self.dim})"

    @property
    def operator(self) -> str:
        """The pgvector distance operator of :attr:`metric` (``<->`` or ``<=>``)."""
        return METRICS[self.metric][0]

    @property
    def opclass(self) -> str:
        """The HNSW operator class, e.g. ``halfvec_cosine_ops``."""
        return f"{self.vtype or 'vector'}_{METRICS[self.metric][1]}"

    def expression(self, sql: str) -> str:
        """``sql`` (a vector expression) in the form the index stores."""
        return f"CAST({sql} AS {self.cast})"

    def distance(self, a: str, b: str) -> str:
        """The distance between two vector expressions, as the index can order by it."""
        return f"({self.expression(a)} {self.operator} {self.expression(b)})"

    def session_settings(self, k: int) -> dict[str, str]:
        """``SET LOCAL`` settings for a top-``k`` scan of the index.

        ``hnsw.ef_search`` (the candidate list) must be at least ``k`` for the scan to
        return ``k`` rows, and is ``2 k`` where pgvector allows (at most
        :data:`MAX_EF_SEARCH`) so the top ``k`` are picked from more candidates than
        ``k``; iterative scans in strict order keep going when candidates run out.
        Even so a scan can end short (nodes the graph does not reach): callers
        guard against that.
        """
        return {"hnsw.ef_search": str(min(MAX_EF_SEARCH, max(MIN_EF_SEARCH, 2 * k))),
                "hnsw.iterative_scan": "strict_order"}

    def record(self) -> UnindexedRecord | HNSWRecord:
        """The plan as recorded in ``models.architecture["similarity_index"]``.

        The model registry says how similarity searches on the model are served.
        """
        if not self.indexed:
            return {"type": "none", "reason": self.reason, "metric": self.metric}
        return {"type": "hnsw", "cast": self.cast, "metric": self.metric,
                "operator": self.operator, "opclass": self.opclass}


def index_plan(latent_dim: int, metric: str) -> IndexPlan:
    """Which index a latent space of this size and metric gets."""
    metric = metric_of(metric)
    if latent_dim <= VECTOR_MAX_DIM:
        return IndexPlan(latent_dim, metric, "vector")
    if latent_dim <= HALFVEC_MAX_DIM:
        return IndexPlan(latent_dim, metric, "halfvec")
    return IndexPlan(latent_dim, metric, None, f"{latent_dim} dimensions exceed pgvector "
                     f"HNSW's limit of {HALFVEC_MAX_DIM} (halfvec)")


def model_plan(conn: sa.Connection, model_id: str) -> IndexPlan | None:
    """The plan of a registered model's latent space; None for a model with no vectors
    (a label model) or no such model."""
    row = conn.execute(sa.select(models.c.latent_dim, models.c.distance_metric).where(
        models.c.model_id == model_id)).first()
    if row is None or not row.latent_dim:
        return None
    return index_plan(int(row.latent_dim), row.distance_metric)


def index_name(model_id: str) -> str:
    """``latent_hnsw_<sanitised id>``, within PostgreSQL's 63-character limit, unique."""
    clean = re.sub(r"[^a-z0-9]+", "_", model_id.lower()).strip("_")
    name = f"latent_hnsw_{clean}"
    if len(name) > 63 or clean != model_id:
        digest = hashlib.sha256(model_id.encode()).hexdigest()[:8]
        name = f"latent_hnsw_{clean[:42]}_{digest}"
    return name


def ensure_index(conn: sa.Connection, model_id: str, latent_dim: int, metric: str) -> str | None:
    """Create the model's partial HNSW index if missing; returns its name (None: none)."""
    plan = index_plan(latent_dim, metric)
    if not plan.indexed:
        return None
    name = index_name(model_id)
    literal = model_id.replace("'", "''")
    conn.execute(sa.text(
        f'CREATE INDEX IF NOT EXISTS "{name}" ON latentvo.latent USING hnsw '
        f"(({plan.expression('vec')}) {plan.opclass}) WHERE model_id = '{literal}'"))
    return name


def drop_index(conn: sa.Connection, model_id: str) -> None:
    """Drop the model's HNSW index, if it has one."""
    conn.execute(sa.text(f'DROP INDEX IF EXISTS latentvo."{index_name(model_id)}"'))


def exact_order(distance_sql: str) -> str:
    """A distance as an ORDER BY key no index can serve, so the ordering is exact.

    An HNSW scan is approximate and may end short of its LIMIT (nodes the graph
    does not reach are never returned). Adding zero keeps the value and makes the
    expression one the planner cannot match to the index: it scans and sorts.
    """
    return f"({distance_sql} + 0)"


def top_k_sql(latent_dim: int, metric: str, *, exact: bool = False) -> str:
    """SQL (params :model_id, :query as '[..]' text, :k) of the model's k nearest vectors.

    The model's index serves it (approximate; the caller sets
    :meth:`IndexPlan.session_settings` and checks it got ``k`` rows), or with
    ``exact`` a scan does (every row, exact order).
    """
    distance = index_plan(latent_dim, metric).distance("vec", ":query")
    key = exact_order(distance) if exact else distance
    return (f"SELECT spectrum_id, {distance} AS distance FROM latentvo.latent "
            f"WHERE model_id = :model_id ORDER BY {key} LIMIT :k")
