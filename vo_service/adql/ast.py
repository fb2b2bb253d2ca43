"""The ADQL syntax tree that the parser builds and the translator walks.

Nodes are plain dataclasses; every node a user can get wrong carries ``pos``
(line, column, 1-based) and, where useful, the source token so that semantic
errors point at the offending text as precisely as syntax errors do.

The tree has three kinds of node, each a union of dataclasses so that the
translator can dispatch on them with ``isinstance`` and the type checker can
tell it when a case is missing: :data:`Expr` (a value), :data:`Condition` (a
search condition, as WHERE, HAVING, ON and a searched CASE take) and
:data:`QueryExpr` (a query: a SELECT or a set operation). A FROM clause holds
:data:`FromItem` nodes, a SELECT list :data:`SelectEntry` nodes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeAlias

Pos: TypeAlias = tuple[int, int]
"""(line, column) of a node's first token, both 1-based."""

LiteralValue: TypeAlias = int | float | str | bool | None
"""The Python value of a literal: int, float, str, bool or None (NULL)."""


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
    """A constant as written: a number, string, boolean or NULL.

    ``text`` is the literal's source text, which error messages quote.
    """

    kind: str  # int | float | string | bool | null
    value: LiteralValue
    pos: Pos
    text: str = ""

    @property
    def integer(self) -> int | None:
        """The value of an integer literal (``kind == "int"``), else None."""
        if self.kind == "int" and isinstance(self.value, int):
            return self.value
        return None


@dataclass(slots=True)
class ColumnRef:
    """A column reference ``[[schema.]table.]column``, resolved by the translator."""

    parts: list[Ident]
    pos: Pos

    def __str__(self) -> str:
        return ".".join(str(p) for p in self.parts)


@dataclass(slots=True)
class FuncCall:
    """A function call: standard, IVOA UDF or latentvo UDF alike.

    The parser checks the argument forms of the standard functions; which
    other names exist is the translator's (or the UDF list's) business.
    """

    name: str  # as written
    args: list[Expr]
    pos: Pos
    star: bool = False  # COUNT(*)
    distinct: bool = False  # COUNT(DISTINCT x)

    @property
    def key(self) -> str:
        """The name in lower case, as the function registry knows it."""
        return self.name.lower()


@dataclass(slots=True)
class BinaryOp:
    """An arithmetic, string concatenation or bitwise operation on two values."""

    op: str  # + - * / || & | ^
    left: Expr
    right: Expr
    pos: Pos


@dataclass(slots=True)
class UnaryOp:
    """A sign or bitwise negation applied to a value."""

    op: str  # + - ~
    operand: Expr
    pos: Pos


@dataclass(slots=True)
class Cast:
    """``CAST(operand AS type_name[(length)])``; the parser checks the type name."""

    operand: Expr
    type_name: str  # upper case ADQL type name, e.g. "DOUBLE PRECISION"
    length: int | None
    pos: Pos


@dataclass(slots=True)
class Case:
    """A CASE expression, searched (``operand`` None) or simple.

    In a searched CASE each WHEN holds a :data:`Condition`; in a simple CASE a
    value (:data:`Expr`) that is compared with ``operand``.
    """

    operand: Expr | None  # simple CASE x WHEN ... ; None for searched CASE
    whens: list[tuple[Expr | Condition, Expr]]
    else_: Expr | None
    pos: Pos


@dataclass(slots=True)
class ScalarSubquery:
    """A subquery used as a value (it must return one column)."""

    query: QueryExpr
    pos: Pos


# ------------------------------------------------------------------ conditions


@dataclass(slots=True)
class Comparison:
    """``left op right`` for one of the six comparison operators."""

    op: str  # = != < > <= >=  (<> normalised to !=)
    left: Expr
    right: Expr
    pos: Pos


@dataclass(slots=True)
class Between:
    """``operand [NOT] BETWEEN low AND high``."""

    operand: Expr
    low: Expr
    high: Expr
    negated: bool
    pos: Pos


@dataclass(slots=True)
class InList:
    """``operand [NOT] IN (item, ...)``."""

    operand: Expr
    items: list[Expr]
    negated: bool
    pos: Pos


@dataclass(slots=True)
class InSubquery:
    """``operand [NOT] IN (subquery)``."""

    operand: Expr
    query: QueryExpr
    negated: bool
    pos: Pos


@dataclass(slots=True)
class Like:
    """``operand [NOT] LIKE pattern`` or ILIKE (``case_insensitive``)."""

    operand: Expr
    pattern: Expr
    negated: bool
    case_insensitive: bool
    pos: Pos


