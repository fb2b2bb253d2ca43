"""VO metadata attached to SQLAlchemy Core tables and columns.

Every published table is declared once (``schema.tables``) with SQLAlchemy
Core; its VO description lives in ``Table.info["vo"]`` (:class:`VOTable`) and
``Column.info["vo"]`` (:class:`ColumnMeta`). :class:`ColumnMeta` is the one
type that describes a column to a client: TAP_SCHEMA, VOSI tables, the
result writers' VOTable FIELDs, the ADQL catalog and translator, SSA and
DataLink all carry a :class:`ColumnMeta` (composed with a name where they need
one) instead of restating its attributes, so metadata is never copied field by
field.

Use :func:`vo_column` to declare a column and :func:`vo_table` to declare a
table; the VOTable datatype is derived from the SQL type
(:meth:`ColumnMeta.for_sql_type`), so the declaration only says what is not
obvious.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeAlias, TypedDict, Unpack

import sqlalchemy as sa
from pgvector.sqlalchemy import Vector

HEALPIX_DEPTH = 29
"""Order of every HEALPix position index in the service (NESTED scheme).

29 is the finest order whose cell numbers fit a signed 64-bit integer (cells
of ~0.4 mas), so one ``bigint`` column serves cones of any size: a search
takes ranges of cell numbers at whatever coarser order suits its radius.
"""


SQLType: TypeAlias = sa.types.TypeEngine[Any] | type[sa.types.TypeEngine[Any]]
"""A SQL type as SQLAlchemy's ``Column`` accepts it: an instance or a type class."""


class DescriptionFields(TypedDict, total=False):
    """The attributes of :class:`ColumnMeta` beyond the VOTable serialisation (datatype,
    arraysize, xtype), as keyword arguments, all optional."""

    unit: str | None
    ucd: str | None
    utype: str | None
    description: str | None
    principal: bool
    std: bool
    indexed: bool


class ColumnMetaFields(DescriptionFields, total=False):
    """The attributes of :class:`ColumnMeta` as keyword arguments, all optional.

    Types the ``**meta`` of :meth:`ColumnMeta.for_sql_type`, so a misspelt or
    mistyped attribute is caught where a column is declared.
    """

    datatype: str
    arraysize: str | None
    xtype: str | None


@dataclass(frozen=True)
class ColumnMeta:
    """What a client is told about a column (TAP_SCHEMA.columns, VOSI, a VOTable FIELD).

    Parameters
    ----------
    datatype, arraysize, xtype
        The VOTable serialisation: datatype (``char``, ``double``...), arraysize
        (``"*"``, ``"16"``, ``"2x3"``; None for a scalar) and DALI xtype
        (``timestamp``, ``point``...).
    unit, ucd, utype, description
        The column's meaning: VOUnit, UCD1+ word list, data-model utype, text.
    principal, std, indexed
        TAP_SCHEMA flags: shown by default, defined by an IVOA standard, served
        by an index.
    """

    datatype: str = "char"
    arraysize: str | None = None
    xtype: str | None = None
    unit: str | None = None
    ucd: str | None = None
    utype: str | None = None
    description: str | None = None
    principal: bool = False
    std: bool = False
    indexed: bool = False

    @classmethod
    def for_sql_type(cls, sqltype: SQLType, **meta: Unpack[ColumnMetaFields]) -> ColumnMeta:
        """Metadata for a column of ``sqltype``, its VOTable type derived from the SQL type.

        Declarations then only state what the SQL type cannot say (meaning, unit, UCD).

        Parameters
        ----------
        sqltype
            The column's SQL type (an instance or a type class).
        **meta
            The other :class:`ColumnMeta` attributes. ``datatype`` and ``arraysize``
            given here win over the derived ones; so does a non-empty ``xtype``.

        Returns
        -------
        ColumnMeta
            The column's complete VO metadata.

        Raises
        ------
        TypeError
            When ``sqltype`` has no VOTable counterpart (see :func:`votable_type`).
        """
        datatype, arraysize, xtype = votable_type(sqltype)
        meta.setdefault("datatype", datatype)
        meta.setdefault("arraysize", arraysize)
        meta["xtype"] = meta.get("xtype") or xtype
        return cls(**meta)


