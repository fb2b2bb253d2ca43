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

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from ml.cli import ml_app
from vo_service.adql.cli import adql_app
from vo_service.config import ConfigError, load_settings
from vo_service.errors import OperatorError, one_line
from vo_service.progress import console
from vo_service.publish.cli import publish_app
from vo_service.registry.cli import registry_app
from vo_service.releases.cli import release_app

if TYPE_CHECKING:
    from vo_service.db.database import Database
    from vo_service.tap.uws import JobStore

app = typer.Typer(help="latentvo: ML products of astronomical spectra through IVOA services.",
                  no_args_is_help=True, pretty_exceptions_enable=False,
                  context_settings={"help_option_names": ["-h", "--help"]})
db_app = typer.Typer(help="Manage the database (embedded PostgreSQL unless "
                     "LATENTVO_DATABASE_URL is set).", no_args_is_help=True)
labels_app = typer.Typer(help="Reference labels (classical spectroscopy) for training.",
                         no_args_is_help=True)
jobs_app = typer.Typer(help="Asynchronous TAP jobs: who stores what, and removing them.",
                       no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(jobs_app, name="jobs")
app.add_typer(labels_app, name="labels")
app.add_typer(adql_app, name="adql", help="Parse and translate ADQL queries (no database needed).")
app.add_typer(ml_app, name="ml", help="Train models, infer ML products, analyse and report.")
app.add_typer(publish_app, name="publish",
              help="Publish existing catalogues next to the ML products.")
app.add_typer(registry_app, name="registry",
              help="The publishing registry: check and show this site's VOResource records.")
app.add_typer(release_app, name="release",
              help="Data releases: create (frozen copy), publish, list, withdraw.")


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
    assert database.embedded is not None  # settings.embedded
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
    embedded = Database(settings).embedded
    assert embedded is not None  # settings.embedded
    stopped = embedded.stop()
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
    for path, note in report.assumed[:20]:
        console.print(f"[yellow]assumed[/yellow] {path}: {note}")
    if len(report.assumed) > 20:
        console.print(f"[yellow]assumed[/yellow] ... and {len(report.assumed) - 20} more "
                      "(each in latentvo_ops.ingest_files.reason)")
    console.print(report.summary())
    if report.ingested:
        _resync_registry(database)


def _resync_registry(database: Database) -> None:
    """The registry records (coverage, counts) follow what the archive now holds."""
    from vo_service.registry.sync import resync_after_change

    console.print(resync_after_change(database.engine, database.settings), highlight=False)


# -- labels --------------------------------------------------------------------------


@labels_app.command("attach")
def labels_attach(
    path: Annotated[Path, typer.Argument(
        help="CSV, VOTable or FITS catalogue of reference labels")],
    name: Annotated[str, typer.Option(help="Name of the label set")] = "",
    key: Annotated[str | None, typer.Option(
        help="Join by key: target_name or obs_id, or target_name=COLUMN / obs_id=COLUMN when "
             "the catalogue calls it COLUMN (default: target_name)")] = None,
    match_radius: Annotated[str | None, typer.Option(
        help="Join by sky position instead: one-to-one matches within this angle "
             "(e.g. 1arcsec) of the spectra's s_ra/s_dec")] = None,
    radec: Annotated[str | None, typer.Option(
        help="RA_COLUMN,DEC_COLUMN of the catalogue positions (default: by UCD "
             "pos.eq.ra/dec or a common name such as ra/dec, RAJ2000/DEJ2000)")] = None,
    label: Annotated[list[str] | None, typer.Option(
        help="LABEL=COLUMN or LABEL=COLUMN:ERROR_COLUMN, repeatable (e.g. "
             "teff=TEFF:TEFF_ERR; default: every numeric column, errors <label>_err or "
             "e_<label>)")] = None,
    replace: Annotated[bool, typer.Option(
        help="Replace a set of that name from another file or options")] = False,
) -> None:
    """Attach a reference-label catalogue for training label models."""
    from vo_service.archive.reference_labels import attach
    from vo_service.db.database import open_database

    database = open_database("write")
    result = attach(database.engine, path, name or path.stem, key=key, replace=replace,
                    match_radius=match_radius, radec=radec, labels=label or ())
    console.print(result.summary(), highlight=False, markup=False)


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


# -- jobs ----------------------------------------------------------------------------


def _job_store(database: Database) -> JobStore:
    from vo_service.tap.uws import JobStore

    settings = database.settings
    return JobStore(database.engine, settings.tap, settings.home / "tap-results", settings.uws)


@jobs_app.command("usage")
def jobs_usage() -> None:
    """Jobs and stored bytes (uploads, results) per owner and in total, with the quotas."""
    from vo_service.db.database import open_database

    database = open_database("read")
    rows = _job_store(database).usage()
    quotas = database.settings.uws
    console.print(f"{'owner':<28} {'unfinished':>10} {'jobs':>8} {'bytes':>16}",
                  highlight=False)
    for row in rows:
        console.print(f"{row.owner:<28} {row.unfinished:>10} {row.jobs:>8} "
                      f"{row.stored_bytes:>16,}", highlight=False, markup=False)
    console.print(f"{'total':<28} {sum(r.unfinished for r in rows):>10} "
                  f"{sum(r.jobs for r in rows):>8} {sum(r.stored_bytes for r in rows):>16,}",
                  highlight=False)
    console.print(f"quotas: {quotas.owner_jobs} unfinished jobs and {quotas.owner_bytes:,} "
                  f"bytes per owner; {quotas.total_jobs} unfinished jobs and "
                  f"{quotas.total_bytes:,} bytes in total", highlight=False)


@jobs_app.command("purge")
def jobs_purge(
    owner: Annotated[str, typer.Option(
        help="The owner as 'latentvo jobs usage' shows it (a user's name or "
             "'anonymous <hash prefix>')")],
) -> None:
    """Delete every job of one owner, with its files (running ones stop within seconds)."""
    from vo_service.db.database import open_database

    store = _job_store(open_database("write"))
    ids = store.jobs_of(owner)
    if not ids:
        raise OperatorError(f"no jobs of owner {owner!r}; 'latentvo jobs usage' lists owners")
    deleted = sum(store.delete(job_id) for job_id in ids)
    console.print(f"deleted {deleted} jobs of {owner}", highlight=False, markup=False)


# -- serve / demo ----------------------------------------------------------------------


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    workers: Annotated[int | None, typer.Option(
        min=1, help="Web worker processes (default: the \\[web] workers setting)")] = None,
    forwarded_allow_ips: Annotated[str | None, typer.Option(
        help="Comma-separated addresses (or networks) of reverse proxies whose "
             "X-Forwarded-Proto/-For headers are trusted; '*' trusts every client. "
             "Default: the \\[web] trusted_proxies setting, else $FORWARDED_ALLOW_IPS, "
             "else 127.0.0.1,::1 (see deploy/README.md)")] = None,
) -> None:
    """Run the web service (uvicorn) on the configured database."""
    import uvicorn

    from vo_service.db.database import open_database
    from vo_service.registry.sync import SERVED_AT_ENV, served_at

    database = open_database("upgrade")
    web = database.settings.web
    database.dispose()
    # The client address that the per-client query limit counts is the one uvicorn
    # reports: X-Forwarded-For only from these proxies.
    forwarded_allow_ips = forwarded_allow_ips or web.trusted_proxies
    # Where the web workers are reached when no base_url is configured: the registry's
    # records, synced at start-up, name it (vo_service.registry.sync).
    os.environ[SERVED_AT_ENV] = served_at(host, port)
    # TAP builds job and capability URLs from the request, so behind a proxy on another
    # host uvicorn must trust that proxy's X-Forwarded-Proto to see https.
    uvicorn.run("vo_service.app:create_app", factory=True, host=host, port=port,
                workers=workers or web.workers, log_level="info", server_header=False,
                forwarded_allow_ips=forwarded_allow_ips)


