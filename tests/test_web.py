"""The web service over real HTTP: the landing page, the edge's error forms, where HTTP lives."""

from __future__ import annotations

import ast
import io

import httpx
from astropy.io.votable import parse

from tests.conftest import REPO

EDGE = {"vo_service.app", "vo_service.web"}


def test_landing_page(server):
    response = httpx.get(server + "/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "latentvo" in response.text and "spectra" in response.text
    assert f'href="{server}/tap"' in response.text


def test_unknown_url_is_a_short_html_page(server):
    response = httpx.get(server + "/no/such/thing")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "404 Not Found" in response.text and "/no/such/thing" in response.text
    assert "detail" not in response.text and len(response.text) < 1000


def test_wrong_method_is_a_short_html_page(server):
    response = httpx.put(server + "/tap/sync", content=b"x")
    assert response.status_code == 405
    assert response.headers["content-type"].startswith("text/html")
    assert set(response.headers["allow"].replace(" ", "").split(",")) == {"GET", "POST"}
    assert "405 Method Not Allowed" in response.text and "PUT" in response.text


def _infos(body: bytes) -> dict[str, str]:
    vot = parse(io.BytesIO(body))
    return {i.name: i.value for i in vot.resources[0].infos}


def test_one_error_handler_speaks_each_protocol(server):
    """DALIError from any route: a VOTable with QUERY_STATUS=ERROR and the protocol's form."""
    ssa = httpx.get(server + "/ssa", params={"REQUEST": "queryData", "POS": "10,95"})
    assert ssa.status_code == 400
    assert ssa.headers["content-type"].startswith("application/x-votable+xml")
    infos = _infos(ssa.content)
    assert infos["QUERY_STATUS"] == "ERROR" and infos["SERVICE_PROTOCOL"] == "1.1"

    tap = httpx.get(server + "/tap/sync", params={"QUERY": "SELECT 1"})
    assert tap.status_code == 400
    assert _infos(tap.content) == {"QUERY_STATUS": "ERROR"}
    assert b"LANG is missing" in tap.content

    job = httpx.get(server + "/tap/async/no-such-job")
    assert job.status_code == 404 and _infos(job.content) == {"QUERY_STATUS": "ERROR"}

    similar = httpx.get(server + "/datalink/similar")
    assert similar.status_code == 400
    assert b"UsageFault: ID is missing" in similar.content
    missing = httpx.get(server + "/getdata", params={"ID": "ivo://nowhere/x"})
    assert missing.status_code == 404 and b"NotFoundFault: no spectrum" in missing.content
    assert b"UsageFault" not in missing.content


def test_http_stays_at_the_edge():
    """Only app, web and the protocols' routes modules import FastAPI or Starlette."""
    offenders = []
    for path in sorted((REPO / "vo_service").rglob("*.py")):
        name = ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
        if name in EDGE or path.name == "routes.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                modules = [node.module or ""]
            else:
                continue
            if any(m.split(".")[0] in ("fastapi", "starlette") for m in modules):
                offenders.append(name)
    assert not offenders, f"HTTP framework imported outside the edge: {sorted(set(offenders))}"
