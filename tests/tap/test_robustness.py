"""Robustness: malformed requests, limits, timeouts, concurrency, restarts.

Each case must end in a proper protocol response (a DALI error document with
a meaningful status, or a UWS job in a final phase with a reason) and no job
may be lost.
"""

from __future__ import annotations

import concurrent.futures
import io
import time
import xml.etree.ElementTree as ET

import httpx
import numpy as np
import pytest
from astropy.io.votable import parse_single_table
from astropy.table import Table

from tests.conftest import start_server, stop_server

UWS = "{http://www.ivoa.net/xml/UWS/v1.0}"
# Long enough to outlast the 4 s sync limit of tap_server: 3,000^3 rows.
SLOW = ("SELECT COUNT(*) AS n FROM mlspec.spectra AS a, mlspec.spectra AS b, "
        "mlspec.spectra AS c WHERE a.snr + b.snr > c.snr")


def sync(url, **params):
    return httpx.post(url + "/sync", data={"LANG": "ADQL", **params}, timeout=60)


def error_text(response) -> str:
    assert response.headers["content-type"].startswith("application/x-votable+xml")
    root = ET.fromstring(response.content)
    infos = [i for i in root.iter("{http://www.ivoa.net/xml/VOTable/v1.3}INFO")
             if i.get("name") == "QUERY_STATUS"]
    assert infos and infos[-1].get("value") == "ERROR"
    assert not list(root.iter("{http://www.ivoa.net/xml/VOTable/v1.3}TABLE"))
    return infos[-1].text


@pytest.mark.parametrize("params, expect", [
    ({"QUERY": "SELECT 1"}, "LANG is missing"),
    ({"LANG": "OOBLECK", "QUERY": "SELECT 1"}, "unknown query language"),
    ({"QUERY": ""}, "QUERY is missing"),
    ({"QUERY": "SELECT TOP 1 * FROM mlspec.spectra", "MAXREC": "lots"}, "MAXREC"),
    ({"QUERY": "SELECT TOP 1 * FROM mlspec.spectra", "MAXREC": "-1"}, "MAXREC"),
    ({"QUERY": "SELECT TOP 1 * FROM mlspec.spectra", "RESPONSEFORMAT": "image/gif"},
     "unsupported RESPONSEFORMAT"),
    ({"QUERY": "DUFF QUERY"}, "syntax error"),
    ({"QUERY": "SELECT TOP 1 * FROM TAP_UPLOAD.t", "UPLOAD": "t,file:///etc/passwd"},
     "not supported"),
    ({"QUERY": "SELECT TOP 1 * FROM TAP_UPLOAD.t", "UPLOAD": "t,param:t"}, "no multipart"),
    ({"QUERY": "SELECT TOP 1 * FROM TAP_UPLOAD.t", "UPLOAD": "1t,param:t"}, "identifier"),
])
def test_malformed_parameters(tap_server, archive, params, expect):
    lang = {} if "LANG" in params or expect == "LANG is missing" else {"LANG": "ADQL"}
    response = httpx.post(tap_server + "/sync", data={**lang, **params}, timeout=30)
    assert response.status_code == 400
    assert expect.lower() in error_text(response).lower()


def test_repeated_single_valued_parameter(tap_server, archive):
    response = httpx.post(tap_server + "/sync",
                          content="LANG=ADQL&QUERY=SELECT+1&QUERY=SELECT+2",
                          headers={"content-type": "application/x-www-form-urlencoded"})
    assert response.status_code == 400
    assert "only once" in error_text(response)


