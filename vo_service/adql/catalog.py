"""What an ADQL query can see: tables, columns, their VO metadata, uploads.

The catalog is built once from the declared SQLAlchemy tables
(:meth:`Catalog.from_tables`); the TAP layer takes a :meth:`Catalog.copy` per
query and adds that query's uploaded tables (``TAP_UPLOAD.name``) to it.
Names follow ADQL's case rules: a regular identifier matches a name
case-insensitively, a delimited one only exactly.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Unpack

import sqlalchemy as sa
from pgvector.sqlalchemy import Vector

from schema.latent_index import IndexPlan
from schema.vo import ColumnMeta, DescriptionFields, PositionIndex, column_meta, table_meta
from vo_service.adql import types as T
from vo_service.adql.ast import Ident
from vo_service.adql.errors import ADQLSemanticError, at

UPLOAD_SCHEMA = "TAP_UPLOAD"

LatentIndexLookup = Callable[[str], "IndexPlan | None"]
"""model_id -> the plan of that model's latent index (None: no latent vectors)."""


@dataclass(frozen=True)
class CatalogColumn:
    """A column a query can read or returns: its name, ADQL type and VO metadata.

    The same type describes the columns of published tables, of uploads and of a
    query's result (:attr:`vo_service.adql.translate.Translation.columns`), so a
    result's metadata is the declaration's own :class:`ColumnMeta`, carried through.
    """

    name: str
    type: str  # a vo_service.adql.types name
    meta: ColumnMeta

    @classmethod
    def from_votable(cls, name: str, datatype: str, arraysize: str | None = None,
                     xtype: str | None = None, **meta: Unpack[DescriptionFields]) -> CatalogColumn:
        """A column described by a VOTable FIELD (uploads)."""
        return cls(name, T.from_votable(datatype, arraysize, xtype),
                   ColumnMeta(datatype, arraysize, xtype, **meta))

    @classmethod
    def from_sa(cls, column: sa.Column[Any]) -> CatalogColumn:
        """A declared column (``info["vo"]``); pgvector columns are ADQL vectors."""
        meta = column_meta(column)
        type_ = T.VECTOR if isinstance(column.type, Vector) else T.from_votable(
            meta.datatype, meta.arraysize, meta.xtype)
        return cls(column.name, type_, meta)


@dataclass(frozen=True)
class CatalogTable:
    """A table a query can read: published, or uploaded with the query.

    ``schema``/``name`` are the names ADQL uses; ``sql_schema``/``sql_name``
    where the rows are in PostgreSQL. ``position`` describes the table's sky
    position and its HEALPix index, which positional conditions use.
    """

    schema: str  # ADQL schema name
    name: str  # ADQL table name
    columns: tuple[CatalogColumn, ...]
    sql_schema: str | None = None  # where it lives in PostgreSQL (None: pg_temp/search path)
    sql_name: str | None = None
    description: str | None = None
    position: PositionIndex | None = None

    @property
    def qualified_name(self) -> str:
        """``schema.name``, as messages and TAP_SCHEMA write it."""
        return f"{self.schema}.{self.name}"

    def column(self, name: str) -> CatalogColumn | None:
        """The column of exactly this name, if any."""
        return next((c for c in self.columns if c.name == name), None)


def table_from_sa(table: sa.Table) -> CatalogTable:
    """A catalog entry for a declared table carrying ``info["vo"]``."""
    vo = table_meta(table)
    return CatalogTable(
        schema=table.schema or "public", name=table.name,
        columns=tuple(CatalogColumn.from_sa(c) for c in table.columns if "vo" in c.info),
        sql_schema=table.schema, sql_name=table.name, description=vo.description,
        position=vo.position,
    )


def matches(ident: Ident, name: str) -> bool:
    """ADQL's rule: regular identifiers fold case, delimited ones are exact."""
    return name == ident.name if ident.delimited else name.lower() == ident.key


