"""Syntax tree -> PostgreSQL, resolving names against a :class:`Catalog`.

One pass over the tree does name resolution (ADQL case rules, scopes of
joins, derived tables, common table expressions and correlated subqueries),
type and metadata inference, and SQL generation. The SQL is assembled only
from the translator's own templates: identifiers come from the catalog (or
are user aliases, always double-quoted and escaped), literals are re-emitted
from their parsed values, functions come from :mod:`functions`. Nothing of
the query text is copied into the SQL, so nothing in it can add a statement,
a write, or a call outside the whitelist.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field
from typing import assert_never

from schema.vo import ColumnMeta
from vo_service.adql import ast, latent
from vo_service.adql import geometry as G
from vo_service.adql import types as T
from vo_service.adql.catalog import Catalog, CatalogColumn, CatalogTable, matches
from vo_service.adql.errors import ADQLSemanticError, at
from vo_service.adql.features import UDFS
from vo_service.adql.functions import FUNCTIONS, as_double
from vo_service.adql.values import (
    NOT_CONST,
    MaybeConst,
    Value,
    literal,
    quote_ident,
    quote_string,
)

_PG_CAST = {
    "SMALLINT": T.SMALLINT, "INTEGER": T.INTEGER, "BIGINT": T.BIGINT, "REAL": T.REAL,
    "DOUBLE PRECISION": T.DOUBLE, "CHAR": T.TEXT, "VARCHAR": T.TEXT, "TIMESTAMP": T.TIMESTAMP,
}
# What || takes: strings, and values with an obvious text form (numbers, ...);
# never geometries, vectors or byte arrays, whose text form is no ADQL value.
_CONCATENABLE = (T.TEXT, T.NULL, T.BOOLEAN, T.TIMESTAMP) + T.NUMERICS
# The declared user-defined functions by name: a call must match its declaration.
DECLARED_UDFS = {u.name.lower(): u for u in UDFS}
_TRUE_STRINGS = {"true", "t", "1", "yes", "y", "on"}
_FALSE_STRINGS = {"false", "f", "0", "no", "n", "off"}


@dataclass
class Translation:
    """The PostgreSQL form of an ADQL query.

    ``sql`` is one SELECT statement. When the translation was asked for at most
    ``maxrec`` rows it returns at most ``maxrec + 1``: more than ``maxrec`` means
    the result overflowed (TAP's QUERY_STATUS=OVERFLOW). ``columns`` describe the
    result (name, ADQL type, VO metadata). ``session_settings`` are parameters to
    ``SET LOCAL`` in the query's transaction (e.g. pgvector's HNSW search width
    for top-k similarity queries).
    """

    sql: str
    columns: list[CatalogColumn]
    session_settings: dict[str, str] = field(default_factory=dict)

    def setup_sql(self, timeout_ms: int | None = None) -> list[str]:
        """Statements to run first in the query's transaction.

        They make the transaction read-only, bound its run time and apply
        :attr:`session_settings`; all are ``SET LOCAL``, so they end with it.
        """
        out = ["SET LOCAL transaction_read_only = on"]
        if timeout_ms is not None:
            out.append(f"SET LOCAL statement_timeout = {int(timeout_ms)}")
        for key, value in self.session_settings.items():
            out.append(f"SET LOCAL {key} = {quote_string(value)}")
        return out


# ------------------------------------------------------------------ scopes


@dataclass(eq=False)
class Rel:
    """A range variable of a FROM clause: a table, derived table or CTE."""

    alias: ast.Ident | None
    table: CatalogTable | None  # for base tables
    name: str  # table or CTE name (for qualifier matching without alias)
    schema: str | None
    sql_alias: str
    columns: list[Binding] = field(default_factory=list)
    model_pin: str | None = None  # model_id fixed by the WHERE clause

    def label(self) -> str:
        """The name the query knows it by: its alias, else the table's name."""
        return self.alias.name if self.alias else self.name

    def matches(self, qualifier: list[ast.Ident]) -> bool:
        """Whether ``qualifier`` (``[schema.]table`` or alias) of a column names this."""
        if self.alias is not None:
            return len(qualifier) == 1 and qualifier[0].key == self.alias.key
        if not matches(qualifier[-1], self.name):
            return False
        if len(qualifier) == 1:
            return True
        return len(qualifier) == 2 and self.schema is not None and matches(qualifier[0],
                                                                           self.schema)


@dataclass(eq=False)
class Binding:
    """A column visible in a scope, with the SQL that reads it."""

    name: str
    sql: str
    value: Value
    rel: Rel | None
    column: CatalogColumn | None = None

    def label(self) -> str:
        """``table.column`` for messages."""
        return f"{self.rel.label()}.{self.name}" if self.rel else self.name


@dataclass(eq=False)
class Scope:
    """The names a (sub)query sees: its FROM clause's, then its enclosing queries'."""

    parent: Scope | None
    ctes: dict[str, _Cte] = field(default_factory=dict)  # by folded name
    rels: list[Rel] = field(default_factory=list)
    visible: list[Binding] = field(default_factory=list)

    def find_cte(self, ident: ast.Ident) -> _Cte | None:
        """The common table ``ident`` names here or in an enclosing scope, if any."""
        scope: Scope | None = self
        while scope is not None:
            for key, cte in scope.ctes.items():
                if ident.key == key or matches(ident, cte.name):
                    return cte
            scope = scope.parent
        return None


@dataclass
class _Cte:
    name: str
    sql_name: str
    columns: list[tuple[str, str, Value]]  # (ADQL name, SQL column name, value)


@dataclass
class _FromItem:
    sql: str
    rels: list[Rel]
    visible: list[Binding]


