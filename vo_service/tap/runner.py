"""Running translated queries as the read-only role and streaming Arrow batches.

User queries run on connections of the **reader** role (the same login as
``Database.reader_engine``: the reader URL, or the owner URL followed by
``SET ROLE``), through the ADBC PostgreSQL driver rather than psycopg2: ADBC
reads a query's rows with ``COPY (query) TO STDOUT (FORMAT binary)`` and
decodes them into Arrow columns in C, about four times faster than building
Python objects row by row, and it streams: a batch of a few MB at a time,
never the whole result.

Each query runs in one transaction:

1. uploaded tables (``TAP_UPLOAD``) are created as TEMPORARY tables and
   filled with COPY (the reader role needs the TEMPORARY privilege on the
   database, which PostgreSQL grants to PUBLIC by default);
2. ``SET LOCAL transaction_read_only = on`` and ``SET LOCAL statement_timeout``
   (plus the translation's session settings), sent together in one round trip -
   from here on nothing can be written, not even the temporary tables;
3. the query; its batches are read as the client consumes them.

The transaction is rolled back at the end (nothing was written that must
last) and the temporary tables are discarded, so a pooled connection is
clean for the next query.
"""

from __future__ import annotations

import queue
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyarrow as pa
from sqlalchemy.engine import URL, make_url

from vo_service.dali import DatabaseUnavailable
from vo_service.db.backends import application_name
from vo_service.db.database import Database
from vo_service.db.outage import is_outage

if TYPE_CHECKING:
    from adbc_driver_manager.dbapi import Connection, Cursor

BATCH_BYTES = 4 << 20  # ADBC batch size hint: ~4 MB of Arrow data per batch
PREFETCH = 2  # batches read ahead of the writer
SMALL_BATCH = BATCH_BYTES // 2  # a first batch below this is (almost surely) the result


