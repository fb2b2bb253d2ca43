"""The HTTP edge shared by every protocol's ``routes`` module.

* :func:`read_params`: DALI parameters from the query string and the form body,
  read within its limits while it arrives and checked against the ``[requests]``
  limits (text, length, count: :mod:`vo_service.dali`); :func:`checked_parameters`,
  a router dependency, checks the query string and the path parameters of every
  route, those that read no body included;
* :func:`public_urls`: the :class:`~vo_service.urls.PublicURLs` of the request being
  answered (the one rule for public URLs is in :mod:`vo_service.urls`);
* :func:`install_error_handlers`: one handler turns every
  :class:`~vo_service.dali.DALIError` raised while answering a request into the
  protocol's VOTable error document (``QUERY_STATUS=ERROR``, the error's HTTP
  status), with the INFOs and fault codes the protocol's router declared through
  :func:`error_form`; a database outage escaping a handler becomes the same
  document with 503 and ``Retry-After``; unknown URLs and methods get a short HTML
  page instead of FastAPI's JSON;
* :func:`admit`, :func:`run_in_slot`, :func:`release_when_done`: expensive work in the
  query slots of :mod:`vo_service.admission`, abandoned when the client goes away;
* :class:`PathPrefix`: serves the application under the path of a configured
  ``base_url``.

Only this module, ``vo_service.app`` and the protocols' ``routes`` modules import
FastAPI or Starlette (``tests/test_web.py::test_http_stays_at_the_edge``): what the
protocols compute (queries, documents, URLs) does not depend on the web framework.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from html import escape
from http import HTTPStatus
from typing import Any, TypeVar

from fastapi import Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Receive, Scope, Send

from vo_service.admission import Abandoned, Admission, Ticket
from vo_service.config import RequestLimits
from vo_service.dali import (
    VOTABLE_MIME,
    DALIError,
    DatabaseUnavailable,
    Params,
    check_parameter,
    parse_query_string,
)
from vo_service.db.outage import OUTAGE_ERRORS, is_outage
from vo_service.errors import one_line
from vo_service.formats.votable import error_document
from vo_service.request_body import BodyLimits, FormReader, is_form, too_large
from vo_service.urls import PublicURLs, public_base

log = logging.getLogger("latentvo.web")
FAULT = re.compile(r"^[A-Za-z]+Fault: ")
T = TypeVar("T")


async def read_params(request: Request, *, uploads: bool = False,
                      body_limits: BodyLimits | None = None) -> Params:
    """Query string plus form body (urlencoded or multipart) of ``request``.

    The body is parsed while it arrives (:mod:`vo_service.request_body`), within the
    ``[requests]`` limits and, where ``uploads`` is true (TAP queries and jobs), with
    file parts within the ``[tap]`` upload limits; elsewhere file parts are refused,
    unless the endpoint passes its own ``body_limits`` (``/similar``: one spectrum file).

    Raises
    ------
    DALIError
        413 at the first byte over a limit, 400 when the body cannot be read or a
        parameter is refused (:class:`~vo_service.dali.Params`).
    """
    limits = _limits(request)
    checked = getattr(request.state, "query_items", None)  # parsed by checked_parameters
    items = list(checked) if checked is not None else \
        parse_query_string(request.scope["query_string"], limits)
    if request.method != "POST":
        return Params(items, limits=limits)
    body_limits = body_limits or BodyLimits.of(request.app.state.database.settings,
                                               uploads=uploads)
    length = request.headers.get("content-length", "")
    if length.isdigit() and (error := too_large(int(length), body_limits)):
        raise error
    ctype = request.headers.get("content-type", "")
    if not is_form(ctype):
        return Params(items, limits=limits)
    reader = FormReader(ctype, body_limits)
    try:
        try:
            async for chunk in request.stream():
                reader.feed(chunk)
        except ClientDisconnect:
            raise DALIError("the client closed the connection before the end of the body") \
                from None
        fields, files = (await run_in_threadpool(reader.finish) if reader.files
                         else reader.finish())
    finally:
        reader.close()
    return Params(items + fields, files, limits=limits)


def _limits(request: Request) -> RequestLimits:
    limits: RequestLimits = request.app.state.database.settings.requests
    return limits


def checked_parameters() -> Any:  # (what fastapi.Depends returns: typed Any)
    """A router dependency: refuse (400) a query string or path parameter that is not
    text, too long or one too many, also on routes that do not call :func:`read_params`
    (getData, the UWS job resources, VOSI tables)."""
    async def check(request: Request) -> None:
        limits = _limits(request)
        items = parse_query_string(request.scope["query_string"], limits)
        Params(items, limits=limits)
        request.state.query_items = items
        for name, value in request.path_params.items():
            check_parameter(name, str(value), limits)
    return Depends(check)


def public_urls(request: Request) -> PublicURLs:
    """The public URLs for the response to ``request`` (see :mod:`vo_service.urls`)."""
    return PublicURLs(public_base(request.app.state.base_url, str(request.base_url)))


# -- query slots -----------------------------------------------------------------------


def client_of(request: Request) -> str:
    """The client's address: the peer, or the ``X-Forwarded-For`` client that uvicorn
    took from a trusted proxy (``serve --forwarded-allow-ips``)."""
    return request.client.host if request.client else "unknown"


def admit(request: Request) -> Ticket:
    """A ticket for an expensive request (:meth:`Admission.admit`: 503 when over limits)."""
    admission: Admission = request.app.state.admission
    return admission.admit(client_of(request))


async def _disconnect(request: Request) -> None:
    """Return when the client has closed the connection (its body is already read)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def in_slot(request: Request, ticket: Ticket, func: Callable[..., T], *args: object,
                  discard: Callable[[T], None] | None = None) -> T:
    """Wait for a slot and run ``func(*args)`` in it, watching the client meanwhile.

    When the client goes away the ticket is abandoned (hooks such as a query's cancel
    run at once), waiting for a slot stops, and :class:`Abandoned` is raised once the
    thread has finished; a result that came anyway is handed to ``discard``. The
    ticket is not released here: the caller does (after streaming, for a stream).
    """
    async def work() -> T:
        await ticket.acquire()
        if await request.is_disconnected():
            raise Abandoned()
        return await ticket.run(func, *args)

    task = asyncio.ensure_future(work())
    watcher = asyncio.ensure_future(_disconnect(request))
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not task.done() and not watcher.done():  # the request itself was cancelled
            ticket.abandon()
            task.cancel()
    if task.done():
        watcher.cancel()
        return task.result()
    ticket.abandon()
    if not ticket.holding:
        task.cancel()  # still waiting for a slot: give up the wait
    # Work in a thread cannot be interrupted: wait for it (the abandon hooks cancelled
    # its query), then drop a result it produced all the same.
    with contextlib.suppress(Exception, asyncio.CancelledError):
        result = await task
        if discard is not None:
            await ticket.run(discard, result)
    raise Abandoned()


