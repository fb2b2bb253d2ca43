"""``latentvo adql parse|translate QUERY``: check and translate ADQL without a database.

``translate`` resolves names against the declared schema (``schema.tables``),
so it shows exactly the SQL and result columns the TAP service would use.
Exit status 0 on success; 1 with the positioned error message otherwise
(a :class:`QueryError`, which ``latentvo``'s entry point prints).
"""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from vo_service.adql import ADQLError, Catalog, parse, translate
from vo_service.errors import OperatorError

adql_app = typer.Typer(help="Parse and translate ADQL 2.1 queries (no database needed).",
                       no_args_is_help=True)


class QueryError(OperatorError):
    """The ADQL query given on the command line is wrong; the message says where.

    In the web service the same :class:`~vo_service.adql.ADQLError` is the
    user's, and becomes a DALI error document; here the operator wrote it.
    """


@adql_app.command("parse")
def parse_command(query: str = typer.Argument(..., help="The ADQL query text")) -> None:
    """Check the syntax of QUERY and print its syntax tree."""
    try:
        statement = parse(query)
    except ADQLError as exc:
        raise QueryError(str(exc)) from exc
    Console().print(statement)


@adql_app.command("translate")
def translate_command(
    query: str = typer.Argument(..., help="The ADQL query text"),
    maxrec: int = typer.Option(None, help="MAXREC the TAP service would apply"),
) -> None:
    """Translate QUERY to PostgreSQL against the declared schema; print SQL and columns."""
    from schema.tables import published_tables

    catalog = Catalog.from_tables(published_tables())
    try:
        result = translate(query, catalog, maxrec=maxrec)
    except ADQLError as exc:
        raise QueryError(str(exc)) from exc
    out = Console()
    out.print(result.sql, highlight=False, soft_wrap=True)
    table = Table("name", "datatype", "arraysize", "xtype", "unit", "ucd", "description")
    for c in result.columns:
        m = c.meta
        table.add_row(c.name, m.datatype, m.arraysize or "", m.xtype or "", m.unit or "",
                      m.ucd or "", m.description or "")
    out.print(table)
    for key, value in result.session_settings.items():
        out.print(f"SET LOCAL {key} = {value}", highlight=False)

