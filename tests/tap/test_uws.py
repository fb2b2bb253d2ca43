"""UWS 1.1 behaviour of /tap/async over plain HTTP."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET

import httpx
import pytest

UWS = "{http://www.ivoa.net/xml/UWS/v1.0}"
QUERY = "SELECT TOP 10 spec_id, snr FROM mlspec.spectra ORDER BY spec_id"


@pytest.fixture
def client(tap_server, archive):
    with httpx.Client(base_url=tap_server, timeout=60) as c:
        yield c


def create(client, **params) -> str:
    response = client.post("/async", data={"LANG": "ADQL", "QUERY": QUERY, **params})
    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith("http") and location.rsplit("/", 1)[1]
    return location


def job_doc(client, url, **params) -> ET.Element:
    response = client.get(url, params=params)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/xml")
    root = ET.fromstring(response.content)
    assert root.get("version") == "1.1"
    return root


def phase(doc) -> str:
    return doc.find(f"{UWS}phase").text


def test_lifecycle_and_atomic_resources(client):
    url = create(client, RUNID="my-run")
    doc = job_doc(client, url)
    assert phase(doc) == "PENDING"
    assert doc.find(f"{UWS}runId").text == "my-run"
    assert doc.find(f"{UWS}jobId").text == url.rsplit("/", 1)[1]
    assert client.get(url + "/phase").text == "PENDING"
    assert client.get(url + "/phase").headers["content-type"].startswith("text/plain")
    assert client.get(url + "/executionduration").text == "3600"
    destruction = client.get(url + "/destruction").text
    assert destruction.endswith("Z") and "T" in destruction
    assert doc.find(f"{UWS}destruction").text == destruction
    # parameters may change while PENDING
    r = client.post(url + "/parameters", data={"maxrec": "3"})
    assert r.status_code == 303
    params = {p.get("id"): p.text for p in job_doc(client, url).iter(f"{UWS}parameter")}
    assert params["maxrec"] == "3" and params["query"] == QUERY
    r = client.post(url + "/executionduration", data={"EXECUTIONDURATION": "60"})
    assert r.status_code == 303 and client.get(url + "/executionduration").text == "60"
    r = client.post(url + "/destruction", data={"DESTRUCTION": "2099-01-01T00:00:00Z"})
    assert r.status_code == 303  # capped by the retention limit
    assert client.get(url + "/destruction").text < "2099"
    assert client.get(url + "/results/result").status_code == 404
    assert client.get(url + "/error").status_code == 404
    # run, block until done
    r = client.post(url + "/phase", data={"PHASE": "RUN"})
    assert r.status_code == 303
    doc = job_doc(client, url, WAIT=10)
    while phase(doc) in ("QUEUED", "EXECUTING"):
        doc = job_doc(client, url, WAIT=10)
    assert phase(doc) == "COMPLETED"
    result = doc.find(f"{UWS}results/{UWS}result")
    href = result.get("{http://www.w3.org/1999/xlink}href")
    assert result.get("id") == "result" and href.endswith("/results/result")
    body = client.get(href)
    assert body.status_code == 200 and body.content.count(b"QUERY_STATUS") == 2  # OVERFLOW
    # parameters are frozen after RUN
    assert client.post(url + "/parameters", data={"MAXREC": "5"}).status_code == 403
    # delete: 303 to the job list, then 404
    r = client.delete(url)
    assert r.status_code == 303 and "/async" in r.headers["location"]
    assert client.get(url).status_code == 404
    assert client.get(url + "/phase").status_code == 404


def test_phase_run_at_creation_and_blocking_wait(client):
    url = create(client, PHASE="RUN")
    t0 = time.monotonic()
    doc = job_doc(client, url, WAIT=10, PHASE="QUEUED")
    while phase(doc) in ("QUEUED", "EXECUTING"):
        doc = job_doc(client, url, WAIT=10)
    assert phase(doc) == "COMPLETED"
    assert time.monotonic() - t0 < 5
    # WAIT returns at once for a finished job
    t0 = time.monotonic()
    job_doc(client, url, WAIT=5)
    assert time.monotonic() - t0 < 1
    # ... and for a job not in the phase named by PHASE
    pending = create(client)
    t0 = time.monotonic()
    assert phase(job_doc(client, pending, WAIT=5, PHASE="EXECUTING")) == "PENDING"
    assert time.monotonic() - t0 < 1
    # a PENDING job blocks for the whole WAIT when nothing happens
    t0 = time.monotonic()
    assert phase(job_doc(client, pending, WAIT=1)) == "PENDING"
    assert time.monotonic() - t0 >= 0.9
    client.post(pending, data={"ACTION": "DELETE"})
    assert client.get(pending).status_code == 404


def test_error_phase_and_document(client):
    url = create(client, QUERY="SELECT nothing FROM nowhere", PHASE="RUN")
    doc = job_doc(client, url, WAIT=10)
    while phase(doc) in ("QUEUED", "EXECUTING"):
        doc = job_doc(client, url, WAIT=10)
    assert phase(doc) == "ERROR"
    assert "nowhere" in doc.find(f"{UWS}errorSummary/{UWS}message").text
    error = client.get(url + "/error")
    assert error.status_code == 200 and b'value="ERROR"' in error.content
    assert client.get(url + "/results/result").status_code == 404
    client.delete(url)


def test_abort_and_job_list_filters(client):
    url = create(client)
    job_id = url.rsplit("/", 1)[1]
    assert client.post(url + "/phase", data={"PHASE": "ABORT"}).status_code == 303
    assert client.get(url + "/phase").text == "ABORTED"
    assert client.post(url + "/phase", data={"PHASE": "SUSPEND"}).status_code == 400
    listing = ET.fromstring(client.get("/async", params={"PHASE": "ABORTED"}).content)
    ids = [ref.get("id") for ref in listing.iter(f"{UWS}jobref")]
    assert job_id in ids
    for ref in listing.iter(f"{UWS}jobref"):
        assert ref.find(f"{UWS}phase").text == "ABORTED"
    pending = ET.fromstring(client.get("/async", params={"PHASE": "PENDING"}).content)
    assert job_id not in [ref.get("id") for ref in pending.iter(f"{UWS}jobref")]
    last = ET.fromstring(client.get("/async", params={"LAST": "1"}).content)
    assert len(list(last.iter(f"{UWS}jobref"))) == 1
    future = ET.fromstring(client.get("/async", params={"AFTER": "2999-01-01T00:00:00Z"})
                           .content)
    assert not list(future.iter(f"{UWS}jobref"))
    assert client.get("/async", params={"PHASE": "NONSENSE"}).status_code == 400
    client.delete(url)


def test_bad_query_is_accepted_at_creation(client):
    """Parameters are checked when the job runs, not when it is created (TAP 1.1)."""
    r = client.post("/async", data={"LANG": "ADQL"})
    assert r.status_code == 303
    url = r.headers["location"]
    client.post(url + "/phase", data={"PHASE": "RUN"})
    doc = job_doc(client, url, WAIT=10)
    while phase(doc) in ("QUEUED", "EXECUTING"):
        doc = job_doc(client, url, WAIT=10)
    assert phase(doc) == "ERROR"
    assert "QUERY" in doc.find(f"{UWS}errorSummary/{UWS}message").text
    client.delete(url)


def test_unknown_job_is_404(client):
    for path in ("/async/nope", "/async/nope/phase", "/async/nope/results/result",
                 "/async/nope/error", "/async/nope/parameters"):
        assert client.get(path).status_code == 404
