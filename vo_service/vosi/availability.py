"""VOSI availability: can the service (and its database) answer queries?"""

from __future__ import annotations

import datetime as dt
from xml.sax.saxutils import escape

import sqlalchemy as sa

from vo_service.dali import iso_utc
from vo_service.db.outage import is_outage

NS = "http://www.ivoa.net/xml/VOSIAvailability/v1.0"


def probe(engine: sa.Engine, table: str) -> str | None:
    """None when one row of ``table`` can be read, else why not (for the note).

    The note tells an outage (the service recovers by itself once the database is back)
    from a database that answers but cannot serve the table.
    """
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(f"SELECT 1 FROM {table} LIMIT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure means "not available"
        if is_outage(exc):
            return ("the database cannot be reached (down or restarting); the service "
                    "resumes by itself when it is back")
        return f"the database cannot serve {table}: {type(exc).__name__}"
    return None


def availability_document(available: bool, note: str, up_since: dt.datetime) -> str:
    """The ``vosi:availability`` document; ``upSince`` only while available."""
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<vosi:availability xmlns:vosi="{NS}">\n'
            f'  <vosi:available>{"true" if available else "false"}</vosi:available>\n'
            + (f"  <vosi:upSince>{iso_utc(up_since)}</vosi:upSince>\n" if available else "")
            + f"  <vosi:note>{escape(note)}</vosi:note>\n"
            "</vosi:availability>\n")
