"""``latentvo release``: create, publish, list, show, verify, withdraw, delete and export releases.

Operator mistakes (a bad name, an unknown model, a change the release's state does
not allow) raise :class:`~vo_service.releases.store.ReleaseError`, which
``latentvo``'s entry point turns into one line and exit status 1.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from vo_service.progress import console

if TYPE_CHECKING:
    from vo_service.db.database import Database
    from vo_service.releases.lifecycle import AfterCommit

release_app = typer.Typer(help="Data releases: frozen, citable states of the archive.",
                          no_args_is_help=True)


def on_release_change(database: Database) -> AfterCommit:
    """What runs once a publish or withdrawal is committed: the publishing registry's
    re-sync, so that OAI-PMH and RegTAP show the release's record (or its deleted
    header) at once. It must follow the committed change, which it describes."""
    from vo_service.registry.sync import resync_after_change

    def resync() -> None:
        console.print(resync_after_change(database.engine, database.settings), highlight=False)

    return resync


@release_app.command("create")
def release_create(
    name: Annotated[str, typer.Argument(help="Release name, also its ADQL schema (e.g. dr1)")],
    title: Annotated[str, typer.Option(help="Title, as cited")],
    description: Annotated[str, typer.Option(help="What the release contains")] = "",
    models: Annotated[list[str] | None, typer.Option(
        "--models", help="Model ids whose products it holds (repeat the option); "
        "default: the current model of each kind")] = None,
    doi: Annotated[str | None, typer.Option(help="DOI of the release (10.xxxx/...)")] = None,
) -> None:
    """Freeze the spectra, the chosen models and their products as a draft release."""
    from vo_service.db.database import open_database
    from vo_service.releases.freeze import create

    database = open_database("write")
    release = create(database.engine, name, title=title, description=description, doi=doi,
                     model_ids=models)
    m = release.manifest
    console.print(f"created draft release {name}: {m['spectra']:,} spectra, "
                  f"{m['labels']:,} label rows, {m['latent']:,} latent vectors of "
                  f"{len(m['models'])} models ({', '.join(x['model_id'] for x in m['models'])})")
    console.print(f"check it with 'latentvo release show {name}', then "
                  f"'latentvo release publish {name}'")


@release_app.command("publish")
def release_publish(
    name: Annotated[str, typer.Argument(help="Name of the draft release")],
) -> None:
    """Serve a draft release: readable through TAP as NAME.*, listed in TAP_SCHEMA."""
    from vo_service.db.database import open_database
    from vo_service.releases.lifecycle import publish

    database = open_database("write")
    release = publish(database.engine, name, reader_role=database.settings.reader_role,
                      after_commit=on_release_change(database))
    console.print(f"published {name} at {release.published:%Y-%m-%d %H:%M:%S %Z}: query "
                  f"{name}.spectra, {name}.labels, {name}.latent, {name}.models, "
                  f"{name}.obscore")
    if database.settings.release == name:
        console.print(f"[yellow]note:[/yellow] new spectra are still ingested with release = "
                      f"{name!r} (the 'release' setting); set the next release's name there")


@release_app.command("list")
def release_list() -> None:
    """List every release: drafts, published and withdrawn ones."""
    from vo_service.db.database import open_database
    from vo_service.releases.store import read_releases

    database = open_database("read")
    with database.engine.connect() as conn:
        releases = read_releases(conn)
    if not releases:
        console.print("no releases ('latentvo release create' makes one)")
        return
    table = Table(title="data releases")
    for column in ("name", "state"):
        table.add_column(column, no_wrap=True)
    for column in ("title", "contents", "dates (UTC)", "DOI"):
        table.add_column(column, overflow="fold")
    for r in releases:
        m = r.manifest
        contents = (f"{m['spectra']:,} spectra\n{m['labels']:,} labels\n"
                    f"{m['latent']:,} latent vectors\n{len(m['models'])} models")
        dates = "\n".join(f"{what} {when:%Y-%m-%d %H:%M}" for what, when in (
            ("created", r.created), ("published", r.published), ("withdrawn", r.withdrawn))
            if when is not None)
        table.add_row(r.name, r.state, r.title, contents, dates, r.doi or "")
    console.print(table)


@release_app.command("show")
def release_show(
    name: Annotated[str, typer.Argument(help="Name of the release")],
) -> None:
    """Print a release's state and its manifest (JSON)."""
    from vo_service.db.database import open_database
    from vo_service.releases.store import require_release

    database = open_database("read")
    with database.engine.connect() as conn:
        release = require_release(conn, name)
    console.print(f"{release.name} ({release.state}): {release.title}")
    console.print_json(json.dumps(release.manifest))