@app.command("demo")
def demo(
    n: Annotated[int, typer.Option("--n", "-n", min=10, help="Spectra to generate")] = 2000,
    seed: Annotated[int, typer.Option(help="Random seed")] = 1,
    train: Annotated[bool, typer.Option("--train/--no-train",
                                        help="Train models and infer ML products")] = True,
    serve_after: Annotated[bool, typer.Option(
        "--serve/--no-serve", help="Serve at once and build in the background "
        "(--no-serve: build in the foreground, then exit)")] = True,
    port: Annotated[int, typer.Option(help="TCP port for --serve")] = 8000,
) -> None:
    """Start the database and serve; meanwhile a background job writes a synthetic archive,
    ingests it, trains the demo's models and infers their products (the landing page
    shows how far it got; each step resumes where an interrupted run stopped)."""
    import time

    from vo_service.db.database import open_database

    settings = load_settings()
    started = time.monotonic()
    database = open_database("upgrade", settings)
    where = "embedded, " + str(settings.pgdata) if settings.embedded else "external"
    console.print(f"database: revision {database.revision()} ({where}), "
                  f"{time.monotonic() - started:.0f} s")
    if not serve_after:
        _demo_build(database, n, seed, train)
        return
    database.dispose()
    _check_port_free(port)
    job = _start_demo_job(settings.home, n, seed, train)
    console.print(f"serving on http://127.0.0.1:{port}/ while the archive is built; the "
                  "landing page shows its progress (Ctrl-C to stop)")
    import uvicorn

    from vo_service.registry.sync import SERVED_AT_ENV, served_at

    os.environ[SERVED_AT_ENV] = served_at("127.0.0.1", port)
    try:
        uvicorn.run("vo_service.app:create_app", factory=True, host="127.0.0.1", port=port,
                    server_header=False)
    finally:
        if job is not None:
            _stop_demo_job(job)


