"""DataLink ``similar`` never answers fewer neighbours than exist (issue 16, finding 7).

A registered autoencoder with 300 latent vectors in ``latentvo.latent`` and a
deliberately sparse HNSW graph (``m = 2``) under the model's own index name: an
index scan of it misses rows. K = 298 asks for K + 1 = 299 rows, a size the index
serves (<= 500); its scan comes back short, so the exact scan must answer, and
the K other spectra come back in brute-force order.
"""

from __future__ import annotations

import numpy as np
import pytest
import sqlalchemy as sa

from schema.latent_index import MAX_INDEX_TOP, index_name, index_plan, top_k_sql
from schema.tables import AUTOENCODER, latent, models, spectra
from vo_service.datalink.similar import neighbours

MODEL, N, DIM = "test-sparse-graph", 300, 6


@pytest.fixture
def sparse_model(database):
    """(spectrum ids, vectors, DIDs) of MODEL's spectra; removed afterwards."""
    vecs = np.random.default_rng(300).normal(0, 1, (N, DIM)).astype(np.float32)
    plan = index_plan(DIM, "l2")
    engine = database.engine
    with engine.begin() as conn:
        conn.execute(models.insert().values(
            model_id=MODEL, kind=AUTOENCODER, architecture="{}", hyperparameters="{}",
            latent_dim=DIM, wavelength_grid="{}", training_selection="test",
            training_checksum="0", code_version="test", random_seed=0, metrics="{}",
            distance_metric="l2", artifact_path="none", artifact_sha256="0"))
        dids = [f"ivo://test/sparse?{i}" for i in range(N)]
        ids = list(conn.scalars(spectra.insert().returning(spectra.c.spectrum_id), [{
            "obs_publisher_did": did, "obs_id": f"sparse-{i}", "obs_collection": "test",
            "s_ra": 0.0, "s_dec": 0.0, "healpix_index": 0, "em_min": 4e-7, "em_max": 7e-7,
            "em_xel": 10, "source_format": "test", "access_format": "application/fits",
            "access_estsize": 1, "file_sha256": f"sparse-{i}", "file_name": f"sparse-{i}.fits",
            "release": "test"} for i, did in enumerate(dids)]))
        conn.execute(latent.insert(), [{"spectrum_id": sid, "model_id": MODEL, "vec": v}
                                       for sid, v in zip(ids, vecs, strict=True)])
        conn.execute(sa.text(
            f'CREATE INDEX "{index_name(MODEL)}" ON latentvo.latent USING hnsw '
            f"(({plan.expression('vec')}) {plan.opclass}) WITH (m = 2, ef_construction = 4) "
            f"WHERE model_id = '{MODEL}'"))
        conn.execute(sa.text("ANALYZE latentvo.latent"))
    try:
        yield np.array(ids), vecs, dids
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP INDEX IF EXISTS latentvo."{index_name(MODEL)}"'))
            conn.execute(latent.delete().where(latent.c.model_id == MODEL))
            conn.execute(spectra.delete().where(spectra.c.spectrum_id.in_(ids)))
            conn.execute(models.delete().where(models.c.model_id == MODEL))


def test_the_sparse_index_scan_comes_back_short(database, sparse_model):
    """The premise: the index form of the query, with the index's settings, misses rows."""
    _, vecs, _ = sparse_model
    plan = index_plan(DIM, "l2")
    with database.reader_engine.begin() as conn:
        for key, value in plan.session_settings(N - 1).items():
            conn.execute(sa.text(f"SET LOCAL {key} = '{value}'"))
        conn.execute(sa.text("SET LOCAL enable_seqscan = off"))
        args = {"model_id": MODEL, "k": N - 1, "query": str(vecs[0].tolist())}
        sql = top_k_sql(DIM, "l2")
        assert index_name(MODEL) in "\n".join(conn.scalars(sa.text("EXPLAIN " + sql), args))
        assert len(conn.execute(sa.text(sql), args).all()) < N - 1 <= MAX_INDEX_TOP


@pytest.mark.parametrize("k", [5, N - 2])
def test_similar_answers_every_neighbour_when_the_index_scan_is_short(database,
                                                                      sparse_model, k):
    ids, vecs, dids = sparse_model
    model, metric, rows = neighbours(database.reader_engine, dids[3], k, MODEL)
    assert (model, metric) == (MODEL, "l2")
    d = np.linalg.norm(vecs.astype(np.float64) - vecs[3], axis=1)
    order = [int(ids[i]) for i in np.lexsort((ids, d)) if i != 3]
    got = [r.spectrum_id for r in rows]
    assert len(got) == k and int(ids[3]) not in got
    if k == N - 2:  # far beyond what this graph's scan reaches: the exact answer
        assert got == order[:k]
