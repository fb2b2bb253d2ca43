"""ADQL text -> syntax tree (:mod:`vo_service.adql.ast`).

The grammar (``grammar.lark``) is run by lark's LALR(1) parser with the tree
built directly by a transformer, which keeps parsing well under a millisecond
for typical queries. The rules a context-free grammar cannot say cheaply are
checked here and reported as syntax errors, as ADQL defines them:

* regular identifiers that are SQL/ADQL reserved words;
* the argument forms of the standard functions (arity, the optional
  coordinate-system literal of the geometry constructors, COUNT(*));
* what may stand alone as a condition (a boolean literal or a UDF call);
* CAST target types.
"""

from __future__ import annotations

from collections.abc import Collection
from functools import lru_cache
from pathlib import Path

from lark import Lark, Token, Transformer
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


def _pos(item) -> ast.Pos:
    if isinstance(item, Token):
        return (item.line, item.column)
    return item.pos


def _ident(token: Token) -> ast.Ident:
    if token.type == "DELIMITED_ID":
        return ast.Ident(token.value[1:-1].replace('""', '"'), True, (token.line, token.column))
    if token.value.upper() in RESERVED_WORDS:
        raise ADQLSyntaxError(
            f"{token.value!r} is a reserved word; write it as a delimited identifier "
            f"(\"{token.value.lower()}\") to use it as a name",
            token=token.value, **at((token.line, token.column)),
        )
    return ast.Ident(token.value, False, (token.line, token.column))


def _is_literal(node, *kinds: str) -> bool:
    return isinstance(node, ast.Literal) and node.kind in kinds