@dataclass
class Catalog:
    """Tables by (schema, name), plus the latent-index lookup for the ML functions.

    ``latent_index(model_id)`` returns the :class:`IndexPlan` of that model's latent
    space (see ``vo_service.adql.latent.ModelIndexes``), or None for a model with no
    latent vectors.
    """

    tables: list[CatalogTable] = field(default_factory=list)
    latent_index: LatentIndexLookup = field(default=lambda model_id: None)

    @classmethod
    def from_tables(cls, tables: Iterable[sa.Table], *,
                    latent_index: LatentIndexLookup | None = None) -> Catalog:
        """The catalog of the declared tables that carry ``info["vo"]``.

        Parameters
        ----------
        tables
            SQLAlchemy tables; those without VO metadata are left out.
        latent_index
            The latent-index lookup (usually a :class:`~vo_service.adql.latent.ModelIndexes`);
            without it no query is served by a latent index.
        """
        catalog = cls([table_from_sa(t) for t in tables if "vo" in t.info])
        if latent_index is not None:
            catalog.latent_index = latent_index
        return catalog

    def copy(self) -> Catalog:
        """A catalog for one query: uploads added to it do not leak to others."""
        return replace(self, tables=list(self.tables))

    def add_table(self, table: CatalogTable) -> CatalogTable:
        """Add ``table`` and return it.

        Raises
        ------
        ValueError
            When a table of that schema and name (compared case-insensitively)
            is already in the catalog.
        """
        for existing in self.tables:
            if (existing.schema.lower(), existing.name.lower()) == (table.schema.lower(),
                                                                    table.name.lower()):
                raise ValueError(f"table {table.qualified_name} is already in the catalog")
        self.tables.append(table)
        return table

    def add_upload(self, name: str, columns: Iterable[CatalogColumn], *, sql_name: str,
                   sql_schema: str | None = None, description: str | None = None
                   ) -> CatalogTable:
        """Make an uploaded table queryable as ``TAP_UPLOAD.name``.

        ``sql_schema``/``sql_name`` say where the TAP layer stored it (None as
        schema for a temporary table).
        """
        return self.add_table(CatalogTable(
            schema=UPLOAD_SCHEMA, name=name, columns=tuple(columns), sql_schema=sql_schema,
            sql_name=sql_name, description=description or "Uploaded table",
        ))

    def find_table(self, parts: list[Ident]) -> CatalogTable:
        """The table ``[schema.]table`` names, or an error naming candidates."""
        table_ident = parts[-1]
        schema_ident = parts[-2] if len(parts) >= 2 else None
        if len(parts) == 3:
            raise ADQLSemanticError(
                f"catalog qualifiers are not supported ({'.'.join(map(str, parts))})",
                token=str(parts[0]), **at(parts[0].pos))
        found = [
            t for t in self.tables
            if matches(table_ident, t.name)
            and (schema_ident is None or matches(schema_ident, t.schema))
        ]
        if len(found) > 1:
            exact = [t for t in found if t.name == table_ident.name
                     and (schema_ident is None or t.schema == schema_ident.name)]
            if len(exact) == 1:
                return exact[0]
            raise ADQLSemanticError(
                f"table name {'.'.join(map(str, parts))} is ambiguous: it could be "
                + ", ".join(t.qualified_name for t in found) + "; qualify it with its schema",
                token=str(table_ident), **at(table_ident.pos))
        if not found:
            written = ".".join(str(p) for p in parts)
            names = [t.qualified_name for t in self.tables] + [t.name for t in self.tables]
            close = difflib.get_close_matches(written.lower(), [n.lower() for n in names],
                                              n=3, cutoff=0.6)
            hint = f"; did you mean {' or '.join(close)}?" if close else ""
            if schema_ident is not None and schema_ident.key == UPLOAD_SCHEMA.lower():
                hint = "; no table of that name was uploaded with this query"
            raise ADQLSemanticError(f"unknown table {written}{hint}", token=written,
                                    **at(parts[0].pos))
        return found[0]
