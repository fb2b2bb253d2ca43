"""Preprocessed spectra on disk, keyed by file checksum, so files are read once per grid.

Training, inference, analysis and the benchmarks all need the same spectra on the
same model grid (and each spectrum's resolving power, which conditions the networks);
reading and resampling the original files is the slow part (FITS and VOTable
parsing), so the result is kept in shards of ``.npy`` arrays under
``<root>/<grid key>/``. A shard is written to a temporary directory and renamed, so a
killed run leaves no half shard; shards are memory-mapped when read. A training run
can have its spectra gathered into one contiguous memory-mapped file pair
(``load(..., into=folder)``), so the whole set is never held twice in memory and the
training loop slices it without reading files.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ml.errors import MLError
from ml.preprocess import Grid, PreprocessError, preprocess, preprocess_many
from vo_service.archive.readers import read_spectrum
from vo_service.archive.spectrum import Spectrum, SpectrumError

SHARD_SIZE = 4096
PARALLEL_FROM = 64  # fewer files than this are read in-process


@dataclass
class Loaded:
    """Arrays for the requested keys; rows of failed spectra are zero with ``ok`` False."""

    flux: np.ndarray
    ivar: np.ndarray
    ok: np.ndarray
    resolving_power: np.ndarray  # lambda/dlambda from the file, NaN where it states none
    errors: dict[str, str] = field(default_factory=dict)


Read = tuple[str, np.ndarray | None, np.ndarray | None, float, str | None]


def _read_one(args: tuple[str, str, Grid]) -> Read:
    key, path, grid = args
    try:
        spectrum = read_spectrum(Path(path))
        flux, ivar = preprocess(spectrum, grid)
    except (SpectrumError, MLError) as exc:
        return key, None, None, np.nan, str(exc)
    return key, flux, ivar, resolving_power(spectrum), None


def resolving_power(spectrum: Spectrum) -> float:
    """The file's lambda/dlambda as the cache stores it (NaN where it states none)."""
    power = spectrum.meta.resolving_power
    return np.nan if power is None else float(power)


@dataclass
class IngestPreparer:
    """Puts spectra on one model grid during ingest and keeps them in that grid's cache.

    Implements ``vo_service.archive.ingest.GridPreparer``. It is pickled into the
    ingest reader processes, so it carries only the grid and the cache root; the
    cache (whose index can be large) is opened in the ingest process on first use.
    """

    grid: Grid
    cache_root: Path
    _cache: SpectraCache | None = field(default=None, repr=False, compare=False)

    @property
    def key(self) -> str:
        """The grid's key: names this preparer's arrays in an ingest outcome."""
        return self.grid.key

    def covers(self, em_min_m: float, em_max_m: float) -> bool:
        """Whether spectra spanning these vacuum wavelengths (metres) cover the grid."""
        return self.grid.covered_by(em_min_m * 1e10, em_max_m * 1e10)

    def prepare(self, spectra: Sequence[Spectrum]
                ) -> list[tuple[np.ndarray, np.ndarray, float] | None]:
        """Each spectrum preprocessed onto the grid with its resolving power, or None
        where it has no good pixel there.
        """
        results = preprocess_many(spectra, self.grid)
        return [None if isinstance(result, PreprocessError)
                else (*result, resolving_power(spectrum))
                for spectrum, result in zip(spectra, results, strict=True)]

    def keep(self, file_sha256: Sequence[str],
             prepared: Sequence[tuple[np.ndarray, np.ndarray, float]]) -> int:
        """Add the committed spectra's arrays to the grid's cache; returns how many were new."""
        if self._cache is None:
            self._cache = SpectraCache(self.cache_root, self.grid)
        flux, ivar, power = zip(*prepared, strict=True)
        return self._cache.add(list(file_sha256), flux, ivar, power)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_cache": None}


def _array(folder: Path | None, name: str, shape: tuple[int, int]) -> np.ndarray:
    """A zeroed float32 array: in memory, or memory-mapped ``folder/name.npy``."""
    if folder is None:
        return np.zeros(shape, np.float32)
    Path(folder).mkdir(parents=True, exist_ok=True)
    return np.lib.format.open_memmap(Path(folder) / f"{name}.npy", mode="w+",
                                     dtype=np.float32, shape=shape)


