"""What the ML jobs read from the archive: spectra rows, their files, reference labels.

Spectra come from ``latentvo.spectra`` (files from the content-addressed store),
reference labels from ``latentvo_ops.reference_labels`` joined on the set's key
column (target_name or obs_id). The training checksum is computed over the
ordered file checksums and labels, so it identifies the training data independently
of database ids and can be recomputed by anyone holding the same files and labels.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import sqlalchemy as sa

from ml.errors import MLError
from ml.model_registry import model_grids
from ml.preprocess import Grid
from ml.spectra_cache import IngestPreparer, Loaded, SpectraCache
from schema.tables import LABEL_QUANTITIES, reference_label_sets, reference_labels, spectra
from vo_service.archive.store import FileStore
from vo_service.config import Settings


@dataclass
class ArchiveSpectra:
    """Columns of the selected spectra, in spectrum_id order."""

    spectrum_id: np.ndarray
    obs_id: list[str]
    target_name: list[str]
    file_sha256: list[str]
    snr: np.ndarray
    wave_min: np.ndarray  # vacuum Angstrom
    wave_max: np.ndarray

    def __len__(self) -> int:
        return len(self.spectrum_id)

    def subset(self, index: np.ndarray) -> ArchiveSpectra:
        """The spectra at positions ``index``, in that order."""
        return ArchiveSpectra(self.spectrum_id[index], [self.obs_id[i] for i in index],
                              [self.target_name[i] for i in index],
                              [self.file_sha256[i] for i in index], self.snr[index],
                              self.wave_min[index], self.wave_max[index])

    def covering(self, grid: Grid) -> np.ndarray:
        """Boolean mask of the spectra that cover the grid (all of it, or at least its
        ``min_coverage`` share for a grid over the union of the archive's ranges)."""
        return np.asarray(grid.covered_by(self.wave_min, self.wave_max), dtype=bool)


def select_spectra(conn: sa.Connection, where: sa.ColumnElement | None = None,
                   limit: int | None = None) -> ArchiveSpectra:
    """The archive's spectra (those matching ``where``), in spectrum_id order.

    The result holds columns, not files: callers load the arrays from the cache or the
    store when they need them.
    """
    query = sa.select(spectra.c.spectrum_id, spectra.c.obs_id, spectra.c.target_name,
                      spectra.c.file_sha256, spectra.c.snr, spectra.c.em_min, spectra.c.em_max
                      ).order_by(spectra.c.spectrum_id)
    if where is not None:
        query = query.where(where)
    if limit is not None:
        query = query.limit(limit)
    rows = conn.execute(query).all()
    return ArchiveSpectra(
        spectrum_id=np.array([r.spectrum_id for r in rows], dtype=np.int64),
        obs_id=[r.obs_id for r in rows],
        target_name=[r.target_name or r.obs_id for r in rows],
        file_sha256=[r.file_sha256 for r in rows],
        snr=np.array([r.snr if r.snr is not None else np.nan for r in rows], dtype=float),
        wave_min=np.array([r.em_min for r in rows], dtype=float) * 1e10,  # vacuum already
        wave_max=np.array([r.em_max for r in rows], dtype=float) * 1e10)


@dataclass
class LabelledSpectra:
    """Spectra with reference labels of one set, aligned row by row."""

    spectra: ArchiveSpectra
    quantities: list[str]
    labels: np.ndarray  # (n, quantities), NaN = missing
    errors: np.ndarray  # (n, quantities), NaN = unknown


def reference_set(conn: sa.Connection, label_set: str) -> tuple[str, dict[str, dict]]:
    """The set's key column and {key: {quantity: (value, error)}}."""
    key_column = conn.scalar(sa.select(reference_label_sets.c.key_column).where(
        reference_label_sets.c.name == label_set))
    if key_column is None:
        raise MLError(f"no reference-label set {label_set!r} (see 'latentvo labels list')")
    table: dict[str, dict] = {}
    for row in conn.execute(sa.select(reference_labels).where(
            reference_labels.c.label_set == label_set)):
        table.setdefault(row.key, {})[row.quantity] = (row.value, row.error)
    return key_column, table


def labelled_spectra(conn: sa.Connection, label_set: str) -> LabelledSpectra:
    """All spectra that have reference labels in ``label_set``."""
    key_column, table = reference_set(conn, label_set)
    quantities = [q for q in LABEL_QUANTITIES if any(q in v for v in table.values())]
    if not quantities:
        raise MLError(f"reference-label set {label_set!r} has none of the labels "
                      f"{', '.join(LABEL_QUANTITIES)}")
    column = spectra.c.target_name if key_column == "target_name" else spectra.c.obs_id
    selected = select_spectra(conn, column.in_(list(table)))
    keys = selected.target_name if key_column == "target_name" else selected.obs_id
    labels = np.full((len(selected), len(quantities)), np.nan)
    errors = np.full_like(labels, np.nan)
    for i, key in enumerate(keys):
        for j, q in enumerate(quantities):
            value, error = table[key].get(q, (np.nan, np.nan))
            labels[i, j] = value
            errors[i, j] = np.nan if error is None else error
    return LabelledSpectra(selected, quantities, labels, errors)


def training_checksum(file_sha256: list[str], labels: np.ndarray | None = None,
                      errors: np.ndarray | None = None) -> str:
    """SHA-256 over the ordered file checksums (and labels with errors, when given)."""
    digest = hashlib.sha256()
    for i, sha in enumerate(file_sha256):
        digest.update(sha.encode())
        if labels is not None:
            assert errors is not None, "labels come with their errors"
            digest.update(np.asarray(labels[i], np.float64).tobytes())
            digest.update(np.asarray(errors[i], np.float64).tobytes())
    return digest.hexdigest()


def cache_root(settings: Settings) -> Path:
    """Where the preprocessed arrays of every grid are kept."""
    return settings.home / "cache" / "preprocessed"


def cache_for(settings: Settings, grid: Grid) -> SpectraCache:
    """The cache of ``grid``'s preprocessed spectra."""
    return SpectraCache(cache_root(settings), grid)


def grid_preparers(engine: sa.Engine, settings: Settings) -> list[IngestPreparer]:
    """What ingest hands new spectra to: one preparer per registered model grid."""
    return [IngestPreparer(grid, cache_root(settings)) for grid in model_grids(engine)]


def load_arrays(settings: Settings, grid: Grid, selected: ArchiveSpectra,
                progress: Callable[[int], None] | None = None,
                cache: SpectraCache | None = None, into: Path | None = None) -> Loaded:
    """Preprocessed arrays of the selected spectra (files read once per grid, then cached);
    with ``into``, memory-mapped files in that folder (see ``SpectraCache.load``)."""
    cache = cache or cache_for(settings, grid)
    return cache.load(selected.file_sha256, FileStore(settings.store_dir).path_for, progress,
                      into=into)
