"""The ASGI application: one router per protocol, mounted on one FastAPI app.

``create_app`` is the factory uvicorn calls (``latentvo serve``); it reads
the settings once and shares one :class:`~vo_service.db.database.Database`
through ``app.state``.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version

from fastapi import FastAPI

from vo_service import datalink, getdata, landing, obscore, ssa, tap
from vo_service.config import load_settings
from vo_service.db.database import Database


def _product() -> str:
    try:
        return f"latentvo/{version('latentvo')}"
    except PackageNotFoundError:
        return "latentvo"


SERVER = f"{_product()} uvicorn"


def create_app(database: Database | None = None) -> FastAPI:
    database = database or Database(load_settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        tap.start(app)
        yield
        tap.stop(app)
        database.dispose()

    app = FastAPI(title="latentvo", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.state.database = database
    app.include_router(landing.router)
    tap.install(app, database)
    for protocol in (getdata, datalink, obscore, ssa):
        protocol.install(app, database)

    app.add_middleware(ServerHeader)
    return app


class ServerHeader:
    """SoftID: name the VO software in the ``Server`` header (taplint W-CAP-SVR0).

    A plain ASGI middleware (not ``BaseHTTPMiddleware``, which would copy every
    streamed result through an extra queue).
    """

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_server(message):
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"server"]
                headers.append((b"server", SERVER.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_server)