class QueryFailed(Exception):
    """The database refused or aborted the query; ``timeout`` when it ran too long."""

    def __init__(self, message: str, *, timeout: bool = False, cancelled: bool = False,
                 sqlstate: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.timeout = timeout
        self.cancelled = cancelled
        self.sqlstate = sqlstate


def _clean_message(exc: BaseException) -> tuple[str, str | None]:
    """The server's message of ``exc`` without ADBC's wrapping, and its SQLSTATE if known."""
    text = str(exc)
    state = getattr(exc, "sqlstate", None)
    if not state:  # errors raised while streaming come as Arrow errors with the text only
        match = re.search(r"SQLSTATE: ([0-9A-Z]{5})", text)
        state = match.group(1) if match else None
    # ADBC wraps the server message: "... [libpq] ...: ERROR:  <message>\n. SQLSTATE: xxx"
    if "ERROR:" in text:
        text = text.split("ERROR:", 1)[1]
    text = text.split("SQLSTATE:")[0].strip().rstrip(".").strip()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    text = " ".join(ln for ln in lines if not ln.startswith(("LINE ", "^", "Query was")))
    return text or str(exc), state


def failure(exc: BaseException, timeout_s: float | None = None) -> QueryFailed:
    """The :class:`QueryFailed` that reports ``exc`` to the client.

    Parameters
    ----------
    exc
        What ADBC (or Arrow, while streaming) raised.
    timeout_s
        The statement timeout the query ran under, named in the message when the
        query was cancelled for running too long.

    Returns
    -------
    QueryFailed
        With ``timeout`` or ``cancelled`` set when PostgreSQL cancelled the statement
        (SQLSTATE 57014), and a message without the driver's decoration.
    """
    message, state = _clean_message(exc)
    if state is None and "canceling statement due to" in message:
        state = "57014"
    if state == "57014":
        if "statement timeout" in message:
            limit = f" of {timeout_s:g} s" if timeout_s else ""
            return QueryFailed(f"query exceeded the execution time limit{limit}",
                               timeout=True, sqlstate=state)
        return QueryFailed("query was cancelled", cancelled=True, sqlstate=state)
    return QueryFailed(f"database error: {message}", sqlstate=state)


@dataclass
class UploadTable:
    """A ``TAP_UPLOAD`` table, loaded into a temporary table before the query runs."""

    sql_name: str  # name of the temporary table
    data: pa.Table  # columns named as the client named them


class QueryRunner:
    """A small pool of ADBC connections of the reader role.

    A database restart breaks every pooled connection; the first query to find its
    connection broken empties the pool and runs again on a new connection, so clients
    see no error once the database is back. While it is down, a query raises
    :class:`~vo_service.dali.DatabaseUnavailable` (503).
    """

    def __init__(self, database: Database, size: int = 8) -> None:
        self.database = database
        self._pool: queue.LifoQueue[Connection] = queue.LifoQueue()
        self._size = size
        self._lock = threading.Lock()
        self._url, self._role = self._target()

    def _target(self) -> tuple[URL, str | None]:
        reader = self.database.reader_url
        url = make_url(reader or self.database.owner_url)
        return url.set(drivername="postgresql"), \
            (None if reader else self.database.settings.reader_role)

    def _connect(self) -> Connection:
        """A new connection, named after this process (``pg_stat_activity``).

        Raises
        ------
        DatabaseUnavailable
            When the database cannot be reached.
        """
        import adbc_driver_postgresql.dbapi as adbc

        uri = self._url.update_query_dict({"application_name": application_name()}) \
            .render_as_string(hide_password=False)
        try:
            conn: Connection = adbc.connect(uri)
        except adbc.OperationalError as exc:
            raise DatabaseUnavailable() from exc
        if self._role:
            with conn.cursor() as cur:
                cur.execute(f'SET ROLE "{self._role}"')
            conn.commit()
        return conn

    def acquire(self) -> Connection:
        """A pooled connection of the reader role, or a new one when none is idle."""
        try:
            return self._pool.get_nowait()
        except queue.Empty:
            return self._connect()

    def discard_idle(self) -> None:
        """Close the pooled connections: one was found broken, the others likely are too
        (a restarted database)."""
        self.close()

    def release(self, conn: Connection, *, broken: bool = False) -> None:
        """Give ``conn`` back to the pool; close it when ``broken`` or the pool is full."""
        if broken:
            try:
                conn.close()
            except Exception:  # noqa: BLE001
                pass
            return
        if self._pool.qsize() < self._size:
            self._pool.put(conn)
        else:
            conn.close()

    def close(self) -> None:
        """Close every idle connection (at shutdown)."""
        while True:
            try:
                self._pool.get_nowait().close()
            except queue.Empty:
                return
            except Exception:  # noqa: BLE001
                continue

    def execute(self, sql: str, setup: list[str], uploads: Sequence[UploadTable] = (),
                timeout_s: float | None = None,
                on_start: Callable[[Execution], None] | None = None) -> Execution:
        """Start ``sql``; the returned :class:`Execution` yields its batches.

        ``on_start`` receives the execution before the query is sent, so that another
        thread can :meth:`Execution.cancel` it while PostgreSQL is still working on the
        first batch (an aggregate over a large join returns nothing until it is done).
        """
        pooled = self._pool.qsize() > 0
        execution = self._start(self.acquire(), sql, setup, uploads, timeout_s, on_start)
        if execution.lost_connection and not execution.cancelled:
            if pooled:  # a connection of before a database restart: try a new one
                self.discard_idle()
                execution = self._start(self._connect(), sql, setup, uploads, timeout_s,
                                        on_start)
            if execution.lost_connection and not execution.cancelled:
                raise DatabaseUnavailable()
        if execution.failed is not None:
            raise execution.failed
        return execution

    def _start(self, conn: Connection, sql: str, setup: list[str],
               uploads: Sequence[UploadTable], timeout_s: float | None,
               on_start: Callable[[Execution], None] | None) -> Execution:
        """An :class:`Execution` of ``sql`` on ``conn``; when it failed to start it is
        closed, with ``failed`` set."""
        execution = Execution(self, conn, timeout_s)
        try:
            if on_start is not None:
                on_start(execution)
            execution.start(sql, setup, uploads)
        except QueryFailed as exc:
            execution.failed = exc
            execution.close()
        except Exception:
            execution.close()
            raise
        return execution


class Execution:
    """One running query: iterate :meth:`batches`, then :meth:`close` (always)."""

    def __init__(self, runner: QueryRunner, conn: Connection, timeout_s: float | None) -> None:
        self.runner = runner
        self.conn = conn
        self.timeout_s = timeout_s
        self.cursor: Cursor | None = None
        self.reader: pa.RecordBatchReader | None = None
        self.schema: pa.Schema | None = None
        self._broken = False
        self.failed: QueryFailed | None = None
        self._lost = False  # the connection is gone (a database restart or outage)
        self._closed = False
        self._had_uploads = False
        self.cancelled = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._cancel_lock = threading.Lock()

    def start(self, sql: str, setup: list[str], uploads: Sequence[UploadTable]) -> None:
        """Load ``uploads``, run the ``setup`` statements, send ``sql``.

        Raises
        ------
        QueryFailed
            When any of it fails, or the execution was cancelled before ``sql`` was sent.
        """
        try:
            self.cursor = cursor = self.conn.cursor()
            cursor.adbc_statement.set_options(
                **{"adbc.postgresql.batch_size_hint_bytes": str(BATCH_BYTES)})
            for upload in uploads:
                self._had_uploads = True
                cursor.adbc_ingest(upload.sql_name, upload.data, mode="create",
                                   temporary=True)
            if setup:
                # one round trip (simple protocol, several statements) instead of a
                # prepare and an execute per statement: a third of a small query's time
                cursor.adbc_statement.set_sql_query("; ".join(setup))
                cursor.adbc_statement.execute_update()
            if self.cancelled:  # cancelled before the query was sent
                raise QueryFailed("query was cancelled", cancelled=True)
            cursor.execute(sql)
            self.reader = cursor.fetch_record_batch()
            self.schema = self.reader.schema
        except Exception as exc:  # noqa: BLE001
            raise self._failure(exc) from None

    def _failure(self, exc: BaseException) -> QueryFailed:
        self._broken = not _is_server_error(exc)
        self._lost = self._lost or is_outage(exc)
        if isinstance(exc, QueryFailed):
            return exc
        result = failure(exc, self.timeout_s)
        if self.cancelled:
            result.cancelled = True
        return result

    def batches(self) -> Iterator[pa.RecordBatch]:
        """The result's batches.

        The first is read in the caller's thread. When it is smaller than
        ``SMALL_BATCH`` the result is almost surely complete (ADBC fills each batch
        up to ``BATCH_BYTES``), and the rest is read here too: no thread for the small
        results most queries have. Otherwise a helper thread reads ahead (libpq and
        ADBC's binary COPY decoding release the GIL), so reading overlaps with the
        caller's encoding of the previous batch; at most ``PREFETCH`` batches wait in
        between, so memory stays bounded.
        """
        reader = self.reader
        if reader is None:
            raise RuntimeError("Execution.batches() before start()")
        try:
            first = reader.read_next_batch()
        except StopIteration:
            return
        except Exception as exc:  # noqa: BLE001
            raise self._failure(exc) from None
        yield first
        if first.nbytes < SMALL_BATCH:
            try:
                yield from reader
            except Exception as exc:  # noqa: BLE001
                raise self._failure(exc) from None
            return
        yield from self._read_ahead(reader)

    def _read_ahead(self, source: pa.RecordBatchReader) -> Iterator[pa.RecordBatch]:
        done = object()
        slots: queue.Queue[object] = queue.Queue(maxsize=PREFETCH)  # batches, done, errors
        stop = self._stop

        def read() -> None:
            try:
                for batch in source:
                    while not stop.is_set():
                        try:
                            slots.put(batch, timeout=0.2)
                            break
                        except queue.Full:
                            continue
                    if stop.is_set():
                        return
                slots.put(done)
            except BaseException as exc:  # noqa: BLE001 - handed to the consumer
                slots.put(exc)

        reader = threading.Thread(target=read, name="tap-prefetch", daemon=True)
        self._thread = reader
        reader.start()
        try:
            while True:
                item = slots.get()
                if item is done:
                    return
                if isinstance(item, BaseException):
                    raise self._failure(item) from None
                yield item
        finally:
            self._stop_reading()

    def _stop_reading(self) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread.is_alive() and thread is not threading.current_thread():
            self.cancel()
            thread.join(timeout=10)

    @property
    def lost_connection(self) -> bool:
        """Whether the execution failed to start because its connection is gone."""
        return self.failed is not None and self._lost

    def cancel(self) -> None:
        """Stop the running statement (from another thread; safe before it starts).

        The flag keeps a query that has not been sent yet from starting; a running one
        is cancelled in PostgreSQL through libpq's cancel request, which also reaches a
        statement that is still computing its first row.
        """
        self.cancelled = True
        with self._cancel_lock:  # not once the cursor is closed and the connection pooled
            if self._closed or self.cursor is None:
                return
            try:
                self.cursor.adbc_cancel()
            except Exception:  # noqa: BLE001
                pass

    def close(self) -> None:
        """Stop reading, roll back, drop the temporary tables, hand the connection back.

        Idempotent; a connection that failed on the way is closed instead of pooled.
        """
        if self._closed:
            return
        self._stop_reading()
        with self._cancel_lock:
            self._closed = True
        broken = self._broken
        try:
            if self.reader is not None:
                try:
                    self.reader.close()
                except Exception:  # noqa: BLE001
                    broken = True
            if self.cursor is not None:
                self.cursor.close()
            self.conn.rollback()
            if self._had_uploads:
                with self.conn.cursor() as cur:
                    cur.execute("DISCARD TEMP")
                self.conn.commit()
        except Exception:  # noqa: BLE001
            broken = True
        self.runner.release(self.conn, broken=broken)


def _is_server_error(exc: BaseException) -> bool:
    """Errors the server reported (the connection is still usable)."""
    if isinstance(exc, QueryFailed):
        state = exc.sqlstate
    else:
        state = _clean_message(exc)[1]
    return state not in (None, "", "08000", "08003", "08006")
