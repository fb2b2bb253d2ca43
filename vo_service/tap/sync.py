"""TAP 1.1 synchronous queries: from parameters to a response body (``/tap/sync``).

The result is streamed as it is read from the database. Errors found before
the first byte (bad parameters, ADQL errors, upload problems, database errors
and timeouts on the first batch) are raised as :class:`DALIError` with a 4xx/5xx
status, which the HTTP handler (``tap/routes.py``) answers with a DALI error
document; a failure after the first byte ends the document with a trailing
``QUERY_STATUS=ERROR`` INFO (VOTable) or an error line (text formats).

DALI's QUERY_STATUS is also sent in the :data:`QUERY_STATUS_HEADER` whenever it is
known before the first byte: for every result sent in one piece, and for CSV and TSV
(which cannot state it in the document) after reading ahead up to
:data:`STATUS_READ_AHEAD` bytes of rows; a larger streamed result has no header.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field

from vo_service.dali import DALIError, Params
from vo_service.obscore import access_url_setup
from vo_service.tap.query import Running, TAPService, validate
from vo_service.tap.runner import BATCH_BYTES, QueryFailed

QUERY_STATUS_HEADER = "X-VO-Query-Status"  # OK, OVERFLOW or ERROR (docs/tap.md)
# How far a CSV/TSV result is read before its first byte to learn whether MAXREC cut it.
STATUS_READ_AHEAD = 4 * BATCH_BYTES


def stream_in_thread(chunks: Iterator[bytes], ahead: int = 2,
                     on_abandon: Callable[[Callable[[], None]], None] | None = None
                     ) -> AsyncIterator[bytes]:
    """Run a blocking chunk iterator in its own thread, ``ahead`` chunks ahead of the socket.

    Starlette would pull each chunk through the thread pool only after the previous
    one was sent; producing the next chunk while the current one is written
    overlaps encoding with sending. The thread starts at once, so that ``chunks``
    is closed (and its query with it) even when the response is never sent;
    ``on_abandon`` registers how to stop it when the client goes away.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue()  # None: the end
    room = threading.Semaphore(ahead)
    stop = threading.Event()

    def produce() -> None:
        try:
            for chunk in chunks:
                while not room.acquire(timeout=0.5):
                    if stop.is_set():
                        return
                if stop.is_set():
                    return
                loop.call_soon_threadsafe(queue.put_nowait, chunk)
            loop.call_soon_threadsafe(queue.put_nowait, None)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the response task
            loop.call_soon_threadsafe(queue.put_nowait, exc)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()

    threading.Thread(target=produce, name="tap-stream", daemon=True).start()
    if on_abandon is not None:
        on_abandon(stop.set)

    async def body() -> AsyncIterator[bytes]:
        try:
            while True:
                item = await queue.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                room.release()
                yield item
        finally:
            stop.set()
            room.release()

    return body()


def _status_for(exc: QueryFailed) -> int:
    """The HTTP status of a query that failed before its first byte: 400 for its own fault."""
    if exc.timeout or exc.cancelled:
        return 400
    state = exc.sqlstate or ""
    # Class 22 (data exception), 42 (syntax/access), 54 (limits): the query's fault.
    return 400 if state[:2] in ("22", "42", "54", "23", "2B") else 500


@dataclass
class SyncResult:
    """A started synchronous query: the whole body when it was small, else its chunks."""

    media_type: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    chunks: Iterator[bytes] | None = None
    running: Running | None = None  # the query the chunks come from

    def close(self) -> None:
        """Drop a result nobody will read: end its query, release its connection."""
        if self.running is not None:
            self.running.close()


def run(tap: TAPService, params: Params, public_base: str,
        on_abandon: Callable[[Callable[[], None]], None] | None = None) -> SyncResult:
    """Validate, translate and start the query of ``params``; read its first batch.

    Parameters
    ----------
    tap
        The TAP service.
    params
        The request's DALI parameters.
    public_base
        The request's public base URL (``ivoa.obscore.access_url`` starts with it).
    on_abandon
        Registers a function to call when the client goes away: it is given the
        query's cancel before the query is sent (called at once when the client is
        already gone, which keeps the query from starting).

    Raises
    ------
    DALIError
        For everything found before the first byte of the result.
    """
    request = validate(params, tap.limits)
    prepared = tap.prepare(request, params)
    prepared.setup.append(access_url_setup(public_base))
    try:
        running = tap.start(prepared, tap.limits.sync_timeout,
                            None if on_abandon is None else lambda e: on_abandon(e.cancel))
    except QueryFailed as exc:
        raise DALIError(exc.message, _status_for(exc)) from None
    writer = request.format.writer(prepared.fields, str(tap.result_dir))
    if hasattr(writer, "infos"):
        writer.infos = tap.infos(prepared)
    result = SyncResult(request.content_type)
    if request.format.extension:
        result.headers["Content-Disposition"] = \
            f'inline; filename="result.{request.format.extension}"'
    small = running.complete  # all read with the first batch: one response body
    if not request.format.status_in_document:
        try:
            running.read_ahead(STATUS_READ_AHEAD)
        except QueryFailed as exc:
            running.close()
            raise DALIError(exc.message, _status_for(exc)) from None
        except BaseException:
            running.close()
            raise
    status = running.known_status
    if small:  # a small result, all read: one response, no streaming threads
        result.body = b"".join(running.body(writer))
        status = "ERROR" if running.error else status
    else:
        result.chunks, result.running = running.body(writer), running
    if status is not None:
        result.headers[QUERY_STATUS_HEADER] = status
    return result
