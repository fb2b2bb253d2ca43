"""Data releases through the command line and a real server: create (draft, invisible) ->
publish (in TAP_SCHEMA, queryable, cones) -> more ingest, inference and a new model leave
the release's query results identical -> withdraw (gone, the row stays). Also: the
operator errors, deleting drafts, and what concurrent queries see while the state changes.
"""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
import sqlalchemy as sa

from schema.obscore import obscore
from schema.releases import frozen_tables
from tests import catalogue_data
from tests.conftest import REPO, run_cli, wait_until
from tests.releases.conftest import TAP
from tests.tap.conftest import AE_MODEL, LABEL_MODEL, LATENT_DIM, N_SPECTRA
from vo_service.releases.manifest import verify
from vo_service.releases.store import read_release

RELEASE_TABLES = ("spectra", "models", "latent", "labels", "latent_dimensions",
                  "latent_mutual_information", "obscore")
CONE = ("SELECT spectrum_id, s_ra, s_dec FROM {schema}.spectra WHERE 1 = CONTAINS("
        "POINT('ICRS', s_ra, s_dec), CIRCLE('ICRS', 180.0, 0.0, 2.0)) ORDER BY spectrum_id")
# Full result tables compared before and after the archive changes
SNAPSHOTS = (
    "SELECT * FROM dr1.spectra ORDER BY spectrum_id",
    "SELECT * FROM dr1.labels ORDER BY spectrum_id, model_id",
    "SELECT * FROM dr1.latent ORDER BY spectrum_id, model_id",
    "SELECT * FROM dr1.models ORDER BY model_id",
    "SELECT * FROM dr1.latent_dimensions ORDER BY model_id, dim",
    "SELECT * FROM dr1.obscore ORDER BY obs_id",
    "SELECT COUNT(*) AS n, AVG(teff) AS teff FROM dr1.obscore WHERE in_domain = 1",
    CONE.format(schema="dr1"),
)


def cli(env, *args):
    result = run_cli(env, "release", *args)
    return result.returncode, result.stdout + result.stderr


def ok(env, *args) -> str:
    code, out = cli(env, *args)
    assert code == 0, out
    return out


def fails(env, *args) -> str:
    code, out = cli(env, *args)
    assert code == 1, out
    assert out.startswith("error:") and "Traceback" not in out, out
    return " ".join(out.split())


def listed_tables(tap: TAP, schema: str) -> dict[str, str]:
    return dict(tap.rows(f"SELECT table_name, description FROM tap_schema.tables "
                         f"WHERE schema_name = '{schema}'"))


def unknown_table(tap: TAP, table: str) -> bool:
    response = tap.answer(f"SELECT COUNT(*) FROM {table}")
    return response.status_code == 400 and f"unknown table {table}" in response.text


def test_bad_input_is_refused_in_one_line(release_archive, latentvo_env):
    env = latentvo_env
    for name in ("DR1", "1dr", "dr-1", "latentvo", "ivoa", "tap_schema", "rr", "pg_dr1",
                 "select", "latentvo_ops", "public"):
        assert "bad release name" in fails(env, "create", name, "--title", "T"), name
    assert "unknown model 'no-such-model'" in fails(
        env, "create", "dr9", "--title", "T", "--models", AE_MODEL, "--models", "no-such-model")
    assert "is not a DOI" in fails(env, "create", "dr9", "--title", "T", "--doi", "doi:10.1/x")
    assert "needs a title" in fails(env, "create", "dr9", "--title", " ")
    for verb in ("publish", "withdraw", "delete", "show"):
        assert "there is no release 'dr9'" in fails(env, verb, "dr9")
    with release_archive.engine.connect() as conn:
        assert read_release(conn, "dr9") is None
        assert not conn.scalar(sa.text("SELECT 1 FROM pg_namespace WHERE nspname = 'dr9'"))


