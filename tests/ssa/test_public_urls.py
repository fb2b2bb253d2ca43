"""Every URL pyvo is handed, from a server with no base URL configured.

The server runs on a random port without ``LATENTVO_BASE_URL``, so each URL it hands
out must come from the request (scheme, host and port). The tests follow them as pyvo
does: SSA records to getData and DataLink, every link of a ``{links}`` document, the
similar-spectra service descriptor, ObsCore ``access_url`` from TAP (sync and async),
and the UWS job URLs of a pyvo async job. A second host name for the same server and a
trusted ``X-Forwarded-Proto`` show that the URLs follow the request.
"""

from __future__ import annotations

import io
import re

import astropy.units as u
import httpx
import pytest
import pyvo
import requests
from astropy.coordinates import SkyCoord
from astropy.io.votable import parse
from astropy.table import Table
from pyvo.dal.adhoc import DatalinkResults

from tests.conftest import start_server, stop_server


@pytest.fixture(scope="module")
def bare_server(ssa_loaded, latentvo_env):
    """``latentvo serve`` with no base URL; yields its address."""
    proc, url = start_server(latentvo_env, set_base_url=False)
    yield url
    stop_server(proc)


def _answers(url: str) -> httpx.Response:
    response = httpx.get(url, timeout=60)  # a first preview starts its worker process
    assert response.status_code == 200, (url, response.text[:300])
    return response


def test_ssa_records_and_getdataset(bare_server, ssa_archive, spectra_rows):
    row = spectra_rows[5]
    svc = pyvo.dal.SSAService(bare_server + "/ssa")
    res = svc.search(pos=SkyCoord(row["s_ra"] * u.deg, row["s_dec"] * u.deg),
                     diameter=0.01 * u.deg, pubdid=row["obs_publisher_did"],
                     format="all,native,fits,graphic")
    assert len(res) == 4
    for rec in res:
        assert rec.getdataurl().startswith(bare_server + "/getdata?ID="), rec.getdataurl()
        got = _answers(rec.getdataurl())
        assert got.headers["content-type"].startswith(rec.format)
    assert res[0].getdataset().read()[:6] == b"SIMPLE"  # the first #this link: FITS


def test_every_datalink_link_answers(bare_server, ssa_archive, spectra_rows):
    did = spectra_rows[6]["obs_publisher_did"]
    links_url = f"{bare_server}/datalink/links?ID={did}"
    links = DatalinkResults.from_result_url(links_url)
    urls = [r.access_url for r in links if not r["service_def"]]
    assert len(urls) >= 8  # 3 x #this, preview, labels, latent, models, similar
    for url in urls:
        assert url.startswith(bare_server + "/"), url
        _answers(url)
    similar = next(r for r in links.bysemantics("#counterpart") if r.service_def)
    descriptor = links.get_adhocservice_by_id("similar")
    params = {p.name: p.value for p in descriptor.params}
    assert params["accessURL"] == bare_server + "/datalink/similar"
    table = Table.read(io.BytesIO(similar.process(K=4).read()), format="votable")
    assert len(table) == 4 and did not in list(table["obs_publisher_did"])


def test_obscore_access_url_sync_and_async(bare_server, ssa_archive, spectra_rows):
    tap = pyvo.dal.TAPService(bare_server + "/tap")
    query = "SELECT TOP 2 obs_publisher_did, access_url FROM ivoa.obscore ORDER BY obs_id"
    for result in (tap.run_sync(query), tap.run_async(query)):
        for url in result["access_url"]:
            assert url.startswith(bare_server + "/datalink/links?ID="), url
            assert b"#this" in _answers(url).content
    # The base is the query's, in conditions as much as in the select list.
    n = tap.run_sync(f"SELECT COUNT(*) AS n FROM ivoa.obscore WHERE access_url LIKE "
                     f"'{bare_server}/datalink/links?ID=%'").to_table()["n"][0]
    assert n == len(spectra_rows)


def test_uws_job_urls(bare_server, ssa_archive):
    session = requests.Session()  # keeps the owner-token cookie, as pyvo's default one does
    tap = pyvo.dal.TAPService(bare_server + "/tap", session=session)
    job = tap.submit_job("SELECT TOP 3 obs_publisher_did, access_url FROM ivoa.obscore")
    assert job.url.startswith(bare_server + "/tap/async/"), job.url
    job.run()
    job.wait(timeout=60)
    assert job.phase == "COMPLETED"
    assert job.result_uri == f"{job.url}/results/result"
    table = job.fetch_result().to_table()
    assert all(str(u).startswith(bare_server + "/") for u in table["access_url"])
    listing = session.get(bare_server + "/tap/async").text  # this owner's jobs
    assert f'xlink:href="{job.url}"' in listing
    job.delete()


def test_urls_follow_the_host_the_client_used(bare_server, ssa_archive, spectra_rows):
    """The same server reached as ``localhost`` answers with ``localhost`` URLs."""
    other = bare_server.replace("127.0.0.1", "localhost")
    did = spectra_rows[1]["obs_publisher_did"]
    for base in (bare_server, other):
        ssa = httpx.get(base + "/ssa", params={"REQUEST": "queryData", "PUBDID": did}).content
        acrefs = parse(io.BytesIO(ssa)).get_first_table().array["accref"]
        assert all(str(a).startswith(base + "/getdata?") for a in acrefs)
        caps = httpx.get(base + "/tap/capabilities").text
        assert set(re.findall(r"<accessURL[^>]*>([^<]+)</", caps)) == {
            base + "/tap" + tail for tail in ("", "/capabilities", "/availability", "/tables",
                                              "/examples")} | {base + "/oai"}
        page = httpx.get(base + "/").text
        assert f'href="{base}/tap"' in page and f'href="{base}/ssa' in page


def test_forwarded_proto_from_a_trusted_proxy(bare_server, ssa_archive):
    """uvicorn trusts X-Forwarded-Proto from 127.0.0.1 (its default): https URLs."""
    https = bare_server.replace("http://", "https://")
    caps = httpx.get(bare_server + "/ssa/capabilities",
                     headers={"X-Forwarded-Proto": "https"}).text
    urls = re.findall(r"<accessURL[^>]*>([^<]+)</", caps)
    assert urls and all(u.startswith(https + "/") for u in urls), urls
    created = httpx.post(bare_server + "/tap/async", data={"LANG": "ADQL", "QUERY": "SELECT 1"},
                         headers={"X-Forwarded-Proto": "https"})
    assert created.status_code == 303
    assert created.headers["location"].startswith(https + "/tap/async/")
    httpx.delete(bare_server + "/tap/async/" + created.headers["location"].rsplit("/", 1)[1])