_Column = tuple[str, str, Value]  # a query's result column: (ADQL name, SQL alias, value)


@dataclass
class _Query:
    sql: str
    columns: list[_Column]


# ------------------------------------------------------------------ translator


class Translator:
    """Translates one parsed statement; keeps what the translation accumulates.

    A translator serves one query: it numbers the SQL aliases it makes and
    collects :attr:`session_settings`. Function translations see it as a
    :class:`~vo_service.adql.functions.TranslatorView`.

    Parameters
    ----------
    catalog
        The tables (and latent-index plans) names resolve against.
    maxrec
        With a value, the outermost query returns at most ``maxrec + 1`` rows.
    """

    def __init__(self, catalog: Catalog, maxrec: int | None = None) -> None:
        self.catalog = catalog
        self.maxrec = maxrec
        self.session_settings: dict[str, str] = {}
        self._aliases = 0

    def _new_alias(self, prefix: str = "t") -> str:
        self._aliases += 1
        return quote_ident(f"{prefix}{self._aliases}")

    # ---------------------------------------------------------- statement

    def statement(self, stmt: ast.Statement) -> Translation:
        """The PostgreSQL form of a whole statement.

        Raises
        ------
        ADQLSemanticError
            For names that do not resolve, type errors and unsupported constructs.
        """
        root = Scope(None)
        with_sql = []
        for cte in stmt.ctes:
            if cte.name.key in root.ctes:
                raise ADQLSemanticError(f"WITH name {cte.name} given twice", token=str(cte.name),
                                        **at(cte.pos))
            q = self.query(cte.query, Scope(root, ctes=root.ctes))
            names = [c[0] for c in q.columns]
            if cte.columns is not None:
                if len(cte.columns) != len(q.columns):
                    raise ADQLSemanticError(
                        f"WITH {cte.name}: {len(cte.columns)} column names for "
                        f"{len(q.columns)} columns", token=str(cte.name), **at(cte.pos))
                names = [c.name for c in cte.columns]
            sql_names = _unique_sql_names(names)
            sql_name = self._new_alias("w")
            with_sql.append(f"{sql_name}({', '.join(map(quote_ident, sql_names))}) AS "
                            f"({q.sql})")
            root.ctes[cte.name.key] = _Cte(
                cte.name.name, sql_name,
                [(n, s, c[2]) for n, s, c in zip(names, sql_names, q.columns, strict=True)])
        top = self.query(stmt.query, root, outermost=True)
        sql = top.sql
        if with_sql:
            sql = "WITH " + ", ".join(with_sql) + " " + sql
        return Translation(sql, [_output_column(n, v) for n, _, v in top.columns],
                           self.session_settings)

    def _limit(self, top: int | None, outermost: bool) -> int | None:
        if not outermost or self.maxrec is None:
            return top
        cap = self.maxrec + 1 if self.maxrec > 0 else 0
        return cap if top is None else min(top, cap)

    def query(self, node: ast.QueryExpr, scope: Scope, outermost: bool = False) -> _Query:
        """A SELECT or set operation in ``scope``; ``outermost`` applies MAXREC."""
        if isinstance(node, ast.Select):
            return self.select(node, scope, outermost)
        return self.set_operation(node, scope, outermost)

    # ---------------------------------------------------------- set operations

    def set_operation(self, node: ast.SetOp, scope: Scope, outermost: bool) -> _Query:
        """UNION/EXCEPT/INTERSECT; its ORDER BY may name result columns or their numbers."""
        left = self.query(node.left, scope)
        right = self.query(node.right, scope)
        if len(left.columns) != len(right.columns):
            raise ADQLSemanticError(
                f"{node.op}: the queries have {len(left.columns)} and {len(right.columns)} "
                "columns", token=node.op, **at(node.pos))
        columns: list[_Column] = []
        for (name, alias, lv), (_, _, rv) in zip(left.columns, right.columns, strict=True):
            type_ = T.common_type([lv.type, rv.type])
            columns.append((name, alias, lv.as_column(type=type_, source=None)))
        sql = f"({left.sql}) {node.op}{' ALL' if node.all else ''} ({right.sql})"
        order = []
        for item in node.order_by:
            order.append(self._output_order_key(item, columns) + (" DESC" if item.descending
                                                                  else " ASC"))
        if order:
            sql += " ORDER BY " + ", ".join(order)
        limit = self._limit(None, outermost)
        if limit is not None:
            sql += f" LIMIT {limit}"
        if node.offset is not None:
            sql += f" OFFSET {node.offset}"
        return _Query(sql, columns)

    def _output_order_key(self, item: ast.OrderItem, columns: list[_Column]) -> str:
        expr = item.expr
        if isinstance(expr, ast.Literal) and (n := expr.integer) is not None:
            if not 1 <= n <= len(columns):
                raise ADQLSemanticError(f"ORDER BY {n}: there are {len(columns)} "
                                        "columns", token=expr.text, **at(expr.pos))
            return str(n)
        if isinstance(expr, ast.ColumnRef) and len(expr.parts) == 1:
            found = [alias for name, alias, _ in columns if matches(expr.parts[0], name)]
            if len(found) == 1:
                return quote_ident(found[0])
        raise ADQLSemanticError(
            "ORDER BY of a UNION/EXCEPT/INTERSECT must name a result column or its number",
            token=ast.token_of(expr), **at(expr.pos))

    # ---------------------------------------------------------- SELECT

    def select(self, sel: ast.Select, outer: Scope, outermost: bool = False) -> _Query:
        """A SELECT whose enclosing query's names are ``outer``."""
        scope = Scope(outer)
        from_sql = []
        for item in sel.from_:
            fi = self.from_item(item, scope)
            from_sql.append(fi.sql)
            scope.rels.extend(fi.rels)
            scope.visible.extend(fi.visible)
        if sel.where is not None:
            self._pin_models(sel.where, scope)

        columns: list[tuple[str, str, Value]] = []
        for entry in sel.items:
            if isinstance(entry, ast.Star):
                for b in self._star(entry, scope):
                    columns.append((b.name, "", b.value.with_(sql=b.sql)))
            else:
                value = self.expr(entry.expr, scope)
                if value.type == T.BOOLEAN and value.votable is None and value.source is None:
                    value = value.with_(votable=("boolean", None, None))
                name = entry.alias.name if entry.alias else _default_name(entry.expr, value,
                                                                          len(columns) + 1)
                columns.append((name, "", value))
        unique = _unique_sql_names([c[0] for c in columns], fold=outermost)
        if outermost:
            columns = [(u, u, v) for u, (_, _, v) in zip(unique, columns, strict=True)]
        else:
            columns = [(n, u, v) for u, (n, _, v) in zip(unique, columns, strict=True)]
        select_sql = ", ".join(f"{v.sql} AS {quote_ident(alias)}" for _, alias, v in columns)

        parts = ["SELECT "]
        if sel.distinct:
            parts.append("DISTINCT ")
        parts.append(select_sql)
        parts.append(" FROM " + ", ".join(from_sql))
        if sel.where is not None:
            parts.append(" WHERE " + self.condition(sel.where, scope))
        if sel.group_by:
            keys = [self._group_key(e, scope, columns) for e in sel.group_by]
            parts.append(" GROUP BY " + ", ".join(keys))
        if sel.having is not None:
            parts.append(" HAVING " + self.condition(sel.having, scope))
        limit = self._limit(sel.top, outermost)
        head = "".join(parts)
        index_limit = limit if self._index_may_order(sel, scope, limit) else None
        order_keys = [self._order_key(item, scope, columns, index_limit)
                      for item in sel.order_by]
        tail = ""
        if limit is not None:
            tail += f" LIMIT {limit}"
        if sel.offset is not None:
            tail += f" OFFSET {sel.offset}"
        order = " ORDER BY " + ", ".join(key for key, _ in order_keys) if order_keys else ""
        sql = head + order + tail
        if index_limit is not None and any(exact for _, exact in order_keys):
            exact_order = " ORDER BY " + ", ".join(exact or key for key, exact in order_keys)
            sql = latent.complete_top_k(sql, head + exact_order + tail, index_limit, (
                self._new_alias("ann"), self._new_alias("exact"), self._new_alias("top")))
        return _Query(sql, columns)

    def _index_may_order(self, sel: ast.Select, scope: Scope, limit: int | None) -> bool:
        """Whether a latent index may serve this SELECT's ORDER BY (see ``adql.latent``).

        Only ``TOP k`` (k up to the index's candidate limit) of one table whose WHERE
        pins its model and says nothing else, ordered by the distance alone: any
        other condition, join, OFFSET, grouping or DISTINCT could leave the index's
        rows short of what the query means, so those orderings are exact.
        """
        rels = scope.rels
        return (sel.top is not None and limit is not None
                and 1 <= limit <= latent.INDEX_MAX_TOP and len(sel.order_by) == 1
                and sel.offset is None and not sel.distinct and not sel.group_by
                and sel.having is None and len(rels) == 1 and rels[0].table is not None
                and rels[0].model_pin is not None and sel.where is not None
                and latent.only_model_pins(sel.where,
                                           lambda ref: self._try_resolve(ref, scope)))

    def _star(self, star: ast.Star, scope: Scope) -> list[Binding]:
        if star.qualifier is None:
            return list(scope.visible)
        rels = [r for r in scope.rels if r.matches(star.qualifier)]
        if not rels:
            written = ".".join(map(str, star.qualifier))
            raise ADQLSemanticError(f"{written}.* names no table of the FROM clause"
                                    + _suggest(written, [r.label() for r in scope.rels]),
                                    token=written, **at(star.pos))
        if len(rels) > 1:
            raise self._ambiguous_rel(star.qualifier, rels, star.pos)
        return list(rels[0].columns)

    def _ambiguous_rel(self, qualifier: list[ast.Ident], rels: list[Rel], pos: ast.Pos
                       ) -> ADQLSemanticError:
        written = ".".join(map(str, qualifier))
        return ADQLSemanticError(
            f"{written} is ambiguous: it could be "
            + ", ".join(f"{r.schema}.{r.name}" if r.schema else r.label() for r in rels)
            + "; use an alias (AS ...)", token=written, **at(pos))

    def _group_key(self, expr: ast.Expr, scope: Scope, columns: list[_Column]) -> str:
        if isinstance(expr, ast.ColumnRef) and len(expr.parts) == 1:
            try:
                return self.expr(expr, scope).sql
            except ADQLSemanticError:
                found = [v for name, _, v in columns if matches(expr.parts[0], name)]
                if len(found) == 1:
                    return found[0].sql
                raise
        if isinstance(expr, ast.Literal) and (n := expr.integer) is not None:
            if not 1 <= n <= len(columns):
                raise ADQLSemanticError(f"GROUP BY {n}: there are {len(columns)} "
                                        "columns", token=expr.text, **at(expr.pos))
            return str(n)
        return self.expr(expr, scope).sql

    def _order_key(self, item: ast.OrderItem, scope: Scope, columns: list[_Column],
                   index_limit: int | None) -> tuple[str, str | None]:
        """The ORDER BY key with its direction, and the exact key in its place when a
        latent index serves the first (``index_limit``: see :func:`latent.order_key`)."""
        expr = item.expr
        value: Value | None = None
        key = ""
        if isinstance(expr, ast.Literal) and (n := expr.integer) is not None:
            if not 1 <= n <= len(columns):
                raise ADQLSemanticError(f"ORDER BY {n}: there are {len(columns)} "
                                        "columns", token=expr.text, **at(expr.pos))
            value = columns[n - 1][2]
            key = str(n)
        elif isinstance(expr, ast.ColumnRef) and len(expr.parts) == 1:
            found = [(alias, v) for name, alias, v in columns if matches(expr.parts[0], name)]
            if len(found) > 1:
                found = [f for f in found if f[1].sql != found[0][1].sql] or found[:1]
                if len(found) > 1:
                    raise ADQLSemanticError(
                        f"ORDER BY {expr}: more than one result column has this name",
                        token=str(expr), **at(expr.pos))
            if found:
                key, value = quote_ident(found[0][0]), found[0][1]
        if value is None:
            value = self.expr(expr, scope)
            key = value.sql
        if value.knn is None:
            return key + (" DESC" if item.descending else " ASC"), None
        key, descending, indexed = latent.order_key(value.knn, item.descending, index_limit,
                                                    self.session_settings)
        direction = " DESC" if descending else " ASC"
        return key + direction, value.knn.exact_sql + direction if indexed else None

    def _pin_models(self, where: ast.Condition, scope: Scope) -> None:
        """Note ``model_id = 'M'`` conditions: they select a model's latent index."""
        for rel, model_id in latent.model_pins(where, lambda ref: self._try_resolve(ref, scope)):
            rel.model_pin = model_id

    def _try_resolve(self, ref: ast.ColumnRef, scope: Scope) -> Binding | None:
        try:
            return self._resolve(ref, scope)
        except ADQLSemanticError:
            return None

    # ---------------------------------------------------------- FROM

    def from_item(self, item: ast.FromItem, scope: Scope) -> _FromItem:
        """A FROM clause entry: its SQL and the relations and columns it brings."""
        if isinstance(item, ast.TableRef):
            return self._table(item, scope)
        if isinstance(item, ast.DerivedTable):
            q = self.query(item.query, Scope(scope.parent, ctes={}))
            sql_alias = self._new_alias()
            rel = Rel(item.alias, None, item.alias.name, None, sql_alias)
            rel.columns = [self._derived_binding(n, a, v, rel) for n, a, v in q.columns]
            return _FromItem(f"({q.sql}) AS {sql_alias}", [rel], list(rel.columns))
        return self._join(item, scope)

    def _derived_binding(self, name: str, sql_col: str, value: Value, rel: Rel) -> Binding:
        sql = f"{rel.sql_alias}.{quote_ident(sql_col)}"
        v = value.as_column(sql=sql, const=NOT_CONST, aggregate=False, source=None)
        b = Binding(name, sql, v, rel)
        b.value.source = b
        return b

    def _table(self, ref: ast.TableRef, scope: Scope) -> _FromItem:
        sql_alias = self._new_alias()
        if len(ref.parts) == 1:
            cte = scope.find_cte(ref.parts[0])
            if cte is not None:
                rel = Rel(ref.alias, None, cte.name, None, sql_alias)
                rel.columns = []
                for name, sql_col, value in cte.columns:
                    rel.columns.append(self._derived_binding(name, sql_col, value, rel))
                return _FromItem(f"{cte.sql_name} AS {sql_alias}", [rel], list(rel.columns))
        table = self.catalog.find_table(ref.parts)
        rel = Rel(ref.alias, table, table.name, table.schema, sql_alias)
        for col in table.columns:
            sql = f"{sql_alias}.{quote_ident(col.name)}"
            meta = col.meta
            value = Value(sql, col.type, unit=meta.unit, ucd=meta.ucd, utype=meta.utype,
                          description=meta.description,
                          votable=(meta.datatype, meta.arraysize, meta.xtype))
            b = Binding(col.name, sql, value, rel, col)
            value.source = b
            rel.columns.append(b)
        target = quote_ident(table.sql_name or table.name)
        if table.sql_schema:
            target = f"{quote_ident(table.sql_schema)}.{target}"
        return _FromItem(f"{target} AS {sql_alias}", [rel], list(rel.columns))

    def _join(self, join: ast.Join, scope: Scope) -> _FromItem:
        left = self.from_item(join.left, scope)
        right = self.from_item(join.right, scope)
        rels = left.rels + right.rels
        kind = {"INNER": "INNER JOIN", "LEFT": "LEFT OUTER JOIN", "RIGHT": "RIGHT OUTER JOIN",
                "FULL": "FULL OUTER JOIN", "CROSS": "CROSS JOIN"}[join.kind]
        if join.kind == "CROSS":
            return _FromItem(f"{left.sql} CROSS JOIN {right.sql}", rels,
                             left.visible + right.visible)
        if join.on is not None:
            on_scope = Scope(scope.parent, rels=rels, visible=left.visible + right.visible)
            self._pin_models(join.on, on_scope)
            cond = self.condition(join.on, on_scope)
            return _FromItem(f"({left.sql} {kind} {right.sql} ON {cond})", rels,
                             left.visible + right.visible)
        if join.natural:
            names = [b.name for b in left.visible
                     if any(r.name.lower() == b.name.lower() for r in right.visible)]
            using = [ast.Ident(n, False, join.pos) for n in dict.fromkeys(names)]
        else:
            using = join.using or []  # the parser gives a USING list or an ON condition
        merged: list[Binding] = []
        conds: list[str] = []
        used_left: set[int] = set()
        used_right: set[int] = set()
        for ident in using:
            lb = self._lookup(ident, left.visible, "left", join.pos, join.natural)
            rb = self._lookup(ident, right.visible, "right", join.pos, join.natural)
            self._comparable(lb.value, rb.value, ident.pos or join.pos)
            conds.append(f"{lb.sql} = {rb.sql}")
            used_left.add(id(lb))
            used_right.add(id(rb))
            sql = {"INNER": lb.sql, "LEFT": lb.sql, "RIGHT": rb.sql}.get(
                join.kind, f"COALESCE({lb.sql}, {rb.sql})")
            merged.append(Binding(lb.name, sql, lb.value.with_(sql=sql), lb.rel, lb.column))
        visible = (merged + [b for b in left.visible if id(b) not in used_left]
                   + [b for b in right.visible if id(b) not in used_right])
        if not conds:
            # SQL's NATURAL JOIN without common columns: every pair of rows
            # matches (an outer join still keeps the rows of a side left alone).
            conds.append("TRUE")
        return _FromItem(f"({left.sql} {kind} {right.sql} ON {' AND '.join(conds)})", rels,
                         visible)

    def _lookup(self, ident: ast.Ident, bindings: list[Binding], side: str, pos: ast.Pos,
                natural: bool = False) -> Binding:
        found = [b for b in bindings if matches(ident, b.name)]
        if len(found) != 1:
            problem = "has no column" if not found else "has more than one column"
            hint = (" (a NATURAL join, or a join without ON or USING, joins on every column "
                    "name both sides have; give ON or USING)") if natural else ""
            raise ADQLSemanticError(f"the {side} side of the join {problem} {ident}{hint}",
                                    token=str(ident), **at(ident.pos or pos))
        return found[0]

    # ---------------------------------------------------------- names

    def _resolve(self, ref: ast.ColumnRef, scope: Scope) -> Binding:
        col = ref.parts[-1]
        qualifier = ref.parts[:-1]
        s: Scope | None = scope
        while s is not None:
            if not qualifier:
                found = [b for b in s.visible if matches(col, b.name)]
            else:
                rels = [r for r in s.rels if r.matches(qualifier)]
                if len(rels) > 1:
                    raise self._ambiguous_rel(qualifier, rels, ref.pos)
                if rels:
                    found = [b for b in rels[0].columns if matches(col, b.name)]
                    if not found:
                        raise ADQLSemanticError(
                            f"{rels[0].label()} has no column {col}"
                            + _suggest(col.name, [b.name for b in rels[0].columns]),
                            token=str(ref), **at(ref.pos))
                else:
                    found = []
            if len(found) > 1:
                exact = [b for b in found if b.name == col.name]
                distinct = {b.sql for b in (exact or found)}
                if len(distinct) == 1:
                    return (exact or found)[0]
                raise ADQLSemanticError(
                    f"column name {ref} is ambiguous: it could be "
                    + ", ".join(sorted({b.label() for b in found})) + "; qualify it",
                    token=str(ref), **at(ref.pos))
            if found:
                return found[0]
            s = s.parent
        if qualifier:
            written = ".".join(map(str, qualifier))
            tables = [r.label() for r in _all_rels(scope)]
            raise ADQLSemanticError(f"{written} names no table of the FROM clause"
                                    + _suggest(written, tables), token=str(ref), **at(ref.pos))
        names = [b.name for b in _all_visible(scope)]
        raise ADQLSemanticError(f"unknown column {col}" + _suggest(col.name, names),
                                token=str(ref), **at(ref.pos))

    # ---------------------------------------------------------- conditions

    def condition(self, node: ast.Condition, scope: Scope) -> str:
        """The SQL of a search condition in ``scope``."""
        if isinstance(node, ast.BoolOp):
            return "(" + f" {node.op} ".join(self.condition(i, scope) for i in node.items) + ")"
        if isinstance(node, ast.Not):
            return f"(NOT {self.condition(node.operand, scope)})"
        if isinstance(node, ast.Comparison):
            return self._comparison(node, scope)
        if isinstance(node, ast.Between):
            v, lo, hi = (self.expr(x, scope) for x in (node.operand, node.low, node.high))
            for x in (lo, hi):
                self._comparable(v, x, node.pos)
            neg = "NOT " if node.negated else ""
            return f"({v.sql} {neg}BETWEEN {lo.sql} AND {hi.sql})"
        if isinstance(node, ast.InList):
            v = self.expr(node.operand, scope)
            items = [self.expr(i, scope) for i in node.items]
            for i in items:
                self._comparable(v, i, node.pos)
            neg = "NOT " if node.negated else ""
            return f"({v.sql} {neg}IN ({', '.join(self._operand(v, i) for i in items)}))"
        if isinstance(node, ast.InSubquery):
            v = self.expr(node.operand, scope)
            q = self._subquery(node.query, scope, node.pos)
            self._comparable(v, q.columns[0][2], node.pos)
            neg = "NOT " if node.negated else ""
            return f"({v.sql} {neg}IN ({q.sql}))"
        if isinstance(node, ast.Like):
            v, p = self.expr(node.operand, scope), self.expr(node.pattern, scope)
            for x in (v, p):
                if x.type not in (T.TEXT, T.NULL):
                    raise ADQLSemanticError(f"LIKE needs strings, got a {x.type} value",
                                            **at(node.pos))
            op = ("NOT " if node.negated else "") + ("ILIKE" if node.case_insensitive else "LIKE")
            return f"({v.sql} {op} {p.sql})"
        if isinstance(node, ast.IsNull):
            v = self.expr(node.operand, scope)
            return f"({v.sql} IS {'NOT ' if node.negated else ''}NULL)"
        if isinstance(node, ast.Exists):
            q = self.query(node.query, scope)
            return f"(EXISTS ({q.sql}))"
        if isinstance(node, ast.BareCondition):
            v = self.expr(node.expr, scope)
            if v.type == T.BOOLEAN:
                return v.sql
            if v.type in T.INTEGERS:
                return f"({v.sql} = 1)"
            token = ast.token_of(node.expr)
            raise ADQLSemanticError(f"{token} does not give a truth value; compare "
                                    "it with something", token=token,
                                    **at(node.pos))
        assert_never(node)

    def _comparison(self, node: ast.Comparison, scope: Scope) -> str:
        left, right = self.expr(node.left, scope), self.expr(node.right, scope)
        special = self._geometry_comparison(node.op, left, right)
        if special is not None:
            return special
        self._comparable(left, right, node.pos)
        if left.type in T.GEOMETRIES or left.type in (T.VECTOR, T.ARRAY):
            raise ADQLSemanticError(f"{left.type} values cannot be compared with {node.op}; "
                                    "use CONTAINS, INTERSECTS or DISTANCE", token=node.op,
                                    **at(node.pos))
        return f"({self._operand(right, left)} {node.op} {self._operand(left, right)})"

    def _geometry_comparison(self, op: str, left: Value, right: Value) -> str | None:
        """``1 = CONTAINS(...)`` and ``DISTANCE(...) < r``: index-friendly conditions."""
        for a, b, flipped in ((left, right, False), (right, left, True)):
            n = b.number()
            if a.condition is not None and op in ("=", "!=") and n in (0, 1):
                truth = (n == 1) == (op == "=")
                return a.condition if truth else f"(NOT {a.condition})"
            if a.distance is not None and n is not None:
                eff = _FLIP.get(op, op) if flipped else op
                if eff in ("<", "<="):
                    p, q = a.distance
                    if q.const() is None and p.const() is not None:
                        p, q = q, p
                    radius = literal(float(n))
                    return G.point_in_circle_sql(p, G.Circle(q, radius), strict=eff == "<",
                                                 settings=self.session_settings)
        return None

    def _comparable(self, a: Value, b: Value, pos: ast.Pos) -> None:
        if T.NULL in (a.type, b.type) or a.type == b.type:
            return
        if a.type in T.NUMERICS and b.type in T.NUMERICS:
            return
        kinds = {a.type, b.type}
        if T.TEXT in kinds and (a.is_const and a.type == T.TEXT or b.is_const and b.type ==
                                T.TEXT):
            return  # a string literal PostgreSQL reads as the other type (timestamp, number)
        if T.BOOLEAN in kinds and kinds & set(T.INTEGERS):
            return
        raise ADQLSemanticError(f"cannot compare a {a.type} value with a {b.type} value",
                                **at(pos))

    def _operand(self, other: Value, v: Value) -> str:
        """SQL of ``v`` when compared with ``other`` (booleans accept 0/1 and 'true')."""
        if other.type == T.BOOLEAN and v.is_const:
            c = v.const
            if isinstance(c, int) and not isinstance(c, bool) and c in (0, 1):
                return "TRUE" if c else "FALSE"
            if isinstance(c, str) and c.strip().lower() in _TRUE_STRINGS | _FALSE_STRINGS:
                return "TRUE" if c.strip().lower() in _TRUE_STRINGS else "FALSE"
        if other.type == T.BOOLEAN and v.type in T.INTEGERS:
            return f"({v.sql} <> 0)"
        return v.sql

    def _subquery(self, query: ast.QueryExpr, scope: Scope, pos: ast.Pos) -> _Query:
        q = self.query(query, scope)
        if len(q.columns) != 1:
            raise ADQLSemanticError(f"a subquery here must return one column, not "
                                    f"{len(q.columns)}", **at(pos))
        return q

    # ---------------------------------------------------------- values

    def expr(self, node: ast.Expr, scope: Scope) -> Value:
        """The SQL, type and metadata of a value expression in ``scope``."""
        if isinstance(node, ast.ColumnRef):
            return self._x_ColumnRef(node, scope)
        if isinstance(node, ast.Literal):
            return self._x_Literal(node, scope)
        if isinstance(node, ast.FuncCall):
            return self._x_FuncCall(node, scope)
        if isinstance(node, ast.BinaryOp):
            return self._x_BinaryOp(node, scope)
        if isinstance(node, ast.UnaryOp):
            return self._x_UnaryOp(node, scope)
        if isinstance(node, ast.Case):
            return self._x_Case(node, scope)
        if isinstance(node, ast.Cast):
            return self._x_Cast(node, scope)
        if isinstance(node, ast.ScalarSubquery):
            return self._x_ScalarSubquery(node, scope)
        assert_never(node)

    def _x_Literal(self, node: ast.Literal, scope: Scope) -> Value:
        if (n := node.integer) is not None and n >= 2**63:
            return Value(f"CAST({n} AS DOUBLE PRECISION)", T.DOUBLE, const=float(n))
        return literal(node.value)

    def _x_ColumnRef(self, node: ast.ColumnRef, scope: Scope) -> Value:
        return self._resolve(node, scope).value

    def _x_FuncCall(self, node: ast.FuncCall, scope: Scope) -> Value:
        fn = FUNCTIONS.get(node.key)
        if fn is None:
            raise ADQLSemanticError(
                f"unknown function {node.name}" + _suggest(node.key, list(FUNCTIONS)),
                token=node.name, **at(node.pos))
        udf = DECLARED_UDFS.get(node.key)
        if udf is not None:
            udf.check_call(node)
        args = [self.expr(a, scope) for a in node.args]
        if node.key in ("count", "min", "max", "avg", "sum", "ivo_string_agg"):
            if any(a.aggregate for a in args):
                raise ADQLSemanticError("aggregate functions cannot be nested",
                                        token=node.name, **at(node.pos))
        value = fn(self, node, args)
        if any(a.aggregate for a in args) and not value.aggregate:
            value = value.with_(aggregate=True)
        return value

    def _x_BinaryOp(self, node: ast.BinaryOp, scope: Scope) -> Value:
        a, b = self.expr(node.left, scope), self.expr(node.right, scope)
        agg = a.aggregate or b.aggregate
        if node.op == "||":
            for x, operand in ((a, node.left), (b, node.right)):
                if x.type not in _CONCATENABLE:
                    raise ADQLSemanticError(
                        f"|| joins strings; a {x.type} value is not one",
                        token=ast.token_of(operand) or "||", **at(operand.pos))
            sql = " || ".join(x.sql if x.type in (T.TEXT, T.NULL) else f"CAST({x.sql} AS TEXT)"
                              for x in (a, b))
            const = a.const + b.const if isinstance(a.const, str) and isinstance(
                b.const, str) else NOT_CONST
            return Value(f"({sql})", T.TEXT, const=const, aggregate=agg)
        if node.op in ("&", "|", "^"):
            for x in (a, b):
                if x.type not in T.INTEGERS + (T.NULL,):
                    raise ADQLSemanticError(f"bitwise {node.op} needs integers, got a {x.type} "
                                            "value", token=node.op, **at(node.pos))
            pg = "#" if node.op == "^" else node.op
            return Value(f"({a.sql} {pg} {b.sql})", T.numeric_result(a.type, b.type),
                         aggregate=agg)
        for x in (a, b):
            if x.type not in T.NUMERICS + (T.NULL,):
                raise ADQLSemanticError(f"{node.op} needs numbers, got a {x.type} value",
                                        token=node.op, **at(node.pos))
        type_ = T.numeric_result(a.type, b.type)
        return Value(f"({a.sql} {node.op} {b.sql})", type_, unit=_unit(node.op, a, b),
                     const=_fold(node.op, a, b), aggregate=agg)

    def _x_UnaryOp(self, node: ast.UnaryOp, scope: Scope) -> Value:
        v = self.expr(node.operand, scope)
        if node.op == "~":
            if v.type not in T.INTEGERS + (T.NULL,):
                raise ADQLSemanticError("~ needs an integer", token="~", **at(node.pos))
            return Value(f"(~ {v.sql})", v.type, aggregate=v.aggregate)
        if v.type not in T.NUMERICS + (T.NULL,):
            raise ADQLSemanticError(f"unary {node.op} needs a number, got a {v.type} value",
                                    token=node.op, **at(node.pos))
        if node.op == "+":
            return v.with_(source=None)
        n = v.number()
        const = -n if n is not None else NOT_CONST
        return Value(f"(- {v.sql})", v.type, unit=v.unit, ucd=v.ucd, const=const,
                     aggregate=v.aggregate)

    def _x_Case(self, node: ast.Case, scope: Scope) -> Value:
        results = [self.expr(r, scope) for _, r in node.whens]
        else_ = self.expr(node.else_, scope) if node.else_ is not None else None
        type_ = self.common_type(node, results + ([else_] if else_ else []))
        parts = ["CASE"]
        if node.operand is not None:
            operand = self.expr(node.operand, scope)
            parts.append(operand.sql)
            for (w, _), r in zip(node.whens, results, strict=True):
                if not isinstance(w, ast.Expr):  # the parser gives values here
                    raise ADQLSemanticError(f"unsupported expression {type(w).__name__}",
                                            **at(w.pos))
                wv = self.expr(w, scope)
                self._comparable(operand, wv, node.pos)
                parts.append(f"WHEN {wv.sql} THEN {self.coerce(r, type_)}")
        else:
            for (w, _), r in zip(node.whens, results, strict=True):
                if isinstance(w, ast.Expr):  # the parser gives conditions here
                    raise ADQLSemanticError("unsupported condition", **at(w.pos))
                parts.append(f"WHEN {self.condition(w, scope)} THEN {self.coerce(r, type_)}")
        if else_ is not None:
            parts.append(f"ELSE {self.coerce(else_, type_)}")
        parts.append("END")
        first = results[0]
        return Value("(" + " ".join(parts) + ")", type_, unit=first.unit, ucd=first.ucd,
                     aggregate=any(r.aggregate for r in results))

    def _x_Cast(self, node: ast.Cast, scope: Scope) -> Value:
        v = self.expr(node.operand, scope)
        target = node.type_name
        if target in ("POINT", "CIRCLE", "POLYGON"):
            return self._cast_geometry(v, target.lower(), node)
        if v.type in T.GEOMETRIES + (T.VECTOR, T.ARRAY, T.BYTES):
            raise ADQLSemanticError(f"cannot CAST a {v.type} value to {target}",
                                    token="CAST", **at(node.pos))
        type_ = _PG_CAST[target]
        pg = target + (f"({node.length})" if node.length is not None else "")
        votable = None
        if target in ("CHAR", "VARCHAR"):
            size = str(node.length or (1 if target == "CHAR" else "*"))
            votable = ("char", size + ("*" if target == "VARCHAR" and node.length else ""),
                       None)
        return Value(f"CAST({v.sql} AS {pg})", type_, unit=v.unit, ucd=v.ucd,
                     aggregate=v.aggregate, votable=votable)

    def _cast_geometry(self, v: Value, target: str, node: ast.Cast) -> Value:
        if v.type == target:
            return v
        if v.type not in (T.TEXT, T.NULL):
            raise ADQLSemanticError(f"cannot CAST a {v.type} value to {target.upper()}",
                                    token="CAST", **at(node.pos))
        if isinstance(v.const, str):
            try:
                nums = [float(x) for x in v.const.split()]
            except ValueError:
                raise ADQLSemanticError(f"{v.const!r} is not a DALI {target}", token=v.const,
                                        **at(node.pos)) from None
            need = {"point": (2,), "circle": (3,)}.get(target)
            if (need and len(nums) not in need) or (target == "polygon" and (
                    len(nums) < 6 or len(nums) % 2)) or not all(map(math.isfinite, nums)):
                raise ADQLSemanticError(f"{v.const!r} is not a DALI {target}", token=v.const,
                                        **at(node.pos))
            pts = [literal(x) for x in nums]
            if target == "point":
                return G.point_value(G.Point(pts[0], pts[1]))
            if target == "circle":
                return G.circle_value(G.Circle(G.Point(pts[0], pts[1]), pts[2]))
            return G.polygon_value(G.Polygon(
                [G.Point(pts[i], pts[i + 1]) for i in range(0, len(pts), 2)]))
        sql = (f"CAST(regexp_split_to_array(btrim({v.sql}), '\\s+') AS DOUBLE PRECISION[])")
        return Value(sql, target, aggregate=v.aggregate)

    def _x_ScalarSubquery(self, node: ast.ScalarSubquery, scope: Scope) -> Value:
        q = self._subquery(node.query, scope, node.pos)
        v = q.columns[0][2]
        return Value(f"({q.sql})", v.type, unit=v.unit, ucd=v.ucd, description=v.description,
                     votable=v.votable)

    # ---------------------------------------------------------- helpers for functions

    def common_type(self, node: ast.Node, values: list[Value]) -> str:
        """The type that COALESCE, NULLIF or CASE over ``values`` has.

        Raises
        ------
        ADQLSemanticError
            At ``node``, when the values are of types that do not mix (numbers
            mix with each other, NULL with anything).
        """
        types = [v.type for v in values]
        result = T.common_type(types)
        for t in types:
            if t == T.NULL or t == result:
                continue
            if t in T.NUMERICS and result in T.NUMERICS:
                continue
            raise ADQLSemanticError(f"cannot mix {result} and {t} values here",
                                    token=ast.token_of(node), **at(node.pos))
        return result

    def coerce(self, v: Value, type_: str) -> str:
        """The SQL of ``v`` as a value of ``type_`` (the common type of its siblings).

        A NULL gets the type's cast (so that PostgreSQL knows it) and a number
        that must become a double is cast; otherwise the SQL is ``v``'s.
        """
        if v.type == T.NULL and type_ in T.SQL_NAMES:
            return f"CAST(NULL AS {T.SQL_NAMES[type_]})"
        if type_ == T.DOUBLE and v.type in T.NUMERICS and v.type != T.DOUBLE:
            return as_double(v)
        return v.sql


