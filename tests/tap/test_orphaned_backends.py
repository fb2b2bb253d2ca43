"""A server killed during an async job leaves no query running (issue 16, finding 6).

The killed server's backend goes on computing until PostgreSQL next writes to
its socket. The next server on the host ends the sessions whose process is gone
(they are named ``latentvo/<host>/<pid>[/job/<id>]``) before it queues their
jobs again.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from tests.conftest import run_cli, start_server, stop_server, wait_until
from vo_service.config import load_settings
from vo_service.db.database import Database

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("LATENTVO_DATABASE_URL")),
    reason="needs a database of its own: other test servers on a shared one may run the job")

# Long enough to outlive a server restart (a 4-way cross join of TAP_SCHEMA's columns);
# EXECUTIONDURATION bounds it should the test fail half-way.
SLOW = ("SELECT COUNT(*) AS n FROM tap_schema.columns AS a CROSS JOIN tap_schema.columns AS b "
        "CROSS JOIN tap_schema.columns AS c CROSS JOIN tap_schema.columns AS d")


def _backends(database, job_id: str) -> dict[int, str]:
    """Backend pid -> application_name of the sessions tagged with ``job_id``."""
    with database.engine.connect() as conn:
        return dict(conn.execute(sa.text(
            "SELECT pid, application_name FROM pg_stat_activity "
            "WHERE application_name LIKE :tag"), {"tag": f"latentvo/%/job/{job_id}"}).all())



@pytest.fixture
def private_env(latentvo_env):
    """A home with its own embedded database: the session's other test servers, which
    share the session's database, would otherwise take the job."""
    home = Path(tempfile.mkdtemp(prefix="latentvo-orphans-"))
    env = dict(latentvo_env, LATENTVO_HOME=str(home))
    yield env
    run_cli(env, "db", "stop")
    shutil.rmtree(home, ignore_errors=True)


def test_restart_ends_the_killed_servers_query(private_env):
    proc, url = start_server(private_env)
    database = Database(load_settings(private_env))
    job_url = None
    try:
        created = httpx.post(url + "/tap/async", data={
            "LANG": "ADQL", "QUERY": SLOW, "PHASE": "RUN", "EXECUTIONDURATION": "300"},
            timeout=30)
        assert created.status_code == 303
        job_url = created.headers["location"]
        job_id = job_url.rsplit("/", 1)[1]
        old = wait_until(lambda: _backends(database, job_id), 60)
        assert old, "the job's query never showed up in pg_stat_activity"
        assert all(f"/{proc.pid}/job/" in name for name in old.values()), old

        stop_server(proc, kill=True)
        assert set(_backends(database, job_id)) & set(old), "PostgreSQL ended it by itself"

        proc, url = start_server(private_env)
        assert wait_until(lambda: not set(_backends(database, job_id)) & set(old), 60), \
            "the killed server's query still runs"
        phase = httpx.get(job_url.replace(job_url.split("/tap/")[0], url) + "/phase",
                          timeout=30).text
        assert phase in ("QUEUED", "EXECUTING"), phase  # queued again, by the new server
    finally:
        if job_url is not None and proc.poll() is None:
            httpx.post(job_url.replace(job_url.split("/tap/")[0], url),
                       data={"ACTION": "DELETE"}, timeout=30)
        stop_server(proc)
        database.dispose()
