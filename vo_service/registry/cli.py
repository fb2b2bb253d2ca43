"""``latentvo registry``: check and show the VOResource records of this site.

``sync`` brings the stored records (what ``/oai`` and the ``rr`` tables serve)
in step with the site; ``check`` prints one line per problem on standard output (and, on standard
error, one line per check it could not run) and exits 1 when there is any
problem; ``show`` prints one record. The records' URLs start with
``base_url`` (``latentvo.toml``), else with ``--base-url``.
"""

from __future__ import annotations

from typing import Annotated

import typer

from vo_service.config import (
    ConfigError,
    MetadataError,
    Settings,
    load_settings,
    parse_base_url,
)
from vo_service.errors import OperatorError
from vo_service.progress import console
from vo_service.registry.record import ResourceDraft

registry_app = typer.Typer(help="The publishing registry: VOResource records of this site.",
                           no_args_is_help=True)
BaseURL = Annotated[str | None, typer.Option(
    "--base-url", help="Public URL of the service, when base_url is not configured")]


def records_base(settings: Settings, option: str | None) -> str:
    """The base URL of the records: ``base_url`` of the settings, else ``option``.

    Raises
    ------
    ConfigError
        When neither is given, or both are and they differ.
    """
    given = parse_base_url(option) if option else None
    if settings.base_url and given and given != settings.base_url:
        raise ConfigError(f"--base-url {given} differs from the configured base_url "
                          f"{settings.base_url}; the records use the configured one")
    base = settings.base_url or given
    if base is None:
        raise ConfigError("the records need the service's public URL: set base_url in "
                          "latentvo.toml (LATENTVO_BASE_URL) or pass --base-url")
    return base


def _drafts(settings: Settings, base: str) -> list[ResourceDraft]:
    from vo_service.db.database import open_database
    from vo_service.registry.site import site_drafts

    database = open_database("read", settings)
    try:
        with database.engine.connect() as conn:
            return site_drafts(conn, settings, base)
    finally:
        database.dispose()


@registry_app.command("check")
def check_command(base_url: BaseURL = None) -> None:
    """Validate the [service] metadata and every record (XSD with [registry] schema_dir,
    UAT subjects with [registry] uat_file): one line per problem, exit 1 if any."""
    from vo_service.registry.validate import check

    try:
        settings = load_settings()
    except MetadataError as exc:  # what this command checks: one problem per line
        for line in exc.problems:
            typer.echo(line)
        raise typer.Exit(1) from None
    report = check(settings, _drafts(settings, records_base(settings, base_url)))
    for line in report.skipped:
        console.print(f"note: {line}", highlight=False, markup=False)
    for line in report.problems:
        typer.echo(line)
    if report.problems:
        raise typer.Exit(1)
    typer.echo(f"{report.checked} records checked: no problems found")


@registry_app.command("show")
def show_command(identifier: Annotated[str, typer.Argument(help="ivo:// identifier")],
                 base_url: BaseURL = None) -> None:
    """Print the VOResource record of IDENTIFIER as it is generated now."""
    from datetime import UTC, datetime

    from lxml import etree

    settings = load_settings()
    drafts = {d.identifier: d for d in _drafts(settings, records_base(settings, base_url))}
    if identifier not in drafts:
        raise OperatorError(f"no record has the identifier {identifier!r}; the records are "
                          + ", ".join(sorted(drafts)))
    now = datetime.now(UTC)
    element = etree.fromstring(drafts[identifier].render(now, now).encode())
    typer.echo(etree.tostring(element, pretty_print=True, encoding="unicode"), nl=False)


@registry_app.command("sync")
def sync_command(
    base_url: Annotated[str | None, typer.Option(
        "--base-url", help="Public URL of the service (default: base_url, else that of "
                           "the last sync)")] = None,
) -> None:
    """Bring the stored records in step with the site: new resources added, changed ones
    re-dated, vanished ones kept as deleted records."""
    from vo_service.config import parse_base_url
    from vo_service.db.database import open_database
    from vo_service.registry import sync

    database = open_database("write")
    try:
        found = sync.sync_base(database.engine, database.settings, base_url)
        if found is None:
            raise OperatorError("no public base URL: give --base-url URL or set base_url "
                                "(no earlier sync recorded one)")
        report = sync.sync_registry(database.engine, database.settings,
                                    parse_base_url(found))
    finally:
        database.dispose()
    console.print(f"registry records under {found}: {report.summary()}")
