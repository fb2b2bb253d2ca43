"""HTTP handlers of the latent-space explorer: the page ``/explore``, its JSON API under
``/explore/api/`` and its script and style sheet under ``/explore/static/``.

Parameters follow DALI (case-insensitive names, GET or POST form); a bad or
over-limit parameter is a 400, an unknown model or spectrum a 404, both answered with
the VOTable error document of :mod:`vo_service.web` (``UsageFault: ...``). The API
calls that read the latent index or run the networks take a query slot
(:mod:`vo_service.admission`) like the other protocols' searches.
"""

from __future__ import annotations

import json
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

from vo_service.dali import DALIError
from vo_service.db.database import Database
from vo_service.explore import page, queries
from vo_service.explore.explorer import Explorer
from vo_service.web import (
    ErrorForm,
    checked_parameters,
    error_form,
    public_urls,
    read_params,
    run_in_slot,
)

STATIC = Path(__file__).resolve().parent / "static"
router = APIRouter(dependencies=[error_form(ErrorForm(fault_codes=True)), checked_parameters()])


def install(app: FastAPI, database: Database) -> None:
    """Mount the explorer; it reads spectrum files through getData's store."""
    app.state.explorer = Explorer(database.settings, database.reader_engine,
                                  app.state.getdata.store)
    app.include_router(router)
    app.mount("/explore/static", StaticFiles(directory=STATIC), name="explore-static")


def _json(value: object) -> Response:
    return Response(json.dumps(value, allow_nan=False), media_type="application/json")


def _explorer(request: Request) -> Explorer:
    explorer: Explorer = request.app.state.explorer
    return explorer


@router.get("/explore", response_class=HTMLResponse)
async def explore_page(request: Request) -> HTMLResponse:
    """The explorer page (the data come from the API once it has loaded)."""
    return HTMLResponse(page.explorer_page(public_urls(request)))


@router.api_route("/explore/api/models", methods=["GET", "POST"])
async def api_models(request: Request) -> Response:
    """The autoencoders with latent vectors, current first."""
    await read_params(request)
    return _json(await run_in_slot(request, queries.models, _explorer(request).engine))


@router.api_route("/explore/api/model", methods=["GET", "POST"])
async def api_model(request: Request) -> Response:
    """One model (``MODEL``): its wavelength grid and its sliders."""
    params = await read_params(request)
    explorer = _explorer(request)

    def describe() -> dict[str, object]:
        return explorer.model_description(explorer.model(params))
    return _json(await run_in_slot(request, describe))


@router.api_route("/explore/api/map", methods=["GET", "POST"])
async def api_map(request: Request) -> Response:
    """The 2-D map of ``MODEL`` with the labels it can be coloured by."""
    params = await read_params(request)
    explorer = _explorer(request)

    def points() -> dict[str, list]:
        return queries.map_points(explorer.engine, explorer.model(params),
                                  explorer.limits.map_points)
    return _json(await run_in_slot(request, points))


@router.api_route("/explore/api/search", methods=["GET", "POST"])
async def api_search(request: Request) -> Response:
    """Spectra of ``MODEL`` whose target name contains ``NAME`` (or whose ID it is)."""
    params = await read_params(request)
    text = (params.single("NAME") or "").strip()
    if not text:
        raise DALIError("NAME is missing: give part of a target name, or a spectrum's ID")
    explorer = _explorer(request)

    def found() -> list[dict[str, object]]:
        return queries.search(explorer.engine, explorer.model(params), text,
                              explorer.limits.search_results)
    return _json(await run_in_slot(request, found))


@router.api_route("/explore/api/spectrum", methods=["GET", "POST"])
async def api_spectrum(request: Request) -> Response:
    """Spectrum ``ID``: observed, reconstructed by ``MODEL``, residuals, neighbours."""
    params = await read_params(request)
    did = (params.single("ID") or "").strip()
    if not did:
        raise DALIError("ID is missing: give the publisher DID of a spectrum")
    explorer = _explorer(request)

    def view() -> dict[str, object]:
        return explorer.spectrum_view(explorer.model(params), did)
    return _json(await run_in_slot(request, view))


@router.api_route("/explore/api/decode", methods=["GET", "POST"])
async def api_decode(request: Request) -> Response:
    """Decode ``LATENT`` points of ``MODEL`` and list each one's nearest archive spectra."""
    params = await read_params(request)
    explorer = _explorer(request)

    def decoded() -> list[dict[str, object]]:
        return explorer.decode(explorer.decode_request(params))
    return _json(await run_in_slot(request, decoded))


@router.api_route("/explore/api/decoded.xml", methods=["GET", "POST"])
async def api_decoded_votable(request: Request) -> Response:
    """The decoded spectrum of the first ``LATENT`` as a Spectrum DM VOTable download."""
    params = await read_params(request)
    explorer = _explorer(request)

    def document() -> bytes:
        return explorer.decoded_votable(explorer.decode_request(params))
    body = await run_in_slot(request, document)
    return Response(body, media_type="application/x-votable+xml", headers={
        "Content-Disposition": 'attachment; filename="decoded-spectrum.xml"'})
