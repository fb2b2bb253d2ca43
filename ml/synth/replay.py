"""Re-rendering a written synthetic archive's spectra without noise: the bound's forward model.

``write_archive`` is deterministic: the observations, instruments and chunks follow from
the seed in ``manifest.json``, and each chunk's continuum tilts, noise and defects from
its own random stream. Replaying that gives, for every file, the noise-free observed
spectrum on the file's own pixels as a function of (Teff, log g, [M/H], [alpha/M], RV)
with everything else -- instrument, resolution, frame, response, tellurics (airmass,
PWV), brightness -- as in the file, and the exact inverse variance the generator used,
0 on the cosmic-ray and dead pixels (which stay out of the model).

Three continuum nuisance parameters can be freed besides the labels and RV: the log of
the flux scale and the two tilt coefficients, which an estimator that normalises each
spectrum does not know either.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from ml.crb import bound, fisher, jacobian
from ml.synth.archive import Chunk, ChunkSetup, chunk_rng, chunk_setup, obs_id, plan, relative_path
from ml.synth.instruments import INSTRUMENTS
from ml.synth.model import observed_flux, render_batch
from vo_service.archive.readers import FORMATS
from vo_service.archive.spectrum import air_to_vacuum

LABELS = ("teff", "logg", "mh", "alpha_m")
PARAMETERS = (*LABELS, "rv", "ln_scale", "tilt1", "tilt2")
"""Forward-model parameters: the labels, RV (km/s), then the continuum nuisances."""
STEPS = np.array([5.0, 0.01, 0.005, 0.005, 0.05, 1e-3, 1e-3, 1e-3])
"""Central-difference steps per parameter: well inside the scale on which spectra bend
(hundreds of K, tenths of dex, a resolution element of >= 2.6 km/s) and far above
round-off; halving or doubling them changes the bounds by about 1 % at most."""
BATCH = 16
"""Spectra whose 2 x P shifted renders share one call of the renderer."""


@dataclass(frozen=True)
class ChunkModel:
    """The spectra of one written chunk: their truth, noise and noise-free forward model."""

    chunk: Chunk
    setup: ChunkSetup
    obs_ids: list[str]
    theta: np.ndarray  # (B, P) true parameters, PARAMETERS order
    snr: np.ndarray  # (B,) the S/N the generator aimed at
    ivar: np.ndarray  # (B, N) the generator's exact inverse variance, 0 on defects
    flux: np.ndarray  # (B, N) the flux as written (float64, before the file's float32)
    wavelength: np.ndarray  # (N,) the file's pixels, in the instrument's frame

    def model(self, rows: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """Noise-free flux (S, K, N) of spectra ``rows`` (S,) at parameters (S, K, P)."""
        setup = self.setup
        n_spec, n_vec, _ = theta.shape
        flat = theta.reshape(n_spec * n_vec, -1)
        obs = self.chunk.obs[np.repeat(rows, n_vec)]
        labels = {k: flat[:, j] for j, k in enumerate((*LABELS, "rv"))}
        labels |= {"airmass": obs["airmass"], "pwv": obs["pwv"]}
        inst = INSTRUMENTS[self.chunk.instrument]
        shape = 1.0 + flat[:, 6:7] * setup.u + flat[:, 7:8] * setup.u**2
        flux = observed_flux(labels, setup.grid, setup.resolving_power, frame=setup.frame,
                             response=inst.response(setup.grid) * shape,
                             flux_scale=setup.flux_scale[np.repeat(rows, n_vec)]
                             * np.exp(flat[:, 5]))
        return flux.reshape(n_spec, n_vec, -1)

    def noise_free(self) -> np.ndarray:
        """The noise-free flux (B, N) of every spectrum of the chunk at its true parameters."""
        rows = np.arange(len(self.obs_ids))
        return self.model(rows, self.theta[:, None, :])[:, 0]


def _chunk_model(chunk: Chunk, obs_ids: list[str]) -> ChunkModel:
    rng = chunk_rng(chunk)
    setup = chunk_setup(chunk, rng)
    obs = chunk.obs
    # The writer's call, on the same random stream: the same noise and defects.
    flux, ivar = render_batch(obs, setup.grid, setup.resolving_power, obs["snr"], rng,
                              frame=setup.frame, response=setup.response,
                              flux_scale=setup.flux_scale)
    theta = np.column_stack([obs[k] for k in (*LABELS, "rv")]
                            + [np.zeros(len(obs)), setup.tilt])
    return ChunkModel(chunk, setup, obs_ids, theta, np.asarray(obs["snr"], float), ivar, flux,
                      setup.grid)


class ArchiveReplay:
    """A written synthetic archive, re-planned from its manifest, chunk by chunk."""

    def __init__(self, archive_dir: str | Path) -> None:
        self.root = Path(archive_dir)
        manifest = json.loads((self.root / "manifest.json").read_text())
        names = [inst["name"] for inst in manifest["instruments"]]
        instruments = [next(i for i in INSTRUMENTS if i.name == n) for n in names]
        obs, assignment, chunks = plan(self.root, manifest["n_spectra"], manifest["seed"],
                                       instruments, tuple(manifest["snr_range"]),
                                       manifest["n_pixels"])
        self.obs_ids = [obs_id(instruments[a], i) for i, a in enumerate(assignment)]
        self.paths = [relative_path(instruments[a], i) for i, a in enumerate(assignment)]
        self.chunks = chunks
        self._where: dict[str, tuple[int, int]] = {}
        for c, chunk in enumerate(chunks):
            for r, index in enumerate(chunk.indices):
                self._where[self.obs_ids[index]] = (c, r)

    def locate(self, obs_id: str) -> tuple[int, int]:
        """(chunk number in :attr:`chunks`, row in the chunk) of a spectrum."""
        return self._where[obs_id]

    def chunk(self, number: int) -> ChunkModel:
        """Re-render chunk ``number``: truth, written flux and ivar, forward model."""
        chunk = self.chunks[number]
        return _chunk_model(chunk, [self.obs_ids[i] for i in chunk.indices])

    def read_file(self, obs_id: str) -> tuple[np.ndarray, np.ndarray]:
        """(flux, ivar) of a spectrum's file as ``latentvo ingest`` reads it."""
        path = self.root / self.paths[self.obs_ids.index(obs_id)]
        inst = next(i for i in INSTRUMENTS if obs_id.startswith(f"LVS-{i.name}-"))
        spectrum = FORMATS[inst.format].read(path)
        return np.asarray(spectrum.flux, float), np.asarray(spectrum.ivar, float)


