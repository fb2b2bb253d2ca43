"""The ASGI application: one router per protocol, mounted on one FastAPI app.

``create_app`` is the factory uvicorn calls (``latentvo serve``); it reads
the settings once and shares one :class:`~vo_service.db.database.Database`
through ``app.state``, with the configured public base URL
(``app.state.base_url``, None when URLs come from each request: see
:mod:`vo_service.urls`) and the start time that VOSI availability and
capabilities report (``app.state.started``).

HTTP lives at the edge: this module, :mod:`vo_service.web` and each protocol's
``routes`` module are the only ones that import FastAPI or Starlette.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vo_service import landing
from vo_service.admission import Admission
from vo_service.archive.background import read_statuses
from vo_service.config import load_settings, parse_base_url
from vo_service.dali import now_utc
from vo_service.datalink import routes as datalink_routes
from vo_service.db.database import Database
from vo_service.db.outage import OUTAGE_ERRORS, is_outage
from vo_service.errors import one_line
from vo_service.explore import routes as explore_routes
from vo_service.getdata import routes as getdata_routes
from vo_service.model_cards import routes as model_card_routes
from vo_service.registry import routes as registry_routes
from vo_service.registry import sync as registry_sync
from vo_service.releases import routes as release_routes
from vo_service.releases.publisher import publisher_of
from vo_service.releases.signposting import link_header, service_links
from vo_service.releases.store import Release
from vo_service.similar import routes as similar_routes
from vo_service.ssa import routes as ssa_routes
from vo_service.tap import routes as tap_routes
from vo_service.urls import base_path
from vo_service.web import PathPrefix, install_error_handlers, public_urls


def _product() -> str:
    try:
        return f"latentvo/{version('latentvo')}"
    except PackageNotFoundError:
        return "latentvo"


SERVER = f"{_product()} uvicorn"
log = logging.getLogger("latentvo.app")


def create_app(database: Database | None = None) -> FastAPI:
    """The web service on ``database`` (by default the configured one)."""
    database = database or Database(load_settings())
    base_url = database.settings.base_url
    base_url = parse_base_url(base_url) if base_url else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        tap_routes.start(app)
        await run_in_threadpool(_sync_registry, database)
        yield
        tap_routes.stop(app)
        getdata_routes.stop(app)
        database.dispose()

    app = FastAPI(title="latentvo", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.state.database = database
    app.state.base_url = base_url
    app.state.started = now_utc().replace(microsecond=0)
    app.state.admission = Admission(database.settings.web)
    install_error_handlers(app)
    app.add_api_route("/", landing_page, methods=["GET", "HEAD"], response_class=HTMLResponse)
    tap_routes.install(app, database)
    getdata_routes.install(app, database)
    datalink_routes.install(app, database)
    ssa_routes.install(app)
    registry_routes.install(app)
    release_routes.install(app)
    model_card_routes.install(app)
    similar_routes.install(app)
    explore_routes.install(app, database)

    app.add_middleware(ServerHeader)
    if base_url and base_path(base_url):
        app.add_middleware(PathPrefix, prefix=base_path(base_url))
    return app


def _sync_registry(database: Database) -> None:
    """Date the registry's records at start-up, so that a harvester sees what changed
    since the last start (idempotent: workers starting together wait for each other).

    A sync that fails (the database away, a record that cannot be built) leaves the
    records as they were and is logged: the protocols are served all the same, and
    ``latentvo registry sync`` reports the problem to the operator.
    """
    base = registry_sync.startup_base(database.settings, os.environ)
    if base is None:
        return
    try:
        report = registry_sync.sync_registry(database.engine, database.settings, base)
    except Exception as exc:  # noqa: BLE001 - logged; serving goes on with the old records
        log.warning("registry records not synced: %s", one_line(exc))
        return
    log.info("registry records under %s: %s", base, report.summary())


async def landing_page(request: Request) -> HTMLResponse:
    """The HTML landing page: the services, their URLs, what the archive holds, which
    background jobs (the demo's build) run or failed, the data releases and how to cite
    the service, with FAIR Signposting links; 503 while the database is away."""
    database = request.app.state.database
    counts: dict[str, int] | None
    releases: list[Release] | None
    try:
        counts = await run_in_threadpool(landing.archive_counts, database.reader_engine)
        releases = await run_in_threadpool(landing.citable_releases, database.engine)
    except OUTAGE_ERRORS as exc:
        if not is_outage(exc):
            raise
        counts = releases = None
    jobs = await run_in_threadpool(read_statuses, database.settings.home)
    urls, pub = public_urls(request), publisher_of(database.settings)
    return HTMLResponse(landing.landing_page(urls, counts, jobs, pub, releases, now_utc()),
                        status_code=503 if counts is None else 200,
                        headers={"Link": link_header(service_links(pub, urls))})


class ServerHeader:
    """SoftID: name the VO software in the ``Server`` header (taplint W-CAP-SVR0).

    A plain ASGI middleware (not ``BaseHTTPMiddleware``, which would copy every
    streamed result through an extra queue).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the connection on, replacing the ``Server`` header of HTTP responses."""
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_server(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"server"]
                headers.append((b"server", SERVER.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_server)