@app.command("demo-build", hidden=True)
def demo_build(
    n: Annotated[int, typer.Option("--n", min=10)] = 2000,
    seed: Annotated[int, typer.Option()] = 1,
    train: Annotated[bool, typer.Option("--train/--no-train")] = True,
) -> None:
    """The demo's background job (started by ``latentvo demo``, which logs its output)."""
    import signal

    # a stopped demo sends SIGTERM (or Ctrl-C's SIGINT): both end as a recorded interruption
    from vo_service.db.database import open_database

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    database = open_database("write")
    try:
        _demo_build(database, n, seed, train)
    finally:
        database.dispose()


_DEMO_JOB = "demo"  # name of the demo build's status record and log under LATENTVO_HOME/jobs


def _demo_build(database: Database, n: int, seed: int, train: bool) -> None:
    """Run ``ml.demo.build`` as the recorded demo job, its summaries on the console."""
    from vo_service.archive.background import record_job

    settings = database.settings
    with record_job(settings.home, _DEMO_JOB) as recorder:  # JobBusy: another build runs
        recorder.phase("loading the ML libraries")  # torch alone takes seconds
        from ml import demo as ml_demo

        ml_demo.build(database, settings, recorder, n=n, seed=seed, train=train,
                      say=console.print)
    _resync_registry(database)


def _check_port_free(port: int) -> None:
    """Fail before starting any work when the demo could not serve on ``port``."""
    import socket

    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            raise ConfigError(f"cannot serve on 127.0.0.1:{port} ({exc.strerror}); "
                              "choose another --port") from None


def _start_demo_job(home: Path, n: int, seed: int, train: bool):
    """Start ``demo-build`` in its own process, its output in the job's log; None when a
    build already runs (another demo started it). A thread reports on the console how the
    job ended. The serving process itself never imports ``ml``."""
    import subprocess
    import threading

    from vo_service.archive.background import DONE, RUNNING, log_path, read_status

    running = read_status(home, _DEMO_JOB)
    if running is not None and running.state == RUNNING and not running.vanished:
        console.print(f"the demo's build already runs (pid {running.pid}): {running.log}")
        return None
    log = log_path(home, _DEMO_JOB)
    log.parent.mkdir(parents=True, exist_ok=True)
    args = [sys.executable, "-m", "vo_service.cli", "demo-build", "--n", str(n),
            "--seed", str(seed), "--train" if train else "--no-train"]
    with open(log, "ab") as out:
        job = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out,
                               stderr=subprocess.STDOUT)
    console.print(f"building the archive{' and its ML products' if train else ''} in the "
                  f"background (pid {job.pid}); log: {log}")

    def report_end() -> None:
        job.wait()
        status = read_status(home, _DEMO_JOB)
        if status is not None and status.state == DONE:
            console.print(f"demo build {status.describe()}; log: {log}")
        else:
            reason = status.describe() if status else f"exit status {job.returncode}"
            console.print(f"[red]demo build {reason}[/red]; log: {log}")

    threading.Thread(target=report_end, daemon=True).start()
    return job


def _stop_demo_job(job) -> None:
    """Stop a build still running when the server stops (it resumes at the next demo)."""
    import signal
    import subprocess

    if job.poll() is None:
        job.send_signal(signal.SIGTERM)
        try:
            job.wait(15)
        except subprocess.TimeoutExpired:
            job.kill()
            job.wait()


if __name__ == "__main__":
    main()
