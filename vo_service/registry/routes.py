"""HTTP handler of the publishing registry: OAI-PMH at ``/oai`` (GET and POST).

OAI-PMH answers its own errors as ``<error>`` elements with HTTP 200; a request
the ``[requests]`` limits refuse (too many or too long arguments, bad UTF-8) is a
``badArgument`` too, with HTTP 200, or 413 for a body over its limit.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from vo_service.dali import DALIError, now_utc
from vo_service.registry import oai
from vo_service.web import public_urls, read_params

OAI_MIME = "text/xml; charset=utf-8"
router = APIRouter()


def install(app: FastAPI) -> None:
    """Mount ``/oai``."""
    app.include_router(router)


@router.api_route("/oai", methods=["GET", "POST"])
async def oai_endpoint(request: Request) -> Response:
    """One OAI-PMH request: Identify, ListMetadataFormats, ListSets, GetRecord,
    ListIdentifiers or ListRecords."""
    url = public_urls(request).oai
    try:
        params = await read_params(request)
    except DALIError as error:
        if error.status >= 500:
            raise
        body = oai.document(now_utc(), url, oai.error_body(oai.OAIError("badArgument",
                                                                      error.message)))
        return Response(body, status_code=200 if error.status == 400 else error.status,
                        media_type=OAI_MIME)
    database = request.app.state.database
    settings = database.settings.registry
    body = await run_in_threadpool(oai.respond, database.engine, params.pairs, url,
                                   oai.Paging(settings.page_size, settings.token_lifetime))
    return Response(body, media_type=OAI_MIME)
