"""HTTP handlers of SSA: ``/ssa``, ``/ssa/capabilities``, ``/ssa/availability``.

Errors are the SSA error form: ``QUERY_STATUS=ERROR`` with the message and the
``SERVICE_PROTOCOL`` INFO, no table, HTTP 400 (500/503 for the service's own
failures), written by the one handler of :mod:`vo_service.web`.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from vo_service.dali import VOTABLE_MIME
from vo_service.ssa import document
from vo_service.ssa.vosi import current_test_query, ssa_capabilities
from vo_service.vosi import availability as vosi_availability
from vo_service.web import (
    ErrorForm,
    checked_parameters,
    error_form,
    public_urls,
    read_params,
    run_in_slot,
)

router = APIRouter(dependencies=[error_form(ErrorForm(infos=document.ERROR_INFOS)),
                                 checked_parameters()])


def install(app: FastAPI) -> None:
    """Mount the SSA routes (getData and DataLink, which its records use, are mounted
    by the application)."""
    app.include_router(router)


@router.api_route("/ssa", methods=["GET", "POST"])
async def ssa_endpoint(request: Request) -> Response:
    """A queryData request (or FORMAT=METADATA): the SSA VOTable of matching spectra
    (in a query slot, :mod:`vo_service.admission`)."""
    params = await read_params(request)
    database = request.app.state.database
    body = await run_in_slot(request, document.respond, database.reader_engine,
                             public_urls(request), params, database.settings.ssa,
                             database.settings.service.publisher)
    return Response(body, media_type=VOTABLE_MIME)


@router.api_route("/ssa/capabilities", methods=["GET", "HEAD"])
def capabilities(request: Request) -> Response:
    """VOSI capabilities of SSA (HEAD too), with a test query around a published spectrum."""
    database = request.app.state.database
    return Response(ssa_capabilities(public_urls(request), database.settings.ssa,
                                     current_test_query(database.reader_engine)),
                    media_type="text/xml")


@router.get("/ssa/availability")
async def availability(request: Request) -> Response:
    """VOSI availability of SSA: whether the spectra table can be read."""
    problem = await run_in_threadpool(vosi_availability.probe,
                                      request.app.state.database.reader_engine,
                                      "latentvo.spectra")
    body = vosi_availability.availability_document(
        problem is None, problem or "SSA queries are accepted", request.app.state.started)
    return Response(body, media_type="text/xml")