def group_by_chunk(replay: ArchiveReplay, obs_ids: Sequence[str]) -> dict[int, list[int]]:
    """Rows (within their chunk) of the wanted spectra, keyed by chunk number."""
    groups: dict[int, list[int]] = {}
    for o in obs_ids:
        c, r = replay.locate(o)
        groups.setdefault(c, []).append(r)
    return groups


Range = tuple[float, float]
"""A wavelength interval (vacuum Angstrom)."""


@dataclass(frozen=True)
class ArchiveBounds:
    """Cramer-Rao bounds (spectra, P) of written spectra, in PARAMETERS order."""

    free: np.ndarray  # labels, RV, flux scale and tilt all free
    known: np.ndarray  # continuum held at the truth (its columns NaN)
    within: dict[Range, np.ndarray]  # everything free, only the file's pixels in the range


def _vacuum(model: ChunkModel) -> np.ndarray:
    wave = model.wavelength
    return air_to_vacuum(wave) if model.setup.frame == "air" else wave


def _chunk_bounds(job: tuple[Chunk, list[int], tuple[Range, ...]]
                  ) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Bounds (rows, P) of some spectra of one chunk: continuum free, continuum known, and
    continuum free with only the pixels inside each wavelength range."""
    chunk, rows, ranges = job
    model = _chunk_model(chunk, [])
    wave = _vacuum(model)
    inside = [(wave >= lo) & (wave <= hi) for lo, hi in ranges]
    free: list[np.ndarray] = []
    known: list[np.ndarray] = []
    within: list[list[np.ndarray]] = [[] for _ in ranges]
    labels_and_rv = np.arange(len(PARAMETERS)) < len(LABELS) + 1
    for start in range(0, len(rows), BATCH):
        part = np.asarray(rows[start : start + BATCH])
        jac = jacobian(partial(model.model, part), model.theta[part], STEPS)
        information = fisher(jac, model.ivar[part])
        free.append(bound(information).sigma)
        known.append(bound(information, labels_and_rv).sigma)
        for sink, mask in zip(within, inside, strict=True):
            sink.append(bound(fisher(jac, model.ivar[part] * mask)).sigma)
    return (np.concatenate(free), np.concatenate(known),
            [np.concatenate(sink) for sink in within])


def archive_bounds(replay: ArchiveReplay, obs_ids: Sequence[str], workers: int = 1,
                   ranges: Sequence[Range] = ()) -> ArchiveBounds:
    """Cramer-Rao bounds of written spectra (see :class:`ArchiveBounds`).

    ``free`` frees everything (labels, RV, flux scale and tilt: what an estimator that
    normalises each spectrum faces); ``known`` holds the continuum at the truth (labels
    and RV only). ``within[range]`` is ``free`` for an estimator that sees only the file's
    pixels inside ``range``: a model grid narrower than a file discards the rest, and
    the ratio of the two bounds is the information that costs. Chunks run in ``workers``
    processes; the Jacobian of each spectrum is computed once for all of them.
    """
    ranges = tuple((float(lo), float(hi)) for lo, hi in ranges)
    unique = list(dict.fromkeys(obs_ids))
    groups = group_by_chunk(replay, unique)
    jobs = [(replay.chunks[c], rows, ranges) for c, rows in groups.items()]
    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(_chunk_bounds, jobs))
    else:
        results = [_chunk_bounds(job) for job in jobs]
    found: dict[str, list[np.ndarray]] = {}
    for (c, rows), (f, k, w) in zip(groups.items(), results, strict=True):
        chunk = replay.chunks[c]
        for i, r in enumerate(rows):
            found[replay.obs_ids[chunk.indices[r]]] = [f[i], k[i], *(x[i] for x in w)]

    def column(j: int) -> np.ndarray:
        return np.array([found[o][j] for o in obs_ids]).reshape(len(obs_ids), len(PARAMETERS))

    return ArchiveBounds(column(0), column(1),
                         {r: column(2 + j) for j, r in enumerate(ranges)})
