"""latentvo's ML functions in ADQL, and how a query reaches a model's HNSW index.

``lvo_latent_distance``, ``lvo_latent_cosine_distance`` and
``lvo_latent_similarity`` become pgvector distance operators. For an index to
serve ``SELECT TOP k ... WHERE model_id = 'M' ORDER BY lvo_latent_distance(vec, q)``
three things must line up, and this module is where they do:

1. **Model pinning.** A ``model_id = 'M'`` conjunct of the WHERE (or a join's ON)
   clause fixes the model of a table with a vector column (:func:`model_pins`):
   only then is it known which model's index could apply.
2. **The expression.** The distance is built by the model's
   :class:`schema.latent_index.IndexPlan` (``CAST(vec AS halfvec(2048)) <-> ...``),
   the same plan that wrote the index's DDL, when the function's metric is the
   index's; otherwise the operands stay uncast (exact float32 values, a scan).
3. **ORDER BY.** The distance is carried as a typed :class:`KnnTerm` on its
   :class:`Value`; :func:`order_key` orders by the distance expression itself
   (ascending; a similarity ordered DESC becomes its cosine distance ASC) and
   sets the plan's ``hnsw.ef_search`` for the query's row limit.

An HNSW scan is approximate and can end short: nodes the graph does not reach
are never returned, and ``hnsw.ef_search`` stops at pgvector's 1,000. So the index
only serves the one form it suits, ``SELECT TOP k ... FROM t WHERE model_id = 'M'
ORDER BY distance`` with ``k <= INDEX_MAX_TOP`` (500) and no other condition (the
translator decides, see ``Translator._index_may_order``), and even then through
:func:`complete_top_k`, which answers the exact ordering whenever the scan
returned fewer than ``k`` rows. Every other ordering by a latent distance is
exact: its key is :attr:`KnnTerm.exact_sql`, which no index can serve. A
result is therefore never silently short; what the index trades is only which
of nearly equal neighbours a top-k finds (its recall).

Which plan a model has is read from ``latentvo.models`` by :class:`ModelIndexes`,
kept for a minute per model.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlalchemy as sa

from schema.latent_index import MAX_INDEX_TOP, METRICS, IndexPlan, exact_order, model_plan
from vo_service.adql import ast
from vo_service.adql import types as T
from vo_service.adql.functions import UDF, TranslatorView, need, register
from vo_service.adql.values import Value

if TYPE_CHECKING:
    from vo_service.adql.catalog import Catalog
    from vo_service.adql.translate import Binding, Rel

MODEL_COLUMN = "model_id"
INDEX_MAX_TOP = MAX_INDEX_TOP
"""The largest TOP an HNSW index serves (500): its candidate list (``hnsw.ef_search``,
at most 1,000 in pgvector) is ``2 k``, so the top ``k`` come from a longer list."""


@dataclass(frozen=True)
class KnnTerm:
    """A latent distance as an ORDER BY can hand it to an HNSW index.

    ``order_sql`` is the distance in operator form (ascending = nearest first);
    ``similarity`` says the value itself is ``1 - order_sql`` (so ordering by the
    value DESC is ordering by ``order_sql`` ASC); ``plan`` is the index that can
    serve the ordering, None when none can (no pinned model, no index, or the
    function's metric is not the index's).
    """

    order_sql: str
    similarity: bool
    plan: IndexPlan | None

    @property
    def exact_sql(self) -> str:
        """The same distance as a key no index can serve (so the ordering is exact)."""
        return self.order_sql if self.plan is None else exact_order(self.order_sql)


# ------------------------------------------------------------------ model pinning


def model_pins(where: ast.Condition, resolve: Callable[[ast.ColumnRef], Binding | None]
               ) -> Iterator[tuple[Rel, str]]:
    """``(relation, model_id)`` for each ``model_id = 'M'`` conjunct of ``where``.

    Only top-level AND-ed equalities count (under OR or NOT the model is not
    fixed), and only on tables with a vector column. ``resolve`` finds a column
    reference's binding in the clause's scope (None if it does not resolve).
    """
    conjuncts = where.items if isinstance(where, ast.BoolOp) and where.op == "AND" else [where]
    for c in conjuncts:
        if not (isinstance(c, ast.Comparison) and c.op == "="):
            continue
        ref, lit = (c.right, c.left) if isinstance(c.right, ast.ColumnRef) else (c.left,
                                                                                 c.right)
        if not (isinstance(ref, ast.ColumnRef) and isinstance(lit, ast.Literal)
                and lit.kind == "string" and isinstance(lit.value, str)):
            continue
        b = resolve(ref)
        rel = b.rel if b is not None else None
        if (b is not None and rel is not None and rel.table is not None and b.column is not None
                and b.column.name == MODEL_COLUMN
                and any(col.type == T.VECTOR for col in rel.table.columns)):
            yield rel, lit.value


def index_for(value: Value, catalog: Catalog) -> IndexPlan | None:
    """The plan of the index over this vector column, when its model is pinned."""
    b = value.source
    if value.type != T.VECTOR or b is None or b.rel is None or b.rel.model_pin is None:
        return None
    return catalog.latent_index(b.rel.model_pin)


# ------------------------------------------------------------------ functions


def _vector(call: ast.FuncCall, v: Value) -> Value:
    if v.type == T.TEXT and v.is_const:
        return Value(f"CAST({v.sql} AS vector)", T.VECTOR)
    return need(call, v, (T.VECTOR,), "a latent vector (e.g. latent.vec)")


def _distance(tr: TranslatorView, call: ast.FuncCall, args: list[Value], metric: str,
              similarity: bool) -> tuple[str, KnnTerm]:
    """The distance SQL of two vectors under ``metric``, as the index builds it if one
    serves them, and its :class:`KnnTerm`."""
    a, b = (_vector(call, x) for x in args)
    plan = index_for(a, tr.catalog) or index_for(b, tr.catalog)
    if plan is not None and plan.indexed and plan.metric == metric:
        sql = plan.distance(a.sql, b.sql)
    else:
        plan = None
        sql = f"({a.sql} {METRICS[metric][0]} {b.sql})"
    return sql, KnnTerm(sql, similarity, plan)


@register("lvo_latent_distance")
def _lvo_distance(tr: TranslatorView, call: ast.FuncCall, args: list[Value]) -> Value:
    sql, knn = _distance(tr, call, args, "l2", similarity=False)
    return Value(sql, T.DOUBLE, ucd="stat.value",
                 description="Euclidean distance in latent space", knn=knn)


@register("lvo_latent_cosine_distance")
def _lvo_cosine_distance(tr: TranslatorView, call: ast.FuncCall, args: list[Value]) -> Value:
    sql, knn = _distance(tr, call, args, "cosine", similarity=False)
    return Value(sql, T.DOUBLE, ucd="stat.value",
                 description="Cosine distance in latent space", knn=knn)


@register("lvo_latent_similarity")
def _lvo_similarity(tr: TranslatorView, call: ast.FuncCall, args: list[Value]) -> Value:
    sql, knn = _distance(tr, call, args, "cosine", similarity=True)
    return Value(f"(1 - {sql})", T.DOUBLE, ucd="stat.value",
                 description="Cosine similarity in latent space", knn=knn)


@register("lvo_latent_component")
def _lvo_component(tr: TranslatorView, call: ast.FuncCall, args: list[Value]) -> Value:
    vec = _vector(call, args[0])
    dim = need(call, args[1], T.INTEGERS, "an integer dimension")
    return Value(f"(CAST({vec.sql} AS REAL[]))[{dim.sql} + 1]", T.REAL, ucd="src.var",
                 description="Component of a latent vector")


def order_key(knn: KnnTerm, descending: bool, index_limit: int | None,
              settings: dict[str, str]) -> tuple[str, bool, bool]:
    """The ORDER BY key and direction for a latent distance, and whether the index serves it.

    ``index_limit`` is the row limit when the query has the form an index may serve
    (None: it has not, and the key is exact). A nearest-first ordering of an indexed
    distance then gets the plan's search settings in ``settings`` (``SET LOCAL``
    for the query); the caller must guard its result with :func:`complete_top_k`.
    """
    if knn.similarity:
        descending = not descending  # similarity DESC == cosine distance ASC
    if knn.plan is not None and not descending and index_limit is not None:
        settings.update(knn.plan.session_settings(index_limit))
        return knn.order_sql, descending, True
    return knn.exact_sql, descending, False


def only_model_pins(where: ast.Condition,
                    resolve: Callable[[ast.ColumnRef], Binding | None]) -> bool:
    """Whether every conjunct of ``where`` is a ``model_id = 'M'`` pin.

    Any other condition filters what the index scan yields, and pgvector's iterative
    scan gives up after ``hnsw.max_scan_tuples``: a top-k could come back short.
    """
    conjuncts = where.items if isinstance(where, ast.BoolOp) and where.op == "AND" else [where]
    return len(list(model_pins(where, resolve))) == len(conjuncts)


def complete_top_k(index_sql: str, exact_sql: str, k: int, names: tuple[str, str, str]) -> str:
    """A SELECT answering ``index_sql``'s rows when there are ``k``, else ``exact_sql``'s.

    Both are the same ``... ORDER BY ... LIMIT k`` query, one with the index's key
    and one with the exact key. The index's rows are kept (``MATERIALIZED``) and
    counted; PostgreSQL runs the exact branch only when they are fewer than ``k``
    (its condition is a one-time filter), and then the exact query decides which
    rows exist. ``names`` are three fresh SQL aliases. Each branch yields its
    rows in its own order and only one yields any.
    """
    ann, exact, rows = names
    count = f"(SELECT count(*) FROM {ann})"
    return (f"SELECT * FROM (WITH {ann} AS MATERIALIZED ({index_sql}) "
            f"SELECT * FROM {ann} WHERE {count} >= {k} UNION ALL "
            f"SELECT * FROM ({exact_sql}) AS {exact} WHERE {count} < {k}) AS {rows}")


# ------------------------------------------------------------------ the models' plans


class ModelIndexes:
    """The latent-index plan of each model, read from ``latentvo.models``, cached.

    The ADQL catalog calls this for every pinned model of every query; a model's
    row changes only when it is registered, so each answer is kept ``ttl_s``
    seconds (a model registered meanwhile is seen within that time).
    """

    def __init__(self, engine: sa.Engine, ttl_s: float = 60.0) -> None:
        self.engine = engine
        self.ttl_s = ttl_s
        self._cache: dict[str, tuple[float, IndexPlan | None]] = {}
        self._lock = threading.Lock()

    def __call__(self, model_id: str) -> IndexPlan | None:
        with self._lock:
            cached = self._cache.get(model_id)
        if cached is not None and time.monotonic() - cached[0] < self.ttl_s:
            return cached[1]
        with self.engine.connect() as conn:
            plan = model_plan(conn, model_id)
        with self._lock:
            self._cache[model_id] = (time.monotonic(), plan)
        return plan


_ORDERING = (
    "Orderings by it are exact (every row, exact order), except the approximate "
    "nearest-neighbour form SELECT TOP k ... FROM one table WHERE model_id = 'M' (and no "
    f"other condition) ORDER BY it, k <= {INDEX_MAX_TOP}: model M's HNSW index serves that "
    "when its metric matches, and may then miss some true neighbours (never rows: a short "
    "index scan is answered exactly).")

UDFS: tuple[UDF, ...] = (
    UDF("lvo_latent_distance(a REAL[], b REAL[]) -> DOUBLE PRECISION",
        "Euclidean (L2) distance between two latent vectors (pgvector <->). "
        "q may be a scalar subquery such as (SELECT vec FROM latentvo.latent WHERE "
        "spectrum_id = 123 AND model_id = 'M') or a string '[0.1, 0.2, ...]'. " + _ORDERING),
    UDF("lvo_latent_cosine_distance(a REAL[], b REAL[]) -> DOUBLE PRECISION",
        "Cosine distance 1 - cos(a, b) between two latent vectors (pgvector <=>). "
        + _ORDERING),
    UDF("lvo_latent_similarity(a REAL[], b REAL[]) -> DOUBLE PRECISION",
        "Cosine similarity cos(a, b) between two latent vectors (1 for identical "
        "directions); ORDER BY it DESC for nearest first. " + _ORDERING),
    UDF("lvo_latent_component(v REAL[], dim INTEGER) -> REAL",
        "Component dim (0-based, as in latentvo.latent_dimensions.dim) of a latent vector."),
)
"""The ``lvo_`` functions as TAPRegExt declares them."""
