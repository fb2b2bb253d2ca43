"""The ADQL syntax tree that the parser builds and the translator walks.

Nodes are plain dataclasses; every node a user can get wrong carries ``pos``
(line, column, 1-based) and, where useful, the source token so that semantic
errors point at the offending text as precisely as syntax errors do.
"""

from __future__ import annotations

from dataclasses import dataclass, field

Pos = tuple[int, int]


@dataclass(slots=True)
class Ident:
    """A regular (case-insensitive) or delimited (exact) identifier."""

    name: str
    delimited: bool
    pos: Pos

    @property
    def key(self) -> str:
        """The name ADQL compares with: folded for regular identifiers."""
        return self.name if self.delimited else self.name.lower()

    def __str__(self) -> str:
        return '"' + self.name.replace('"', '""') + '"' if self.delimited else self.name


# ------------------------------------------------------------------ values


@dataclass(slots=True)
class Literal:
    kind: str  # int | float | string | bool | null
    value: object
    pos: Pos
    text: str = ""


@dataclass(slots=True)
class ColumnRef:
    parts: list[Ident]
    pos: Pos

    def __str__(self) -> str:
        return ".".join(str(p) for p in self.parts)


@dataclass(slots=True)
class FuncCall:
    name: str  # as written
    args: list
    pos: Pos
    star: bool = False  # COUNT(*)
    distinct: bool = False  # COUNT(DISTINCT x)

    @property
    def key(self) -> str:
        return self.name.lower()


@dataclass(slots=True)
class BinaryOp:
    op: str  # + - * / || & | ^
    left: object
    right: object
    pos: Pos


@dataclass(slots=True)
class UnaryOp:
    op: str  # + - ~
    operand: object
    pos: Pos


@dataclass(slots=True)
class Cast:
    operand: object
    type_name: str  # upper case ADQL type name, e.g. "DOUBLE PRECISION"
    length: int | None
    pos: Pos


@dataclass(slots=True)
class Case:
    operand: object | None  # simple CASE x WHEN ... ; None for searched CASE
    whens: list[tuple[object, object]]
    else_: object | None
    pos: Pos


@dataclass(slots=True)
class ScalarSubquery:
    query: object
    pos: Pos


# ------------------------------------------------------------------ conditions


@dataclass(slots=True)
class Comparison:
    op: str  # = != < > <= >=  (<> normalised to !=)
    left: object
    right: object
    pos: Pos


@dataclass(slots=True)
class Between:
    operand: object
    low: object
    high: object
    negated: bool
    pos: Pos


@dataclass(slots=True)
class InList:
    operand: object
    items: list
    negated: bool
    pos: Pos


@dataclass(slots=True)
class InSubquery:
    operand: object
    query: object
    negated: bool
    pos: Pos


@dataclass(slots=True)
class Like:
    operand: object
    pattern: object
    negated: bool
    case_insensitive: bool
    pos: Pos


@dataclass(slots=True)
class IsNull:
    operand: object
    negated: bool
    pos: Pos


@dataclass(slots=True)
class Exists:
    query: object
    pos: Pos


@dataclass(slots=True)
class BoolOp:
    op: str  # AND | OR
    items: list
    pos: Pos


@dataclass(slots=True)
class Not:
    operand: object
    pos: Pos


@dataclass(slots=True)
class BareCondition:
    """A value used as a condition: a boolean literal or a boolean UDF."""

    expr: object
    pos: Pos


# ------------------------------------------------------------------ queries


@dataclass(slots=True)
class SelectItem:
    expr: object
    alias: Ident | None
    pos: Pos


@dataclass(slots=True)
class Star:
    qualifier: list[Ident] | None  # None for a bare *
    pos: Pos


@dataclass(slots=True)
class OrderItem:
    expr: object
    descending: bool
    pos: Pos


@dataclass(slots=True)
class TableRef:
    parts: list[Ident]  # [schema,] table
    alias: Ident | None
    pos: Pos


@dataclass(slots=True)
class DerivedTable:
    query: object
    alias: Ident
    pos: Pos


@dataclass(slots=True)
class Join:
    kind: str  # INNER | LEFT | RIGHT | FULL | CROSS
    natural: bool
    left: object
    right: object
    on: object | None
    using: list[Ident] | None
    pos: Pos


@dataclass(slots=True)
class Select:
    items: list
    from_: list
    pos: Pos
    distinct: bool = False
    top: int | None = None
    where: object | None = None
    group_by: list = field(default_factory=list)
    having: object | None = None
    order_by: list = field(default_factory=list)
    offset: int | None = None


@dataclass(slots=True)
class SetOp:
    op: str  # UNION | EXCEPT | INTERSECT
    all: bool
    left: object
    right: object
    pos: Pos
    order_by: list = field(default_factory=list)
    offset: int | None = None


@dataclass(slots=True)
class CommonTable:
    name: Ident
    columns: list[Ident] | None
    query: object
    pos: Pos


@dataclass(slots=True)
class Statement:
    """A whole ADQL query: optional WITH list and the query expression."""

    ctes: list[CommonTable]
    query: Select | SetOp


def token_of(node) -> str | None:
    """The text an error message should point at for ``node``, where it has one."""
    if isinstance(node, FuncCall):
        return node.name
    if isinstance(node, ColumnRef):
        return str(node)
    if isinstance(node, Literal):
        return node.text
    return None
