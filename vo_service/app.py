"""The ASGI application: one router per protocol, mounted on one FastAPI app.

``create_app`` is the factory uvicorn calls (``latentvo serve``); it reads
the settings once and shares one :class:`~vo_service.db.database.Database`
through ``app.state``.
"""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI

from vo_service import landing
from vo_service.config import load_settings
from vo_service.db.database import Database


def create_app(database: Database | None = None) -> FastAPI:
    database = database or Database(load_settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        database.dispose()

    app = FastAPI(title="latentvo", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.database = database
    app.include_router(landing.router)
    return app