def test_a_draft_can_be_deleted_but_not_withdrawn(release_archive, latentvo_env):
    env = latentvo_env
    ok(env, "create", "dr7", "--title", "Draft", "--models", LABEL_MODEL)
    with release_archive.engine.connect() as conn:
        columns = conn.execute(sa.text(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'dr7' "
            "AND table_name = 'obscore' ORDER BY ordinal_position")).scalars().all()
        assert columns == [c.name for c in obscore.columns]
        # the live tables' declared indexes, sky zones included; not the per-model HNSW
        # indexes 'ml infer' adds to latentvo.latent (similarity serves the live vectors only)
        for table in frozen_tables("dr7"):
            indexes = [
                conn.execute(sa.text(
                    "SELECT regexp_replace(indexdef, '^.* USING ', '') FROM pg_indexes "
                    "WHERE schemaname = :s AND tablename = :t AND indexdef NOT LIKE '% hnsw %' "
                    "ORDER BY 1"),
                    {"s": schema, "t": table}).scalars().all()
                for schema in ("latentvo", "dr7")]
            assert indexes[0] == indexes[1], table
    assert "exists (draft)" in fails(env, "create", "dr7", "--title", "Again")
    assert "is a draft, never published" in fails(env, "withdraw", "dr7")
    ok(env, "delete", "dr7")
    with release_archive.engine.connect() as conn:
        assert read_release(conn, "dr7") is None
        assert not conn.scalar(sa.text("SELECT 1 FROM pg_namespace WHERE nspname = 'dr7'"))
    ok(env, "create", "dr7", "--title", "Draft again")  # the name is free again
    ok(env, "delete", "dr7")


def add_spectra_and_models(database, env, tmp_path) -> None:
    """Ingest more spectra (the real ingest) and register newer models with products for
    every spectrum, written as ``latentvo ml infer`` writes them."""
    archive = tmp_path / "more"
    result = run_cli(env, "synth", "--out", str(archive), "--n", "6", "--seed", "77")
    assert result.returncode == 0, result.stderr
    result = run_cli(env, "ingest", str(archive), "--no-preprocess", "--quiet")
    assert result.returncode == 0, result.stdout + result.stderr
    rng = np.random.default_rng(9)
    with database.engine.begin() as conn:
        for model_id, kind in (("ae-test-2", "autoencoder"), ("labels-test-2", "label-regressor")):
            conn.execute(sa.text(
                "INSERT INTO latentvo.models (model_id, kind, architecture, hyperparameters, "
                "latent_dim, wavelength_grid, training_selection, training_checksum, "
                "training_size, code_version, random_seed, metrics, artifact_path, "
                "artifact_sha256, created_at) VALUES (:m, :k, '{}', '{}', :d, '{}', 'later', "
                ":c, 50, 'test', 2, '{}', :p, :c, now() + interval '1 day')"),
                {"m": model_id, "k": kind, "d": LATENT_DIM if kind == "autoencoder" else None,
                 "c": "2" * 64, "p": f"models/{model_id}"})
        ids = conn.execute(sa.text("SELECT spectrum_id FROM latentvo.spectra")).scalars().all()
        conn.execute(sa.text(
            "INSERT INTO latentvo.latent (spectrum_id, model_id, vec) "
            "VALUES (:s, 'ae-test-2', :v)"),
            [{"s": i, "v": str(rng.normal(size=LATENT_DIM).tolist())} for i in ids])
        conn.execute(sa.text(
            "INSERT INTO latentvo.labels (spectrum_id, model_id, teff, teff_err, in_domain) "
            "VALUES (:s, 'labels-test-2', :t, 10, true)"),
            [{"s": i, "t": float(rng.uniform(4000, 7000))} for i in ids])
        # and the old models' products change too (a re-run of inference)
        conn.execute(sa.text("UPDATE latentvo.labels SET teff = teff + 100"))


