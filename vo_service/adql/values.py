"""Typed SQL fragments: what the translator knows about each expression.

A :class:`Value` is the PostgreSQL text of an expression plus its ADQL type,
the VO metadata it carries into a result column (unit, UCD, utype,
description), its value when it is a constant (so that geometry with
literal arguments can be turned into index ranges and precomputed vectors),
and the symbolic forms that let an enclosing construct use an index: a
geometry's centre, radius and vertices (:attr:`Value.geom`), the condition
behind ``CONTAINS``/``INTERSECTS`` (:attr:`Value.condition`), the two points of a
``DISTANCE`` (:attr:`Value.distance`) and a latent distance an ``ORDER BY`` can
hand to an HNSW index (:attr:`Value.knn`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, TypeAlias, TypedDict, Unpack

from vo_service.adql import types as T

if TYPE_CHECKING:
    from vo_service.adql.geometry import Circle, Point, Polygon
    from vo_service.adql.latent import KnnTerm
    from vo_service.adql.translate import Binding


class _NotConst:
    """The type of :data:`NOT_CONST`."""

    def __repr__(self) -> str:
        return "NOT_CONST"


NOT_CONST = _NotConst()
"""The ``const`` of a value that is not a constant (None is the constant NULL)."""

Const: TypeAlias = int | float | str | bool | None
"""A constant's Python value (None for NULL)."""

MaybeConst: TypeAlias = Const | _NotConst
"""A :attr:`Value.const`: a constant's value or :data:`NOT_CONST`."""

VOTableType: TypeAlias = tuple[str, str | None, str | None]
"""(datatype, arraysize, xtype) of a VOTable FIELD."""


class ColumnChanges(TypedDict, total=False):
    """The fields of a :class:`Value` that :meth:`Value.as_column` may set."""

    sql: str
    type: str
    unit: str | None
    ucd: str | None
    utype: str | None
    description: str | None
    const: MaybeConst
    source: Binding | None
    aggregate: bool
    votable: VOTableType | None


class ValueChanges(ColumnChanges, total=False):
    """The fields of a :class:`Value` that :meth:`Value.with_` may change: all."""

    geom: Point | Circle | Polygon | None
    condition: str | None
    distance: tuple[Point, Point] | None
    knn: KnnTerm | None


@dataclass(slots=True)
class Value:
    """An SQL expression with its ADQL type, VO metadata and symbolic forms."""

    sql: str
    type: str
    unit: str | None = None
    ucd: str | None = None
    utype: str | None = None
    description: str | None = None
    const: MaybeConst = NOT_CONST
    geom: Point | Circle | Polygon | None = None  # the symbolic form of a geometry
    source: Binding | None = None  # for a plain column reference
    aggregate: bool = False  # contains an aggregate function
    votable: VOTableType | None = None  # (datatype, arraysize, xtype) when known exactly
    condition: str | None = None  # CONTAINS/INTERSECTS: the test as an SQL condition
    distance: tuple[Point, Point] | None = None  # DISTANCE(p, q): its points
    knn: KnnTerm | None = None  # a latent distance (vo_service.adql.latent)

    @property
    def is_const(self) -> bool:
        """Whether the value is a constant the translator knows (NULL included)."""
        return self.const is not NOT_CONST

    def number(self) -> float | None:
        """The constant numeric value, or None."""
        if self.is_const and isinstance(self.const, (int, float)) and not isinstance(
                self.const, bool):
            return self.const
        return None

    def with_(self, **changes: Unpack[ValueChanges]) -> Value:
        """A copy with ``changes``."""
        return replace(self, **changes)

    def as_column(self, **changes: Unpack[ColumnChanges]) -> Value:
        """The value as read back from a derived table's or set operation's column.

        Type and metadata stay; the symbolic forms do not, since the column is no
        longer the expression that an index or a cone rewrite could use.
        """
        return replace(self, geom=None, condition=None, distance=None, knn=None, **changes)


def quote_ident(name: str) -> str:
    """A PostgreSQL delimited identifier (always quoted: never a keyword, never code)."""
    if "\x00" in name:
        raise ValueError("NUL in identifier")
    return '"' + name.replace('"', '""') + '"'


def quote_string(text: str) -> str:
    """A PostgreSQL string literal, safe whatever standard_conforming_strings says."""
    if "\x00" in text:
        raise ValueError("NUL in string")
    body = text.replace("'", "''")
    if "\\" in body:
        return "E'" + body.replace("\\", "\\\\") + "'"
    return "'" + body + "'"


def float_sql(x: float) -> str:
    """A double precision constant computed by the translator."""
    if x != x or x in (float("inf"), float("-inf")):
        raise ValueError("not a finite number")
    return f"{x!r}::float8" if x >= 0 else f"({x!r})::float8"


def literal(value: Const) -> Value:
    """A Value for a Python constant."""
    if value is None:
        return Value("NULL", T.NULL, const=None)
    if isinstance(value, bool):
        return Value("TRUE" if value else "FALSE", T.BOOLEAN, const=value)
    if isinstance(value, int):
        return Value(str(value) if value >= 0 else f"({value})",
                     T.INTEGER if -2**31 <= value < 2**31 else T.BIGINT, const=value)
    if isinstance(value, float):
        return Value(float_sql(value), T.DOUBLE, const=value)
    return Value(quote_string(str(value)), T.TEXT, const=str(value))
