"""The ``latentvo`` command line: the archive operator's workflow.

Each subcommand is a thin layer over a module that does the work. Operator
mistakes raise a :class:`~vo_service.errors.OperatorError` wherever they are
found, in any subcommand (``ml``, ``publish`` and ``adql`` included); :func:`main`,
the ``latentvo`` console script, is the one place that turns them into
``error: <message>`` on one line of stderr and exit status 1. Anything else is
a bug and keeps its traceback. Jobs open the database with
:func:`~vo_service.db.database.open_database`, saying whether they only read it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from ml.cli import ml_app
from vo_service.adql.cli import adql_app
from vo_service.config import ConfigError, load_settings
from vo_service.errors import OperatorError, one_line
from vo_service.progress import console
from vo_service.publish.cli import publish_app

app = typer.Typer(help="latentvo: ML products of astronomical spectra through IVOA services.",
                  no_args_is_help=True, pretty_exceptions_enable=False,
                  context_settings={"help_option_names": ["-h", "--help"]})
db_app = typer.Typer(help="Manage the database (embedded PostgreSQL unless "
                     "LATENTVO_DATABASE_URL is set).", no_args_is_help=True)
labels_app = typer.Typer(help="Reference labels (classical spectroscopy) for training.",
                         no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(labels_app, name="labels")
app.add_typer(adql_app, name="adql", help="Parse and translate ADQL queries (no database needed).")
app.add_typer(ml_app, name="ml", help="Train models, infer ML products, analyse and report.")
app.add_typer(publish_app, name="publish",
              help="Publish existing catalogues next to the ML products.")


def main() -> None:
    """Run the ``latentvo`` command; an operator error ends as one line and exit status 1."""
    try:
        app()
    except OperatorError as exc:
        console.print(f"[red]error:[/red] {escape(one_line(exc))}", highlight=False)
        raise SystemExit(1) from None


# -- db ----------------------------------------------------------------------------


@db_app.command("start")
def db_start() -> None:
    """Start the embedded PostgreSQL server (no-op when it runs) and migrate it."""
    from vo_service.db.database import open_database

    settings = load_settings()
    if not settings.embedded:
        raise ConfigError("LATENTVO_DATABASE_URL is set: the database is external, "
                          "there is nothing to start")
    database = open_database("upgrade", settings)
    console.print(database.embedded.status().describe())
    console.print(f"schema at revision {database.revision()}")


@db_app.command("stop")
def db_stop() -> None:
    """Stop the embedded PostgreSQL server."""
    from vo_service.db.database import Database

    settings = load_settings()
    if not settings.embedded:
        raise ConfigError("LATENTVO_DATABASE_URL is set: the external database is not ours "
                          "to stop")
    stopped = Database(settings).embedded.stop()
    console.print("embedded PostgreSQL " + ("stopped" if stopped else "was not running"))


@db_app.command("status")
def db_status() -> None:
    """Say where the database is, whether it runs and its schema revision (changes nothing).

    Exit status 3 when the embedded server is not running.
    """
    from schema import migrate
    from vo_service.db.database import Database

    database = Database(load_settings())
    if database.embedded is not None:
        status = database.embedded.status()
        console.print(status.describe())
        if not status.running:
            raise typer.Exit(3)
    revision = database.revision()
    if database.embedded is None:
        console.print(f"external database: {database.location}")
    head = migrate.head_revision()
    state = "up to date" if revision == head else f"needs 'latentvo db upgrade' (head {head})"
    console.print(f"schema revision: {revision or 'none'} ({state})")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply pending migrations, role grants and TAP_SCHEMA (idempotent)."""
    from vo_service.db.database import open_database

    console.print(f"schema at revision {open_database('upgrade').revision()}")


# -- synth / ingest ----------------------------------------------------------------


@app.command("synth")
def synth(
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory to write the archive to")],
    n: Annotated[int, typer.Option("--n", "-n", min=1, help="Number of spectra")] = 1000,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same archive)")] = 1,
    snr_min: Annotated[float, typer.Option(help="Lowest S/N drawn")] = 10.0,
    snr_max: Annotated[float, typer.Option(help="Highest S/N drawn")] = 200.0,
    corrupt: Annotated[bool, typer.Option(help="Also write a few corrupt files")] = False,
) -> None:
    """Write a reproducible synthetic archive of stellar spectra with true labels."""
    from ml.synth import write_archive, write_corrupt_examples

    if snr_min <= 0 or snr_max < snr_min:
        raise ConfigError(f"need 0 < --snr-min <= --snr-max, got {snr_min} and {snr_max}")
    summary = write_archive(out, n=n, seed=seed, snr_range=(snr_min, snr_max), progress=True)
    if corrupt:
        write_corrupt_examples(out / "corrupt")
    console.print(f"wrote {n} spectra to {out} ({summary})")


@app.command("ingest")
def ingest(
    paths: Annotated[list[str], typer.Argument(help="Files, directories or glob patterns")],
    workers: Annotated[int | None, typer.Option(
        min=1, help="Reader processes (default: the [ingest] workers setting)")] = None,
    retry_rejected: Annotated[bool, typer.Option(help="Read files rejected before again")] = False,
    release: Annotated[str, typer.Option(help="Data release for new spectra")] = "",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar")] = False,
    chunk_size: Annotated[int | None, typer.Option(
        min=1, help="Files per transaction (default: the [ingest] chunk_size setting)")] = None,
    preprocess: Annotated[bool, typer.Option(
        help="Also put new spectra on the registered models' wavelength grids, so that "
             "'latentvo ml infer' reads no files")] = True,
) -> None:
    """Ingest spectrum files into the archive (re-ingesting changes nothing)."""
    from dataclasses import replace

    from ml.archive_reader import grid_preparers
    from vo_service.archive.ingest import Ingester, IngestError, expand_paths
    from vo_service.db.database import open_database
    from vo_service.progress import progress_bar

    settings = load_settings()
    if release:
        settings = replace(settings, release=release)
    database = open_database("write", settings)
    files = expand_paths(paths)
    if not files:
        raise IngestError(f"no spectrum files found in {' '.join(paths)}")
    ingester = Ingester(database.engine, settings, workers=workers, chunk_size=chunk_size,
                        retry_rejected=retry_rejected,
                        preparers=grid_preparers(database.engine, settings) if preprocess else ())
    with progress_bar("ingest", len(files), unit="files", enabled=not quiet) as advance:
        report = ingester.run(files, progress=advance)
    for path, reason in report.rejected:
        console.print(f"[yellow]rejected[/yellow] {path}: {reason}")
    console.print(report.summary())


