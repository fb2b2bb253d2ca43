"""Similarity orderings never lose rows: issue 16, finding 7.

2,000 latent vectors of one model with a deliberately sparse HNSW graph
(``m = 2``), where some rows cannot be reached by an index scan at all: any
query the index serves beyond its promise returns fewer rows than it should.
A second model has only 300 vectors, so that even a TOP the index may serve
finds its scan short and must be answered exactly.
Every ordering by a latent distance is checked against numpy's brute force
(float64 distances of the same float32 vectors): the row count always, the
exact ids and order wherever the service promises exactness.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import sqlalchemy as sa
from pgvector.sqlalchemy import Vector

from schema.latent_index import MAX_EF_SEARCH, index_plan
from schema.vo import VOTable, vo_column, vo_table
from vo_service.adql import Catalog, translate
from vo_service.adql.latent import INDEX_MAX_TOP
from vo_service.db.copy import copy_text

SCHEMA = "similar_test"
MODEL, SMALL = "sparse", "small"
N, N_SMALL, DIM = 2_000, 300, 6
MAXREC = 20_000  # the TAP default: a query without TOP gets LIMIT MAXREC + 1
PLAN = index_plan(DIM, "l2")

metadata = sa.MetaData()
vectors = vo_table(
    "vectors", metadata,
    vo_column("id", sa.Integer, primary_key=True, description="Row id", ucd="meta.id"),
    vo_column("model_id", sa.Text, nullable=False, description="Model", ucd="meta.id"),
    vo_column("vec", Vector(), nullable=False, description="Latent vector", ucd="src.var"),
    schema=SCHEMA, vo=VOTable(description="Latent vectors, sparse HNSW graph"),
)


@pytest.fixture(scope="module")
def sparse(database):
    """The table, MODEL's vectors (row id i + 1 = vecs[i]) and the catalog that knows the
    indexes; SMALL's vectors are MODEL's first N_SMALL."""
    vecs = np.random.default_rng(16).normal(0, 1, (N, DIM)).astype(np.float32)
    engine = database.engine
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
        conn.execute(sa.text(f"CREATE SCHEMA {SCHEMA}"))
    metadata.create_all(engine)
    lines = "".join(f"{i + 1 + offset}\t{model}\t[{','.join(repr(float(x)) for x in v)}]\n"
                    for model, n, offset in ((MODEL, N, 0), (SMALL, N_SMALL, N))
                    for i, v in enumerate(vecs[:n]))
    with engine.begin() as conn:
        copy_text(conn, f"{SCHEMA}.vectors", ["id", "model_id", "vec"], io.StringIO(lines))
        for model in (MODEL, SMALL):
            conn.execute(sa.text(
                f"CREATE INDEX ix_{model} ON {SCHEMA}.vectors USING hnsw "
                f"(({PLAN.expression('vec')}) {PLAN.opclass}) WITH (m = 2, ef_construction = 4) "
                f"WHERE model_id = '{model}'"))
        reader = database.settings.reader_role
        conn.execute(sa.text(f'GRANT USAGE ON SCHEMA {SCHEMA} TO "{reader}"'))
        conn.execute(sa.text(f'GRANT SELECT ON ALL TABLES IN SCHEMA {SCHEMA} TO "{reader}"'))
        conn.execute(sa.text(f"ANALYZE {SCHEMA}.vectors"))
    catalog = Catalog.from_tables(metadata.sorted_tables,
                                  latent_index=lambda m: PLAN if m in (MODEL, SMALL) else None)
    yield database, vecs, catalog
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))


def run(sparse, query: str, maxrec: int | None = MAXREC) -> list[tuple]:
    """The translation's rows, as the TAP runner gets them (setup, then the query)."""
    database, _, catalog = sparse
    t = translate(query, catalog, maxrec=maxrec)
    with database.reader_engine.begin() as conn:
        for stmt in t.setup_sql(timeout_ms=60_000):
            conn.execute(sa.text(stmt))
        return [tuple(r) for r in conn.execute(sa.text(t.sql))]


def brute_force(vecs: np.ndarray, target: int) -> np.ndarray:
    """Row ids nearest first (ties by id, as no ordering promises more)."""
    d = np.linalg.norm(vecs.astype(np.float64) - vecs[target - 1], axis=1)
    return np.lexsort((np.arange(1, N + 1), d)) + 1


def query_vector(target: int) -> str:
    return f"(SELECT vec FROM {SCHEMA}.vectors WHERE id = {target} AND model_id = '{MODEL}')"


def distance_query(target: int, top: int | None = None) -> str:
    return (f"SELECT {f'TOP {top} ' if top else ''}id, lvo_latent_distance(vec, "
            f"{query_vector(target)}) AS d FROM {SCHEMA}.vectors WHERE model_id = '{MODEL}' "
            "ORDER BY d")


@pytest.mark.parametrize(("model", "n"), [(MODEL, N), (SMALL, N_SMALL)])
def test_the_sparse_graphs_lose_rows_in_an_index_scan(sparse, model, n):
    """The premise: a full index scan of these graphs misses rows, so a test that passes
    below is not passing by luck of a well-connected graph."""
    database, vecs, _ = sparse
    with database.reader_engine.begin() as conn:
        for stmt in ("SET LOCAL enable_seqscan = off", "SET LOCAL enable_sort = off",
                     f"SET LOCAL hnsw.ef_search = {MAX_EF_SEARCH}",
                     "SET LOCAL hnsw.iterative_scan = strict_order"):
            conn.execute(sa.text(stmt))
        sql = (f"SELECT id FROM {SCHEMA}.vectors WHERE model_id = '{model}' ORDER BY "
               f"{PLAN.distance('vec', query_vector(1))} LIMIT {n}")
        assert f"ix_{model}" in "\n".join(conn.scalars(sa.text("EXPLAIN " + sql)))
        assert len(conn.execute(sa.text(sql)).all()) < n


