"""One TAP query from parameters to bytes, shared by /sync and the async workers.

1. :func:`validate` checks the request parameters (LANG, QUERY, MAXREC,
   RESPONSEFORMAT/FORMAT, UPLOAD syntax) without touching the database.
2. :meth:`TAPService.prepare` loads the uploads, builds the ADQL catalog
   (published tables + this query's ``TAP_UPLOAD`` tables) and translates;
   a query without uploads that was translated recently is taken from
   :class:`TranslationCache` (parsing and translating were most of a small
   query's time in the service).
3. :meth:`TAPService.start` runs it and reads the first batch, so that
   errors the database finds early (bad casts, the statement timeout) still
   become a proper error response rather than a broken stream.
4. :meth:`Running.body` writes the chosen format: header, rows, footer with
   the overflow or error status.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeGuard

import pyarrow as pa

from vo_service.config import TAPLimits
from vo_service.dali import DALIError, Params, iso_utc, now_utc
from vo_service.formats import OutputFormat, ResultWriter, UnknownFormat, resolve
from vo_service.formats.fields import Field
from vo_service.tap import pgarray
from vo_service.tap.runner import SMALL_BATCH, Execution, QueryFailed, QueryRunner
from vo_service.tap.upload import ParsedUpload, load_uploads, upload_specs

if TYPE_CHECKING:
    from schema.catalogues import PublishedTables
    from vo_service.adql import Catalog, ModelIndexes, Translation
    from vo_service.db.database import Database

log = logging.getLogger("latentvo.tap")
LANGS = {"ADQL": "2.1", "ADQL-2.0": "2.0", "ADQL-2.1": "2.1"}
TAP_ID = "ivo://ivoa.net/std/TAP"


class SpoolingWriter(ResultWriter, Protocol):
    """A :class:`~vo_service.formats.ResultWriter` that must see every row before its
    first byte (FITS: the header states the row count).

    :meth:`Running.body` drains :meth:`rows` into the writer's spool, then streams
    the document with :meth:`stream_all`; on an error it calls :meth:`close` and
    raises instead, since such a document cannot carry an error status.
    """

    def stream_all(self, *, overflow: bool = False) -> Iterator[bytes]:
        """The whole document, once :meth:`rows` has consumed every batch."""
        ...

    def close(self) -> None:
        """Discard the spool."""
        ...


def spools(writer: ResultWriter) -> TypeGuard[SpoolingWriter]:
    """Whether ``writer`` is a :class:`SpoolingWriter`, by its ``stream_all``.

    Not ``isinstance`` against a runtime-checkable Protocol: that checks every
    member and cost about 0.1 ms of each small query.
    """
    return callable(getattr(writer, "stream_all", None))


@dataclass
class TAPQuery:
    """A checked TAP request (the result of :func:`validate`), not yet translated.

    Parameters
    ----------
    query
        The ADQL text.
    lang
        The query language as requested, upper-cased (``ADQL``, ``ADQL-2.0``...).
    maxrec
        The row limit: MAXREC, the service default when absent, capped at the
        hard limit.
    format, content_type
        The output format and the Content-Type to answer with.
    run_id
        The client's RUNID (at most 64 characters), echoed in the result.
    """

    query: str
    lang: str
    maxrec: int
    format: OutputFormat
    content_type: str
    run_id: str | None = None


def validate(params: Params, limits: TAPLimits) -> TAPQuery:
    """The query a request asks for; :class:`DALIError` for malformed parameters."""
    lang = params.single("LANG")
    if lang is None:
        raise DALIError("LANG is missing; this service supports LANG=ADQL (ADQL-2.0, ADQL-2.1)")
    if lang.strip().upper() not in LANGS:
        raise DALIError(f"unknown query language LANG={lang!r}; this service supports ADQL "
                        "(ADQL-2.0, ADQL-2.1)")
    query = params.single("QUERY")
    if query is None or not query.strip():
        raise DALIError("QUERY is missing or empty")
    if len(query) > limits.query_length:  # before any parsing: its cost grows with the text
        raise DALIError(f"QUERY has {len(query):,} characters; this service accepts at most "
                        f"{limits.query_length:,} (for long lists of values, upload a table "
                        "and join it)")
    maxrec_text = params.single("MAXREC")
    if maxrec_text is None or not maxrec_text.strip():
        maxrec = limits.maxrec_default
    else:
        try:
            maxrec = int(maxrec_text.strip())
        except ValueError:
            raise DALIError(f"MAXREC must be a non-negative integer, got {maxrec_text!r}") \
                from None
        if maxrec < 0:
            raise DALIError(f"MAXREC must be a non-negative integer, got {maxrec_text!r}")
        maxrec = min(maxrec, limits.maxrec_hard)
    fmt_text = params.single("RESPONSEFORMAT")
    if fmt_text is None:
        fmt_text = params.single("FORMAT")
    try:
        fmt, content_type = resolve(fmt_text)
    except UnknownFormat as exc:
        raise DALIError(str(exc)) from None
    upload_specs(params)  # syntax only; content is read when the query runs
    run_id = params.single("RUNID")
    return TAPQuery(query=query, lang=lang.strip().upper(), maxrec=maxrec, format=fmt,
                    content_type=content_type, run_id=run_id[:64] if run_id else None)


@dataclass(frozen=True)
class Translated:
    """What a query's text gives, whatever the request: the translation, the SQL sent
    (arrays wrapped for ``array_send``), the result fields and the ``sent`` columns."""

    translation: Translation
    sql: str
    fields: tuple[Field, ...]
    sent: tuple[int, ...]


class TranslationCache:
    """The recent translations of queries without uploads, least recently used dropped.

    A translation depends on the query text, MAXREC (the LIMIT it adds) and the
    catalog: the published tables (their version is part of the key) and the
    latent-index plans of the models the query pins, which ``ModelIndexes`` reads
    again after ``ttl_s`` - entries live no longer, so a model registered meanwhile
    reaches its queries as soon as it would without the cache. Only queries of at
    most ``max_query`` characters are kept (small queries are the ones whose time
    translation dominates), so the cache holds a few MB whatever clients send.
    """

    def __init__(self, size: int = 256, ttl_s: float = 60.0, max_query: int = 8_192) -> None:
        self.size = size
        self.ttl_s = ttl_s
        self.max_query = max_query
        self._entries: OrderedDict[tuple[str, int, int], tuple[float, Translated]] = \
            OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, int, int]) -> Translated | None:
        """The translation stored under ``key`` if it is fresh."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if time.monotonic() - entry[0] > self.ttl_s:
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return entry[1]

    def put(self, key: tuple[str, int, int], value: Translated) -> None:
        """Keep ``value`` under ``key`` (unless its query is longer than ``max_query``),
        dropping the least recently used beyond ``size``."""
        if len(key[0]) > self.max_query:
            return
        with self._lock:
            self._entries[key] = (time.monotonic(), value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)