async def run_in_slot(request: Request, func: Callable[..., T], *args: object) -> T:
    """``func(*args)`` as one expensive request: admitted, in a slot, released after."""
    ticket = admit(request)
    try:
        return await in_slot(request, ticket, func, *args)
    finally:
        ticket.release()


_WATCHERS: set[asyncio.Task[None]] = set()  # running release_when_done tasks


def release_when_done(request: Request, ticket: Ticket) -> None:
    """Keep ``ticket``'s slot while its response streams; release it at the end.

    ASGI answers ``http.disconnect`` to ``receive`` both when the client goes and once
    the response is complete, so one watcher covers both: it abandons the ticket
    (stopping the query of a client that went; nothing left to stop otherwise) and
    releases it. It runs beside the response, however the response ends, even
    when the stream never started. The producer may be blocked in the database for
    a long time between chunks: the disconnect is noticed at once, not at the next
    write.
    """
    async def watch() -> None:
        try:
            await _disconnect(request)
            ticket.abandon()
        finally:
            ticket.release()

    task = asyncio.ensure_future(watch())
    _WATCHERS.add(task)
    task.add_done_callback(_WATCHERS.discard)


# -- errors ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ErrorForm:
    """How a protocol's error documents look beyond ``QUERY_STATUS=ERROR``.

    Attributes
    ----------
    infos
        Extra ``(name, value, text)`` INFOs, e.g. SSA's ``SERVICE_PROTOCOL``.
    fault_codes
        Start messages with a DataLink/SODA fault code (``UsageFault: `` for 4xx,
        ``FatalFault: `` for 5xx) unless they already name one.
    """

    infos: tuple[tuple[str, str, str | None], ...] = ()
    fault_codes: bool = False

    def message(self, error: DALIError) -> str:
        """The text of the error document's QUERY_STATUS INFO for ``error``."""
        if not self.fault_codes or FAULT.match(error.message):
            return error.message
        return f"{'UsageFault' if error.status < 500 else 'FatalFault'}: {error.message}"


