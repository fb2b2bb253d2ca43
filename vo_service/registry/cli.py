"""``latentvo registry``: the publishing registry's records."""

from __future__ import annotations

from typing import Annotated

import typer

from vo_service.progress import console

registry_app = typer.Typer(help="The publishing registry (VOResource records, OAI-PMH).",
                           no_args_is_help=True)


@registry_app.command("sync")
def sync_command(
    base: Annotated[str | None, typer.Option(
        help="Public base URL of the service (default: base_url, else that of the last "
             "sync)")] = None,
) -> None:
    """Bring the stored records in step with the site: new resources added, changed ones
    re-dated, vanished ones kept as deleted records."""
    from vo_service.config import parse_base_url
    from vo_service.db.database import open_database
    from vo_service.errors import OperatorError
    from vo_service.registry import sync

    database = open_database("write")
    try:
        if sync.SITE_DRAFTS is None:
            raise OperatorError("this installation has no VOResource builders to sync")
        found = sync.sync_base(database.engine, database.settings, base)
        if found is None:
            raise OperatorError("no public base URL: give --base URL or set base_url "
                                "(no earlier sync recorded one)")
        report = sync.sync_registry(database.engine, database.settings,
                                    parse_base_url(found), sync.SITE_DRAFTS)
    finally:
        database.dispose()
    console.print(f"registry records under {found}: {report.summary()}")