# -- labels --------------------------------------------------------------------------


@labels_app.command("attach")
def labels_attach(
    path: Annotated[Path, typer.Argument(help="CSV, VOTable or FITS table of reference labels")],
    name: Annotated[str, typer.Option(help="Name of the label set")] = "",
    key: Annotated[str, typer.Option(help="Key column: target_name or obs_id")] = "target_name",
    replace: Annotated[bool, typer.Option(help="Replace a set of that name")] = False,
) -> None:
    """Attach a reference-label table for training label models."""
    from vo_service.archive.reference_labels import attach
    from vo_service.db.database import open_database

    database = open_database("write")
    result = attach(database.engine, path, name or path.stem, key=key, replace=replace)
    verb = "unchanged" if result.unchanged else "attached"
    console.print(f"label set {result.name!r} {verb}: {result.n_objects} objects, "
                  f"labels {', '.join(result.quantities)}")


@labels_app.command("list")
def labels_list() -> None:
    """List the attached reference-label sets."""
    import sqlalchemy as sa

    from schema.tables import reference_label_sets
    from vo_service.db.database import open_database

    database = open_database("read")
    with database.engine.connect() as conn:
        rows = conn.execute(sa.select(reference_label_sets).order_by(
            reference_label_sets.c.name)).mappings().all()
    if not rows:
        console.print("no reference-label sets attached")
    for row in rows:
        console.print(f"{row['name']}: {row['n_rows']} objects keyed by {row['key_column']}, "
                      f"from {row['source_path']}")


# -- serve / demo ----------------------------------------------------------------------


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Web worker processes")] = 1,
    forwarded_allow_ips: Annotated[str | None, typer.Option(
        help="Comma-separated addresses (or networks) of reverse proxies whose "
             "X-Forwarded-Proto/-For headers are trusted; '*' trusts every client. "
             "Default: $FORWARDED_ALLOW_IPS, else 127.0.0.1,::1 (see deploy/README.md)")] = None,
) -> None:
    """Run the web service (uvicorn) on the configured database."""
    import uvicorn

    from vo_service.db.database import open_database

    open_database("upgrade").dispose()
    # TAP builds job and capability URLs from the request, so behind a proxy on another
    # host uvicorn must trust that proxy's X-Forwarded-Proto to see https.
    uvicorn.run("vo_service.app:create_app", factory=True, host=host, port=port,
                workers=workers, log_level="info", server_header=False,
                forwarded_allow_ips=forwarded_allow_ips)


@app.command("demo")
def demo(
    n: Annotated[int, typer.Option("--n", "-n", min=10, help="Spectra to generate")] = 2000,
    seed: Annotated[int, typer.Option(help="Random seed")] = 1,
    train: Annotated[bool, typer.Option("--train/--no-train",
                                        help="Train models and infer ML products")] = True,
    serve_after: Annotated[bool, typer.Option("--serve/--no-serve",
                                              help="Serve the result")] = True,
    port: Annotated[int, typer.Option(help="TCP port for --serve")] = 8000,
) -> None:
    """Start the database, make a synthetic archive, ingest it, train and infer, serve."""
    from ml import demo as ml_demo
    from ml.synth import write_archive
    from vo_service.archive.ingest import Ingester, expand_paths
    from vo_service.archive.reference_labels import attach
    from vo_service.db.database import open_database
    from vo_service.progress import progress_bar

    settings = load_settings()
    database = open_database("upgrade", settings)
    steps = 5 if train else 4
    where = "embedded, " + str(settings.pgdata) if settings.embedded else "external"
    console.print(f"[bold]1/{steps}[/bold] database: revision {database.revision()} ({where})")
    archive = settings.home / "demo-archive"
    if not (archive / "manifest.json").exists():
        write_archive(archive, n=n, seed=seed, progress=True)
    console.print(f"[bold]2/{steps}[/bold] synthetic archive in {archive}")
    files = expand_paths([str(archive)])
    with progress_bar("ingest", len(files), unit="files") as advance:
        report = Ingester(database.engine, settings).run(files, progress=advance)
    console.print(f"[bold]3/{steps}[/bold] ingest: {report.summary()}")
    result = attach(database.engine, archive / "reference_labels.csv", "demo-reference")
    console.print(f"[bold]4/{steps}[/bold] reference labels: {result.n_objects} stars "
                  f"({', '.join(result.quantities)})")
    if train:
        console.print(f"[bold]5/{steps}[/bold] ML: "
                      + ml_demo.run(database, settings, "demo-reference", seed=seed))
    if serve_after:
        console.print(f"serving on http://127.0.0.1:{port}/ (Ctrl-C to stop)")
        database.dispose()
        import uvicorn
        uvicorn.run("vo_service.app:create_app", factory=True, host="127.0.0.1", port=port,
                    server_header=False)


if __name__ == "__main__":
    main()
