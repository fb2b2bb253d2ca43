"""``latentvo publish``: publish existing catalogues next to the ML products.

Operator mistakes (a wrong declaration, a missing data file, a table in use)
raise :class:`~vo_service.publish.loader.PublishError`, which ``latentvo``'s
entry point turns into one line and exit status 1.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import sqlalchemy as sa
import typer

from vo_service.progress import console

if TYPE_CHECKING:
    from vo_service.db.database import Database

publish_app = typer.Typer(help="Publish existing catalogues (declaration file + data) "
                          "through TAP.", no_args_is_help=True)


def _resync_registry(database: Database) -> None:
    """The catalogue's VOResource record (and the TAP service's tableset) follow at once."""
    from vo_service.registry.sync import resync_after_change

    console.print(resync_after_change(database.engine, database.settings), highlight=False)


@publish_app.command("table")
def publish_table(
    declaration: Annotated[Path, typer.Argument(help="Declaration file (TOML)")],
    data: Annotated[Path, typer.Argument(help="Rows: CSV with a header line, FITS or VOTable")],
    replace: Annotated[bool, typer.Option(help="Replace the table if it is published")] = False,
    lock_wait: Annotated[float, typer.Option(
        help="Seconds to wait for queries still reading the table being replaced")] = 60.0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress output")] = False,
) -> None:
    """Create the declared table, load the rows, grant it to readers, add it to TAP_SCHEMA."""
    from vo_service.db.database import open_database
    from vo_service.publish.loader import publish, read_declaration

    decl = read_declaration(declaration)
    database = open_database("write")
    loaded = 0

    def progress(n: int) -> None:
        nonlocal loaded
        loaded += n
        if not quiet:
            console.print(f"  {loaded:,} rows loaded", end="\r")

    result = publish(database.engine, decl, data, reader_role=database.settings.reader_role,
                     replace=replace, progress=progress, lock_wait_s=lock_wait)
    verb = "replaced" if result.replaced else "published"
    console.print(f"{verb} {result.table}: {result.rows:,} rows (query it as {result.table})")
    _resync_registry(database)


@publish_app.command("list")
def publish_list() -> None:
    """List the published catalogues."""
    from schema.ops import published_catalogues
    from vo_service.db.database import open_database

    database = open_database("read")
    with database.engine.connect() as conn:
        rows = list(conn.execute(sa.select(published_catalogues).order_by(
            published_catalogues.c.schema_name, published_catalogues.c.table_name)).mappings())
    if not rows:
        console.print("no catalogues published")
    for row in rows:
        console.print(f"{row['schema_name']}.{row['table_name']}: {row['n_rows']:,} rows from "
                      f"{row['source']} ({row['published_at']:%Y-%m-%d %H:%M})")


@publish_app.command("drop")
def publish_drop(
    table: Annotated[str, typer.Argument(help="schema.table of the catalogue")],
    lock_wait: Annotated[float, typer.Option(
        help="Seconds to wait for queries still reading the table")] = 60.0,
) -> None:
    """Unpublish a catalogue and drop its table."""
    from vo_service.db.database import open_database
    from vo_service.publish.loader import PublishError, unpublish

    if "." not in table:
        raise PublishError("name the catalogue as schema.table")
    schema, name = table.split(".", 1)
    database = open_database("write")
    unpublish(database.engine, schema, name, lock_wait_s=lock_wait)
    console.print(f"dropped {table}")
    _resync_registry(database)


@publish_app.command("refresh")
def publish_refresh() -> None:
    """Regenerate TAP_SCHEMA over the declared tables and all published catalogues."""
    from schema.catalogues import refresh_tap_schema
    from vo_service.db.database import open_database

    database = open_database("write")
    with database.engine.begin() as conn:
        refresh_tap_schema(conn)
    console.print("TAP_SCHEMA regenerated")