@dataclass
class Prepared:
    """A translated query, ready to run: its SQL, result fields and uploads."""

    request: TAPQuery
    translation: Translation
    sql: str  # the translation's SQL, arrays wrapped for array_send (``sent``)
    fields: list[Field]
    uploads: list[ParsedUpload]
    sent: list[int] = field(default_factory=list)  # columns fetched as array_send bytes
    # statements to run before the query besides the translation's own (timeout, index
    # settings), e.g. the public base URL that ivoa.obscore.access_url starts with
    setup: list[str] = field(default_factory=list)
    request_date: dt.datetime = field(default_factory=now_utc)


class TAPService:
    """What the TAP endpoints share: database, runner, published tables, limits.

    One per process, so /sync and the async workers see the same catalog and
    connection pool.

    Parameters
    ----------
    database
        The database; queries run as its read-only role.
    published
        The published tables, re-read when a catalogue is published.
    limits
        MAXREC, upload and time limits.
    result_dir
        Where async results (and FITS spools) are written.
    """

    def __init__(self, database: Database, published: PublishedTables, limits: TAPLimits,
                 result_dir: Path) -> None:
        self.database = database
        self.published = published
        self.limits = limits
        self.result_dir = result_dir
        # a pooled connection for each query slot and async worker of this process
        self.runner = QueryRunner(database, database.settings.web.query_slots + limits.workers)
        self._catalog: Catalog | None = None
        self._catalog_version = -1
        self._lock = threading.Lock()
        self._latent_indexes: ModelIndexes | None = None
        self.translations = TranslationCache()

    # -- catalog ------------------------------------------------------------------

    def catalog(self) -> Catalog:
        """The ADQL catalog of the published tables, rebuilt when they change.

        Shared by every query (uploads go into a :meth:`~Catalog.copy`); the model
        latent-index lookup it carries is created once and keeps its own cache.
        """
        return self._versioned_catalog()[0]

    def _versioned_catalog(self) -> tuple[Catalog, int]:
        """:meth:`catalog` and the published tables' version it was built from."""
        from vo_service.adql import Catalog, ModelIndexes

        tables = self.published.tables()
        with self._lock:
            if self._latent_indexes is None:
                self._latent_indexes = ModelIndexes(self.database.reader_engine)
            if self._catalog is None or self._catalog_version != self.published.version:
                self._catalog = Catalog.from_tables(tables, latent_index=self._latent_indexes)
                self._catalog_version = self.published.version
            return self._catalog, self._catalog_version

    # -- a query ------------------------------------------------------------------

    def prepare(self, request: TAPQuery, params: Params) -> Prepared:
        """Load the request's uploads and translate its query against the catalog.

        Parameters
        ----------
        request
            The checked request (:func:`validate`).
        params
            The request parameters, for the UPLOAD content.

        Raises
        ------
        DALIError
            For a bad upload, an ADQL error, or a query nested too deeply to parse.
        """
        uploads = load_uploads(params, self.limits)
        catalog, version = self._versioned_catalog()
        if uploads:  # upload tables get fresh names per request: nothing to reuse
            catalog = catalog.copy()
            for upload in uploads:
                catalog.add_upload(upload.name, upload.columns, sql_name=upload.table.sql_name)
            done = self._translate(request, catalog)
        else:
            key = (request.query, request.maxrec, version)
            cached = self.translations.get(key)
            done = cached or self._translate(request, catalog)
            if cached is None:
                self.translations.put(key, done)
        return Prepared(request, done.translation, done.sql, list(done.fields), uploads,
                        list(done.sent))

    def _translate(self, request: TAPQuery, catalog: Catalog) -> Translated:
        """Parse, size-check and translate the request's query (:class:`DALIError` when it
        is wrong or larger than the ``[tap] query_nodes`` limit)."""
        from vo_service.adql import ADQLError, parse, translate
        from vo_service.adql.size import tree_size

        try:
            statement = parse(request.query)
            if tree_size(statement, self.limits.query_nodes) > self.limits.query_nodes:
                raise DALIError(f"the query has more than {self.limits.query_nodes:,} syntax "
                                "elements (columns, values, operators), the most this service "
                                "translates; for long lists of values, upload a table and "
                                "join it")
            translation = translate(statement, catalog, maxrec=request.maxrec)
        except ADQLError as exc:
            raise DALIError(str(exc)) from None
        except RecursionError:
            raise DALIError("query nested too deeply") from None
        fields = tuple(Field.of(c.name, c.meta) for c in translation.columns)
        sql, sent = translation.sql, pgarray.sent_columns(translation.columns)
        if sent:
            sql = pgarray.wrap(sql, translation.columns, sent)
        return Translated(translation, sql, fields, tuple(sent))

    def start(self, prepared: Prepared, timeout_s: float | None,
              on_start: Callable[[Execution], None] | None = None) -> Running:
        """Run ``prepared`` and read its first batch; ``on_start`` as in
        :meth:`QueryRunner.execute` (how UWS can abort a job still in this call)."""
        setup = [*prepared.translation.setup_sql(int(timeout_s * 1000) if timeout_s else 0),
                 *prepared.setup]
        execution = self.runner.execute(prepared.sql, setup,
                                        [u.table for u in prepared.uploads], timeout_s,
                                        on_start)
        running = Running(prepared, execution)
        try:
            running.prefetch()
        except Exception:
            execution.close()
            raise
        return running

    def infos(self, prepared: Prepared) -> list[tuple[str, str, str | None]]:
        """The result's INFO elements as (name, value, content).

        DALI's standardID, QUERY, LANG, request_date and MAXREC, plus an
        ``ml_provenance`` note when result columns were produced by ML models.
        """
        infos: list[tuple[str, str, str | None]] = [("standardID", TAP_ID, None),
                 ("QUERY", prepared.request.query, None),
                 ("LANG", prepared.request.lang, None),
                 ("request_date", iso_utc(prepared.request_date), None),
                 ("MAXREC", str(prepared.request.maxrec), None)]
        modelled = [f.name for f in prepared.fields
                    if f.meta.ucd and "meta.modelled" in f.meta.ucd]
        if modelled:
            infos.append(("ml_provenance", "latentvo.models",
                          f"Columns {', '.join(modelled)} were produced by machine-learning "
                          "models. Each row's model_id refers to latentvo.models, which "
                          "records the model's architecture, training data and its checksum, "
                          "code version, metrics and artifact checksum."))
        return infos


