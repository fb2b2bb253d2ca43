"""The shipped nginx site serving latentvo under a sub-path, ``/archive/latentvo``.

The service runs as the unit runs it with ``LATENTVO_BASE_URL =
https://localhost:<port>/archive/latentvo``; nginx runs ``deploy/nginx/latentvo.conf``
with ``location /`` changed to ``location /archive/latentvo/`` (as the site's comment
says) and passes the path on unchanged. pyvo then uses TAP (sync and async), SSA
(search, getdataset) and DataLink through the proxy only, on the archive of real
spectrum files that the SSA tests ingest.
"""

from __future__ import annotations

import httpx
import pytest
import requests
from pyvo.dal.adhoc import DatalinkResults

from tests.conftest import free_port, stop_server
from tests.ssa.conftest import N_SPECTRA, ssa_archive, ssa_files, ssa_loaded  # noqa: F401
from tests.test_deploy import _session, certificate, start_backend, start_nginx, workdir  # noqa: F401

pyvo = pytest.importorskip("pyvo")
pytestmark = pytest.mark.usefixtures("ssa_archive")
PREFIX = "/archive/latentvo"


@pytest.fixture(scope="module")
def ports() -> dict[str, int]:
    return {"tls": free_port(), "plain": free_port(), "backend": free_port()}


@pytest.fixture(scope="module")
def backend(request, latentvo_env, ports):
    request.getfixturevalue("ssa_loaded")  # real spectrum files, ingested
    proc = start_backend(latentvo_env, ports["backend"],
                         f"https://localhost:{ports['tls']}{PREFIX}", 1)
    yield f"http://127.0.0.1:{ports['backend']}"
    stop_server(proc)


@pytest.fixture(scope="module")
def proxy(backend, workdir, certificate, ports) -> str:  # noqa: F811
    """The public URL of the service, sub-path included."""
    sub = workdir / "subpath"
    sub.mkdir(exist_ok=True)
    sub.chmod(0o755)
    proc, url = start_nginx(sub, certificate, ports, location=PREFIX + "/")
    yield url
    stop_server(proc)


@pytest.fixture
def session(proxy, certificate) -> requests.Session:  # noqa: F811
    return _session(certificate)


def test_the_service_answers_with_and_without_the_prefix(backend):
    """A proxy may pass the sub-path on or strip it: the same route answers both."""
    for path in (PREFIX + "/tap/availability", "/tap/availability", PREFIX + "/ssa/capabilities"):
        assert httpx.get(backend + path).status_code == 200, path
    assert httpx.get(backend + "/elsewhere/tap/availability").status_code == 404


def test_tap_sync_and_async(proxy, session):
    tap = pyvo.dal.TAPService(proxy + "/tap", session=session)
    assert tap.get_tap_capability().interfaces[0].accessurls[0].content == proxy + "/tap"
    query = "SELECT TOP 3 obs_publisher_did, access_url FROM ivoa.obscore ORDER BY obs_id"
    sync = tap.run_sync(query).to_table()
    assert len(sync) == 3
    assert all(str(u).startswith(proxy + "/datalink/links?ID=") for u in sync["access_url"])
    job = tap.submit_job(query)
    assert job.url.startswith(proxy + "/tap/async/"), job.url
    # the owner-token cookie is scoped to the public job list, sent over https only
    [cookie] = [c for c in session.cookies if c.name == "latentvo_uws_owner"]
    assert cookie.path == PREFIX + "/tap/async" and cookie.secure
    assert job.job_id in session.get(proxy + "/tap/async").text  # the session lists its job
    job.run()
    job.wait(timeout=60)
    assert job.phase == "COMPLETED"
    assert job.result_uri.startswith(proxy + "/tap/async/")
    assert list(job.fetch_result().to_table()["access_url"]) == list(sync["access_url"])
    job.delete()


def test_ssa_search_getdataset_and_datalink(proxy, session):
    ssa = pyvo.dal.SSAService(proxy + "/ssa", session=session)
    results = ssa.search(maxrec=N_SPECTRA)  # no POS: every spectrum
    assert len(results) == N_SPECTRA
    assert all(str(r.acref).startswith(proxy + "/getdata?ID=") for r in results)
    assert session.get(results[0].acref).status_code == 200
    assert results[0].getdataset().read()[:6] == b"SIMPLE"  # DataLink's first #this: FITS
    links = DatalinkResults.from_result_url(
        proxy + "/datalink/links?ID=" + str(results[1]["obs_publisher_did"]), session=session)
    urls = [r.access_url for r in links if not r["service_def"]]
    assert len(urls) >= 8
    for url in urls:
        assert url.startswith(proxy + "/"), url
        assert session.get(url, timeout=60).status_code == 200, url


def test_unknown_urls_under_the_prefix(proxy, session):
    response = session.get(proxy + "/nothing-here")
    assert response.status_code == 404
    assert f'href="{proxy}/"' in response.text
