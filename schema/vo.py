"""VO metadata attached to SQLAlchemy Core tables and columns.

Every published table is declared once (``schema.tables``) with SQLAlchemy
Core; its VO description lives in ``Table.info["vo"]`` (:class:`VOTable`) and
``Column.info["vo"]`` (:class:`VOColumn`). Everything that describes a column
to a client (TAP_SCHEMA, VOSI tables, VOTable FIELDs, SSA/ObsCore mappings, the
DaCHS export) reads it from here, so metadata is never restated by hand.

Use :func:`vo_column` to declare a column and :func:`vo_table` to declare a
table; they fill in the VOTable datatype from the SQL type when it can be
derived, so the declaration only says what is not obvious.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa
from pgvector.sqlalchemy import Vector


@dataclass(frozen=True)
class VOColumn:
    description: str
    unit: str | None = None
    ucd: str | None = None
    utype: str | None = None
    datatype: str = "char"  # VOTable datatype
    arraysize: str | None = None  # VOTable arraysize ("*", "16", "2x3"...)
    xtype: str | None = None  # DALI xtype (timestamp, point, circle, polygon...)
    principal: bool = False
    std: bool = False  # defined by an IVOA standard (ObsCore, SSA...)
    indexed: bool = False


@dataclass(frozen=True)
class PositionIndex:
    """Columns that make up a table's sky position and its HEALPix index.

    ``healpix`` holds the NESTED HEALPix cell of (ra, dec) at ``depth``; a
    cone or polygon is served by ranges of that column plus an exact test.
    """

    ra: str
    dec: str
    healpix: str
    depth: int = 29


@dataclass(frozen=True)
class VOTable:
    description: str
    utype: str | None = None
    table_type: str = "table"  # TAP_SCHEMA.tables.table_type: table or view
    position: PositionIndex | None = None
    # Lower numbers are listed first in TAP_SCHEMA/VOSI (TAP 1.1 table_index).
    table_index: int = 100
    extra: dict = field(default_factory=dict)


def _votable_type(sqltype: sa.types.TypeEngine) -> tuple[str, str | None, str | None]:
    """The VOTable (datatype, arraysize, xtype) for a SQL type."""
    if isinstance(sqltype, Vector):
        return "float", (str(sqltype.dim) if sqltype.dim else "*"), None
    if isinstance(sqltype, sa.ARRAY):
        inner, _, xtype = _votable_type(sqltype.item_type)
        return inner, "*", xtype
    if isinstance(sqltype, sa.Boolean):
        return "boolean", None, None
    if isinstance(sqltype, sa.SmallInteger):
        return "short", None, None
    if isinstance(sqltype, sa.BigInteger):
        return "long", None, None
    if isinstance(sqltype, sa.Integer):
        return "int", None, None
    if isinstance(sqltype, sa.REAL):
        return "float", None, None
    if isinstance(sqltype, (sa.Float, sa.Double, sa.Numeric)):
        return "double", None, None
    if isinstance(sqltype, sa.DateTime):
        return "char", "*", "timestamp"
    if isinstance(sqltype, sa.String):
        return "char", "*", None
    raise TypeError(f"no VOTable mapping for SQL type {sqltype!r}")


def vo_column(
    name: str,
    sqltype: sa.types.TypeEngine,
    *args,
    description: str,
    unit: str | None = None,
    ucd: str | None = None,
    utype: str | None = None,
    xtype: str | None = None,
    principal: bool = False,
    std: bool = False,
    indexed: bool = False,
    **kwargs,
) -> sa.Column:
    """A ``sa.Column`` carrying its VO metadata in ``info["vo"]``."""
    if isinstance(sqltype, type):
        sqltype = sqltype()
    datatype, arraysize, derived_xtype = _votable_type(sqltype)
    meta = VOColumn(
        description=description,
        unit=unit,
        ucd=ucd,
        utype=utype,
        datatype=datatype,
        arraysize=arraysize,
        xtype=xtype or derived_xtype,
        principal=principal,
        std=std,
        indexed=indexed or bool(kwargs.get("index")) or bool(kwargs.get("primary_key")),
    )
    return sa.Column(name, sqltype, *args, info={"vo": meta}, comment=description, **kwargs)


def vo_table(name: str, metadata: sa.MetaData, *columns, schema: str, vo: VOTable,
             **kw) -> sa.Table:
    """A ``sa.Table`` carrying its VO metadata in ``info["vo"]``."""
    return sa.Table(name, metadata, *columns, schema=schema, info={"vo": vo},
                    comment=vo.description, **kw)


def column_meta(column: sa.Column) -> VOColumn:
    return column.info["vo"]


def table_meta(table: sa.Table) -> VOTable:
    return table.info["vo"]


def is_published(table: sa.Table) -> bool:
    return "vo" in table.info
