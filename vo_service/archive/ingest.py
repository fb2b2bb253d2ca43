"""Spectrum ingest: files -> spectra table + content-addressed store.

Work proceeds in chunks of files:

1. hash every file (in worker processes);
2. drop files whose checksum the archive has already seen (re-ingest is a no-op);
3. read the rest (``vo_service.archive.readers.read_spectrum``), extract their metadata, copy
   them into the store and, for every :class:`GridPreparer` handed in (one per
   registered model grid), put the spectra it covers on its grid (in worker
   processes);
4. write the chunk in one transaction: spectra rows and the outcome of every
   file (ingested, with what had to be assumed about it, or rejected with its
   reason) through COPY; then hand the
   prepared arrays of the committed spectra to their preparers to keep, so that
   inference of new spectra never reads files.

The archive knows nothing of models: the preparers come from the caller (the
command line builds them from the ML model registry), so this module, like the
rest of ``vo_service`` below the CLI, never imports ``ml``.

Step 4 of a chunk runs while the workers do steps 1-3 of the next one, so the
database write costs no reading time.

A transaction-level advisory lock serialises step 4 between concurrent ingest
runs, and the duplicate checks are repeated under it, so two runs over the same
files never store a spectrum twice. A run killed at any point loses only its
uncommitted chunk; the next run picks those files up again. A run killed
between a chunk's commit and its cache write leaves those spectra without cache
entries: the cache is a shortcut, and inference then reads their files.
"""

from __future__ import annotations

import ctypes
import glob
import math
import os
import signal
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import cdshealpix
import numpy as np
import sqlalchemy as sa
from astropy import units as u
from astropy.coordinates import Latitude, Longitude

from schema.tables import ingest_files, spectra
from vo_service.archive.readers import has_spectrum_suffix, read_spectrum
from vo_service.archive.spectrum import Spectrum, SpectrumError
from vo_service.archive.store import FileStore, sha256_of
from vo_service.config import Settings
from vo_service.db.copy import copy_rows
from vo_service.errors import OperatorError

INGEST_LOCK_KEY = 0x6C766F_01  # advisory lock id shared by all ingest runs
ACCESS_FORMATS = {
    "spectrum-votable": "application/x-votable+xml",
}
DEFAULT_ACCESS_FORMAT = "application/fits"
EXAMINE_BATCH = 16  # files per worker task
PR_SET_PDEATHSIG = 1  # prctl option, <linux/prctl.h>


class IngestError(OperatorError):
    """An operator error (e.g. no input files); individual bad files are not errors."""


Prepared = tuple[np.ndarray, np.ndarray, float]  # flux, inverse variance, resolving power


class GridPreparer(Protocol):
    """Puts new spectra on one model's wavelength grid while ingest has them in memory.

    Instances are pickled into the reader processes, which call :meth:`covers` and
    :meth:`prepare`; :meth:`keep` runs in the ingest process after the chunk's commit.
    """

    @property
    def key(self) -> str:
        """Names the grid in :attr:`FileOutcome.prepared`."""

    def covers(self, em_min_m: float, em_max_m: float) -> bool:
        """Whether a spectrum spanning these vacuum wavelengths (metres) fills the grid."""

    def prepare(self, spectra: Sequence[Spectrum]) -> list[Prepared | None]:
        """The arrays of each spectrum on the grid, or None where it cannot be put there."""

    def keep(self, file_sha256: Sequence[str], prepared: Sequence[Prepared]) -> int:
        """Store the arrays of committed spectra; returns how many were new."""


@dataclass
class FileOutcome:
    """What reading one file gave: its spectra row, or why it was rejected."""

    path: str
    sha256: str
    row: dict[str, Any] | None = None  # spectra row when the file was readable
    reason: str | None = None  # why it was rejected
    note: str | None = None  # what was assumed to read it (e.g. its wavelength frame)
    # preparer key -> arrays on that grid, for the grids it covers
    prepared: dict[str, Prepared] = field(default_factory=dict)


@dataclass
class _Chunk:
    """A chunk of files whose reading has been handed to the workers."""

    size: int
    examined: list[Future[list[FileOutcome]]]
    unreadable: list[tuple[str, str]]  # (path, reason) of files that could not be hashed