def plan_of(sparse, query: str) -> str:
    """EXPLAIN ANALYZE of the translation (so branches that did not run say so)."""
    database, _, catalog = sparse
    t = translate(query, catalog, maxrec=MAXREC)
    with database.reader_engine.begin() as conn:
        for stmt in t.setup_sql(timeout_ms=60_000):
            conn.execute(sa.text(stmt))
        return "\n".join(conn.scalars(sa.text("EXPLAIN (ANALYZE, COSTS OFF) " + t.sql)))


def test_a_top_k_the_index_completes_is_served_by_it_alone(sparse):
    plan = plan_of(sparse, distance_query(23, 10))
    assert "Index Scan using ix_sparse" in plan, plan
    assert "(never executed)" in plan.split("Subquery Scan")[-1], plan


def test_a_short_index_scan_is_answered_exactly(sparse):
    """TOP 300 of SMALL's 300 rows is a form the index may serve; its scan comes back
    short (the premise above), so the exact ordering answers, every row."""
    _, vecs, _ = sparse
    query = (f"SELECT TOP {N_SMALL} id, lvo_latent_distance(vec, {query_vector(9)}) AS d "
             f"FROM {SCHEMA}.vectors WHERE model_id = '{SMALL}' ORDER BY d")
    assert "Index Scan using ix_small" in plan_of(sparse, query)
    rows = run(sparse, query)
    d = np.linalg.norm(vecs[:N_SMALL].astype(np.float64) - vecs[8], axis=1)
    assert [r[0] - N for r in rows] == (np.lexsort((np.arange(N_SMALL), d)) + 1).tolist()


@pytest.mark.parametrize("maxrec", [MAXREC, None])
def test_order_by_distance_without_top_returns_every_row_in_exact_order(sparse, maxrec):
    _, vecs, _ = sparse
    rows = run(sparse, distance_query(7), maxrec=maxrec)
    assert len(rows) == N
    assert [r[0] for r in rows] == brute_force(vecs, 7).tolist()


@pytest.mark.parametrize("top", [INDEX_MAX_TOP + 1, MAX_EF_SEARCH, N - 1, N, N + 5])
def test_top_at_or_above_the_index_limit_is_exact(sparse, top):
    _, vecs, _ = sparse
    rows = run(sparse, distance_query(11, top))
    assert len(rows) == min(top, N)
    assert [r[0] for r in rows] == brute_force(vecs, 11)[:top].tolist()


@pytest.mark.parametrize("top", [1, 10, INDEX_MAX_TOP])
def test_top_below_the_index_limit_gives_top_rows_nearest_first(sparse, top):
    """The index serves these: approximate neighbours (on this poor graph, very much
    so), but never fewer rows, and the distances come back sorted."""
    rows = run(sparse, distance_query(23, top))
    assert len(rows) == top == len({r[0] for r in rows})
    distances = [r[1] for r in rows]
    assert distances == sorted(distances)


def test_other_conditions_fall_back_to_an_exact_scan(sparse):
    """A condition besides the model's could leave an index scan short of TOP rows."""
    _, vecs, _ = sparse
    rows = run(sparse, distance_query(5, 50).replace("ORDER BY", "AND MOD(id, 7) = 0 ORDER BY"))
    want = [i for i in brute_force(vecs, 5).tolist() if i % 7 == 0][:50]
    assert [r[0] for r in rows] == want


def test_similarity_descending_without_top_returns_every_row(sparse):
    """``lvo_latent_similarity DESC`` (cosine): no index of that metric, every row."""
    _, vecs, _ = sparse
    rows = run(sparse, f"SELECT id, lvo_latent_similarity(vec, {query_vector(3)}) AS s FROM "
                       f"{SCHEMA}.vectors WHERE model_id = '{MODEL}' ORDER BY s DESC")
    assert len(rows) == N
    sims = [r[1] for r in rows]
    assert sims == sorted(sims, reverse=True)


@pytest.mark.parametrize("wrap", [
    "SELECT x.id, x.d FROM ({q}) AS x ORDER BY x.d",
    "WITH near AS ({q}) SELECT id, d FROM near ORDER BY d",
    "SELECT id, d FROM ({q}) AS a UNION ALL SELECT id, d FROM ({q}) AS b ORDER BY 2, 1",
])
def test_an_index_served_top_k_works_wherever_a_select_can_stand(sparse, wrap):
    """The guarded form is a SELECT of its own: inside a derived table, a WITH or a
    set operation it keeps its TOP rows."""
    inner = distance_query(31, 20)
    rows = run(sparse, wrap.format(q=inner))
    assert len(rows) == (40 if "UNION" in wrap else 20)
    assert [r[1] for r in rows] == sorted(r[1] for r in rows)
    database, _, catalog = sparse
    assert "MATERIALIZED" in translate(wrap.format(q=inner), catalog, maxrec=MAXREC).sql
