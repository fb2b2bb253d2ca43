"""The HTTP edge shared by every protocol's ``routes`` module.

* :func:`read_params`: DALI parameters from the query string and the form body;
* :func:`public_urls`: the :class:`~vo_service.urls.PublicURLs` of the request being
  answered (the one rule for public URLs is in :mod:`vo_service.urls`);
* :func:`install_error_handlers`: one handler turns every
  :class:`~vo_service.dali.DALIError` raised while answering a request into the
  protocol's VOTable error document (``QUERY_STATUS=ERROR``, the error's HTTP
  status), with the INFOs and fault codes the protocol's router declared through
  :func:`error_form`; unknown URLs and methods get a short HTML page instead of
  FastAPI's JSON;
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
import re
from collections.abc import Callable
from dataclasses import dataclass
from html import escape
from http import HTTPStatus
from typing import Any, TypeVar

from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from vo_service.admission import Abandoned, Admission, Overloaded, Ticket
from vo_service.dali import VOTABLE_MIME, DALIError, Params
from vo_service.formats.votable import error_document
from vo_service.urls import PublicURLs, public_base

FAULT = re.compile(r"^[A-Za-z]+Fault: ")
T = TypeVar("T")


async def read_params(request: Request, *, max_body: int, max_field: int | None = None
                      ) -> Params:
    """Query string plus form body (urlencoded or multipart) of ``request``.

    ``max_field`` bounds each field of an urlencoded body (bytes as sent), which
    cannot carry uploads: Starlette decodes a field only once it is whole, on the
    event loop, so a 10 MB QUERY is refused after its first ``max_field`` bytes.

    Raises
    ------
    DALIError
        413 when the body is larger than ``max_body`` bytes, 400 when it cannot be read
        or a field is longer than ``max_field`` bytes.
    """
    items = list(request.query_params.multi_items())
    files: dict[str, bytes] = {}
    if request.method == "POST":
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > max_body:
            raise DALIError(f"request body of {int(length):,} bytes exceeds this service's "
                            f"upload limit of {max_body:,} bytes", 413)
        ctype = request.headers.get("content-type", "")
        if ctype.startswith("multipart/form-data") or ctype.startswith(
                "application/x-www-form-urlencoded"):
            urlencoded = ctype.startswith("application/x-www-form-urlencoded")
            field_limit = max_field if urlencoded and max_field else max_body
            try:
                form = await request.form(max_files=64, max_fields=1000,
                                          max_part_size=field_limit)
            except Exception as exc:  # noqa: BLE001 - malformed bodies are the client's
                if urlencoded and "exceeded maximum size" in str(exc):
                    raise DALIError(f"a parameter of the request is longer than "
                                    f"{field_limit:,} bytes, the most this service reads "
                                    "(see its capabilities for the query size limits)"
                                    ) from None
                raise DALIError(f"cannot read the request body: {exc}") from None
            total = 0
            for name, value in form.multi_items():
                if isinstance(value, str):
                    items.append((name, value))
                    continue
                data = await value.read()
                total += len(data)
                if total > max_body:
                    raise DALIError(f"uploads exceed this service's limit of {max_body:,} "
                                    "bytes", 413)
                files[name] = data
            await form.close()
    return Params(items, files)


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
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, Overloaded) else None
    return Response(error_document(form.message(exc), form.infos), status_code=exc.status,
                    media_type=VOTABLE_MIME, headers=headers)


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
    """The one DALIError handler, and short HTML pages for HTTP errors (404, 405, ...)."""
    app.add_exception_handler(DALIError, _dali_error)
    app.add_exception_handler(HTTPException, _http_error)


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
