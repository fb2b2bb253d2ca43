"""Publishing an existing catalogue: create its table, load it, grant it, describe it.

:func:`publish` does it all in one transaction, so a failure leaves nothing
half-published:

1. ``CREATE TABLE`` from the declaration (``Declaration.table``), in the
   catalogue's own schema;
2. the rows, streamed from CSV (with a header line), FITS or VOTable through
   Arrow into PostgreSQL's ``COPY`` (with the HEALPix column computed on the
   way when the declaration names a position);
3. the primary key's and the declared indexes, ``ANALYZE``;
4. ``GRANT SELECT`` to the read-only role;
5. the declaration in ``latentvo_ops.published_catalogues`` and TAP_SCHEMA
   regenerated over all published tables.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from schema.catalogue_declaration import Declaration, DeclarationError
from schema.catalogues import refresh_tap_schema
from schema.ops import published_catalogues, releases
from schema.vo import HEALPIX_DEPTH
from vo_service.errors import OperatorError

BATCH_ROWS = 50_000


class PublishError(OperatorError):
    """The catalogue cannot be published; the message says why."""


@dataclass
class PublishResult:
    """A published catalogue: its qualified name, rows loaded, whether it replaced one."""

    table: str
    rows: int
    replaced: bool


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _csv_batches(path: Path, columns: list[str]) -> Iterator[pa.RecordBatch]:
    read = pacsv.ReadOptions(block_size=8 << 20)
    with open(path, "rb") as probe:
        header = probe.readline().decode("utf-8", "replace").strip().split(",")
    header = [h.strip().strip('"') for h in header]
    missing = [c for c in columns if c not in header]
    if missing:
        raise PublishError(f"{path}: the CSV header lacks declared column(s) "
                           f"{', '.join(missing)}")
    convert = pacsv.ConvertOptions(column_types={c: pa.string() for c in header},
                                   include_columns=columns, strings_can_be_null=True,
                                   quoted_strings_can_be_null=False)
    reader = pacsv.open_csv(path, read_options=read, convert_options=convert)
    yield from reader


def _table_batches(path: Path, columns: list[str]) -> Iterator[pa.RecordBatch]:
    from astropy.table import Table

    try:
        table = Table.read(path)
    except Exception as exc:  # noqa: BLE001 - astropy raises many kinds
        raise PublishError(f"{path}: cannot read it as a FITS or VOTable table: {exc}") from None
    missing = [c for c in columns if c not in table.colnames]
    if missing:
        raise PublishError(f"{path}: the table lacks declared column(s) {', '.join(missing)}")
    for start in range(0, len(table), BATCH_ROWS):
        part = table[start:start + BATCH_ROWS]
        arrays = []
        for name in columns:
            col = part[name]
            data = np.asarray(col)
            mask = np.ma.getmaskarray(col) if hasattr(col, "mask") else None
            if data.dtype.kind in "SU":
                values = [v.decode() if isinstance(v, bytes) else str(v) for v in data]
                arrays.append(pa.array(values, pa.string(), mask=mask if mask is not None
                                       and mask.ndim == 1 else None))
            elif data.ndim == 2:
                arrays.append(pa.array(list(data.astype(data.dtype.newbyteorder("=")))))
            else:
                data = data.astype(data.dtype.newbyteorder("="))
                arrays.append(pa.array(data, mask=mask if mask is not None and mask.ndim == 1
                                       else None))
        yield pa.RecordBatch.from_arrays(arrays, names=columns)


def source_batches(path: Path, columns: list[str]) -> Iterator[pa.RecordBatch]:
    """The declared ``columns`` of the data file at ``path``, as Arrow batches.

    The format follows the file name: ``.csv`` (with a header line, optionally
    gzipped), FITS or VOTable.

    Raises
    ------
    PublishError
        For an unknown format, or a file that lacks a declared column.
    """
    suffix = "".join(path.suffixes).lower()
    if suffix.endswith((".csv", ".csv.gz")):
        return _csv_batches(path, columns)
    if suffix.endswith((".fits", ".fit", ".fits.gz", ".vot", ".xml", ".votable")):
        return _table_batches(path, columns)
    raise PublishError(f"{path}: unknown data format (use .csv with a header, .fits or .vot)")


def _copy_text(batch: pa.RecordBatch) -> bytes:
    """The batch as CSV for COPY: lists as PostgreSQL array literals."""
    arrays = []
    for array in batch.columns:
        if pa.types.is_list(array.type) or pa.types.is_fixed_size_list(array.type):
            text = pc.binary_join(pc.cast(array, pa.list_(pa.string())), ",")
            array = pc.binary_join_element_wise(pa.scalar("{"), text, pa.scalar("}"), "")
        arrays.append(array)
    sink = io.BytesIO()
    pacsv.write_csv(pa.RecordBatch.from_arrays(arrays, names=batch.schema.names), sink,
                    write_options=pacsv.WriteOptions(include_header=False,
                                                     quoting_style="needed"))
    return sink.getvalue()


def _with_healpix(batch: pa.RecordBatch, declaration: Declaration) -> pa.RecordBatch:
    import astropy.units as u
    import cdshealpix
    from astropy.coordinates import Latitude, Longitude

    pos = declaration.position
    assert pos is not None  # called only for declarations with a position
    ra = pc.cast(batch.column(batch.schema.get_field_index(pos["ra"])), pa.float64())
    dec = pc.cast(batch.column(batch.schema.get_field_index(pos["dec"])), pa.float64())
    valid = np.asarray(pc.and_(pc.is_valid(ra), pc.is_valid(dec)).to_numpy(
        zero_copy_only=False), dtype=bool)
    ra_v = ra.fill_null(0).to_numpy(zero_copy_only=False)
    dec_v = np.clip(dec.fill_null(0).to_numpy(zero_copy_only=False), -90, 90)
    cells = cdshealpix.nested.lonlat_to_healpix(Longitude(ra_v % 360, u.deg),
                                                Latitude(dec_v, u.deg), HEALPIX_DEPTH)
    column = pa.array(cells.astype(np.int64), mask=~valid)
    return batch.append_column(pos["healpix"], column)


LOCK_WAIT_S = 60.0  # how long a replace or drop waits for running queries on the table


def _drop_table(conn: sa.Connection, name: str, qualified: str, lock_wait_s: float) -> None:
    """DROP waits for every query reading the table (an async TAP job may run for an
    hour); past ``lock_wait_s`` the operator gets told so and nothing has changed."""
    conn.execute(sa.text(f"SET LOCAL lock_timeout = {max(1, int(lock_wait_s * 1000))}"))
    try:
        with conn.begin_nested():
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {name} CASCADE"))
    except sa.exc.OperationalError as exc:
        if getattr(exc.orig, "pgcode", None) != "55P03":  # lock_not_available
            raise
        raise PublishError(
            f"{qualified} is in use by running queries (waited {lock_wait_s:g} s for them); "
            "nothing was changed: retry later, wait longer (--lock-wait) or abort the "
            "queries (pg_cancel_backend)") from None
    conn.execute(sa.text("SET LOCAL lock_timeout TO DEFAULT"))


def read_declaration(path: Path) -> Declaration:
    """The catalogue declaration in the TOML file at ``path``.

    The schema layer reports a wrong declaration as a ``ValueError``
    (:class:`~schema.catalogue_declaration.DeclarationError`); here, read from a
    file the operator names, it is the operator's mistake.

    Raises
    ------
    PublishError
        When the file cannot be read or declares something invalid; the message
        names the file and the place.
    """
    try:
        return Declaration.from_file(path)
    except DeclarationError as exc:
        raise PublishError(str(exc)) from exc


def publish(engine: sa.Engine, declaration: Declaration, data: Path, *, reader_role: str,
            replace: bool = False, progress: Callable[[int], None] | None = None,
            lock_wait_s: float = LOCK_WAIT_S) -> PublishResult:
    """Create, load, index, grant and describe the catalogue (one transaction)."""
    table = declaration.table()
    name = f"{_quote(declaration.schema)}.{_quote(declaration.name)}"
    data = Path(data)
    if not data.is_file():
        raise PublishError(f"{data}: no such file")
    columns = [c.name for c in declaration.columns]
    with engine.begin() as conn:
        if conn.scalar(sa.select(releases.c.state).where(releases.c.name == declaration.schema)):
            raise PublishError(f"{declaration.schema} is the schema of a data release, whose "
                               "tables never change: publish the catalogue in another schema")
        exists = conn.scalar(sa.text("SELECT to_regclass(:n) IS NOT NULL"), {"n": name})
        if exists and not replace:
            raise PublishError(f"{declaration.qualified_name} exists; use --replace to publish "
                               "it again")
        conn.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {_quote(declaration.schema)}"))
        if exists:
            _drop_table(conn, name, declaration.qualified_name, lock_wait_s)
        conn.execute(sa.schema.CreateTable(table))
        target = ", ".join(_quote(c) for c in columns)
        if declaration.position:
            target += ", " + _quote(declaration.position["healpix"])
        rows = 0
        # psycopg2's own connection (untyped): SQLAlchemy's DBAPI protocol knows neither
        # copy_expert nor cursors as context managers
        raw: Any = conn.connection.dbapi_connection
        with raw.cursor() as cur:
            for batch in source_batches(data, columns):
                if declaration.position:
                    batch = _with_healpix(batch, declaration)
                try:
                    cur.copy_expert(f"COPY {name} ({target}) FROM STDIN WITH (FORMAT csv)",
                                    io.BytesIO(_copy_text(batch)))
                except Exception as exc:  # noqa: BLE001 - psycopg2 DataError etc.
                    message = str(getattr(exc, "pgerror", None) or exc).strip()
                    raise PublishError(f"{data}: loading rows {rows + 1}-"
                                       f"{rows + batch.num_rows} failed: {message}") from None
                rows += batch.num_rows
                if progress:
                    progress(batch.num_rows)
        for index in table.indexes:
            index.create(conn)
        conn.execute(sa.text(f"ANALYZE {name}"))
        conn.execute(sa.text(f"GRANT USAGE ON SCHEMA {_quote(declaration.schema)} "
                             f"TO {_quote(reader_role)}"))
        conn.execute(sa.text(f"GRANT SELECT ON {name} TO {_quote(reader_role)}"))
        values = {"schema_name": declaration.schema, "table_name": declaration.name,
                  "declaration": declaration.to_dict(), "source": str(data.resolve()),
                  "n_rows": rows}
        stmt = insert(published_catalogues).values(**values)
        conn.execute(stmt.on_conflict_do_update(
            index_elements=["schema_name", "table_name"],
            set_={**{k: stmt.excluded[k] for k in ("declaration", "source", "n_rows")},
                  "published_at": sa.func.now()}))
        refresh_tap_schema(conn)
    # VACUUM sets the visibility map, so counts and key lookups can use index-only scans.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text(f"VACUUM (ANALYZE) {name}"))
    return PublishResult(declaration.qualified_name, rows, bool(exists))


def unpublish(engine: sa.Engine, schema: str, table: str,
              lock_wait_s: float = LOCK_WAIT_S) -> None:
    """Drop a published catalogue and remove it from TAP_SCHEMA."""
    with engine.begin() as conn:
        deleted = conn.execute(published_catalogues.delete().where(
            published_catalogues.c.schema_name == schema,
            published_catalogues.c.table_name == table)).rowcount
        if not deleted:
            raise PublishError(f"{schema}.{table} is not a published catalogue")
        _drop_table(conn, f"{_quote(schema)}.{_quote(table)}", f"{schema}.{table}", lock_wait_s)
        refresh_tap_schema(conn)


__all__ = ["LOCK_WAIT_S", "PublishError", "PublishResult", "publish", "read_declaration",
           "unpublish"]
