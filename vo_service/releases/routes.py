"""HTTP handlers of the data releases' pages and citation documents.

* ``/releases``: the published and withdrawn releases;
* ``/releases/<name>``: the landing page with Signposting ``Link`` headers; a withdrawn
  release's tombstone answers 410 Gone; a draft or unknown name 404, as HTML;
* ``/releases/<name>/datacite.xml`` and ``/citation.bib``: served for published and
  withdrawn releases (a withdrawn release stays citable);
* ``/releases/<name>/ro-crate-metadata.json``: published releases only (410 once
  withdrawn: the data it lists are gone).

The releases are read with the owner's engine: ``latentvo_ops`` is hidden from the
read-only role. A database outage becomes the service's 503 (``vo_service.web``).
"""

from __future__ import annotations

import json

from fastapi import APIRouter, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from starlette.exceptions import HTTPException

from vo_service.db.database import Database
from vo_service.releases import citation, contents, crate, landing, signposting
from vo_service.releases.publisher import Publisher, publisher_of
from vo_service.releases.store import PUBLISHED, WITHDRAWN, Release, read_release, read_releases
from vo_service.web import checked_parameters, public_urls

router = APIRouter(dependencies=[checked_parameters()])
CITABLE = (PUBLISHED, WITHDRAWN)


def install(app: FastAPI) -> None:
    """Mount the release pages."""
    app.include_router(router)


def _publisher(request: Request) -> Publisher:
    database: Database = request.app.state.database
    return publisher_of(database.settings)


def _read(database: Database, name: str) -> Release | None:
    with database.engine.connect() as conn:
        return read_release(conn, name)


async def _release(request: Request, name: str, states: tuple[str, ...]) -> Release:
    """The release ``name`` if it is in one of ``states``; else 404, or 410 for a
    withdrawn release where only published ones are served."""
    release = await run_in_threadpool(_read, request.app.state.database, name)
    if release is None or release.state not in CITABLE:
        raise HTTPException(404)
    if release.state not in states:
        raise HTTPException(410, f"The data release {name} has been withdrawn; its page is "
                                 f"{public_urls(request).release_page(name)}.")
    return release


def _headers(links: list[signposting.Link]) -> dict[str, str]:
    return {"Link": signposting.link_header(links)}


@router.api_route("/releases", methods=["GET", "HEAD"])
async def releases_list(request: Request) -> HTMLResponse:
    """The list of published and withdrawn releases."""
    database: Database = request.app.state.database

    def read() -> list[Release]:
        with database.engine.connect() as conn:
            return read_releases(conn)

    releases = await run_in_threadpool(read)
    return HTMLResponse(landing.releases_page(releases, _publisher(request), public_urls(request)))


@router.api_route("/releases/{name}", methods=["GET", "HEAD"])
async def release_page(request: Request, name: str) -> HTMLResponse:
    """A release's landing page, or its tombstone (410) once withdrawn."""
    release = await _release(request, name, CITABLE)
    pub, urls = _publisher(request), public_urls(request)
    headers = _headers(signposting.release_links(release, pub, urls))
    if release.state == WITHDRAWN:
        return HTMLResponse(landing.tombstone_page(release, pub, urls), status_code=410,
                            headers=headers)
    return HTMLResponse(landing.release_page(release, pub, urls), headers=headers)


@router.api_route("/releases/{name}/datacite.xml", methods=["GET", "HEAD"])
async def release_datacite(request: Request, name: str) -> Response:
    """The release's DataCite 4.3 XML."""
    release = await _release(request, name, CITABLE)
    urls = public_urls(request)
    body = await run_in_threadpool(citation.datacite_xml, release, _publisher(request), urls)
    return Response(body, media_type=citation.DATACITE_MIME,
                    headers=_headers(signposting.describes(urls.release_page(name))))


@router.api_route("/releases/{name}/citation.bib", methods=["GET", "HEAD"])
async def release_bibtex(request: Request, name: str) -> Response:
    """The release's BibTeX entry."""
    release = await _release(request, name, CITABLE)
    urls = public_urls(request)
    return Response(citation.release_bibtex(release, _publisher(request), urls),
                    media_type=citation.BIBTEX_MIME,
                    headers=_headers(signposting.describes(urls.release_page(name))))


@router.api_route("/releases/{name}/ro-crate-metadata.json", methods=["GET", "HEAD"])
async def release_crate(request: Request, name: str) -> Response:
    """The release's RO-Crate metadata: its tables online, its model artifacts."""
    release = await _release(request, name, (PUBLISHED,))
    database: Database = request.app.state.database
    urls = public_urls(request)

    def document() -> str:
        with database.engine.connect() as conn:
            paths = contents.artifact_paths(conn, release)
        parts = crate.online_tables(release, urls) + crate.model_parts(release, paths)
        made = crate.release_crate(release, _publisher(request), urls, parts)
        return json.dumps(crate.crate_document(made), indent=1, ensure_ascii=False)

    body = await run_in_threadpool(document)
    return Response(body, media_type="application/ld+json",
                    headers=_headers(signposting.describes(urls.release_page(name))))
