"""VOSI availability: is the service (and its database) able to answer queries?"""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from vo_service.dali import iso_utc

router = APIRouter()
NS = "http://www.ivoa.net/xml/VOSIAvailability/v1.0"


def _check(request: Request) -> tuple[bool, str]:
    try:
        with request.app.state.database.reader_engine.connect() as conn:
            conn.execute(sa.text("SELECT 1 FROM tap_schema.tables LIMIT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure means "not available"
        return False, f"the database cannot be reached: {type(exc).__name__}"
    jobs = getattr(request.app.state, "jobs", None)
    if jobs is not None and not jobs.running:
        return True, "synchronous queries are accepted; asynchronous workers are stopped"
    return True, "service is accepting queries"


@router.get("/tap/availability")
async def availability(request: Request) -> Response:
    ok, note = await run_in_threadpool(_check, request)
    up_since = iso_utc(request.app.state.started)
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<vosi:availability xmlns:vosi="{NS}">\n'
            f'  <vosi:available>{"true" if ok else "false"}</vosi:available>\n'
            + (f'  <vosi:upSince>{up_since}</vosi:upSince>\n' if ok else "")
            + f'  <vosi:note>{note}</vosi:note>\n'
            f'</vosi:availability>\n')
    return Response(body, media_type="text/xml", status_code=200)
