"""HTTP handlers of DataLink: ``/datalink/links`` and ``/datalink/similar``.

Errors are DataLink error documents (``QUERY_STATUS=ERROR`` whose message starts
with a fault code: ``UsageFault``, ``NotFoundFault``, ...), written by the one
handler of :mod:`vo_service.web`. Both run in the query slots of
:mod:`vo_service.admission` (a links request may name many spectra, a similarity
search reads the latent index).
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response

from vo_service.datalink import document, similar
from vo_service.datalink.links import DataLink
from vo_service.db.database import Database
from vo_service.getdata.lookup import SpectrumLookup
from vo_service.web import (
    ErrorForm,
    checked_parameters,
    error_form,
    public_urls,
    read_params,
    run_in_slot,
)

router = APIRouter(dependencies=[error_form(ErrorForm(fault_codes=True)), checked_parameters()])


def install(app: FastAPI, database: Database) -> None:
    """Mount the DataLink routes; they share getData's store and converter."""
    app.state.datalink = DataLink(
        database=database, lookup=SpectrumLookup(database.reader_engine, ttl=5.0),
        store=app.state.getdata.store, converter=app.state.getdata.converter,
        limits=database.settings.datalink)
    app.include_router(router)


@router.api_route("/datalink/links", methods=["GET", "POST"])
async def links(request: Request) -> Response:
    """The ``{links}`` document of the spectra named by the ``ID`` parameters."""
    params = await read_params(request)
    document.check_response_format(params)
    dids = list(dict.fromkeys(v.strip() for v in params.all("ID") if v.strip()))
    body = await run_in_slot(request, document.links_document, request.app.state.datalink,
                             public_urls(request), dids)
    return Response(body, media_type=document.DATALINK_MIME)


@router.api_route("/datalink/similar", methods=["GET", "POST"])
async def similar_spectra(request: Request) -> Response:
    """The spectra most similar to ``ID`` in an autoencoder's latent space (``K``, ``MODEL``)."""
    dl = request.app.state.datalink
    did, k, model = similar.read_request(await read_params(request), dl.limits)
    body = await run_in_slot(request, document.similar_document, dl, public_urls(request), did,
                             k, model)
    return Response(body, media_type="application/x-votable+xml")
