"""Telling a database outage from an error of the statement.

A server that is down, restarting or shutting down, or a pooled connection it
dropped, is the service's trouble, not the client's: the protocols answer it
with 503 and ``Retry-After`` (``vo_service.dali.DatabaseUnavailable``), while a
statement the database refused stays the client's error. This module knows
how each driver in use (SQLAlchemy over psycopg2, ADBC) reports an outage.
"""

from __future__ import annotations

import adbc_driver_manager
import psycopg2  # type: ignore[import-untyped]
import sqlalchemy as sa

# SQLSTATE classes of an outage: 08 connection exception; 57P admin shutdown, crash
# shutdown, cannot connect now (starting up), database dropped.
OUTAGE_STATES = ("08", "57P")

# What may escape a request handler when the database goes away mid-request.
OUTAGE_ERRORS: tuple[type[Exception], ...] = (
    sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.DisconnectionError,
    psycopg2.OperationalError, psycopg2.InterfaceError,
    adbc_driver_manager.OperationalError, adbc_driver_manager.InterfaceError,
)


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` says the database cannot be reached (rather than refusing a statement).

    A statement cancelled for its time limit (SQLSTATE 57014) is an OperationalError to
    psycopg2 too, but not an outage.
    """
    if isinstance(exc, sa.exc.DisconnectionError):
        return True
    if isinstance(exc, sa.exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        if exc.orig is not None:
            exc = exc.orig
    if isinstance(exc, psycopg2.Error):
        state = exc.pgcode
        if isinstance(exc, psycopg2.InterfaceError):  # "connection already closed"
            return True
        return isinstance(exc, psycopg2.OperationalError) and (
            state is None or state.startswith(OUTAGE_STATES))
    if isinstance(exc, adbc_driver_manager.Error):
        state = exc.sqlstate
        if state:
            return state.startswith(OUTAGE_STATES)
        return isinstance(exc, adbc_driver_manager.OperationalError
                          | adbc_driver_manager.InterfaceError)
    return False