_FLIP = {"<": ">", ">": "<", "<=": ">=", ">=": "<=", "=": "=", "!=": "!="}


def _fold(op: str, a: Value, b: Value) -> MaybeConst:
    x, y = a.number(), b.number()
    if x is None or y is None:
        return NOT_CONST
    if op == "+":
        return x + y
    if op == "-":
        return x - y
    if op == "*":
        return x * y
    if y == 0:
        return NOT_CONST
    if isinstance(x, int) and isinstance(y, int):
        q = abs(x) // abs(y)
        return q if (x >= 0) == (y >= 0) else -q
    return x / y


def _unit(op: str, a: Value, b: Value) -> str | None:
    if op in "+-":
        return a.unit if a.unit == b.unit or b.unit is None and b.is_const else (
            b.unit if a.unit is None and a.is_const else None)
    if a.unit and b.unit:
        return f"{a.unit}.{b.unit}" if op == "*" else f"{a.unit}/{b.unit}"
    if a.unit and b.is_const:
        return a.unit
    if b.unit and a.is_const and op == "*":
        return b.unit
    return None


def _default_name(expr: ast.Expr, value: Value, position: int) -> str:
    if isinstance(expr, ast.ColumnRef):
        return value.source.name if value.source is not None else expr.parts[-1].name
    if isinstance(expr, ast.FuncCall):
        return expr.key
    return f"col{position}"