def test_release_lifecycle(release_archive, release_server, latentvo_env, tmp_path):
    env, database, tap = latentvo_env, release_archive, TAP(release_server)

    # create: a draft, invisible to TAP and to the reader role
    out = ok(env, "create", "dr1", "--title", "First data release", "--description",
             "Spectra and labels of the test archive", "--doi", "10.5072/latentvo.dr1")
    assert f"{N_SPECTRA:,} spectra" in out
    listing = ok(env, "list")
    assert "dr1" in listing and "draft" in listing
    assert listed_tables(tap, "dr1") == {}
    assert unknown_table(tap, "dr1.spectra")
    with pytest.raises(sa.exc.ProgrammingError, match="permission denied"), \
            database.reader_engine.connect() as conn:
        conn.execute(sa.text("SELECT count(*) FROM dr1.spectra"))

    manifest = json.loads(ok(env, "show", "dr1").split("\n", 1)[1])
    assert manifest["spectra"] == N_SPECTRA and manifest["labels"] == N_SPECTRA
    assert manifest["latent"] == N_SPECTRA
    assert {m["model_id"] for m in manifest["models"]} == {AE_MODEL, LABEL_MODEL}
    assert all(len(m["artifact_sha256"]) == 64 and m["training_checksum"]
               for m in manifest["models"])
    assert {c["schema"] for c in manifest["catalogues"]} <= {"mlspec"}
    assert {t["name"] for t in manifest["tables"]} == {
        f"dr1.{t}" for t in RELEASE_TABLES if t != "obscore"}
    assert -90 <= manifest["coverage"]["dec_min"] < manifest["coverage"]["dec_max"] <= 90

    # publish: listed with descriptions naming the release, queryable, cones work
    out = ok(env, "publish", "dr1")
    assert "new spectra are still ingested with release = 'dr1'" in out
    assert "only drafts are published" in fails(env, "publish", "dr1")
    assert "a published release cannot be re-created or changed" in fails(
        env, "create", "dr1", "--title", "Again")
    assert "withdraw it" in fails(env, "delete", "dr1")
    assert wait_until(lambda: not unknown_table(tap, "dr1.spectra"))
    tables = listed_tables(tap, "dr1")
    assert set(tables) == {f"dr1.{t}" for t in RELEASE_TABLES}
    assert all(d.startswith("Data release dr1: ") for d in tables.values()), tables
    [[schema_description]] = tap.rows(
        "SELECT description FROM tap_schema.schemas WHERE schema_name = 'dr1'")
    assert "First data release" in schema_description
    assert tap.rows("SELECT COUNT(*) FROM dr1.spectra") == [[str(N_SPECTRA)]]
    cone = tap.rows(CONE.format(schema="dr1"))
    assert len(cone) >= 10 and cone == tap.rows(CONE.format(schema="latentvo"))
    assert tap.rows("SELECT obs_collection, label_model_id, COUNT(*) FROM dr1.obscore "
                    "GROUP BY obs_collection, label_model_id") == [
        ["dr1", LABEL_MODEL, str(N_SPECTRA)]]
    assert tap.rows("SELECT DISTINCT release FROM dr1.spectra") == [["dr1"]]
    before = [tap.text(q) for q in SNAPSHOTS]

    # the archive moves on: more spectra, new current models, changed products
    add_spectra_and_models(database, env, tmp_path)
    assert int(tap.rows("SELECT COUNT(*) FROM latentvo.spectra")[0][0]) == N_SPECTRA + 6
    assert tap.rows("SELECT DISTINCT label_model_id FROM ivoa.obscore") == [["labels-test-2"]]
    assert [tap.text(q) for q in SNAPSHOTS] == before
    assert "every table matches its manifest" in ok(env, "verify", "dr1")
    # the sums do not depend on the session's time zone (timestamps are hashed in UTC)
    assert "every table matches" in ok({**env, "PGTZ": "Asia/Tokyo"}, "verify", "dr1")
    with database.engine.connect() as conn:  # a changed row would show (rolled back)
        conn.execute(sa.text("UPDATE dr1.labels SET teff = teff + 1 WHERE spectrum_id = 1"))
        [problem] = verify(conn, manifest, frozen_tables("dr1"))
        assert problem.startswith("dr1.labels: ") and f"{N_SPECTRA:,} rows" in problem

    # withdraw: gone from TAP, the row stays
    ok(env, "withdraw", "dr1", "--reason", "superseded by a corrected release")
    assert wait_until(lambda: unknown_table(tap, "dr1.spectra"))
    assert listed_tables(tap, "dr1") == {}
    assert tap.rows("SELECT COUNT(*) FROM tap_schema.schemas WHERE schema_name = 'dr1'") == [
        ["0"]]
    with database.engine.connect() as conn:
        release = read_release(conn, "dr1")
        assert not conn.scalar(sa.text("SELECT 1 FROM pg_namespace WHERE nspname = 'dr1'"))
    assert release is not None and release.state == "withdrawn"
    assert release.withdrawn is not None and release.published is not None
    assert release.doi == "10.5072/latentvo.dr1"
    assert release.manifest["withdrawn_reason"] == "superseded by a corrected release"
    assert release.manifest["spectra"] == N_SPECTRA
    assert "withdrawn already" in fails(env, "withdraw", "dr1")
    assert "its tables are gone" in fails(env, "verify", "dr1")
    assert "never reused" in fails(env, "create", "dr1", "--title", "Again")
    assert "withdrawn" in ok(env, "list")