def test_parameter_names_case_insensitive_and_spurious_ignored(tap_server, archive):
    response = httpx.get(tap_server + "/sync", params={
        "lang": "adql", "qUeRy": "SELECT TOP 2 spec_id FROM mlspec.spectra ORDER BY spec_id",
        "MaxRec": "1", "format": "csv", "DUMMY": "ignore-me", "REQUEST": "doQuery"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.text.splitlines() == ["spec_id", "1"]


def test_huge_maxrec_is_capped_not_refused(tap_server, archive):
    response = sync(tap_server, QUERY="SELECT TOP 3 spec_id FROM mlspec.spectra",
                    MAXREC=str(10**15))
    assert response.status_code == 200
    table = parse_single_table(io.BytesIO(response.content)).to_table()
    assert len(table) == 3


def test_maxrec_zero_gives_metadata_only(tap_server, archive):
    response = sync(tap_server, QUERY="SELECT spec_id, latent FROM mlspec.spectra", MAXREC="0")
    assert response.status_code == 200
    assert b'value="OVERFLOW"' in response.content
    table = parse_single_table(io.BytesIO(response.content)).to_table()
    assert len(table) == 0 and table.colnames == ["spec_id", "latent"]


def test_oversize_upload(tap_server, archive):
    big = Table({"x": np.arange(400_000, dtype=np.float64)})
    buffer = io.BytesIO()
    big.write(buffer, format="votable")
    assert len(buffer.getvalue()) > 3_000_000
    response = httpx.post(tap_server + "/sync", data={
        "LANG": "ADQL", "QUERY": "SELECT COUNT(*) FROM TAP_UPLOAD.big", "UPLOAD": "big,param:big"},
        files={"big": ("big.vot", buffer.getvalue())}, timeout=60)
    assert response.status_code == 413
    assert "limit" in error_text(response)


def test_bad_upload_content(tap_server, archive):
    response = httpx.post(tap_server + "/sync", data={
        "LANG": "ADQL", "QUERY": "SELECT * FROM TAP_UPLOAD.t", "UPLOAD": "t,param:t"},
        files={"t": ("t.vot", b"this is not a votable")}, timeout=30)
    assert response.status_code == 400
    assert "upload t" in error_text(response)


def test_sync_timeout(tap_server, archive):
    t0 = time.monotonic()
    response = sync(tap_server, QUERY=SLOW)
    assert time.monotonic() - t0 < 20
    assert response.status_code == 400
    assert "execution time limit" in error_text(response)
    # the service is fine afterwards
    assert sync(tap_server, QUERY="SELECT TOP 1 spec_id FROM mlspec.spectra").status_code == 200


def _wait_final(client, url, limit=60):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        doc = ET.fromstring(client.get(url, params={"WAIT": "5"}).content)
        phase = doc.find(f"{UWS}phase").text
        if phase not in ("PENDING", "QUEUED", "EXECUTING"):
            return doc
    raise AssertionError(f"job {url} did not finish")


def test_async_execution_duration(tap_server, archive):
    with httpx.Client(timeout=60) as client:
        r = client.post(tap_server + "/async", data={
            "LANG": "ADQL", "QUERY": SLOW, "EXECUTIONDURATION": "1", "PHASE": "RUN"})
        url = r.headers["location"]
        doc = _wait_final(client, url)
        assert doc.find(f"{UWS}phase").text == "ERROR"
        message = doc.find(f"{UWS}errorSummary/{UWS}message").text
        assert "execution time limit of 1 s" in message
        client.delete(url)


def _slow_query_backends(database) -> int:
    """PostgreSQL backends still working on SLOW (its translation keeps ``"snr" + ..."snr") >``).

    Asked as the reader role: only a member of a role sees its sessions' queries.
    """
    import sqlalchemy as sa

    with database.reader_engine.connect() as conn:
        return conn.scalar(sa.text(
            "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
            "AND query LIKE '%snr\" + %snr\") > %' AND pid <> pg_backend_pid()"))


def _wait_no_slow_query(database, limit=10.0) -> None:
    deadline = time.monotonic() + limit
    while _slow_query_backends(database) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _slow_query_backends(database) == 0, "the aborted job's query still runs"


def test_abort_while_executing(database, tap_server, archive):
    """ABORT reaches the query in PostgreSQL, even before its first row exists."""
    with httpx.Client(timeout=60) as client:
        url = client.post(tap_server + "/async", data={
            "LANG": "ADQL", "QUERY": SLOW, "PHASE": "RUN"}).headers["location"]
        deadline = time.monotonic() + 20
        while client.get(url + "/phase").text != "EXECUTING" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert client.post(url + "/phase", data={"PHASE": "ABORT"}).status_code == 303
        assert client.get(url + "/phase").text == "ABORTED"
        time.sleep(0.5)
        assert client.get(url + "/phase").text == "ABORTED"  # the worker did not overwrite it
        _wait_no_slow_query(database)
        client.delete(url)


def test_delete_while_executing_stops_the_query(database, tap_server, archive):
    with httpx.Client(timeout=60) as client:
        url = client.post(tap_server + "/async", data={
            "LANG": "ADQL", "QUERY": SLOW, "PHASE": "RUN"}).headers["location"]
        deadline = time.monotonic() + 20
        while client.get(url + "/phase").text != "EXECUTING" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert client.delete(url).status_code == 303
        assert client.get(url).status_code == 404
        _wait_no_slow_query(database)


def test_concurrent_async_jobs(tap_server, archive):
    n = 8

    def one(i):
        with httpx.Client(timeout=60) as client:
            query = f"SELECT COUNT(*) AS n FROM mlspec.spectra WHERE spec_id <= {100 * (i + 1)}"
            url = client.post(tap_server + "/async", data={
                "LANG": "ADQL", "QUERY": query, "PHASE": "RUN",
                "RESPONSEFORMAT": "csv"}).headers["location"]
            doc = _wait_final(client, url)
            phase = doc.find(f"{UWS}phase").text
            body = client.get(url + "/results/result").text
            client.delete(url)
            return phase, body

    with concurrent.futures.ThreadPoolExecutor(n) as pool:
        results = list(pool.map(one, range(n)))
    assert [p for p, _ in results] == ["COMPLETED"] * n
    assert [b.splitlines()[1] for _, b in results] == [str(100 * (i + 1)) for i in range(n)]


MEDIUM = ("SELECT COUNT(*) AS n FROM mlspec.spectra AS a, mlspec.spectra AS b, "
          "(SELECT TOP 3 spec_id FROM mlspec.spectra) AS c WHERE a.snr * b.snr > c.spec_id")


@pytest.mark.slow
def test_server_killed_mid_job(tap_env, archive):
    """kill -9 while a job executes; after the restart the job is run again and completes.

    (Any live process may take the job over: the session's other server too.)
    """
    env, outcome = tap_env, "COMPLETED"
    proc, base = start_server(env)
    try:
        with httpx.Client(timeout=60) as client:
            url = client.post(base + "/tap/async", data={
                "LANG": "ADQL", "QUERY": MEDIUM, "PHASE": "RUN"}).headers["location"]
            deadline = time.monotonic() + 20
            while client.get(url + "/phase").text != "EXECUTING":
                assert time.monotonic() < deadline
                time.sleep(0.05)
            stop_server(proc, kill=True)
            proc, base2 = start_server(env)
            url = url.replace(base, base2)
            doc = _wait_final(client, url, limit=120)
            assert doc.find(f"{UWS}phase").text == outcome
            body = client.get(url + "/results/result", params={}).content
            table = parse_single_table(io.BytesIO(body)).to_table()
            assert table["n"][0] > 0
            client.delete(url)
    finally:
        stop_server(proc)


def test_job_interrupted_too_often_fails_with_reason(database, archive, tap_server):
    """A job whose executions were interrupted max_attempts times turns ERROR, saying why."""
    import datetime as dt
    import json

    import sqlalchemy as sa

    from schema.ops import uws_jobs
    from vo_service.config import TAPLimits
    from vo_service.tap.uws import JobStore

    now = dt.datetime.now(dt.UTC)
    with database.engine.begin() as conn:
        conn.execute(uws_jobs.insert().values(
            job_id="interrupted3x", phase="EXECUTING", creation_time=now, start_time=now,
            execution_duration=60, destruction=now + dt.timedelta(hours=1),
            parameters=json.loads('{"LANG": "ADQL", "QUERY": "SELECT 1"}'),
            worker="somehost:999999:dead", heartbeat=now - dt.timedelta(minutes=5),
            attempts=3))
    JobStore(database.engine, TAPLimits(), database.settings.home / "tap-results").recover()
    with httpx.Client(timeout=30) as client:
        doc = ET.fromstring(client.get(tap_server + "/async/interrupted3x").content)
        assert doc.find(f"{UWS}phase").text == "ERROR"
        assert "stopped while executing this job 3 times" in \
            doc.find(f"{UWS}errorSummary/{UWS}message").text
        client.delete(tap_server + "/async/interrupted3x")
    with database.engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).where(
            uws_jobs.c.job_id == "interrupted3x")) == 0