@dataclass
class IngestReport:
    """Counts of one ingest run, and each rejected file with the reason."""

    seen: int = 0
    ingested: int = 0
    already_known: int = 0
    rejected: list[tuple[str, str]] = field(default_factory=list)
    preprocessed: int = 0  # (spectrum, model grid) pairs added to the caches
    assumed: list[tuple[str, str]] = field(default_factory=list)  # (path, note) ingested

    def summary(self) -> str:
        """One line for the command line."""
        text = (f"{self.seen} file(s) examined: {self.ingested} ingested, "
                f"{self.already_known} already in the archive, {len(self.rejected)} rejected")
        text += (f"; {len(self.assumed)} ingested with an assumed wavelength frame"
                 if self.assumed else "")
        return text + (f"; {self.preprocessed} preprocessed for the models' grids"
                       if self.preprocessed else "")


def expand_paths(inputs: Iterable[str]) -> list[Path]:
    """Files named directly, found under directories, or matched by globs; sorted, unique."""
    found: set[Path] = set()
    missing = []
    for item in inputs:
        matches = [Path(p) for p in glob.glob(item, recursive=True)] or [Path(item)]
        for path in matches:
            if path.is_dir():
                for root, _dirs, files in os.walk(path):
                    found.update(Path(root) / f for f in files if has_spectrum_suffix(f))
            elif path.is_file():
                found.add(path)
            else:
                missing.append(item)
    if missing:
        raise IngestError(f"no such file or directory: {', '.join(sorted(set(missing)))}")
    return sorted(p.resolve() for p in found)


# -- worker-side steps (run in subprocesses) ---------------------------------


def _die_with_parent() -> None:
    """Worker initialiser: end the worker when the ingest process dies.

    Without it, a killed ingest (``kill -9``, OOM) leaves its pool workers
    waiting forever on a queue nobody writes to. Linux only (prctl).
    """
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _hash(path: str) -> tuple[str, str | None, str | None]:
    try:
        return path, sha256_of(Path(path)), None
    except OSError as exc:
        return path, None, f"cannot read file: {exc.strerror or exc}"


def _examine(args: tuple[str, str, str, str, str, str]
             ) -> tuple[FileOutcome, Spectrum | None]:
    path, sha, store_root, authority, collection, release = args
    try:
        spectrum = read_spectrum(Path(path))
        row = spectrum_row(spectrum, sha, Path(path), authority, collection, release)
    except SpectrumError as exc:
        return FileOutcome(path, sha, reason=str(exc)), None
    except Exception as exc:  # noqa: BLE001 - any reader failure is a rejected file
        return FileOutcome(path, sha,
                           reason=f"unreadable ({type(exc).__name__}: {exc})"), None
    FileStore(Path(store_root)).put(Path(path), sha)
    return FileOutcome(path, sha, row=row, note=spectrum.meta.spec_frame_note), spectrum


def _examine_batch(batch: list[tuple[str, str, str, str, str, str]],
                   preparers: tuple[GridPreparer, ...] = ()) -> list[FileOutcome]:
    """Several files per task: one inter-process round trip instead of one per file.

    A spectrum that a grid cannot take (it does not cover it, no good pixel there) is
    still ingested; it just gets no prepared arrays for that grid.
    """
    examined = [_examine(args) for args in batch]
    readable = [(o, o.row, s) for o, s in examined if s is not None and o.row is not None]
    for preparer in preparers:
        covering = [(o, s) for o, row, s in readable
                    if preparer.covers(row["em_min"], row["em_max"])]
        results = preparer.prepare([s for _, s in covering])
        for (outcome, _spectrum), result in zip(covering, results, strict=True):
            if result is not None:
                outcome.prepared[preparer.key] = result
    return [o for o, _ in examined]


