"""A restart of the embedded database while the web server runs (issue 16, finding 2).

The server must answer each protocol's error document with 503 and Retry-After
while the database is down, say so in VOSI availability, and answer normally
again, without being restarted, once ``latentvo db start`` brings the database
back on the same port. An own LATENTVO_HOME: stopping the session's database
would pull it from under the other tests.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from pathlib import Path

import httpx
import pytest

from tests.conftest import run_cli, start_server, stop_server, wait_until
from vo_service.db.embedded import PORT_FILE

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("LATENTVO_DATABASE_URL")),
    reason="restarts the embedded database; the external server belongs to the CI wrapper")

SYNC = "/tap/sync?REQUEST=doQuery&LANG=ADQL&QUERY=SELECT+TOP+1+table_name+FROM+tap_schema.tables"
SSA = "/ssa?REQUEST=queryData&POS=10,10&SIZE=1"
# DataLink and getData cache ID lookups for a few seconds: each phase asks for another ID
LINKS = "/datalink/links?ID=ivo://latentvo.example/spectra?{}"
GETDATA = "/getdata?ID=ivo://latentvo.example/spectra?{}"
PROBES = {"TAP sync": SYNC, "SSA": SSA, "DataLink": LINKS}


@pytest.fixture(scope="module")
def restart_env(latentvo_env):
    home = Path(tempfile.mkdtemp(prefix="latentvo-restart-"))
    env = dict(latentvo_env, LATENTVO_HOME=str(home))
    yield env
    run_cli(env, "db", "stop")
    shutil.rmtree(home, ignore_errors=True)


def _recorded_port(env) -> int:
    return int((Path(env["LATENTVO_HOME"]) / "pgdata" / PORT_FILE).read_text())



def test_server_survives_a_database_restart(restart_env):
    proc, url = start_server(restart_env)
    try:
        port = _recorded_port(restart_env)
        for name, path in PROBES.items():
            assert httpx.get(url + path.format(1), timeout=30).status_code == 200, name

        stopped = run_cli(restart_env, "db", "stop")
        assert stopped.returncode == 0, stopped.stderr
        for name, path in {**PROBES, "getData": GETDATA}.items():
            response = httpx.get(url + path.format(2), timeout=30)
            assert response.status_code == 503, (name, response.text)
            assert response.headers["content-type"].startswith("application/x-votable+xml")
            assert 'name="QUERY_STATUS" value="ERROR"' in response.text, name
            assert "unavailable" in response.text, name
            assert int(response.headers["retry-after"]) > 0, name
        for service in ("tap", "ssa"):
            note = httpx.get(f"{url}/{service}/availability", timeout=30).text
            assert "<vosi:available>false</vosi:available>" in note, note
            assert "cannot be reached" in note, note
        landing = httpx.get(url + "/", timeout=30)
        assert landing.status_code == 503 and "cannot be reached" in landing.text

        started = run_cli(restart_env, "db", "start")
        assert started.returncode == 0, started.stderr
        assert _recorded_port(restart_env) == port
        status = run_cli(restart_env, "db", "status")
        assert f"127.0.0.1:{port}," in status.stdout + status.stderr
        # the same server process answers again, within a bounded wait
        for name, path in PROBES.items():
            assert wait_until(lambda p=path.format(3): httpx.get(url + p, timeout=30)
                          .status_code == 200), name
        for service in ("tap", "ssa"):
            assert wait_until(lambda s=service: "<vosi:available>true" in httpx.get(
                f"{url}/{s}/availability", timeout=30).text), service
        assert httpx.get(url + "/", timeout=30).status_code == 200
        # the async workers outlived the outage
        job = httpx.post(url + "/tap/async", data={
            "LANG": "ADQL", "QUERY": "SELECT TOP 1 table_name FROM tap_schema.tables",
            "PHASE": "RUN"}, timeout=30).headers["location"]
        assert wait_until(lambda: httpx.get(job + "/phase", timeout=30).text == "COMPLETED", 60)
        assert proc.poll() is None
    finally:
        stop_server(proc)


def test_a_taken_port_is_reported(restart_env):
    """The recorded port taken by another program: a clear error naming it and the setting."""
    assert run_cli(restart_env, "db", "start").returncode == 0
    port = _recorded_port(restart_env)
    assert run_cli(restart_env, "db", "stop").returncode == 0
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past TIME_WAIT
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        result = run_cli(restart_env, "db", "start")
    assert result.returncode == 1
    assert f"port {port}" in result.stderr and "embedded_port" in result.stderr
    assert run_cli(restart_env, "db", "start").returncode == 0
    assert _recorded_port(restart_env) == port
