"""HTTP handlers of similarity by spectrum: ``/similar`` and ``/similar/capabilities``.

``/similar`` takes GET (``ID=``) and POST (urlencoded ``ID=``, or multipart with the
spectrum file as ``UPLOAD``); the body is read within ``[requests]``' limits and the
file within ``[similar] upload_bytes``. Reading, encoding and searching run in a query
slot (:mod:`vo_service.admission`). Errors are DALI error documents.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response

from vo_service.db.database import Database
from vo_service.request_body import BodyLimits
from vo_service.similar import document
from vo_service.similar.request import read_request
from vo_service.similar.search import find_similar
from vo_service.web import (
    ErrorForm,
    checked_parameters,
    error_form,
    public_urls,
    read_params,
    run_in_slot,
)

router = APIRouter(dependencies=[error_form(ErrorForm(fault_codes=True)), checked_parameters()])


def install(app: FastAPI) -> None:
    """Mount the ``/similar`` routes (they use ``app.state.database``)."""
    app.include_router(router)


def _body_limits(database: Database) -> BodyLimits:
    settings = database.settings
    return BodyLimits(parameter_bytes=settings.requests.body_bytes,
                      parameters=settings.requests.parameters, files=1,
                      file_bytes=settings.similar.upload_bytes, spool_dir=settings.tmp_dir)


@router.api_route("/similar", methods=["GET", "POST"])
async def similar(request: Request) -> Response:
    """The K archive spectra nearest to an uploaded spectrum (or an archive one)."""
    database: Database = request.app.state.database
    params = await read_params(request, body_limits=_body_limits(database))
    wanted = read_request(params, database.settings.similar)
    urls = public_urls(request)

    def answer() -> bytes:
        result = find_similar(database.settings, database.reader_engine, wanted)
        return document.render(result, wanted, urls)

    body = await run_in_slot(request, answer)
    return Response(body, media_type=wanted.mime)


@router.api_route("/similar/capabilities", methods=["GET", "HEAD"])
def capabilities(request: Request) -> Response:
    """VOSI capabilities of ``/similar``."""
    settings = request.app.state.database.settings
    return Response(document.capabilities(public_urls(request), settings.authority,
                                          settings.similar), media_type="text/xml")