def spectrum_row(spectrum: Spectrum, sha256: str, path: Path, authority: str,
                 collection: str, release: str) -> dict[str, Any]:
    """The spectra-table row describing ``spectrum`` (without spectrum_id/healpix)."""
    m = spectrum.meta
    # ObsCore and SSA give wavelengths in vacuum, whatever the file's frame.
    wave_m = (spectrum.vacuum_wavelength()[[0, -1]] * u.AA).to_value(u.m)
    snr = m.snr if m.snr is not None and math.isfinite(m.snr) else spectrum.median_snr()
    return {
        "obs_publisher_did": f"{authority}/spectra?{m.obs_id}",
        "obs_id": m.obs_id,
        "obs_collection": m.collection or collection,
        "target_name": m.target_name,
        "s_ra": float(Longitude(m.ra, u.deg).deg),
        "s_dec": float(Latitude(m.dec, u.deg).deg),
        "t_min": m.t_min,
        "t_max": m.t_max,
        "t_exptime": m.exptime,
        "em_min": float(wave_m[0]),
        "em_max": float(wave_m[1]),
        "em_res_power": m.resolving_power,
        "em_xel": int(len(spectrum.wavelength)),
        "snr": float(snr),
        "instrument_name": m.instrument,
        "facility_name": m.facility,
        "flux_unit": m.flux_unit,
        "spec_frame": m.spec_frame,
        "source_format": spectrum.source_format,
        "access_format": ACCESS_FORMATS.get(spectrum.source_format, DEFAULT_ACCESS_FORMAT),
        "access_estsize": max(1, math.ceil(path.stat().st_size / 1024)),
        "file_sha256": sha256,
        "file_name": path.name,
        "release": release,
    }


# -- the job -------------------------------------------------------------------

SPECTRA_COLUMNS = [
    "spectrum_id", "obs_publisher_did", "obs_id", "obs_collection", "target_name", "s_ra",
    "s_dec", "healpix_index", "t_min", "t_max", "t_exptime", "em_min", "em_max",
    "em_res_power", "em_xel", "snr", "instrument_name", "facility_name", "flux_unit",
    "spec_frame", "source_format", "access_format", "access_estsize", "file_sha256",
    "file_name", "release",
]
OUTCOME_COLUMNS = ["file_sha256", "path", "status", "reason", "spectrum_id"]