@dataclass(frozen=True)
class PositionIndex:
    """Columns that make up a table's sky position and its HEALPix index.

    ``healpix`` holds the NESTED HEALPix cell of (ra, dec) at ``depth``; a
    cone or polygon is served by ranges of that column plus an exact test.
    """

    ra: str
    dec: str
    healpix: str
    depth: int = HEALPIX_DEPTH


@dataclass(frozen=True)
class VOTable:
    """What TAP_SCHEMA and VOSI say about a table, and where its sky position is."""

    description: str
    utype: str | None = None
    table_type: str = "table"  # TAP_SCHEMA.tables.table_type: table or view
    position: PositionIndex | None = None
    # Lower numbers are listed first in TAP_SCHEMA/VOSI (TAP 1.1 table_index).
    table_index: int = 100
    extra: dict[str, Any] = field(default_factory=dict)


def votable_type(sqltype: SQLType) -> tuple[str, str | None, str | None]:
    """The VOTable (datatype, arraysize, xtype) for a SQL type.

    The one mapping from PostgreSQL types to VOTable serialisations, so that
    TAP_SCHEMA, VOSI and the result writers agree on every column.

    Parameters
    ----------
    sqltype
        A SQLAlchemy type (instance or class); arrays and pgvector ``vector``
        columns map to variable (or fixed, for ``vector(n)``) arrays of their
        element type.

    Returns
    -------
    tuple of (str, str or None, str or None)
        VOTable datatype, arraysize (None for a scalar) and DALI xtype.

    Raises
    ------
    TypeError
        For a SQL type with no VOTable mapping.
    """
    if isinstance(sqltype, type):
        sqltype = sqltype()
    if isinstance(sqltype, Vector):
        return "float", (str(sqltype.dim) if sqltype.dim else "*"), None
    if isinstance(sqltype, sa.ARRAY):
        inner, _, xtype = votable_type(sqltype.item_type)
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
    sqltype: SQLType,
    *args: sa.schema.SchemaItem,
    description: str,
    unit: str | None = None,
    ucd: str | None = None,
    utype: str | None = None,
    xtype: str | None = None,
    principal: bool = False,
    std: bool = False,
    indexed: bool = False,
    **kwargs: Any,
) -> sa.Column[Any]:
    """A ``sa.Column`` carrying its VO metadata (:class:`ColumnMeta`) in ``info["vo"]``.

    Declaring a published column through this function keeps its SQL definition and
    its VO description in one place; the description is also the column's SQL
    ``COMMENT``.

    Parameters
    ----------
    name, sqltype, *args
        As for ``sa.Column`` (``*args``: constraints, ``ForeignKey``, ``Identity``...).
    description, unit, ucd, utype, xtype, principal, std, indexed
        The :class:`ColumnMeta` attributes; the VOTable datatype and arraysize are
        derived from ``sqltype``. ``indexed`` is implied by ``index=True`` and
        ``primary_key=True``.
    **kwargs
        Further ``sa.Column`` keyword arguments (``nullable``, ``primary_key``...).
    """
    if isinstance(sqltype, type):
        sqltype = sqltype()
    meta = ColumnMeta.for_sql_type(
        sqltype, description=description, unit=unit, ucd=ucd, utype=utype, xtype=xtype,
        principal=principal, std=std,
        indexed=indexed or bool(kwargs.get("index")) or bool(kwargs.get("primary_key")))
    return sa.Column(name, sqltype, *args, info={"vo": meta}, comment=description, **kwargs)


def vo_table(name: str, metadata: sa.MetaData, *columns: sa.schema.SchemaItem, schema: str,
             vo: VOTable, **kw: Any) -> sa.Table:
    """A ``sa.Table`` carrying its VO metadata (:class:`VOTable`) in ``info["vo"]``.

    The table's description is also its SQL ``COMMENT``. ``columns`` and ``kw`` are
    passed to ``sa.Table`` unchanged (columns, constraints, indexes, options).
    """
    return sa.Table(name, metadata, *columns, schema=schema, info={"vo": vo},
                    comment=vo.description, **kw)


def column_meta(column: sa.Column[Any]) -> ColumnMeta:
    """The declared VO metadata of a column (``KeyError`` if it has none)."""
    meta: ColumnMeta = column.info["vo"]  # put there by vo_column or a declaration
    return meta


def table_meta(table: sa.Table) -> VOTable:
    """The declared VO metadata of a table (``KeyError`` if it has none)."""
    meta: VOTable = table.info["vo"]  # put there by vo_table or a declaration
    return meta
