"""``/tap/sync``: TAP 1.1 synchronous queries (GET and POST).

The result is streamed as it is read from the database. Errors found before
the first byte (bad parameters, ADQL errors, upload problems, database errors
and timeouts on the first batch) are DALI error documents with a 4xx/5xx
status; a failure after the first byte ends the document with a trailing
``QUERY_STATUS=ERROR`` INFO (VOTable) or an error line (text formats).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response, StreamingResponse

from vo_service.dali import DALIError, error_response, read_params
from vo_service.tap.query import TAPService, validate
from vo_service.tap.runner import QueryFailed

router = APIRouter()


def stream_in_thread(chunks: Iterator[bytes], ahead: int = 2) -> AsyncIterator[bytes]:
    """Run a blocking chunk iterator in its own thread, ``ahead`` chunks ahead of the socket.

    Starlette would pull each chunk through the thread pool only after the previous
    one was sent; producing the next chunk while the current one is written
    overlaps encoding with sending.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()
    room = threading.Semaphore(ahead)
    stop = threading.Event()
    end = object()

    def produce() -> None:
        try:
            for chunk in chunks:
                while not room.acquire(timeout=0.5):
                    if stop.is_set():
                        return
                if stop.is_set():
                    return
                loop.call_soon_threadsafe(queue.put_nowait, chunk)
            loop.call_soon_threadsafe(queue.put_nowait, end)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the response task
            loop.call_soon_threadsafe(queue.put_nowait, exc)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()

    async def body() -> AsyncIterator[bytes]:
        thread = threading.Thread(target=produce, name="tap-stream", daemon=True)
        thread.start()
        try:
            while True:
                item = await queue.get()
                if item is end:
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
    if exc.timeout or exc.cancelled:
        return 400
    state = exc.sqlstate or ""
    # Class 22 (data exception), 42 (syntax/access), 54 (limits): the query's fault.
    return 400 if state[:2] in ("22", "42", "54", "23", "2B") else 500


def _run(tap: TAPService, params) -> Response | tuple[Iterator[bytes], str, dict]:
    request = validate(params, tap.limits)
    prepared = tap.prepare(request, params)
    try:
        running = tap.start(prepared, tap.limits.sync_timeout)
    except QueryFailed as exc:
        return error_response(exc.message, _status_for(exc))
    writer = request.format.writer(prepared.fields, str(tap.result_dir))
    if hasattr(writer, "infos"):
        writer.infos = tap.infos(prepared)
    headers = {}
    if request.format.extension:
        headers["Content-Disposition"] = f'inline; filename="result.{request.format.extension}"'
    if running.complete:  # a small result, all read: one response, no streaming threads
        return Response(b"".join(running.body(writer)), media_type=request.content_type,
                        headers=headers)
    return running.body(writer), request.content_type, headers


@router.api_route("/tap/sync", methods=["GET", "POST"])
async def tap_sync(request: Request) -> Response:
    tap: TAPService = request.app.state.tap
    try:
        params = await read_params(request, max_body=tap.limits.upload_bytes + 1_000_000)
        outcome = await run_in_threadpool(_run, tap, params)
        if isinstance(outcome, Response):
            return outcome
        chunks, media_type, headers = outcome
        return StreamingResponse(stream_in_thread(chunks), media_type=media_type,
                                 headers=headers)
    except DALIError as exc:
        return error_response(exc.message, exc.status)