class Ingester:
    """Ingests files into the archive of ``engine``.

    Parameters
    ----------
    workers, chunk_size
        Reader processes and files per transaction; by default the ``[ingest]``
        settings.
    preparers
        One per model grid that new spectra should be put on while they are read
        (``ml.spectra_cache.grid_preparers`` builds those of the registered models;
        none before any training, or when the operator asks for none).
    """

    def __init__(self, engine: sa.Engine, settings: Settings, *, workers: int | None = None,
                 chunk_size: int | None = None, retry_rejected: bool = False,
                 preparers: Iterable[GridPreparer] = ()):
        self.engine = engine
        self.settings = settings
        self.store = FileStore(settings.store_dir)
        self.workers = workers or settings.ingest.reader_processes
        self.chunk_size = chunk_size or settings.ingest.chunk_size
        self.retry_rejected = retry_rejected
        self.preparers = tuple(preparers)

    def run(self, paths: list[Path],
            progress: Callable[[int], None] | None = None) -> IngestReport:
        """Ingest ``paths``; chunk k is written while the workers read chunk k+1."""
        report = IngestReport()
        self.store.root.mkdir(parents=True, exist_ok=True)
        with ProcessPoolExecutor(self.workers, initializer=_die_with_parent) as pool:
            previous: _Chunk | None = None
            for paths_chunk in _chunks([str(p) for p in paths], self.chunk_size):
                current = self._start_chunk(pool, paths_chunk, report)
                if previous is not None:
                    self._finish_chunk(previous, report, progress)
                previous = current
            if previous is not None:
                self._finish_chunk(previous, report, progress)
        return report

    def _start_chunk(self, pool: ProcessPoolExecutor, chunk: list[str],
                     report: IngestReport) -> _Chunk:
        """Hash the files, drop known ones and hand the rest to the workers to read."""
        report.seen += len(chunk)
        hashed = list(pool.map(_hash, chunk, chunksize=16))
        unreadable = [(p, r) for p, _, r in hashed if r is not None]
        by_sha: dict[str, str] = {}
        for path, sha, _ in hashed:
            if sha is not None:
                if sha in by_sha:  # the same content twice in one run
                    report.already_known += 1
                else:
                    by_sha[sha] = path
        known = self._known(list(by_sha))
        report.already_known += len(known)
        todo = [(p, s, str(self.store.root), self.settings.authority,
                 self.settings.collection, self.settings.release)
                for s, p in by_sha.items() if s not in known]
        examined = [pool.submit(_examine_batch, todo[i:i + EXAMINE_BATCH], self.preparers)
                    for i in range(0, len(todo), EXAMINE_BATCH)]
        return _Chunk(len(chunk), examined, unreadable)

    def _finish_chunk(self, chunk: _Chunk, report: IngestReport,
                      progress: Callable[[int], None] | None) -> None:
        ingested = self._write([o for future in chunk.examined for o in future.result()],
                               report)
        for preparer in self.preparers:
            kept = [o for o in ingested if preparer.key in o.prepared]
            if kept:
                report.preprocessed += preparer.keep([o.sha256 for o in kept],
                                                     [o.prepared[preparer.key] for o in kept])
        # No checksum, so nothing to record in the table.
        report.rejected.extend(chunk.unreadable)
        if progress:
            progress(chunk.size)

    def _known(self, shas: list[str], conn: sa.Connection | None = None) -> set[str]:
        if not shas:
            return set()
        query = sa.select(ingest_files.c.file_sha256).where(
            ingest_files.c.file_sha256.in_(shas))
        if self.retry_rejected:
            query = query.where(ingest_files.c.status == "ingested")
        if conn is not None:
            return set(conn.scalars(query))
        with self.engine.connect() as c:
            return set(c.scalars(query))

    def _write(self, outcomes: list[FileOutcome], report: IngestReport) -> list[FileOutcome]:
        """Commit one chunk; returns the outcomes of the spectra it stored."""
        if not outcomes:
            return []
        with self.engine.begin() as conn:
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(INGEST_LOCK_KEY)))
            # Repeat the duplicate checks under the lock: another run may have won.
            known = self._known([o.sha256 for o in outcomes], conn)
            fresh = [o for o in outcomes if o.sha256 not in known]
            report.already_known += len(outcomes) - len(fresh)
            readable = [(o, o.row) for o in fresh if o.row is not None]
            taken = _existing_obs_ids(conn, [row["obs_id"] for _, row in readable])
            seen_ids: set[str] = set()
            for o, row in readable:
                obs_id = row["obs_id"]
                if obs_id in taken or obs_id in seen_ids:
                    o.reason = (f"obs_id {obs_id!r} is already in the archive from a "
                                "different file")
                    o.row = None
                seen_ids.add(obs_id)
            good = [o for o in fresh if o.row is not None]
            rows = [row for o, row in readable if o.row is not None]  # those of good
            ids = _allocate_ids(conn, len(rows))
            ra = np.array([row["s_ra"] for row in rows])
            dec = np.array([row["s_dec"] for row in rows])
            hpx = _healpix(ra, dec)
            for row, sid, h in zip(rows, ids, hpx, strict=True):
                row["spectrum_id"] = sid
                row["healpix_index"] = int(h)
            copy_rows(conn, spectra, SPECTRA_COLUMNS, rows)
            # Rejections replace an earlier rejection of the same file (retry_rejected).
            conn.execute(ingest_files.delete().where(
                ingest_files.c.file_sha256.in_([o.sha256 for o in fresh])))
            copy_rows(conn, ingest_files, OUTCOME_COLUMNS, (
                {"file_sha256": o.sha256, "path": o.path,
                 "status": "ingested" if o.row else "rejected",
                 "reason": o.note if o.row else o.reason,
                 "spectrum_id": o.row["spectrum_id"] if o.row else None}
                for o in fresh))
        report.ingested += len(good)
        report.rejected.extend((o.path, o.reason) for o in fresh if o.reason is not None)
        report.assumed.extend((o.path, o.note) for o in good if o.note is not None)
        return good


def _existing_obs_ids(conn: sa.Connection, obs_ids: list[str]) -> set[str]:
    if not obs_ids:
        return set()
    return set(conn.scalars(sa.select(spectra.c.obs_id).where(spectra.c.obs_id.in_(obs_ids))))


def _allocate_ids(conn: sa.Connection, n: int) -> list[int]:
    if n == 0:
        return []
    seq = conn.scalar(sa.text(
        "SELECT pg_get_serial_sequence('latentvo.spectra', 'spectrum_id')"))
    return list(conn.scalars(sa.text(f"SELECT nextval('{seq}') FROM generate_series(1, :n)"),
                             {"n": n}))


def _healpix(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    if len(ra) == 0:
        return np.array([], dtype=np.uint64)
    return cdshealpix.nested.lonlat_to_healpix(
        Longitude(ra, u.deg), Latitude(dec, u.deg), spectra.info["vo"].position.depth)


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]
