"""The ML jobs against the real database: registry, inference, index, analysis, report."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from ml.analysis import analyse
from ml.archive_reader import cache_for, grid_preparers
from ml.errors import MLError
from ml.infer import forget, infer
from ml.model_registry import get, model_grids
from ml.report import write_report
from ml.train import AutoencoderConfig, LabelConfig
from ml.training_runs import train_autoencoder_run, train_label_run
from schema.latent_index import drop_index, index_name, top_k_sql
from tests.conftest import run_cli
from tests.ml.conftest import LABEL_SET
from vo_service.archive.ingest import Ingester

AE = AutoencoderConfig(latent_dim=8, epochs=4, channels=(8, 16, 32), hidden=64, profile="cpu")
LABELS = LabelConfig(epochs=6, members=2, channels=(8, 16, 32), hidden=64)


def count(database, sql: str, **params) -> int:
    with database.engine.connect() as conn:
        return conn.scalar(sa.text(sql), params)


@pytest.fixture(scope="module")
def models(database, settings, ml_archive):
    ae = train_autoencoder_run(database.engine, settings, model_id="test-ae", config=AE,
                               n_pixels=256, seed=5, progress=False)
    labels = train_label_run(database.engine, settings, label_set=LABEL_SET,
                             autoencoder_id="test-ae", model_id="test-labels", config=LABELS,
                             seed=5, progress=False)
    return ae.record, labels.record


def test_registry_rows_are_complete_and_reproducible(database, settings, models):
    ae, labels = models
    for model_id in ("test-ae", "test-labels"):
        row = get(database.engine, model_id)
        assert (settings.home / row.artifact_path).is_file()
        assert len(row.artifact_sha256) == 64 and len(row.training_checksum) == 64
        assert row.training_size > 0 and row.code_version and row.metrics["history"]
    assert ae.latent_dim == 8 and ae.distance_metric == "l2" and ae.training_size == 300
    assert ae.architecture["similarity_index"]["cast"] == "vector(8)"
    assert labels.base_model_id == "test-ae" and labels.reference_label_source == LABEL_SET
    assert labels.latent_dim is None
    assert ae.hyperparameters["profile"] == "cpu" and labels.hyperparameters["profile"] == "default"
    assert ae.architecture["channels"] == [8, 16, 32]
    again = train_autoencoder_run(database.engine, settings, model_id="test-ae-again",
                                  config=AE, n_pixels=256, seed=5, progress=False).record
    assert again.training_checksum == ae.training_checksum
    assert again.grid == ae.grid
    assert again.metrics["val_neg_elbo_per_pixel"] == ae.metrics["val_neg_elbo_per_pixel"]
    with pytest.raises(MLError, match="already registered"):
        train_autoencoder_run(database.engine, settings, model_id="test-ae", config=AE,
                              n_pixels=256, seed=5, progress=False)


def test_label_model_metrics_are_recorded(models):
    """(Learning itself is tested on the toy problem; ~90 labelled spectra are too few.)"""
    _, labels = models
    m = labels.metrics
    for q in labels.hyperparameters["quantities"]:
        assert m[f"val_rmse_{q}"] > 0 and m[f"val_median_sigma_{q}"] > 0
    assert 0 < m["val_in_domain_fraction"] <= 1
    rows = m["by_snr"]  # held-out stars per S/N bin, with the domain flag
    assert sum(r["n"] for r in rows) == m["n_val"]
    assert all(0 <= r["flagged_fraction"] <= 1 and set(r["labels"]) == set(
        labels.hyperparameters["quantities"]) for r in rows)
    assert len(m["domain"]["score_threshold"]) == 3 and m["domain_threshold"] > 0


def test_inference_is_idempotent_and_resumable(database, settings, models):
    first = infer(database.engine, settings, "test-ae", limit=120)
    assert first.written == 120
    rest = infer(database.engine, settings, "test-ae")
    assert (rest.written, rest.already_done) == (180, 120)
    assert first.rebuilt_index and rest.rebuilt_index  # many new rows: bulk build
    again = infer(database.engine, settings, "test-ae")
    assert again.written == 0
    assert count(database, "SELECT count(*) FROM latentvo.latent WHERE model_id='test-ae'") == 300

    class Interrupted(Exception):
        pass

    def interrupt(_n):
        raise Interrupted

    with pytest.raises(Interrupted):  # killed after the first committed chunk
        infer(database.engine, settings, "test-labels", chunk_size=64, progress=interrupt)
    assert count(database, "SELECT count(*) FROM latentvo.labels") == 64
    resumed = infer(database.engine, settings, "test-labels", chunk_size=64)
    assert resumed.written == 236
    rows = count(database, "SELECT count(*) FROM latentvo.labels WHERE teff_err > 0 "
                 "AND logg_err > 0 AND mh_err > 0 AND domain_score >= 0")
    assert rows == 300


def test_a_label_run_stores_the_latent_vectors_it_encodes(database, settings, models):
    def vectors() -> dict[int, np.ndarray]:
        with database.engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT spectrum_id, vec::real[] AS v FROM "
                                        "latentvo.latent WHERE model_id = 'test-ae'")).all()
        return {r.spectrum_id: np.array(r.v) for r in rows}

    infer(database.engine, settings, "test-ae")
    encoded_alone = vectors()
    forget(database.engine, "test-labels")
    forget(database.engine, "test-ae")
    infer(database.engine, settings, "test-ae", limit=100)
    run = infer(database.engine, settings, "test-labels", chunk_size=128)
    assert (run.written, run.vectors_written) == (300, 200)  # 100 were stored already
    assert run.rebuilt_index and run.index == index_name("test-ae")
    assert "200 latent vectors of autoencoder test-ae written too" in run.summary()
    stored = vectors()
    assert stored.keys() == encoded_alone.keys()
    for sid, vec in encoded_alone.items():  # one shared rest-frame shift, same vectors
        np.testing.assert_allclose(stored[sid], vec, rtol=1e-5, atol=1e-5)
    after = infer(database.engine, settings, "test-ae")
    assert (after.written, after.already_done) == (0, 300)
    assert count(database, "SELECT count(*) FROM pg_indexes WHERE indexname = :n",
                 n=index_name("test-ae")) == 1


def test_similarity_index_exists_and_serves_top_k(database, models):
    infer(database.engine, database.settings, "test-ae")
    name = index_name("test-ae")
    assert count(database, "SELECT count(*) FROM pg_indexes WHERE indexname = :n", n=name) == 1
    with database.engine.begin() as conn:
        query = conn.scalar(sa.text(
            "SELECT vec::text FROM latentvo.latent WHERE model_id='test-ae' LIMIT 1"))
        conn.execute(sa.text("SET LOCAL enable_seqscan = off"))
        params = {"model_id": "test-ae", "query": query, "k": 5}
        plan = "\n".join(conn.scalars(sa.text("EXPLAIN " + top_k_sql(8, "l2")), params))
        hits = conn.execute(sa.text(top_k_sql(8, "l2")), params).all()
    assert name in plan
    assert len(hits) == 5 and hits[0].distance == pytest.approx(0, abs=1e-4)


def test_bad_inputs_are_refused_before_anything_is_written(database, settings, models):
    infer(database.engine, settings, "test-ae")
    # vectors of another size stored under the model (the index refuses them; without it
    # the job must notice)
    with database.engine.begin() as conn:
        sid = conn.scalar(sa.text("SELECT min(spectrum_id) FROM latentvo.spectra"))
        drop_index(conn, "test-ae")
        conn.execute(sa.text("UPDATE latentvo.latent SET vec = '[1,2,3]' WHERE spectrum_id=:s "
                             "AND model_id='test-ae'"), {"s": sid})
    with pytest.raises(MLError, match="do not have its 8 dimensions"):
        infer(database.engine, settings, "test-ae")
    assert forget(database.engine, "test-ae") == 300
    # a spectrum that does not cover the grid: nothing written unless skipped
    with database.engine.begin() as conn:
        em_max = conn.scalar(sa.text("SELECT em_max FROM latentvo.spectra "
                                     "WHERE spectrum_id = :s"), {"s": sid})
        conn.execute(sa.text("UPDATE latentvo.spectra SET em_max = em_min * 1.01 "
                             "WHERE spectrum_id = :s"), {"s": sid})
    try:
        with pytest.raises(MLError, match="1 spectra do not cover the grid"):
            infer(database.engine, settings, "test-ae")
        assert count(database, "SELECT count(*) FROM latentvo.latent WHERE model_id='test-ae'") == 0
        skipped = infer(database.engine, settings, "test-ae", skip_uncovered=True)
        assert skipped.written == 299 and len(skipped.skipped) == 1
    finally:
        with database.engine.begin() as conn:
            conn.execute(sa.text("UPDATE latentvo.spectra SET em_max = :e "
                                 "WHERE spectrum_id = :s"), {"s": sid, "e": em_max})
    infer(database.engine, settings, "test-ae")
    # a missing artifact
    artifact = settings.home / get(database.engine, "test-ae-again").artifact_path
    artifact.rename(artifact.with_suffix(".moved"))
    try:
        with pytest.raises(MLError, match="artifact of model 'test-ae-again' is missing"):
            infer(database.engine, settings, "test-ae-again")
    finally:
        artifact.with_suffix(".moved").rename(artifact)
    assert count(database, "SELECT count(*) FROM latentvo.latent "
                 "WHERE model_id='test-ae-again'") == 0


def test_analysis_and_report(database, settings, models, tmp_path):
    infer(database.engine, settings, "test-ae")
    infer(database.engine, settings, "test-labels")
    result = analyse(database.engine, settings, "test-ae", label_set=LABEL_SET, sample=300)
    assert "rv" in result.quantities and "teff" in result.quantities
    assert count(database, "SELECT count(*) FROM latentvo.latent_dimensions "
                 "WHERE model_id='test-ae'") == 8
    for basis in ("latent", "pca"):
        n = count(database, "SELECT count(DISTINCT quantity) FROM "
                  "latentvo.latent_mutual_information WHERE model_id='test-ae' AND basis=:b",
                  b=basis)
        assert n == len(result.quantities)
    assert np.all(result.information >= 0)
    # the 2-D map: every encoded spectrum (fewer than --map-points), finite, seeded
    assert result.map_points == 300
    points = count(database, "SELECT count(*) FROM latentvo.latent_map AS p JOIN "
                   "latentvo.latent AS v USING (model_id, spectrum_id) "
                   "WHERE p.model_id = 'test-ae' AND p.x = p.x AND p.y = p.y")
    assert points == 300
    with database.engine.connect() as conn:
        first = conn.execute(sa.text("SELECT spectrum_id, x, y FROM latentvo.latent_map "
                                     "WHERE model_id = 'test-ae' ORDER BY spectrum_id")).all()
    again = analyse(database.engine, settings, "test-ae", label_set=LABEL_SET, sample=300,
                    map_points=100)
    assert again.map_points == 100
    with database.engine.connect() as conn:
        second = conn.execute(sa.text("SELECT spectrum_id, x, y FROM latentvo.latent_map "
                                      "WHERE model_id = 'test-ae' ORDER BY spectrum_id")).all()
    assert len(second) == 100 and {r.spectrum_id for r in second} < {r.spectrum_id for r in first}
    analyse(database.engine, settings, "test-ae", label_set=LABEL_SET, sample=300)
    page = write_report(database.engine, settings, ["test-ae", "test-labels"], tmp_path)
    text = page.read_text()
    pngs = sorted(p.name for p in tmp_path.glob("*.png"))
    assert all(name in text for name in pngs)
    for figure in ("history", "information", "mi", "reconstructions", "labels", "residuals",
                   "domain", "by-snr"):
        assert any(name.endswith(f"-{figure}.png") for name in pngs), (figure, pngs)
    informative = count(database, "SELECT count(*) FROM latentvo.latent_dimensions "
                        "WHERE model_id='test-ae' AND informative")
    assert f"{informative} of 8 latent dimensions are informative" in text


def test_cli_help_and_errors(database, latentvo_env, models):
    for command in ("train-ae", "train-labels", "infer", "analyse", "report", "list", "forget"):
        assert run_cli(latentvo_env, "ml", command, "--help").returncode == 0
    listed = run_cli(latentvo_env, "ml", "list")
    assert listed.returncode == 0 and "test-ae" in listed.stdout + listed.stderr
    missing = run_cli(latentvo_env, "ml", "infer", "no-such-model", "-q")
    assert missing.returncode == 1
    assert "no model 'no-such-model'" in missing.stderr and "Traceback" not in missing.stderr


def test_ingest_preprocesses_new_spectra_for_the_models_grids(database, settings, models):
    """Spectra ingested after training go onto the models' grids at ingest, so inference
    reads no file, and gives the vectors that reading the files gives."""
    infer(database.engine, settings, "test-ae")
    with database.engine.begin() as conn:
        chosen = conn.execute(sa.text(
            "SELECT s.spectrum_id, s.obs_id, s.file_sha256, f.path, l.vec::real[] AS vec "
            "FROM latentvo.spectra s JOIN latentvo_ops.ingest_files f USING (file_sha256) "
            "JOIN latentvo.latent l ON l.spectrum_id = s.spectrum_id "
            "AND l.model_id = 'test-ae' ORDER BY s.spectrum_id DESC LIMIT 40")).all()
        ids = [r.spectrum_id for r in chosen]
        for table in ("latentvo.latent", "latentvo.labels", "latentvo_ops.ingest_files"):
            conn.execute(sa.text(f"DELETE FROM {table} WHERE spectrum_id = ANY(:ids)"),
                         {"ids": ids})
        conn.execute(sa.text("DELETE FROM latentvo.spectra WHERE spectrum_id = ANY(:ids)"),
                     {"ids": ids})
    grids = model_grids(database.engine)
    assert get(database.engine, "test-ae").grid in grids
    for grid in grids:
        shutil.rmtree(cache_for(settings, grid).dir, ignore_errors=True)

    report = Ingester(database.engine, settings, workers=2,
                      preparers=grid_preparers(database.engine, settings)).run(
        [Path(r.path) for r in chosen])
    assert (report.ingested, report.preprocessed) == (40, 40 * len(grids))
    cache = cache_for(settings, get(database.engine, "test-ae").grid)
    assert all(r.file_sha256 in cache for r in chosen)

    stored = settings.store_dir.with_name("store-moved")
    settings.store_dir.rename(stored)  # inference must not need the files now
    try:
        done = infer(database.engine, settings, "test-ae")
    finally:
        stored.rename(settings.store_dir)
    assert (done.written, done.skipped) == (40, {})
    assert not done.rebuilt_index  # few new rows: inserted into the index
    assert count(database, "SELECT count(*) FROM pg_indexes WHERE indexname = :n",
                 n=index_name("test-ae")) == 1
    with database.engine.connect() as conn:
        vectors = dict(conn.execute(sa.text(
            "SELECT s.obs_id, l.vec::real[] FROM latentvo.latent l JOIN latentvo.spectra s "
            "USING (spectrum_id) WHERE l.model_id = 'test-ae' AND s.obs_id = ANY(:o)"),
            {"o": [r.obs_id for r in chosen]}).all())
    for r in chosen:
        np.testing.assert_allclose(vectors[r.obs_id], r.vec, rtol=1e-4, atol=1e-5)


def test_an_index_busy_with_queries_is_updated_instead_of_rebuilt(database, settings, models,
                                                                   monkeypatch):
    import ml.infer

    monkeypatch.setattr(ml.infer, "REBUILD_LOCK_WAIT", "200ms")
    forget(database.engine, "test-ae")
    infer(database.engine, settings, "test-ae", limit=100)
    with database.engine.connect() as reader:  # an open query transaction on the table
        reader.execute(sa.text("SELECT count(*) FROM latentvo.latent"))
        rest = infer(database.engine, settings, "test-ae")
    assert rest.written == 200 and not rest.rebuilt_index
    assert count(database, "SELECT count(*) FROM pg_indexes WHERE indexname = :n",
                 n=index_name("test-ae")) == 1