def _check_geometry_constructor(call: ast.FuncCall) -> None:
    """ADQL 2.1: optional leading coordinate-system literal, numeric coordinates."""
    args = call.args
    if args and _is_literal(args[0], "string", "null"):
        args = args[1:]
    if any(_is_literal(a, "string", "bool") for a in args):
        raise ADQLSyntaxError(
            f"{call.name}: the coordinate system may only be the first argument, "
            "and coordinates must be numeric",
            token=call.name, **at(call.pos),
        )
    numeric = [_is_literal(a, "int", "float") for a in args]
    name, n = call.key, len(args)
    if name == "point":
        ok = n == 2
    elif name == "circle":
        ok = n == 3 or (n == 2 and not numeric[0])
    elif name == "box":
        ok = n == 4 or (n == 3 and not numeric[0])
    else:  # polygon: >= 3 vertices as coordinate pairs or as points
        ok = (n >= 6 and n % 2 == 0) or (n >= 3 and not any(numeric))
    if not ok:
        raise ADQLSyntaxError(
            f"wrong arguments for {call.name.upper()}: expected "
            + {
                "point": "POINT([coordsys,] lon, lat)",
                "circle": "CIRCLE([coordsys,] lon, lat, radius) or CIRCLE([coordsys,] "
                "point, radius)",
                "box": "BOX([coordsys,] lon, lat, width, height)",
                "polygon": "POLYGON([coordsys,] lon1, lat1, lon2, lat2, lon3, lat3, ...) "
                "or POLYGON([coordsys,] point1, point2, point3, ...)",
            }[name],
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


class _Builder(Transformer):
    """lark callbacks that build :mod:`ast` nodes (run inline by the LALR parser)."""

    # ---------------------------------------------------------- statements

    def start(self, c):
        if len(c) == 2:
            return ast.Statement(c[0], c[1])
        return ast.Statement([], c[0])

    def with_clause(self, c):
        return c[1:]

    def cte(self, c):
        name = c[0]
        columns = c[1] if len(c) == 4 else None
        return ast.CommonTable(name, columns, c[-1], name.pos)

    def column_list(self, c):
        return c

    def query_expr(self, c):
        query = c[0]
        for extra in c[1:]:
            kind, value, tok = extra
            if kind == "order":
                if query.order_by:
                    raise ADQLSyntaxError("ORDER BY given twice", token="ORDER", **at(_pos(tok)))
                query.order_by = value
            else:
                if query.offset is not None:
                    raise ADQLSyntaxError("OFFSET given twice", token="OFFSET", **at(_pos(tok)))
                query.offset = value
        return query

    def _setop(self, op, c):
        left, right = c[0], c[-1]
        quantifier = c[2] if len(c) == 4 else None
        return ast.SetOp(op, quantifier == "ALL", left, right, _pos(c[1]))

    def union(self, c):
        return self._setop("UNION", c)

    def except_(self, c):
        return self._setop("EXCEPT", c)

    def intersect(self, c):
        return self._setop("INTERSECT", c)

    def paren_query(self, c):
        return c[0]

    def set_quantifier(self, c):
        return c[0].value.upper()

    def top(self, c):
        return ("top", int(c[1].value))

    def select_core(self, c):
        sel = ast.Select(items=[], from_=[], pos=_pos(c[0]))
        for item in c[1:]:
            if isinstance(item, str):
                sel.distinct = item == "DISTINCT"
            elif isinstance(item, tuple):
                kind, value = item
                if kind == "top":
                    sel.top = value
                elif kind == "items":
                    sel.items = value
                elif kind == "from":
                    sel.from_ = value
                elif kind == "where":
                    sel.where = value
                elif kind == "group":
                    sel.group_by = value
                elif kind == "having":
                    sel.having = value
        return sel

    def select_list(self, c):
        return ("items", c)

    def derived_column(self, c):
        return ast.SelectItem(c[0], None, _expr_pos(c[0]))

    def aliased_column(self, c):
        return ast.SelectItem(c[0], c[-1], _expr_pos(c[0]))

    def star(self, c):
        return ast.Star(None, (0, 0))

    def qualified_star(self, c):
        return ast.Star(c[0], c[0][0].pos)

    def from_clause(self, c):
        return ("from", c[1:])

    def _join(self, kind_tokens, left, right, spec, natural, pos):
        kind = "INNER"
        if kind_tokens:
            kind = kind_tokens
        on = using = None
        if spec is not None:
            if spec[0] == "on":
                on = spec[1]
            else:
                using = spec[1]
        return ast.Join(kind, natural, left, right, on, using, pos)

    def qualified_join(self, c):
        left = c[0]
        kind = c[1] if not isinstance(c[1], Token) else None
        return self._join(kind, left, c[-2], c[-1], False, _pos_from(left))

    def natural_join(self, c):
        left = c[0]
        kind = c[2] if not isinstance(c[2], Token) else None
        return self._join(kind, left, c[-1], None, True, _pos_from(left))

    def cross_join(self, c):
        return self._join("CROSS", c[0], c[-1], None, False, _pos_from(c[0]))

    def join_type(self, c):
        return c[0].value.upper()

    def join_on(self, c):
        return ("on", c[1])

    def join_using(self, c):
        return ("using", c[1:])

    def table_name(self, c):
        parts = c[0]
        if len(parts) > 3:
            raise ADQLSyntaxError("a table name has at most three parts",
                                  token=str(parts[-1]), **at(parts[0].pos))
        alias = c[-1] if len(c) > 1 and isinstance(c[-1], ast.Ident) else None
        return ast.TableRef(parts, alias, parts[0].pos)

    def derived_table(self, c):
        return ast.DerivedTable(c[0], c[-1], c[-1].pos)

    def paren_join(self, c):
        return c[0]

    def where(self, c):
        return ("where", c[1])

    def group_by(self, c):
        return ("group", c[2:])

    def having(self, c):
        return ("having", c[1])

    def order_by(self, c):
        return ("order", c[2:], c[0])

    def sort_spec(self, c):
        desc = len(c) > 1 and c[1].value.upper() == "DESC"
        return ast.OrderItem(c[0], desc, _expr_pos(c[0]))

    def offset(self, c):
        return ("offset", int(c[1].value), c[0])

    # ---------------------------------------------------------- conditions

    def or_(self, c):
        return _boolop("OR", c[0], c[2])

    def and_(self, c):
        return _boolop("AND", c[0], c[2])

    def not_(self, c):
        return ast.Not(c[1], _pos(c[0]))

    def comparison(self, c):
        op = c[1].value
        return ast.Comparison("!=" if op == "<>" else op, c[0], c[2], _expr_pos(c[0]))

    def between(self, c):
        negated = isinstance(c[1], Token) and c[1].type == "NOT"
        vals = [x for x in c if not isinstance(x, Token)]
        return ast.Between(vals[0], vals[1], vals[2], negated, _expr_pos(vals[0]))

    def in_subquery(self, c):
        negated = c[1].type == "NOT"
        return ast.InSubquery(c[0], c[-1], negated, _expr_pos(c[0]))

    def in_list(self, c):
        negated = c[1].type == "NOT"
        items = c[3:] if negated else c[2:]
        return ast.InList(c[0], items, negated, _expr_pos(c[0]))

    def like(self, c):
        return ast.Like(c[0], c[-1], c[1].type == "NOT", False, _expr_pos(c[0]))

    def ilike(self, c):
        return ast.Like(c[0], c[-1], c[1].type == "NOT", True, _expr_pos(c[0]))

    def is_null(self, c):
        return ast.IsNull(c[0], c[2].type == "NOT", _expr_pos(c[0]))

    def exists(self, c):
        return ast.Exists(c[1], _pos(c[0]))

    def bare_condition(self, c):
        expr = c[0]
        ok = _is_literal(expr, "bool") or (
            isinstance(expr, ast.FuncCall) and expr.key not in STANDARD_FUNCTIONS
        )
        if not ok:
            pos = _expr_pos(expr)
            raise ADQLSyntaxError(
                "a condition is needed here (e.g. a comparison such as "
                "1 = CONTAINS(...)); a plain value is not a condition",
                token=ast.token_of(expr), **at(pos),
            )
        return ast.BareCondition(expr, _expr_pos(expr))

    # ---------------------------------------------------------- values

    def concat(self, c):
        return ast.BinaryOp("||", c[0], c[1], _expr_pos(c[0]))

    def bit_or(self, c):
        return ast.BinaryOp("|", c[0], c[1], _expr_pos(c[0]))

    def bit_xor(self, c):
        return ast.BinaryOp("^", c[0], c[1], _expr_pos(c[0]))

    def bit_and(self, c):
        return ast.BinaryOp("&", c[0], c[1], _expr_pos(c[0]))

    def binary(self, c):
        return ast.BinaryOp(c[1].value, c[0], c[2], _expr_pos(c[0]))

    def unary(self, c):
        return ast.UnaryOp(c[0].value, c[1], _pos(c[0]))

    def bit_not(self, c):
        return ast.UnaryOp("~", c[0], _expr_pos(c[0]))

    def column_ref(self, c):
        parts = c[0]
        if len(parts) > 4:
            raise ADQLSyntaxError("a column reference has at most four parts",
                                  token=str(parts[-1]), **at(parts[0].pos))
        return ast.ColumnRef(parts, parts[0].pos)

    def chain(self, c):
        if len(c) == 1:
            return [c[0]]
        c[0].append(c[1])
        return c[0]

    def identifier(self, c):
        return _ident(c[0])

    def subquery(self, c):
        return c[0]

    def scalar_subquery(self, c):
        return ast.ScalarSubquery(c[0], _pos_from(c[0]))

    def call(self, c):
        name = c[0]
        return _check_call(ast.FuncCall(name.value, c[1:], (name.line, name.column)))

    def call_star(self, c):
        name = c[0]
        return _check_call(ast.FuncCall(name.value, [], (name.line, name.column), star=True))

    def call_quantified(self, c):
        name = c[0]
        return _check_call(ast.FuncCall(name.value, [c[2]], (name.line, name.column),
                                        distinct=c[1] == "DISTINCT"))

    def searched_case(self, c):
        whens = [x for x in c[1:] if isinstance(x, tuple)]
        else_ = next((x[1] for x in c if isinstance(x, list) and x and x[0] == "else"), None)
        return ast.Case(None, whens, else_, _pos(c[0]))

    def simple_case(self, c):
        whens = [x for x in c[2:] if isinstance(x, tuple)]
        else_ = next((x[1] for x in c if isinstance(x, list) and x and x[0] == "else"), None)
        return ast.Case(c[1], whens, else_, _pos(c[0]))

    def searched_when(self, c):
        return (c[1], c[3])

    def simple_when(self, c):
        return (c[1], c[3])

    def else_clause(self, c):
        return ["else", c[1]]

    def cast(self, c):
        type_name, length = c[-1]
        return ast.Cast(c[1], type_name, length, _pos(c[0]))

    def cast_type(self, c):
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

    def int_literal(self, c):
        t = c[0]
        return ast.Literal("int", int(t.value), (t.line, t.column), t.value)

    def float_literal(self, c):
        t = c[0]
        value = float(t.value)
        if value in (float("inf"), float("-inf")):
            raise ADQLSyntaxError("number out of range", token=t.value, **at(_pos(t)))
        return ast.Literal("float", value, (t.line, t.column), t.value)

    def hex_literal(self, c):
        t = c[0]
        return ast.Literal("int", int(t.value, 16), (t.line, t.column), t.value)

    def string_literal(self, c):
        t = c[0]
        return ast.Literal("string", t.value[1:-1].replace("''", "'"), (t.line, t.column),
                           t.value)

    def true_literal(self, c):
        return ast.Literal("bool", True, _pos(c[0]), "TRUE")

    def false_literal(self, c):
        return ast.Literal("bool", False, _pos(c[0]), "FALSE")

    def null_literal(self, c):
        return ast.Literal("null", None, _pos(c[0]), "NULL")


def _boolop(op: str, left, right):
    items = left.items + [right] if isinstance(left, ast.BoolOp) and left.op == op else [left,
                                                                                          right]
    return ast.BoolOp(op, items, _expr_pos(left))


def _expr_pos(node) -> ast.Pos:
    return getattr(node, "pos", (0, 0))


def _pos_from(node) -> ast.Pos:
    return getattr(node, "pos", (0, 0))


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
        char = text[exc.pos_in_stream] if exc.pos_in_stream < len(text) else ""
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

    With ``udfs`` (names of the user-defined functions on offer), calls of any
    other non-standard function are rejected here; otherwise that check is
    left to the translator, which knows the service's functions.
    """
    if not isinstance(query, str):
        raise TypeError("query must be a str")
    try:
        statement = _lark().parse(query)
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


def iter_calls(node):
    """Every function call in a tree (depth first)."""
    stack = [node]
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
