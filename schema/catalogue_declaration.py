"""The declaration file of an existing catalogue, and the table it declares.

Archive staff describe a catalogue they already have in a TOML file::

    [schema]
    name = "mlspec"
    description = "Spectra metadata with ML products"

    [table]
    name = "spectra"
    description = "One row per spectrum"
    table_index = 70                  # optional: listing order
    position = { ra = "ra", dec = "dec", healpix = "healpix" }   # optional

    [[column]]
    name = "spec_id"
    type = "bigint"                   # smallint integer bigint real double boolean
                                      # text timestamp, arrays: real[16], double[]
    description = "Spectrum identifier"
    ucd = "meta.id;meta.main"
    unit = ""                         # VOUnit
    primary_key = true                # also: nullable, principal, indexed, utype, xtype

    [[index]]
    columns = ["target_name"]

:meth:`Declaration.table` turns it into a SQLAlchemy ``Table`` carrying the same
``info["vo"]`` metadata as the tables of ``schema.tables``, so TAP_SCHEMA, VOSI
``/tables``, VOTable FIELDs and the ADQL catalog all render it from this one
declaration. With ``position``, a ``healpix`` column (NESTED HEALPix index of
the position at :data:`schema.vo.HEALPIX_DEPTH`) is added and filled at load
time, so cone and polygon searches on the catalogue use an index like they do
on ``latentvo.spectra``.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypedDict

import sqlalchemy as sa

from schema.sky_zones import zone_index
from schema.vo import ColumnMeta, ColumnMetaFields, PositionIndex, VOTable

RESERVED_SCHEMAS = {"latentvo", "latentvo_ops", "tap_schema", "ivoa", "public", "tap_upload",
                    "pg_catalog", "information_schema", "rr"}
_IDENT = re.compile(r"^[a-z][a-z0-9_]*$")
_TYPES: dict[str, type[sa.types.TypeEngine[Any]]] = {
    "smallint": sa.SmallInteger, "int2": sa.SmallInteger,
    "integer": sa.Integer, "int": sa.Integer, "int4": sa.Integer,
    "bigint": sa.BigInteger, "int8": sa.BigInteger,
    "real": sa.REAL, "float4": sa.REAL, "float": sa.REAL,
    "double": sa.Double, "double precision": sa.Double, "float8": sa.Double,
    "boolean": sa.Boolean, "bool": sa.Boolean,
    "text": sa.Text, "varchar": sa.Text, "string": sa.Text, "char": sa.Text,
    "timestamp": sa.DateTime,
}


class DeclarationError(ValueError):
    """The declaration file is wrong; the message names the place."""


class PositionDecl(TypedDict):
    """A declared sky position: the ra and dec columns, and the HEALPix column to add."""

    ra: str
    dec: str
    healpix: str


@dataclass(frozen=True)
class ColumnDecl:
    """One ``[[column]]`` of a declaration file, as written there.

    Parameters
    ----------
    name
        Column name: a lower-case ADQL regular identifier.
    type
        Declared SQL type (``bigint``, ``real[16]``, ``timestamp``...); see
        :func:`_sql_type` for what is accepted.
    description, unit, ucd, utype, xtype, principal, indexed
        VO metadata, as in :class:`~schema.vo.ColumnMeta`.
    nullable, primary_key
        SQL constraints of the column.
    """

    name: str
    type: str
    description: str
    unit: str | None = None
    ucd: str | None = None
    utype: str | None = None
    xtype: str | None = None
    principal: bool = False
    indexed: bool = False
    nullable: bool = True
    primary_key: bool = False


@dataclass(frozen=True)
class Declaration:
    """A published catalogue as its declaration file describes it: one table.

    Kept as data (and stored as :meth:`to_dict` in ``latentvo_ops``) so the service
    rebuilds the same :meth:`table`, with its VO metadata, in every process.

    Parameters
    ----------
    schema, name
        Schema and table name (lower-case ADQL regular identifiers; the schema is
        not one of :data:`RESERVED_SCHEMAS`).
    description
        Description of the table.
    columns
        The declared columns, in order.
    schema_description, utype
        Description of the schema and data-model type of the table, if given.
    table_index
        Listing order in TAP_SCHEMA and VOSI (lower first).
    position
        The sky position columns, if the table has one; a HEALPix column is then
        added to the table and filled at load time.
    indexes
        Column lists to index, each in index-column order.
    """

    schema: str
    name: str
    description: str
    columns: tuple[ColumnDecl, ...]
    schema_description: str | None = None
    utype: str | None = None
    table_index: int = 70
    position: PositionDecl | None = None
    indexes: tuple[tuple[str, ...], ...] = field(default_factory=tuple)

    @property
    def qualified_name(self) -> str:
        """``schema.table``, as ADQL queries and TAP_SCHEMA name the table."""
        return f"{self.schema}.{self.name}"

    # -- (de)serialisation ------------------------------------------------------

    @classmethod
    def from_file(cls, path: Path) -> Declaration:
        """Read and check a TOML declaration file.

        Raises
        ------
        DeclarationError
            When the file cannot be read or parsed, or declares something wrong
            (see :meth:`from_dict`); the message names the file.
        """
        try:
            data = tomllib.loads(Path(path).read_text())
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise DeclarationError(f"{path}: cannot read the declaration: {exc}") from None
        return cls.from_dict(data, origin=str(path))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], origin: str = "declaration") -> Declaration:
        """Check a parsed declaration (a declaration file, or a stored :meth:`to_dict`).

        Parameters
        ----------
        data
            The declaration's ``schema``, ``table``, ``column`` and ``index`` entries.
        origin
            Where ``data`` came from, for error messages.

        Raises
        ------
        DeclarationError
            For a missing or misnamed schema, table or column, a reserved schema, an
            unknown column key or type, duplicate columns, a position or an index on
            undeclared columns, or a declared HEALPix column.
        """
        def need(mapping: Mapping[str, Any], key: str, where: str) -> Any:
            if key not in mapping or mapping[key] in ("", None):
                raise DeclarationError(f"{origin}: {where} needs '{key}'")
            return mapping[key]

        schema = data.get("schema", {})
        table = data.get("table", {})
        if isinstance(schema, str):
            schema = {"name": schema}
        schema_name = schema.get("name") or table.get("schema")
        if not schema_name:
            raise DeclarationError(f"{origin}: [schema] needs 'name'")
        name = need(table, "name", "[table]")
        for ident, what in ((schema_name, "schema name"), (name, "table name")):
            if not _IDENT.match(ident):
                raise DeclarationError(f"{origin}: {what} {ident!r} must be a lower-case ADQL "
                                       "regular identifier (a-z, 0-9, _)")
        if schema_name in RESERVED_SCHEMAS:
            raise DeclarationError(f"{origin}: schema {schema_name!r} belongs to latentvo; "
                                   "publish catalogues into a schema of their own")
        raw_columns = data.get("column") or data.get("columns") or []
        if not raw_columns:
            raise DeclarationError(f"{origin}: no [[column]] declared")
        known = set(ColumnDecl.__dataclass_fields__)
        columns: list[ColumnDecl] = []
        for i, raw in enumerate(raw_columns, start=1):
            where = f"column {i}"
            cname = need(raw, "name", where)
            if not _IDENT.match(cname):
                raise DeclarationError(f"{origin}: column name {cname!r} must be a lower-case "
                                       "ADQL regular identifier")
            unknown = set(raw) - known
            if unknown:
                raise DeclarationError(f"{origin}: column {cname}: unknown key(s) "
                                       f"{', '.join(sorted(unknown))}")
            need(raw, "type", f"column {cname}")
            need(raw, "description", f"column {cname}")
            values: dict[str, Any] = {k: (v if v != "" else None) for k, v in raw.items()}
            col = ColumnDecl(**values)
            _sql_type(col, origin)  # validates the type
            columns.append(col)
        names = [c.name for c in columns]
        if len(set(names)) != len(names):
            raise DeclarationError(f"{origin}: duplicate column names")
        declared_position = table.get("position")
        position: PositionDecl | None = None
        if declared_position:
            for key in ("ra", "dec"):
                if declared_position.get(key) not in names:
                    raise DeclarationError(f"{origin}: position.{key} must name a column")
            position = PositionDecl(ra=declared_position["ra"], dec=declared_position["dec"],
                                    healpix=declared_position.get("healpix", "healpix"))
            if position["healpix"] in names:
                raise DeclarationError(f"{origin}: position.healpix ({position['healpix']}) is "
                                       "computed at load time; do not declare it as a column")
        indexes = tuple(tuple(ix["columns"]) for ix in data.get("index", []))
        for ix in indexes:
            for cname in ix:
                if cname not in names:
                    raise DeclarationError(f"{origin}: index on unknown column {cname}")
        return cls(schema=schema_name, name=name, description=need(table, "description",
                                                                    "[table]"),
                   columns=tuple(columns), schema_description=schema.get("description"),
                   utype=table.get("utype"), table_index=int(table.get("table_index", 70)),
                   position=position, indexes=indexes)

    def to_dict(self) -> dict[str, Any]:
        """The declaration as data :meth:`from_dict` reads back (JSON/TOML-ready).

        Column attributes left at their defaults are omitted.
        """
        out: dict[str, Any] = {"schema": {"name": self.schema}, "table": {
            "name": self.name, "description": self.description,
            "table_index": self.table_index}}
        if self.schema_description:
            out["schema"]["description"] = self.schema_description
        if self.utype:
            out["table"]["utype"] = self.utype
        if self.position:
            out["table"]["position"] = dict(self.position)
        defaults = {k: f.default for k, f in ColumnDecl.__dataclass_fields__.items()}
        out["column"] = [{k: v for k, v in asdict(c).items()
                          if v is not None and v != defaults.get(k)} for c in self.columns]
        out["index"] = [{"columns": list(ix)} for ix in self.indexes]
        return out

    # -- the table --------------------------------------------------------------

    def table(self, metadata: sa.MetaData | None = None) -> sa.Table:
        """The declared table, with the same ``info["vo"]`` metadata as ``schema.tables``.

        TAP_SCHEMA, VOSI, the result writers and the ADQL catalog render the catalogue
        from it like any declared table. A declared position adds the BIGINT HEALPix
        column named by ``position["healpix"]`` and its index.

        Parameters
        ----------
        metadata
            The ``MetaData`` to add the table to; a new one when None.
        """
        metadata = metadata if metadata is not None else sa.MetaData()
        indexed = {ix[0] for ix in self.indexes}
        columns: list[sa.Column[Any]] = []
        for col in self.columns:
            sqltype, arraysize = _sql_type(col, self.qualified_name)
            meta = ColumnMetaFields(
                description=col.description, unit=col.unit, ucd=col.ucd, utype=col.utype,
                xtype=col.xtype, principal=col.principal,
                indexed=col.indexed or col.primary_key or col.name in indexed,
            )
            if arraysize:
                meta["arraysize"] = arraysize
            columns.append(sa.Column(col.name, sqltype, primary_key=col.primary_key,
                                     nullable=col.nullable and not col.primary_key,
                                     info={"vo": ColumnMeta.for_sql_type(sqltype, **meta)},
                                     comment=col.description))
        position = None
        if self.position:
            position = PositionIndex(ra=self.position["ra"], dec=self.position["dec"],
                                     healpix=self.position["healpix"])
            columns.append(sa.Column(position.healpix, sa.BigInteger, nullable=True, info={
                "vo": ColumnMeta.for_sql_type(
                    sa.BigInteger(), description=f"NESTED HEALPix index at order "
                    f"{position.depth} of ({position.ra}, {position.dec}), for positional "
                    "searches", ucd="pos.healpix", indexed=True)}))
        vo = VOTable(description=self.description, utype=self.utype, position=position,
                     table_index=self.table_index)
        table = sa.Table(self.name, metadata, *columns, schema=self.schema,
                         info={"vo": vo}, comment=self.description)
        for ix in self.indexes:
            sa.Index(f"ix_{self.name}_{'_'.join(ix)}", *[table.c[c] for c in ix])
        for col in self.columns:
            if col.indexed and not col.primary_key and (col.name,) not in self.indexes:
                sa.Index(f"ix_{self.name}_{col.name}", table.c[col.name])
        if position:
            sa.Index(f"ix_{self.name}_{position.healpix}", table.c[position.healpix])
            table.append_constraint(zone_index(self.name, position.ra, position.dec))
        return table


def _sql_type(col: ColumnDecl, origin: str) -> tuple[sa.types.TypeEngine[Any], str | None]:
    """(SQLAlchemy type, VOTable arraysize or None) of a declared type."""
    text = " ".join(col.type.lower().split())
    match = re.fullmatch(r"(.+?)\s*\[(\d*)\]", text)
    vector = re.fullmatch(r"vector\((\d+)\)", text)
    if vector:
        from pgvector.sqlalchemy import Vector
        return Vector(int(vector.group(1))), vector.group(1)
    if match:
        inner = _TYPES.get(match.group(1))
        if inner is None or inner in (sa.Text, sa.DateTime, sa.Boolean):
            raise DeclarationError(f"{origin}: column {col.name}: unsupported array type "
                                   f"{col.type!r} (use a numeric element type)")
        return sa.ARRAY(inner()), (match.group(2) or "*")
    if text.startswith("varchar(") or text.startswith("char("):
        return sa.Text(), None
    if text in ("timestamp", "timestamptz", "timestamp with time zone"):
        return sa.DateTime(timezone=True), None
    kind = _TYPES.get(text)
    if kind is None:
        raise DeclarationError(f"{origin}: column {col.name}: unknown type {col.type!r}; use "
                               "one of " + ", ".join(sorted(set(_TYPES))) + " or arrays like "
                               "real[16]")
    return kind(), None
