"""``latentvo release export``: a release as a self-contained RO-Crate folder, for
long-term archives that keep files, not databases.

The folder holds:

* ``tables/<table>.parquet``: each frozen table of the release, streamed from the
  database in Arrow batches (pgvector columns as lists of float32), never whole in
  memory; its row count is checked against the manifest;
* the model artifacts, copied from ``$LATENTVO_HOME`` to the same relative paths
  (``models/<id>/model.pt``), their SHA-256 checked against the manifest while copying;
* ``datacite.xml`` and ``citation.bib``;
* ``ro-crate-metadata.json`` listing every file above with its size and SHA-256.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from vo_service.db.database import Database
from vo_service.errors import OperatorError
from vo_service.releases import citation, contents, crate
from vo_service.releases.publisher import Publisher
from vo_service.releases.store import WITHDRAWN, Release, read_release
from vo_service.urls import PublicURLs

PARQUET_MIME = "application/vnd.apache.parquet"
_CHUNK = 1 << 20


class ExportError(OperatorError):
    """The release cannot be exported, or what was exported disagrees with its manifest."""


@dataclass(frozen=True)
class Exported:
    """What an export wrote."""

    folder: Path
    parts: list[crate.Part]
    metadata: Path  # ro-crate-metadata.json

    @property
    def size(self) -> int:
        """Bytes of the data files (the metadata document aside)."""
        return sum(p.size or 0 for p in self.parts)


def sha256_of(path: Path) -> str:
    """The SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _select(conn: sa.Connection, table: contents.FrozenTable) -> str:
    """The query that reads a frozen table: pgvector columns cast to ``real[]`` (which
    Arrow reads as lists of float32), in primary-key order where it has one, so that
    exporting the same release twice writes the same files."""
    name = f'"{table.schema}"."{table.name}"'
    rows = conn.execute(sa.text(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod), "
        "       coalesce(array_position(i.indkey::int2[], a.attnum), 0) AS key_position "
        "FROM pg_attribute AS a LEFT JOIN pg_index AS i "
        "  ON i.indrelid = a.attrelid AND i.indisprimary "
        "WHERE a.attrelid = to_regclass(:name) AND a.attnum > 0 AND NOT a.attisdropped "
        "ORDER BY a.attnum"), {"name": name}).all()
    if not rows:
        raise ExportError(f"the release's table {table.qualified} does not exist")
    quote = conn.dialect.identifier_preparer.quote
    columns = ", ".join(f"{quote(col)}::real[] AS {quote(col)}" if kind.startswith("vector")
                        else quote(col) for col, kind, _ in rows)
    keys = [quote(col) for col, _, position in sorted(rows, key=lambda r: r[2]) if position]
    order = f" ORDER BY {', '.join(keys)}" if keys else ""
    return f"SELECT {columns} FROM {name}{order}"


def export_table(database: Database, table: contents.FrozenTable, target: Path) -> int:
    """Stream ``table`` into the Parquet file ``target``; returns its row count."""
    import adbc_driver_postgresql.dbapi as adbc
    import pyarrow.parquet as pq

    with database.engine.connect() as conn:
        query = _select(conn, table)
    uri = make_url(database.owner_url).set(drivername="postgresql") \
        .render_as_string(hide_password=False)
    rows = 0
    with adbc.connect(uri) as conn, conn.cursor() as cursor:
        cursor.execute(query)
        reader = cursor.fetch_record_batch()
        with pq.ParquetWriter(target, reader.schema) as writer:
            for batch in reader:
                writer.write_batch(batch)
                rows += batch.num_rows
    return rows


def copy_checked(source: Path, target: Path, expected: str | None) -> str:
    """Copy ``source`` to ``target`` while hashing it; returns the SHA-256.

    Raises
    ------
    ExportError
        When the file is missing, or its SHA-256 is not ``expected`` (when given).
    """
    if not source.is_file():
        raise ExportError(f"model artifact {source} is missing")
    digest = hashlib.sha256()
    with source.open("rb") as src, target.open("wb") as dst:
        while chunk := src.read(_CHUNK):
            digest.update(chunk)
            dst.write(chunk)
    found = digest.hexdigest()
    if expected and found != expected:
        raise ExportError(f"model artifact {source} has SHA-256 {found}, the release's "
                          f"manifest says {expected}: the file changed after the release")
    return found