class Running:
    """A started query: its first batch is already read."""

    def __init__(self, prepared: Prepared, execution: Execution) -> None:
        self.prepared = prepared
        self.execution = execution
        self.maxrec = prepared.request.maxrec
        self.rows = 0
        self.overflow = False
        self.error: str | None = None
        self._ready: list[pa.RecordBatch] = []
        self.complete = False
        self._batches = execution.batches()

    def prefetch(self) -> None:
        """Read the first batch before the response starts, so that errors the database
        finds early get a proper status; when it is small, also look for the next one:
        if there is none, the result is :attr:`complete` and can be sent in one piece."""
        first = next(self._batches, None)
        self._ready = [] if first is None else [first]
        self.complete = first is None
        if first is not None and first.nbytes < SMALL_BATCH:
            second = next(self._batches, None)
            self.complete = second is None
            if second is not None:
                self._ready.append(second)

    def read_ahead(self, max_bytes: int) -> None:
        """Read batches before the response starts until :attr:`known_status` is known
        (more than MAXREC rows, or the end of the result), while ``max_bytes`` of Arrow
        data suffice: how CSV and TSV, which cannot carry a status in the document,
        learn it in time for an HTTP header."""
        size = sum(b.nbytes for b in self._ready)
        while self.known_status is None and size < max_bytes:
            batch = next(self._batches, None)
            if batch is None:
                self.complete = True
                return
            self._ready.append(batch)
            size += batch.nbytes

    @property
    def known_status(self) -> str | None:
        """DALI's QUERY_STATUS as far as it is known before the response: OVERFLOW when
        more than MAXREC rows were read, OK when the whole result was, else None."""
        if self.maxrec == 0 or sum(b.num_rows for b in self._ready) > self.maxrec:
            return "OVERFLOW"
        return "OK" if self.complete else None

    def batches(self) -> Iterator[pa.RecordBatch]:
        """The result's batches, cut at MAXREC (overflow noted)."""
        if self.maxrec == 0:  # DALI: metadata only, always flagged as overflow
            self.overflow = True
            return
        ready, self._ready = self._ready, []
        for batch in itertools.chain(ready, self._batches):
            for i in self.prepared.sent:
                batch = batch.set_column(i, batch.schema.field(i).name,
                                         pgarray.decode(batch.column(i)))
            left = self.maxrec - self.rows
            if batch.num_rows > left:
                if left > 0:
                    yield batch.slice(0, left)
                    self.rows += left
                self.overflow = True
                return
            if batch.num_rows:
                self.rows += batch.num_rows
                yield batch

    def body(self, writer: ResultWriter) -> Iterator[bytes]:
        """The response bytes; closes the execution at the end (or when abandoned).

        An error while writing ends the document with an error status (DALI's
        overflow/error INFO), since the HTTP status is already sent.

        Raises
        ------
        QueryFailed
            From a :class:`SpoolingWriter`, which cannot carry an error status in
            its document.
        """
        try:
            head = writer.header()
            if head:
                yield head
            try:
                yield from writer.rows(self.batches())
            except QueryFailed as exc:
                self.error = exc.message
            except Exception as exc:  # noqa: BLE001 - end the document with the reason
                log.exception("writing a result failed")
                self.error = f"internal error while writing the result: {exc}"
            if spools(writer):
                if self.error:
                    writer.close()
                    raise QueryFailed(self.error)
                yield from writer.stream_all(overflow=self.overflow)
            else:
                yield writer.footer(overflow=self.overflow, error=self.error)
        finally:
            self.execution.close()

    def close(self) -> None:
        """End the query and release its connection, reading no further rows."""
        self.execution.close()