def _unique_sql_names(names: list[str], fold: bool = True) -> list[str]:
    seen: set[str] = set()
    out = []
    for name in names:
        candidate, n = name, 1
        while (candidate.lower() if fold else candidate) in seen:
            n += 1
            candidate = f"{name}_{n}"
        seen.add(candidate.lower() if fold else candidate)
        out.append(candidate)
    return out


def _output_column(name: str, v: Value) -> CatalogColumn:
    """The result column ``name`` holding ``v``."""
    datatype, arraysize, xtype = v.votable if v.votable else T.votable(v.type)
    if v.type in T.GEOMETRIES:
        datatype, arraysize, xtype = T.votable(v.type)
    return CatalogColumn(name, v.type, ColumnMeta(
        datatype, arraysize, xtype, unit=v.unit, ucd=v.ucd, utype=v.utype,
        description=v.description))




def _suggest(written: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(written.lower(), sorted({c.lower() for c in candidates}),
                                      n=3, cutoff=0.6)
    return f"; did you mean {' or '.join(close)}?" if close else ""


def _all_rels(scope: Scope | None) -> list[Rel]:
    out = []
    while scope is not None:
        out.extend(scope.rels)
        scope = scope.parent
    return out


def _all_visible(scope: Scope | None) -> list[Binding]:
    out = []
    while scope is not None:
        out.extend(scope.visible)
        scope = scope.parent
    return out