def export_release(database: Database, name: str, folder: Path, pub: Publisher,
                   urls: PublicURLs, progress: Callable[[str], None] = lambda _: None,
                   ) -> Exported:
    """Write the release ``name`` as an RO-Crate into ``folder`` (new or empty).

    ``urls`` are the service's public URLs, which the citations and the crate name;
    ``progress`` is told each file as it is written.

    Raises
    ------
    ExportError
        When there is no such release, it was withdrawn, ``folder`` is not empty, or a
        file disagrees with the manifest (row count, artifact checksum).
    """
    with database.engine.connect() as conn:
        release = read_release(conn, name)
        if release is None:
            raise ExportError(f"there is no release {name!r}")
        if release.state == WITHDRAWN:
            raise ExportError(f"release {name!r} was withdrawn: its tables are gone")
        artifacts = contents.artifact_paths(conn, release)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise ExportError(f"{folder} exists and is not an empty folder")
    (folder / "tables").mkdir(parents=True, exist_ok=True)
    try:
        parts = [_table_part(database, release, table, folder, urls, progress)
                 for table in contents.frozen_tables(release)]
        parts += [_model_part(database, part, folder, progress)
                  for part in crate.model_parts(release, artifacts)]
        parts += _citation_parts(release, pub, urls, folder)
        made = crate.release_crate(release, pub, urls, parts)
        return Exported(folder, parts, crate.write_metadata(made, folder))
    except BaseException:
        _remove_partial(folder)  # no half-written package that looks complete
        raise


def _table_part(database: Database, release: Release, table: contents.FrozenTable,
                folder: Path, urls: PublicURLs, progress: Callable[[str], None]) -> crate.Part:
    relative = f"tables/{table.name}.parquet"
    target = folder / relative
    progress(relative)
    rows = export_table(database, table, target)
    if table.rows is not None and rows != table.rows:
        raise ExportError(f"{table.qualified} has {rows} rows, the release's manifest says "
                          f"{table.rows}")
    return crate.Part(relative, table.qualified, crate.table_description(table), PARQUET_MIME,
                      sha256_of(target), target.stat().st_size,
                      urls.tap_query(f"SELECT * FROM {table.qualified}"))


def _model_part(database: Database, part: crate.Part, folder: Path,
                progress: Callable[[str], None]) -> crate.Part:
    target = folder / part.path
    target.parent.mkdir(parents=True, exist_ok=True)
    progress(part.path)
    found = copy_checked(database.settings.home / part.path, target, part.sha256)
    return crate.Part(part.path, part.name, part.description, part.encoding, found,
                      target.stat().st_size)


def _citation_parts(release: Release, pub: Publisher, urls: PublicURLs,
                    folder: Path) -> list[crate.Part]:
    written = [("datacite.xml", "DataCite 4.3 metadata of the release", citation.DATACITE_MIME,
                citation.datacite_xml(release, pub, urls),
                urls.release_datacite(release.name)),
               ("citation.bib", "BibTeX entry to cite the release", citation.BIBTEX_MIME,
                citation.release_bibtex(release, pub, urls),
                urls.release_bibtex(release.name))]
    parts = []
    for relative, what, mime, text, url in written:
        target = folder / relative
        target.write_text(text, encoding="utf-8")
        parts.append(crate.Part(relative, relative, what, mime, sha256_of(target),
                                target.stat().st_size, url))
    return parts


def _remove_partial(folder: Path) -> None:
    """Remove what a failed export wrote into ``folder`` (new or empty before it)."""
    for child in folder.iterdir():
        if child.is_dir():
            shutil.rmtree(child)
        else:
            child.unlink()
