"""ADQL text -> syntax tree (:mod:`vo_service.adql.ast`).

The grammar (``grammar.lark``) is run by lark's LALR(1) parser with the tree
built directly by a transformer, which keeps parsing well under a millisecond
for typical queries. The rules a context-free grammar cannot say cheaply are
checked here and reported as syntax errors, as ADQL defines them:

* regular identifiers that are SQL/ADQL reserved words;
* the argument forms of the standard functions (arity, COUNT(*), and what
  literals alone show of the geometry constructors' forms: their columns'
  types are validation's business);
* what may stand alone as a condition (a boolean literal or a UDF call);
* CAST target types.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from functools import lru_cache
from pathlib import Path

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from schema.adql_reserved import RESERVED_WORDS
from vo_service.adql import ast
from vo_service.adql.errors import ADQLSemanticError, ADQLSyntaxError, at

GRAMMAR_PATH = Path(__file__).with_name("grammar.lark")

# Standard ADQL functions: name -> allowed argument counts (None: any >= 1).
_ARITY: dict[str, tuple[int, ...] | None] = {
    "abs": (1,), "ceiling": (1,), "degrees": (1,), "exp": (1,), "floor": (1,),
    "log": (1,), "log10": (1,), "mod": (2,), "pi": (0,), "power": (2,),
    "radians": (1,), "rand": (0, 1), "round": (1, 2), "sqrt": (1,), "truncate": (1, 2),
    "acos": (1,), "asin": (1,), "atan": (1,), "atan2": (2,), "cos": (1,), "cot": (1,),
    "sin": (1,), "tan": (1,),
    "count": (1,), "avg": (1,), "max": (1,), "min": (1,), "sum": (1,),
    "lower": (1,), "upper": (1,),
    "coalesce": None, "nullif": (2,),
    "in_unit": (2,),
    "area": (1,), "centroid": (1,), "contains": (2,), "intersects": (2,),
    "coord1": (1,), "coord2": (1,), "coordsys": (1,), "distance": (2, 4),
    "region": (1,),
    # geometry constructors: checked by _check_geometry_constructor
    "point": None, "circle": None, "box": None, "polygon": None,
}
STANDARD_FUNCTIONS = frozenset(_ARITY)
AGGREGATES = frozenset({"count", "avg", "max", "min", "sum"})
_GEOMETRY_CONSTRUCTORS = frozenset({"point", "circle", "box", "polygon"})

CAST_TYPES = frozenset({
    "SMALLINT", "INTEGER", "BIGINT", "REAL", "DOUBLE PRECISION", "CHAR", "VARCHAR",
    "TIMESTAMP", "POINT", "CIRCLE", "POLYGON",
})
_CAST_WITH_LENGTH = frozenset({"CHAR", "VARCHAR"})

_TOKEN_NAMES = {
    "LPAR": "'('", "RPAR": "')'", "COMMA": "','", "DOT": "'.'", "STAR": "'*'",
    "REGULAR_ID": "identifier", "DELIMITED_ID": "delimited identifier",
    "STRING": "string literal", "UNSIGNED_INT": "integer", "DECIMAL": "number",
    "HEX": "hexadecimal number", "COMP_OP": "comparison operator",
    "ADD_OP": "'+' or '-'", "MUL_OP": "'*' or '/'", "$END": "end of query",
}


def _pos(token: Token) -> ast.Pos:
    """Where a token starts; the lexer gives every token its line and column."""
    assert token.line is not None and token.column is not None
    return (token.line, token.column)


def _ident(token: Token) -> ast.Ident:
    if token.type == "DELIMITED_ID":
        return ast.Ident(token.value[1:-1].replace('""', '"'), True, _pos(token))
    if token.value.upper() in RESERVED_WORDS:
        raise ADQLSyntaxError(
            f"{token.value!r} is a reserved word; write it as a delimited identifier "
            f"(\"{token.value.lower()}\") to use it as a name",
            token=token.value, **at(_pos(token)),
        )
    return ast.Ident(token.value, False, _pos(token))


def _is_literal(node: ast.Expr, *kinds: str) -> bool:
    return isinstance(node, ast.Literal) and node.kind in kinds


def _argument_kind(node: ast.Expr) -> str | None:
    """What a constructor argument is by its form alone: a ``string``, ``number`` or
    ``bool`` literal, a ``point`` or other ``region`` constructor; None when only
    its type can tell (a column, an expression, NULL), which validation checks."""
    if isinstance(node, ast.UnaryOp) and node.op in "+-":
        return "number" if _is_literal(node.operand, "int", "float") else None
    if isinstance(node, ast.Literal):
        return {"string": "string", "int": "number", "float": "number", "bool": "bool"}.get(
            node.kind)
    if isinstance(node, ast.FuncCall) and node.key in _GEOMETRY_CONSTRUCTORS:
        return "point" if node.key == "point" else "region"
    return None


CONSTRUCTOR_USAGE = {
    "point": "POINT([coordsys,] lon, lat)",
    "circle": "CIRCLE([coordsys,] lon, lat, radius) or CIRCLE([coordsys,] point, radius)",
    "box": "BOX([coordsys,] lon, lat, width, height) or BOX([coordsys,] point, width, height)",
    "polygon": "POLYGON([coordsys,] lon1, lat1, lon2, lat2, lon3, lat3, ...) or "
               "POLYGON([coordsys,] point1, point2, point3, ...)",
}
"""The argument forms of the geometry constructors, as error messages quote them."""

# The same forms after the optional coordinate system, as slots: "n" a coordinate,
# "p" a point; "n2+" three or more coordinate pairs and "p+" three or more points.
_CONSTRUCTOR_SLOTS: dict[str, tuple[str, ...]] = {
    "point": ("nn",), "circle": ("nnn", "pn"), "box": ("nnnn", "pnn"), "polygon": ("n2+", "p+"),
}


def _form_fits(form: str, kinds: list[str | None]) -> bool:
    if form == "n2+":
        slots = "n" * len(kinds) if len(kinds) >= 6 and len(kinds) % 2 == 0 else ""
    elif form == "p+":
        slots = "p" * len(kinds) if len(kinds) >= 3 else ""
    else:
        slots = form
    want = {"n": "number", "p": "point"}
    return len(slots) == len(kinds) and all(k is None or k == want[slot]
                                            for slot, k in zip(slots, kinds, strict=True))


def _check_geometry_constructor(call: ast.FuncCall) -> None:
    """ADQL 2.1: an optional leading coordinate system (a string), then coordinates.

    Only what the literals and constructor calls show is checked here; which
    reading a call with columns has, and their types, is validation's business
    (:mod:`vo_service.adql.functions`).
    """
    kinds = [_argument_kind(a) for a in call.args]
    forms = _CONSTRUCTOR_SLOTS[call.key]
    if any(_form_fits(f, kinds) for f in forms):
        return
    if kinds and kinds[0] in ("string", None) and any(_form_fits(f, kinds[1:]) for f in forms):
        return
    if any(k in ("string", "bool") for k in kinds[1:]) or (kinds and kinds[0] == "bool"):
        raise ADQLSyntaxError(
            f"{call.name}: the coordinate system may only be the first argument, "
            "and coordinates must be numeric",
            token=call.name, **at(call.pos),
        )
    raise ADQLSyntaxError(
        f"wrong arguments for {call.name.upper()}: expected {CONSTRUCTOR_USAGE[call.key]}",
        token=call.name, **at(call.pos),
    )


def _check_call(call: ast.FuncCall) -> ast.FuncCall:
    name = call.key
    if name not in _ARITY:
        return call  # a user-defined function; the translator checks it
    if call.star and name != "count":
        raise ADQLSyntaxError(f"{call.name}(*) is only allowed for COUNT", token=call.name,
                              **at(call.pos))
    if call.distinct and name not in AGGREGATES:
        raise ADQLSyntaxError(f"DISTINCT/ALL is only allowed in aggregate functions, not "
                              f"{call.name}", token=call.name, **at(call.pos))
    if name in _GEOMETRY_CONSTRUCTORS:
        _check_geometry_constructor(call)
        return call
    arity = _ARITY[name]
    n = 1 if call.star else len(call.args)
    if (arity is None and n < 1) or (arity is not None and n not in arity):
        expected = "at least 1" if arity is None else " or ".join(str(a) for a in arity)
        raise ADQLSyntaxError(
            f"{call.name.upper()} takes {expected} argument(s), got {n}",
            token=call.name, **at(call.pos),
        )
    if name in {"contains", "intersects", "area", "centroid", "coordsys", "coord1", "coord2"}:
        if any(_is_literal(a, "int", "float", "bool") for a in call.args):
            raise ADQLSyntaxError(f"{call.name.upper()} needs geometry arguments",
                                  token=call.name, **at(call.pos))
    if name == "distance" and n == 2 and any(_is_literal(a, "int", "float") for a in call.args):
        raise ADQLSyntaxError("DISTANCE needs two points or four numbers", token=call.name,
                              **at(call.pos))
    if name == "in_unit" and not _is_literal(call.args[1], "string"):
        raise ADQLSyntaxError("IN_UNIT needs a unit string literal as its second argument",
                              token=call.name, **at(call.pos))
    if name in {"round", "truncate"} and n == 2:
        digits = call.args[1]
        if isinstance(digits, ast.UnaryOp) and digits.op in "+-":
            digits = digits.operand
        if not _is_literal(digits, "int"):
            raise ADQLSyntaxError(f"{call.name.upper()} takes an integer number of digits",
                                  token=call.name, **at(call.pos))
    if name == "rand" and n == 1 and not _is_literal(call.args[0], "int"):
        raise ADQLSyntaxError("RAND takes an unsigned integer seed", token=call.name,
                              **at(call.pos))
    return call


@v_args(inline=True)
class _Builder(Transformer[Token, ast.Statement]):
    """lark callbacks that build :mod:`ast` nodes (run inline by the LALR parser).

    Each callback gets the rule's children as arguments (``v_args(inline=True)``):
    the nodes its sub-rules built, the named tokens (keywords, operators) and
    None for an optional part that is absent (``[x]`` in the grammar).
    """

    # ---------------------------------------------------------- statements

    def start(self, ctes: list[ast.CommonTable] | None, query: ast.QueryExpr
              ) -> ast.Statement:
        return ast.Statement(ctes if ctes is not None else [], query)

    def with_clause(self, _with: Token, *ctes: ast.CommonTable) -> list[ast.CommonTable]:
        return list(ctes)

    def cte(self, name: ast.Ident, columns: list[ast.Ident] | None, _as: Token,
            query: ast.QueryExpr) -> ast.CommonTable:
        return ast.CommonTable(name, columns, query, name.pos)

    def column_list(self, *names: ast.Ident) -> list[ast.Ident]:
        return list(names)

    def query_expr(self, query: ast.QueryExpr,
                   order: tuple[list[ast.OrderItem], Token] | None,
                   offset: tuple[int, Token] | None) -> ast.QueryExpr:
        if order is not None:
            items, tok = order
            if query.order_by:
                raise ADQLSyntaxError("ORDER BY given twice", token="ORDER", **at(_pos(tok)))
            query.order_by = items
        if offset is not None:
            value, tok = offset
            if query.offset is not None:
                raise ADQLSyntaxError("OFFSET given twice", token="OFFSET", **at(_pos(tok)))
            query.offset = value
        return query

    def _setop(self, op: str, left: ast.QueryExpr, tok: Token, quantifier: str | None,
               right: ast.QueryExpr) -> ast.SetOp:
        return ast.SetOp(op, quantifier == "ALL", left, right, _pos(tok))

    def union(self, left: ast.QueryExpr, tok: Token, quantifier: str | None,
              right: ast.QueryExpr) -> ast.SetOp:
        return self._setop("UNION", left, tok, quantifier, right)

    def except_(self, left: ast.QueryExpr, tok: Token, quantifier: str | None,
                right: ast.QueryExpr) -> ast.SetOp:
        return self._setop("EXCEPT", left, tok, quantifier, right)

    def intersect(self, left: ast.QueryExpr, tok: Token, quantifier: str | None,
                  right: ast.QueryExpr) -> ast.SetOp:
        return self._setop("INTERSECT", left, tok, quantifier, right)

    def paren_query(self, query: ast.QueryExpr) -> ast.QueryExpr:
        return query

    def set_quantifier(self, word: Token) -> str:
        return word.upper()  # a Token is the str of its value

    def top(self, _top: Token, n: Token) -> int:
        return int(n.value)

    def select_core(self, select: Token, quantifier: str | None, top: int | None,
                    items: list[ast.SelectEntry], from_: list[ast.FromItem],
                    where: ast.Condition | None, group_by: list[ast.Expr] | None,
                    having: ast.Condition | None) -> ast.Select:
        return ast.Select(items=items, from_=from_, pos=_pos(select),
                          distinct=quantifier == "DISTINCT", top=top, where=where,
                          group_by=group_by if group_by is not None else [], having=having)

    def select_list(self, *items: ast.SelectEntry) -> list[ast.SelectEntry]:
        return list(items)

    def derived_column(self, expr: ast.Expr) -> ast.SelectItem:
        return ast.SelectItem(expr, None, expr.pos)

    def aliased_column(self, expr: ast.Expr, _as: Token | None, alias: ast.Ident
                       ) -> ast.SelectItem:
        return ast.SelectItem(expr, alias, expr.pos)

    def star(self) -> ast.Star:
        return ast.Star(None, (0, 0))

    def qualified_star(self, qualifier: list[ast.Ident]) -> ast.Star:
        return ast.Star(qualifier, qualifier[0].pos)

    def from_clause(self, _from: Token, *items: ast.FromItem) -> list[ast.FromItem]:
        return list(items)

    def _join(self, kind: str | None, left: ast.FromItem, right: ast.FromItem,
              spec: ast.Condition | list[ast.Ident] | None, natural: bool) -> ast.Join:
        on = spec if spec is not None and not isinstance(spec, list) else None
        using = spec if isinstance(spec, list) else None
        return ast.Join(kind or "INNER", natural, left, right, on, using, left.pos)

    def qualified_join(self, left: ast.FromItem, kind: str | None, _join: Token,
                       right: ast.FromItem, spec: ast.Condition | list[ast.Ident] | None
                       ) -> ast.Join:
        # ADQL 2.1 makes the join specification optional; without one the join
        # is NATURAL (on the common column names), as in the standard's grammar.
        return self._join(kind, left, right, spec, spec is None)

    def natural_join(self, left: ast.FromItem, _natural: Token, kind: str | None,
                     _join: Token, right: ast.FromItem) -> ast.Join:
        return self._join(kind, left, right, None, True)

    def cross_join(self, left: ast.FromItem, _cross: Token, _join: Token,
                   right: ast.FromItem) -> ast.Join:
        return self._join("CROSS", left, right, None, False)

    def join_type(self, kind: Token, _outer: Token | None = None) -> str:
        return kind.upper()

    def join_on(self, _on: Token, condition: ast.Condition) -> ast.Condition:
        return condition

    def join_using(self, _using: Token, *columns: ast.Ident) -> list[ast.Ident]:
        return list(columns)

    def table_name(self, parts: list[ast.Ident], *alias_part: Token | ast.Ident
                   ) -> ast.TableRef:
        if len(parts) > 3:
            raise ADQLSyntaxError("a table name has at most three parts",
                                  token=str(parts[-1]), **at(parts[0].pos))
        alias = alias_part[-1] if alias_part and isinstance(alias_part[-1], ast.Ident) else None
        return ast.TableRef(parts, alias, parts[0].pos)

    def derived_table(self, query: ast.QueryExpr, _as: Token | None, alias: ast.Ident
                      ) -> ast.DerivedTable:
        return ast.DerivedTable(query, alias, alias.pos)

    def paren_join(self, join: ast.Join) -> ast.Join:
        return join

    def where(self, _where: Token, condition: ast.Condition) -> ast.Condition:
        return condition

    def group_by(self, _group: Token, _by: Token, *exprs: ast.Expr) -> list[ast.Expr]:
        return list(exprs)

    def having(self, _having: Token, condition: ast.Condition) -> ast.Condition:
        return condition

    def order_by(self, order: Token, _by: Token, *items: ast.OrderItem
                 ) -> tuple[list[ast.OrderItem], Token]:
        return list(items), order

    def sort_spec(self, expr: ast.Expr, direction: Token | None) -> ast.OrderItem:
        desc = direction is not None and direction.value.upper() == "DESC"
        return ast.OrderItem(expr, desc, expr.pos)

    def offset(self, offset: Token, n: Token) -> tuple[int, Token]:
        return int(n.value), offset

    # ---------------------------------------------------------- conditions

    def or_(self, left: ast.Condition, _or: Token, right: ast.Condition) -> ast.BoolOp:
        return _boolop("OR", left, right)

    def and_(self, left: ast.Condition, _and: Token, right: ast.Condition) -> ast.BoolOp:
        return _boolop("AND", left, right)

    def not_(self, not_: Token, operand: ast.Condition) -> ast.Not:
        return ast.Not(operand, _pos(not_))

    def comparison(self, left: ast.Expr, op: Token, right: ast.Expr) -> ast.Comparison:
        return ast.Comparison("!=" if op.value == "<>" else op.value, left, right, left.pos)

    def between(self, operand: ast.Expr, not_: Token | None, _between: Token, low: ast.Expr,
                _and: Token, high: ast.Expr) -> ast.Between:
        return ast.Between(operand, low, high, not_ is not None, operand.pos)

    def in_subquery(self, operand: ast.Expr, not_: Token | None, _in: Token,
                    query: ast.QueryExpr) -> ast.InSubquery:
        return ast.InSubquery(operand, query, not_ is not None, operand.pos)

    def in_list(self, operand: ast.Expr, not_: Token | None, _in: Token, *items: ast.Expr
                ) -> ast.InList:
        return ast.InList(operand, list(items), not_ is not None, operand.pos)

    def like(self, operand: ast.Expr, not_: Token | None, _like: Token, pattern: ast.Expr
             ) -> ast.Like:
        return ast.Like(operand, pattern, not_ is not None, False, operand.pos)

    def ilike(self, operand: ast.Expr, not_: Token | None, _ilike: Token, pattern: ast.Expr
              ) -> ast.Like:
        return ast.Like(operand, pattern, not_ is not None, True, operand.pos)

    def is_null(self, operand: ast.Expr, _is: Token, not_: Token | None, _null: Token
                ) -> ast.IsNull:
        return ast.IsNull(operand, not_ is not None, operand.pos)

    def exists(self, exists: Token, query: ast.QueryExpr) -> ast.Exists:
        return ast.Exists(query, _pos(exists))

    def bare_condition(self, expr: ast.Expr) -> ast.BareCondition:
        ok = _is_literal(expr, "bool") or (
            isinstance(expr, ast.FuncCall) and expr.key not in STANDARD_FUNCTIONS
        )
        if not ok:
            raise ADQLSyntaxError(
                "a condition is needed here (e.g. a comparison such as "
                "1 = CONTAINS(...)); a plain value is not a condition",
                token=ast.token_of(expr), **at(expr.pos),
            )
        return ast.BareCondition(expr, expr.pos)

    # ---------------------------------------------------------- values

    def concat(self, left: ast.Expr, right: ast.Expr) -> ast.BinaryOp:
        return ast.BinaryOp("||", left, right, left.pos)

    def bit_or(self, left: ast.Expr, right: ast.Expr) -> ast.BinaryOp:
        return ast.BinaryOp("|", left, right, left.pos)

    def bit_xor(self, left: ast.Expr, right: ast.Expr) -> ast.BinaryOp:
        return ast.BinaryOp("^", left, right, left.pos)

    def bit_and(self, left: ast.Expr, right: ast.Expr) -> ast.BinaryOp:
        return ast.BinaryOp("&", left, right, left.pos)

    def binary(self, left: ast.Expr, op: Token, right: ast.Expr) -> ast.BinaryOp:
        return ast.BinaryOp(op.value, left, right, left.pos)

    def unary(self, op: Token, operand: ast.Expr) -> ast.UnaryOp:
        return ast.UnaryOp(op.value, operand, _pos(op))

    def bit_not(self, operand: ast.Expr) -> ast.UnaryOp:
        return ast.UnaryOp("~", operand, operand.pos)

    def column_ref(self, parts: list[ast.Ident]) -> ast.ColumnRef:
        if len(parts) > 4:
            raise ADQLSyntaxError("a column reference has at most four parts",
                                  token=str(parts[-1]), **at(parts[0].pos))
        return ast.ColumnRef(parts, parts[0].pos)

    def chain_start(self, first: ast.Ident) -> list[ast.Ident]:
        return [first]

    def chain_next(self, parts: list[ast.Ident], part: ast.Ident) -> list[ast.Ident]:
        parts.append(part)
        return parts

    def identifier(self, token: Token) -> ast.Ident:
        return _ident(token)

    def subquery(self, query: ast.QueryExpr) -> ast.QueryExpr:
        return query

    def scalar_subquery(self, query: ast.QueryExpr) -> ast.ScalarSubquery:
        return ast.ScalarSubquery(query, query.pos)

    def call(self, name: Token, *args: ast.Expr) -> ast.FuncCall:
        return _check_call(ast.FuncCall(name.value, list(args), _pos(name)))

    def call_star(self, name: Token) -> ast.FuncCall:
        return _check_call(ast.FuncCall(name.value, [], _pos(name), star=True))

    def call_quantified(self, name: Token, quantifier: str, arg: ast.Expr) -> ast.FuncCall:
        return _check_call(ast.FuncCall(name.value, [arg], _pos(name),
                                        distinct=quantifier == "DISTINCT"))

    def searched_case(self, case: Token,
                      *rest: tuple[ast.Condition, ast.Expr] | ast.Expr | Token | None
                      ) -> ast.Case:
        # rest: the WHENs, the ELSE value (None without one), the END token
        whens: list[tuple[ast.Expr | ast.Condition, ast.Expr]] = [
            x for x in rest if isinstance(x, tuple)]
        else_ = next((x for x in rest if isinstance(x, ast.Expr)), None)
        return ast.Case(None, whens, else_, _pos(case))

    def simple_case(self, case: Token, operand: ast.Expr,
                    *rest: tuple[ast.Expr, ast.Expr] | ast.Expr | Token | None) -> ast.Case:
        whens: list[tuple[ast.Expr | ast.Condition, ast.Expr]] = [
            x for x in rest if isinstance(x, tuple)]
        else_ = next((x for x in rest if isinstance(x, ast.Expr)), None)
        return ast.Case(operand, whens, else_, _pos(case))

    def searched_when(self, _when: Token, condition: ast.Condition, _then: Token,
                      result: ast.Expr) -> tuple[ast.Condition, ast.Expr]:
        return (condition, result)

    def simple_when(self, _when: Token, value: ast.Expr, _then: Token, result: ast.Expr
                    ) -> tuple[ast.Expr, ast.Expr]:
        return (value, result)

    def else_clause(self, _else: Token, result: ast.Expr) -> ast.Expr:
        return result

    def cast(self, cast: Token, operand: ast.Expr, _as: Token, target: tuple[str, int | None]
             ) -> ast.Cast:
        type_name, length = target
        return ast.Cast(operand, type_name, length, _pos(cast))

    def cast_type(self, *c: Token) -> tuple[str, int | None]:
        words = [t.value.upper() for t in c if t.type == "REGULAR_ID"]
        name = " ".join(words)
        length = int(c[-1].value) if c[-1].type == "UNSIGNED_INT" else None
        if name not in CAST_TYPES or (length is not None and name not in _CAST_WITH_LENGTH):
            raise ADQLSyntaxError(
                f"cannot CAST to {name}{'' if length is None else f'({length})'}; ADQL allows "
                + ", ".join(sorted(CAST_TYPES)),
                token=c[0].value, **at(_pos(c[0])),
            )
        return (name, length)

    def int_literal(self, t: Token) -> ast.Literal:
        return ast.Literal("int", int(t.value), _pos(t), t.value)

    def float_literal(self, t: Token) -> ast.Literal:
        value = float(t.value)
        if value in (float("inf"), float("-inf")):
            raise ADQLSyntaxError("number out of range", token=t.value, **at(_pos(t)))
        return ast.Literal("float", value, _pos(t), t.value)

    def hex_literal(self, t: Token) -> ast.Literal:
        return ast.Literal("int", int(t.value, 16), _pos(t), t.value)

    def string_literal(self, t: Token) -> ast.Literal:
        return ast.Literal("string", t.value[1:-1].replace("''", "'"), _pos(t), t.value)

    def true_literal(self, t: Token) -> ast.Literal:
        return ast.Literal("bool", True, _pos(t), "TRUE")

    def false_literal(self, t: Token) -> ast.Literal:
        return ast.Literal("bool", False, _pos(t), "FALSE")

    def null_literal(self, t: Token) -> ast.Literal:
        return ast.Literal("null", None, _pos(t), "NULL")


def _boolop(op: str, left: ast.Condition, right: ast.Condition) -> ast.BoolOp:
    items = left.items + [right] if isinstance(left, ast.BoolOp) and left.op == op else [left,
                                                                                          right]
    return ast.BoolOp(op, items, left.pos)


@lru_cache(maxsize=1)
def _lark() -> Lark:
    return Lark(
        GRAMMAR_PATH.read_text(),
        parser="lalr",
        lexer="contextual",
        transformer=_Builder(),
        cache=False,
    )


def _syntax_error(exc: UnexpectedInput, text: str) -> ADQLSyntaxError:
    line, column = exc.line, exc.column
    if isinstance(exc, UnexpectedToken):
        token = exc.token
        if token.type == "$END":
            return ADQLSyntaxError("the query ends too early", token="end of query",
                                   line=line if line > 0 else None,
                                   column=column if column > 0 else None)
        expected = sorted({_TOKEN_NAMES.get(e, e) for e in exc.expected})[:12]
        return ADQLSyntaxError(
            f"unexpected {token.value!r}; expected one of: {', '.join(expected)}",
            token=token.value, line=line, column=column,
        )
    if isinstance(exc, UnexpectedCharacters):
        at_char = exc.pos_in_stream
        char = text[at_char] if at_char is not None and at_char < len(text) else ""
        hint = ""
        if char == ";":
            hint = " (an ADQL query is a single statement without ';')"
        elif char == '"':
            hint = " (unterminated delimited identifier?)"
        elif char == "'":
            hint = " (unterminated string?)"
        return ADQLSyntaxError(f"unexpected character {char!r}{hint}", token=char, line=line,
                               column=column)
    if isinstance(exc, UnexpectedEOF):
        return ADQLSyntaxError("the query ends too early", token="end of query")
    return ADQLSyntaxError(str(exc), line=line, column=column)


def parse(query: str, *, udfs: Collection[str] | None = None) -> ast.Statement:
    """Parse ADQL 2.1 text into a :class:`ast.Statement`.

    Parameters
    ----------
    query
        The ADQL text: one query, without a trailing ``;``.
    udfs
        Names of the user-defined functions on offer. With them, calls of any
        other non-standard function are rejected here; without, that check is
        left to the translator, which knows the service's functions.

    Returns
    -------
    ast.Statement
        The syntax tree.

    Raises
    ------
    ADQLSyntaxError
        When the text is not ADQL 2.1, with the line, column and token where
        parsing stopped.
    ADQLSemanticError
        For a call of an unknown function (only with ``udfs``).
    """
    if not isinstance(query, str):
        raise TypeError("query must be a str")
    try:
        # lark types parse() as returning a Tree; with a transformer run inline by
        # the LALR parser it returns what the transformer's start callback built.
        statement: ast.Statement = _lark().parse(query)  # type: ignore[assignment]
    except UnexpectedInput as exc:
        raise _syntax_error(exc, query) from None
    except ADQLSyntaxError:
        raise
    except RecursionError:
        raise ADQLSyntaxError("query nested too deeply") from None
    if udfs is not None:
        known = {u.lower() for u in udfs}
        for call in iter_calls(statement):
            if call.key not in STANDARD_FUNCTIONS and call.key not in known:
                raise ADQLSemanticError(f"unknown function {call.name!r}", token=call.name,
                                        **at(call.pos))
    return statement


def iter_calls(node: ast.Statement | ast.Node) -> Iterator[ast.FuncCall]:
    """Every function call in a tree (depth first).

    The walk reads the nodes' slots, so it needs no update when a node type
    gains a field.
    """
    stack: list[object] = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, ast.FuncCall):
            yield item
        if isinstance(item, (list, tuple)):
            stack.extend(item)
        elif hasattr(item, "__slots__"):
            for slot in item.__slots__:
                value = getattr(item, slot)
                if isinstance(value, (list, tuple)) or hasattr(value, "__slots__"):
                    stack.append(value)
