"""``latentvo release export NAME FOLDER``: a release as an RO-Crate folder
(:mod:`vo_service.releases.export`), a command of the ``release`` typer app.

Operator mistakes (unknown or withdrawn release, a folder in use, a file that disagrees
with the manifest, no public URL to cite) raise an :class:`~vo_service.errors.OperatorError`
that ``latentvo``'s entry point turns into one line and exit status 1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vo_service.progress import console


def export_command(
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
