"""``latentvo adql parse|translate QUERY``: check and translate ADQL without a database.

``translate`` resolves names against the declared schema (``schema.tables``),
so it shows exactly the SQL and result columns the TAP service would use.
Exit status 0 on success; 1 with the positioned error message otherwise.
"""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from vo_service.adql import ADQLError, Catalog, parse, translate

adql_app = typer.Typer(help="Parse and translate ADQL 2.1 queries (no database needed).",
                       no_args_is_help=True)
_err = Console(stderr=True)


def _fail(exc: ADQLError) -> None:
    _err.print(f"[red]{exc}[/red]", highlight=False)
    raise typer.Exit(1)


@adql_app.command("parse")
def parse_command(query: str = typer.Argument(..., help="The ADQL query text")) -> None:
    """Check the syntax of QUERY and print its syntax tree."""
    try:
        statement = parse(query)
    except ADQLError as exc:
        _fail(exc)
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
        _fail(exc)
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


if __name__ == "__main__":
    adql_app()
