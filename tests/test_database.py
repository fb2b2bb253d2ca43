"""Migrations, roles and sharing of the embedded server."""

import subprocess
import sys

import pytest
import sqlalchemy as sa

from schema import migrate
from tests.conftest import REPO


def test_upgrade_is_a_noop_when_current(database):
    before = migrate.current_revision(database.engine)
    assert database.upgrade() == before == migrate.head_revision()
    assert migrate.differences(database.engine) == []


def test_reader_reads_published_tables_only(database):
    with database.reader_engine.connect() as conn:
        assert conn.scalar(sa.text("SELECT count(*) FROM tap_schema.tables")) > 0
        conn.execute(sa.text("SELECT count(*) FROM latentvo.spectra"))
    for statement in ("SELECT * FROM latentvo_ops.ingest_files",
                      "DELETE FROM latentvo.spectra",
                      "INSERT INTO tap_schema.schemas (schema_name) VALUES ('x')",
                      "CREATE TABLE public.intruder (x int)"):
        with database.reader_engine.connect() as conn, pytest.raises(sa.exc.ProgrammingError):
            conn.execute(sa.text(statement))


def test_pgvector_available(database):
    with database.engine.connect() as conn:
        assert conn.scalar(sa.text("SELECT '[1,2]'::vector <-> '[1,3]'::vector")) == 1.0


def test_processes_share_one_embedded_server(database, latentvo_env):
    if database.embedded is None:
        pytest.skip("external database")
    code = ("from vo_service.config import load_settings;"
            "from vo_service.db.database import Database;"
            "d=Database(load_settings()); print(d.owner_url)")
    procs = [subprocess.Popen([sys.executable, "-c", code], env=latentvo_env, cwd=REPO,
                              stdout=subprocess.PIPE, text=True) for _ in range(3)]
    urls = {p.communicate(timeout=120)[0].strip() for p in procs}
    assert urls == {database.owner_url}
    status = database.embedded.status()
    assert status.running and f":{status.port}/" in database.owner_url