class SpectraCache:
    """Preprocessed spectra of one grid, kept on disk by file checksum.

    Training and inference read arrays from here instead of parsing and resampling
    the files again.

    Parameters
    ----------
    root
        Folder of the caches; this grid's lies in ``root / grid.key``.
    grid
        The model grid the arrays are on.
    workers
        Processes that read missing files (default: the cores, at most 16).
    """

    def __init__(self, root: Path, grid: Grid, workers: int | None = None):
        self.grid = grid
        self.dir = Path(root) / grid.key
        self.workers = workers or max(1, min(os.cpu_count() or 1, 16))
        self._index: dict[str, tuple[str, int]] = {}
        self._scan()

    def _scan(self) -> None:
        if not self.dir.is_dir():
            return
        for shard in sorted(self.dir.iterdir()):
            if shard.name.startswith("shard-") and (shard / "resolving_power.npy").exists():
                for row, key in enumerate(np.load(shard / "keys.npy")):
                    self._index[str(key)] = (shard.name, row)

    def __contains__(self, key: str) -> bool:
        return key in self._index

    def load(self, keys: Sequence[str], path_of: Callable[[str], str | Path],
             progress: Callable[[int], None] | None = None, keep: bool = True,
             into: Path | None = None) -> Loaded:
        """Arrays for ``keys`` (reading the file ``path_of(key)`` for those not cached
        yet), in order.

        With ``keep`` False, spectra read now are returned without being cached. With
        ``into`` (a folder), flux and ivar are memory-mapped ``flux.npy`` and ``ivar.npy``
        written there instead of arrays in memory (the caller removes the folder).
        """
        n = self.grid.n_pixels
        out = Loaded(_array(into, "flux", (len(keys), n)), _array(into, "ivar", (len(keys), n)),
                     np.zeros(len(keys), bool), np.full(len(keys), np.nan))
        missing = [(k, str(path_of(k)), self.grid) for k in keys if k not in self._index]
        fresh: dict[str, tuple[np.ndarray, np.ndarray, float]] = {}
        if missing:
            self._fill(missing, out.errors, progress, None if keep else fresh)
        by_shard: dict[str, list[tuple[int, int]]] = {}
        for i, key in enumerate(keys):
            if key in self._index:
                shard, row = self._index[key]
                by_shard.setdefault(shard, []).append((i, row))
        for shard, pairs in by_shard.items():
            where, rows = np.array(pairs).T
            out.flux[where] = np.load(self.dir / shard / "flux.npy", mmap_mode="r")[rows]
            out.ivar[where] = np.load(self.dir / shard / "ivar.npy", mmap_mode="r")[rows]
            out.resolving_power[where] = np.load(self.dir / shard / "resolving_power.npy")[rows]
            out.ok[where] = True
        for i, key in enumerate(keys):
            if key in fresh:
                out.flux[i], out.ivar[i], out.resolving_power[i] = fresh[key]
                out.ok[i] = True
        if progress:
            progress(len(keys) - len(missing))  # the files read advanced it already
        return out

    def add(self, keys: Sequence[str], flux: Sequence[np.ndarray], ivar: Sequence[np.ndarray],
            resolving_power: Sequence[float]) -> int:
        """Store spectra preprocessed elsewhere (ingest does it while it has the file open);
        keys already cached are left as they are. Returns how many were added."""
        new = [i for i, key in enumerate(keys) if key not in self._index]
        for start in range(0, len(new), SHARD_SIZE):
            part = new[start:start + SHARD_SIZE]
            self._write_shard([keys[i] for i in part], [flux[i] for i in part],
                              [ivar[i] for i in part], [resolving_power[i] for i in part])
        return len(new)

    def _fill(self, todo: list[tuple[str, str, Grid]], errors: dict[str, str],
              progress: Callable[[int], None] | None,
              fresh: dict[str, tuple[np.ndarray, np.ndarray, float]] | None) -> None:
        first: dict[str, tuple[str, str, Grid]] = {}  # one read per file
        for item in todo:
            first.setdefault(item[0], item)
        todo = list(first.values())
        if len(todo) < PARALLEL_FROM or self.workers == 1:
            self._collect(map(_read_one, todo), errors, progress, fresh)
        else:
            with ProcessPoolExecutor(min(self.workers, len(todo) // 16 + 1)) as pool:
                self._collect(pool.map(_read_one, todo, chunksize=32), errors, progress, fresh)

    def _collect(self, results, errors: dict[str, str], progress: Callable[[int], None] | None,
                 fresh: dict[str, tuple[np.ndarray, np.ndarray, float]] | None) -> None:
        keys, fluxes, ivars, powers = [], [], [], []
        for key, flux, ivar, power, error in results:
            if error is not None:
                errors[key] = error
            elif fresh is not None:
                fresh[key] = (flux, ivar, power)
            else:
                keys.append(key)
                fluxes.append(flux)
                ivars.append(ivar)
                powers.append(power)
            if len(keys) >= SHARD_SIZE:
                self._write_shard(keys, fluxes, ivars, powers)
                keys, fluxes, ivars, powers = [], [], [], []
            if progress:
                progress(1)
        self._write_shard(keys, fluxes, ivars, powers)

    def _write_shard(self, keys: list[str], fluxes: list, ivars: list, powers: list) -> None:
        if not keys:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        name = f"shard-{uuid.uuid4().hex}"
        tmp = self.dir / f".tmp-{name}"
        tmp.mkdir()
        np.save(tmp / "flux.npy", np.stack(fluxes))
        np.save(tmp / "ivar.npy", np.stack(ivars))
        np.save(tmp / "keys.npy", np.array(keys))
        np.save(tmp / "resolving_power.npy", np.array(powers, dtype=np.float64))
        os.replace(tmp, self.dir / name)
        for row, key in enumerate(keys):
            self._index[key] = (name, row)