def error_form(form: ErrorForm) -> Any:  # (what fastapi.Depends returns: typed Any)
    """A router dependency that makes the error handler answer in ``form``."""
    async def declare(request: Request) -> None:
        request.state.error_form = form
    return Depends(declare)


# Starlette types exception handlers as taking any Exception; it calls each one only with
# the class it was installed for, which the handlers assert.
async def _dali_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DALIError)
    form: ErrorForm = getattr(request.state, "error_form", ErrorForm())
    retry = getattr(exc, "retry_after", None)  # Overloaded, DatabaseUnavailable
    headers = {"Retry-After": str(retry)} if retry is not None else None
    return Response(error_document(form.message(exc), form.infos), status_code=exc.status,
                    media_type=VOTABLE_MIME, headers=headers)


async def _database_outage(request: Request, exc: Exception) -> Response:
    """The last resort for a database outage no handler turned into a DALIError: the
    protocol's 503 document. Any other driver error stays a 500 (re-raised)."""
    if not is_outage(exc):
        raise exc
    # The driver's text names internal hosts and ports: for the log, not for clients.
    log.warning("%s %s: database unavailable: %s", request.method, request.url.path,
                one_line(getattr(exc, "orig", None) or exc))
    return await _dali_error(request, DatabaseUnavailable())


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    status = HTTPStatus(exc.status_code)
    if status == HTTPStatus.NOT_FOUND:
        text = f"There is nothing at {escape(request.url.path)}."
    elif status == HTTPStatus.METHOD_NOT_ALLOWED:
        text = (f"{escape(request.method)} is not allowed here; "
                f"try {escape(exc.headers.get('Allow', 'GET') if exc.headers else 'GET')}.")
    else:
        text = escape(str(exc.detail))
    home = escape(public_urls(request).landing)
    body = (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{status.value} {status.phrase}</title></head><body>"
            f"<h1>{status.value} {status.phrase}</h1><p>{text}</p>"
            f'<p>The services of this site are listed on <a href="{home}">{home}</a>.</p>'
            f"</body></html>\n")
    return HTMLResponse(body, status_code=status.value, headers=exc.headers)


def install_error_handlers(app: FastAPI) -> None:
    """The one DALIError handler (database outages included), and short HTML pages for
    HTTP errors (404, 405, ...)."""
    app.add_exception_handler(DALIError, _dali_error)
    app.add_exception_handler(HTTPException, _http_error)
    for error in OUTAGE_ERRORS:
        app.add_exception_handler(error, _database_outage)


# -- serving under a sub-path ----------------------------------------------------------


class PathPrefix:
    """Serve the application under ``prefix`` (the path of the configured base URL).

    A request for ``<prefix>/tap/sync`` (a proxy that passes the path on) and one for
    ``/tap/sync`` (a proxy that strips the prefix, or a direct request) reach the
    same route; both get ``root_path = prefix``, as ASGI wants, so that Starlette
    resolves routes and builds ``request.base_url`` with the prefix.
    """

    def __init__(self, app: ASGIApp, prefix: str) -> None:
        self.app = app
        self.prefix = prefix.rstrip("/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one ASGI connection, with ``root_path`` (and the path) set to the prefix."""
        if scope["type"] in ("http", "websocket") and self.prefix:
            scope = {**scope, "root_path": self.prefix}
            path = scope["path"]
            if path != self.prefix and not path.startswith(self.prefix + "/"):
                scope["path"] = self.prefix + path
                if scope.get("raw_path") is not None:
                    scope["raw_path"] = self.prefix.encode() + scope["raw_path"]
        await self.app(scope, receive, send)