def test_queries_see_the_release_wholly_or_not_at_all(release_archive, release_server,
                                                     latentvo_env):
    """While publish and withdraw run, TAP_SCHEMA lists all the release's columns or none,
    and its table answers with every row or not at all (an error naming it), never partly.

    The web service's ADQL catalog follows the database within its check interval: just
    after a withdrawal a query may still pass the catalog and then find no relation.
    """
    env, tap = latentvo_env, TAP(release_server)
    ok(env, "create", "dr3", "--title", "Concurrency", "--models", LABEL_MODEL)
    with release_archive.engine.connect() as conn:
        n_spectra = conn.scalar(sa.text("SELECT count(*) FROM dr3.spectra"))
    n_columns = sum(len(t.columns) for t in frozen_tables("dr3").values()) + len(
        tap.rows("SELECT column_name FROM tap_schema.columns "
                 "WHERE table_name = 'ivoa.obscore'"))
    described: set[str] = set()
    answers: set[str] = set()
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            described.add(tap.rows("SELECT COUNT(*) FROM tap_schema.columns "
                                   "WHERE table_name LIKE 'dr3.%'")[0][0])
            response = tap.answer("SELECT COUNT(*) FROM dr3.spectra")
            if response.status_code == 200:
                answers.add(response.text.split()[-1])
            elif ("unknown table dr3.spectra" in response.text
                  or 'relation "dr3.spectra" does not exist' in response.text):
                answers.add("not served")
            else:
                answers.add(response.text)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        wait_until(lambda: answers)
        ok(env, "publish", "dr3")
        assert wait_until(lambda: str(n_spectra) in answers)
        ok(env, "withdraw", "dr3")
        assert wait_until(lambda: unknown_table(tap, "dr3.spectra"))
    finally:
        stop.set()
        watcher.join()
    assert described == {"0", str(n_columns)}
    assert answers == {"not served", str(n_spectra)}


def test_withdraw_waits_for_queries_reading_the_release(release_archive, latentvo_env):
    """A query in flight keeps its data: withdraw waits for it, and when it waits too long
    nothing changes."""
    env, database = latentvo_env, release_archive
    ok(env, "create", "dr4", "--title", "In use", "--models", AE_MODEL)
    ok(env, "publish", "dr4")
    with database.reader_engine.connect() as reader:
        assert reader.scalar(sa.text("SELECT count(*) FROM dr4.latent")) == N_SPECTRA
        # the reader's transaction still holds its lock on dr4.latent
        assert "in use by running queries" in fails(env, "withdraw", "dr4", "--lock-wait", "1")
        assert reader.scalar(sa.text("SELECT count(*) FROM dr4.latent")) == N_SPECTRA
    with database.engine.connect() as conn:
        assert read_release(conn, "dr4").state == "published"
    ok(env, "withdraw", "dr4")


def test_no_catalogue_is_published_into_a_release(release_archive, latentvo_env, tmp_path):
    """A release's schema holds only what it froze: ``latentvo publish`` refuses it."""
    ok(latentvo_env, "create", "dr8", "--title", "Closed schema", "--models", AE_MODEL)
    declaration = (REPO / "bench" / "mlspec.toml").read_text().replace(
        'name = "mlspec"', 'name = "dr8"', 1)
    (tmp_path / "dr8.toml").write_text(declaration)
    data = catalogue_data.write_csv(catalogue_data.generate(10), tmp_path / "rows.csv")
    result = run_cli(latentvo_env, "publish", "table", str(tmp_path / "dr8.toml"), str(data))
    assert result.returncode == 1
    assert "dr8 is the schema of a data release" in result.stdout + result.stderr
    with release_archive.engine.connect() as conn:
        assert conn.scalar(sa.text("SELECT to_regclass('dr8.spectra')::text")) == "dr8.spectra"
        assert conn.scalar(sa.text("SELECT count(*) FROM dr8.spectra")) == conn.scalar(
            sa.text("SELECT count(*) FROM latentvo.spectra"))
    ok(latentvo_env, "delete", "dr8")
