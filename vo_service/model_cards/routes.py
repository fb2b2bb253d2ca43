"""HTTP handlers of the model cards.

* ``/models``: the registered models, newest first: HTML, or JSON with ``?format=json``
  or an ``Accept`` header asking for JSON rather than HTML;
* ``/models/<model_id>``: a model's card as HTML;
* ``/models/<model_id>/card.json``: the same card as JSON (docs/ml.md, "Model cards").

An unknown model answers 404 (an HTML page, or a JSON object for ``card.json``). The
cards are read with the owner's engine: the reference-label sets they describe are in
``latentvo_ops``, hidden from the read-only role. A database outage becomes the
service's 503 (``vo_service.web``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException

from vo_service.db.database import Database
from vo_service.model_cards import card, html
from vo_service.urls import PublicURLs
from vo_service.web import checked_parameters, public_urls

router = APIRouter(dependencies=[checked_parameters()])


def install(app: FastAPI) -> None:
    """Mount the model-card pages."""
    app.include_router(router)


def _wants_json(request: Request) -> bool:
    """``?format=json``, or an Accept header naming JSON and not HTML."""
    fmt = request.query_params.get("format")
    if fmt is not None:
        if fmt.lower() not in ("json", "html"):
            raise HTTPException(400, f"format must be json or html, not {fmt!r}")
        return fmt.lower() == "json"
    accept = request.headers.get("accept", "")
    return "json" in accept and "text/html" not in accept


async def _card(request: Request, model_id: str) -> dict[str, Any] | None:
    database: Database = request.app.state.database
    urls: PublicURLs = public_urls(request)

    def read() -> dict[str, Any] | None:
        with database.engine.connect() as conn:
            return card.build_card(conn, model_id, urls, database.settings.service)

    return await run_in_threadpool(read)


@router.api_route("/models", methods=["GET", "HEAD"])
async def model_list(request: Request) -> Response:
    """The registered models with links to their cards."""
    database: Database = request.app.state.database
    urls = public_urls(request)
    as_json = _wants_json(request)

    def read() -> list[dict[str, Any]]:
        with database.engine.connect() as conn:
            return card.model_list(conn, urls)

    entries = await run_in_threadpool(read)
    if as_json:
        return JSONResponse({"format": card.CARD_FORMAT, "models": entries})
    return HTMLResponse(html.list_page(entries, urls.landing))


@router.api_route("/models/{model_id}", methods=["GET", "HEAD"])
async def model_card_page(request: Request, model_id: str) -> HTMLResponse:
    """A model's card, as HTML."""
    found = await _card(request, model_id)
    if found is None:
        raise HTTPException(404)
    return HTMLResponse(html.card_page(found))


@router.api_route("/models/{model_id}/card.json", methods=["GET", "HEAD"])
async def model_card_json(request: Request, model_id: str) -> JSONResponse:
    """A model's card, as JSON."""
    found = await _card(request, model_id)
    if found is None:
        return JSONResponse({"error": f"no model {model_id!r} is registered",
                             "models": public_urls(request).models}, status_code=404)
    return JSONResponse(found)
