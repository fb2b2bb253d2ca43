"""ObsCore 1.1: the ``ivoa.obscore`` view and the configuration it needs.

The view is declared in ``schema.obscore`` and created by migration 0003; TAP
serves it like any published table (TAP_SCHEMA, ``/tables``, ADQL with HEALPix
cones on ``s_ra``/``s_dec``). Its ``access_url`` is
``<base_url>/datalink/links?ID=<obs_publisher_did>``; the base URL is
configuration (``Settings.base_url``), so the view reads it from
``latentvo_ops.service_settings``, which :func:`install` (called when the web
service is created) keeps equal to the configured value. Changing
``LATENTVO_BASE_URL`` and restarting the service is therefore enough: no DDL
runs, nothing is re-created.

:data:`DATA_MODEL` is the ObsCore data-model IVOID the TAP capability must
declare (``<dataModel ivo-id=...>``).
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from fastapi import FastAPI

from schema.obscore import OBSCORE_DATA_MODEL, service_settings

log = logging.getLogger("latentvo.obscore")
DATA_MODEL = OBSCORE_DATA_MODEL
DATA_MODEL_NAME = "ObsCore-1.1"


def data_model_xml() -> str:
    """The TAPRegExt element for the TAP capability (taplint's OBS stage needs it)."""
    return f'<dataModel ivo-id="{DATA_MODEL}">{DATA_MODEL_NAME}</dataModel>'


def set_base_url(engine: sa.Engine, base_url: str) -> bool:
    """Store the public base URL for ``ivoa.obscore.access_url``; True when it changed."""
    from sqlalchemy.dialects.postgresql import insert

    value = base_url.rstrip("/")
    statement = insert(service_settings).values(name="base_url", value=value)
    statement = statement.on_conflict_do_update(
        index_elements=[service_settings.c.name],
        set_={"value": statement.excluded.value, "updated_at": sa.func.now()},
        where=service_settings.c.value.is_distinct_from(statement.excluded.value))
    with engine.begin() as conn:
        return conn.execute(statement).rowcount > 0


def install(app: FastAPI, database) -> None:
    """Keep the view's base URL equal to the configuration (no routes: TAP serves the view)."""
    base_url = database.settings.base_url
    try:
        if set_base_url(database.engine, base_url):
            log.info("ivoa.obscore access_url now starts with %s", base_url)
    except sa.exc.SQLAlchemyError as exc:  # schema not migrated yet: serve the rest
        log.warning("cannot record the base URL for ivoa.obscore: %s", exc)
    app.state.obscore_base_url = base_url