@dataclass(slots=True)
class IsNull:
    """``operand IS [NOT] NULL``."""

    operand: Expr
    negated: bool
    pos: Pos


@dataclass(slots=True)
class Exists:
    """``EXISTS (subquery)``."""

    query: QueryExpr
    pos: Pos


@dataclass(slots=True)
class BoolOp:
    """Conditions joined by AND or OR; nested same-operator chains are flattened."""

    op: str  # AND | OR
    items: list[Condition]
    pos: Pos


@dataclass(slots=True)
class Not:
    """``NOT operand``."""

    operand: Condition
    pos: Pos


@dataclass(slots=True)
class BareCondition:
    """A value used as a condition: a boolean literal or a boolean UDF."""

    expr: Expr
    pos: Pos


# ------------------------------------------------------------------ queries


@dataclass(slots=True)
class SelectItem:
    """One value of a SELECT list, with its ``AS`` alias if given."""

    expr: Expr
    alias: Ident | None
    pos: Pos


@dataclass(slots=True)
class Star:
    """``*`` or ``qualifier.*`` in a SELECT list."""

    qualifier: list[Ident] | None  # None for a bare *
    pos: Pos


@dataclass(slots=True)
class OrderItem:
    """One key of an ORDER BY: a value, a result column's name or its number."""

    expr: Expr
    descending: bool
    pos: Pos


@dataclass(slots=True)
class TableRef:
    """A table named in a FROM clause, with its alias if given."""

    parts: list[Ident]  # [schema,] table
    alias: Ident | None
    pos: Pos


@dataclass(slots=True)
class DerivedTable:
    """A subquery in a FROM clause; ADQL requires its alias."""

    query: QueryExpr
    alias: Ident
    pos: Pos


@dataclass(slots=True)
class Join:
    """A join of two FROM items, with its ON condition or USING columns.

    A NATURAL join has neither (the translator finds the common columns); a
    CROSS join has neither either.
    """

    kind: str  # INNER | LEFT | RIGHT | FULL | CROSS
    natural: bool
    left: FromItem
    right: FromItem
    on: Condition | None
    using: list[Ident] | None
    pos: Pos


@dataclass(slots=True)
class Select:
    """A SELECT query with its clauses; ``top``/``offset`` are row counts."""

    items: list[SelectEntry]
    from_: list[FromItem]
    pos: Pos
    distinct: bool = False
    top: int | None = None
    where: Condition | None = None
    group_by: list[Expr] = field(default_factory=list)
    having: Condition | None = None
    order_by: list[OrderItem] = field(default_factory=list)
    offset: int | None = None


@dataclass(slots=True)
class SetOp:
    """UNION, EXCEPT or INTERSECT of two queries, with the ORDER BY/OFFSET of the whole."""

    op: str  # UNION | EXCEPT | INTERSECT
    all: bool
    left: QueryExpr
    right: QueryExpr
    pos: Pos
    order_by: list[OrderItem] = field(default_factory=list)
    offset: int | None = None


@dataclass(slots=True)
class CommonTable:
    """One ``name [(columns)] AS (query)`` of a WITH clause."""

    name: Ident
    columns: list[Ident] | None
    query: QueryExpr
    pos: Pos


Expr: TypeAlias = Literal | ColumnRef | FuncCall | BinaryOp | UnaryOp | Cast | Case | ScalarSubquery
"""A value expression."""

Condition: TypeAlias = (Comparison | Between | InList | InSubquery | Like | IsNull | Exists
                        | BoolOp | Not | BareCondition)
"""A search condition (WHERE, HAVING, ON, the WHEN of a searched CASE)."""

QueryExpr: TypeAlias = Select | SetOp
"""A query: what a subquery, a derived table or a common table holds."""

FromItem: TypeAlias = TableRef | DerivedTable | Join
"""An entry of a FROM clause."""

SelectEntry: TypeAlias = SelectItem | Star
"""An entry of a SELECT list."""

Node: TypeAlias = Expr | Condition | QueryExpr | FromItem | SelectEntry | OrderItem | Ident
"""Any node that carries a source position."""


@dataclass(slots=True)
class Statement:
    """A whole ADQL query: optional WITH list and the query expression."""

    ctes: list[CommonTable]
    query: QueryExpr


def token_of(node: Node | None) -> str | None:
    """The text an error message should point at for ``node``, where it has one.

    Parameters
    ----------
    node
        Any node (or None).

    Returns
    -------
    str or None
        A function's name, a column reference or a literal as written; None for
        nodes without one short token that would identify them.
    """
    if isinstance(node, FuncCall):
        return node.name
    if isinstance(node, ColumnRef):
        return str(node)
    if isinstance(node, Literal):
        return node.text
    return None