@release_app.command("verify")
def release_verify(
    name: Annotated[str, typer.Argument(help="Name of a draft or published release")],
) -> None:
    """Recompute the checksums of a release's tables and compare them with its manifest."""
    from schema.releases import frozen_tables
    from vo_service.db.database import open_database
    from vo_service.releases.manifest import verify
    from vo_service.releases.store import ReleaseError, require_release

    database = open_database("read")
    with database.engine.begin() as conn:
        release = require_release(conn, name)
        if release.state == "withdrawn":
            raise ReleaseError(f"release {name!r} is withdrawn: its tables are gone")
        problems = verify(conn, release.manifest, frozen_tables(name))
    if problems:
        raise ReleaseError(f"release {name!r} differs from its manifest: " + "; ".join(problems))
    console.print(f"{name}: every table matches its manifest "
                  f"({len(release.manifest['tables'])} tables, rows and SHA-256)")


@release_app.command("withdraw")
def release_withdraw(
    name: Annotated[str, typer.Argument(help="Name of the published release")],
    reason: Annotated[str | None, typer.Option(help="Why, for its tombstone page")] = None,
    lock_wait: Annotated[float, typer.Option(
        help="Seconds to wait for queries still reading the release")] = 60.0,
) -> None:
    """Stop serving a published release: its tables are dropped, its record stays."""
    from vo_service.db.database import open_database
    from vo_service.releases.lifecycle import withdraw

    database = open_database("write")
    release = withdraw(database.engine, name, reason=reason, lock_wait_s=lock_wait,
                       after_commit=on_release_change(database))
    console.print(f"withdrew {name} at {release.withdrawn:%Y-%m-%d %H:%M:%S %Z}: its data are "
                  "no longer served")


@release_app.command("delete")
def release_delete(
    name: Annotated[str, typer.Argument(help="Name of the draft release")],
    lock_wait: Annotated[float, typer.Option(
        help="Seconds to wait for queries still reading the draft")] = 60.0,
) -> None:
    """Delete a draft release (never published) and free its name."""
    from vo_service.db.database import open_database
    from vo_service.releases.lifecycle import delete

    database = open_database("write")
    delete(database.engine, name, lock_wait_s=lock_wait)
    console.print(f"deleted draft {name}")


@release_app.command("export")
def release_export(
    name: Annotated[str, typer.Argument(help="The release to export")],
    folder: Annotated[Path, typer.Argument(help="A new or empty folder to write it into")],
    base_url: Annotated[str | None, typer.Option(
        help="Public URL of the service, for the citations and links in the package "
             "(default: the configured base_url)")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress output")] = False,
) -> None:
    """Write the release's tables (Parquet), model artifacts, citations and
    ro-crate-metadata.json (every file with its size and SHA-256) into FOLDER."""
    from vo_service.config import parse_base_url
    from vo_service.db.database import open_database
    from vo_service.releases.export import ExportError, export_release
    from vo_service.releases.publisher import publisher_of
    from vo_service.urls import PublicURLs

    database = open_database("read")
    base = base_url or database.settings.base_url
    if not base:
        raise ExportError("the package cites the service by its public URL: configure "
                          "base_url (LATENTVO_BASE_URL) or pass --base-url")

    def progress(path: str) -> None:
        if not quiet:
            console.print(f"  writing {path}")

    exported = export_release(database, name, folder, publisher_of(database.settings),
                              PublicURLs(parse_base_url(base)), progress)
    console.print(f"exported release {name} to {exported.folder}: {len(exported.parts)} files, "
                  f"{exported.size:,} bytes, listed with their SHA-256 in "
                  f"{exported.metadata.name}")
