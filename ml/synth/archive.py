"""Writing a reproducible synthetic spectrum archive with its truth and reference labels.

Layout of ``out_dir``::

    harps/LVS-HARPS-000017.fits      one file per spectrum, one folder per instrument
    ...
    truth.csv                        true labels of every spectrum (for evaluation only)
    reference_labels.csv             "classical spectroscopy" labels for a training subset
    manifest.json                    seed, size, version, counts

The same seed gives byte-identical output whatever the number of worker processes:
spectra are rendered in fixed chunks of one instrument, each with its own random
stream derived from (seed, instrument, chunk), and no file holds a wall-clock time.
"""

from __future__ import annotations

import csv
import json
import math
import os
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from ml.synth.instruments import INSTRUMENTS, Instrument
from ml.synth.model import render_batch
from ml.synth.population import draw_population
from vo_service.archive.readers import FORMATS, fits_1d_wcs
from vo_service.archive.spectrum import Spectrum, SpectrumMeta

GENERATOR_VERSION = "1.0"
COLLECTION = "LVS-SYNTH"
CHUNK = 256  # spectra per rendering batch; part of the reproducibility contract
REFERENCE_DOMAIN = {"teff_min": 4000.0, "teff_max": 7000.0, "mh_min": -1.5}
REFERENCE_ERRORS = {
    "teff": (40.0, 80.0),
    "logg": (0.07, 0.15),
    "mh": (0.03, 0.07),
    "alpha_m": (0.03, 0.06),
}
SECONDS_PER_DAY = 86400.0


@dataclass
class ArchiveSummary:
    """What :func:`write_archive` wrote: counts by format and instrument, and the seed."""

    out_dir: Path
    seed: int
    n_spectra: int
    n_stars: int
    n_reference_stars: int
    by_format: dict[str, int]
    by_instrument: dict[str, int]
    seconds: float = field(default=0.0, compare=False)


@dataclass(frozen=True)
class Chunk:
    out_dir: str
    instrument: int
    number: int
    seed: int
    n_pixels: int
    indices: np.ndarray
    obs: np.ndarray


def obs_id(instrument: Instrument, index: int) -> str:
    """The obs_id of the ``index``-th spectrum of an instrument (the same for every seed)."""
    return f"LVS-{instrument.name}-{index:06d}"


def relative_path(instrument: Instrument, index: int) -> str:
    """Where the ``index``-th spectrum of an instrument lies below the archive folder."""
    return f"{instrument.name.lower()}/{obs_id(instrument, index)}{instrument.suffix}"


@dataclass(frozen=True)
class ChunkSetup:
    """What the spectra of one chunk are rendered with, drawn before their noise."""

    grid: np.ndarray  # the files' wavelengths (Angstrom, the instrument's frame)
    resolving_power: float
    frame: str
    response: np.ndarray  # (B, N): instrument response x each spectrum's continuum tilt
    flux_scale: np.ndarray  # (B,): brightness in the file's flux unit
    tilt: np.ndarray  # (B, 2): linear and quadratic tilt coefficients
    u: np.ndarray  # (N,): the tilt's abscissa, -1..1 over the grid


def chunk_rng(chunk: Chunk) -> np.random.Generator:
    """The random stream of one chunk (tilts, noise, defects), as the writer draws it."""
    return np.random.default_rng([chunk.seed, chunk.instrument, chunk.number])


def chunk_setup(chunk: Chunk, rng: np.random.Generator) -> ChunkSetup:
    """Draw a chunk's continuum tilts from ``rng`` and fix its grid, response and scales."""
    inst = INSTRUMENTS[chunk.instrument]
    grid = inst.grid(chunk.n_pixels)
    obs = chunk.obs
    n = len(obs)
    u = (grid - grid.mean()) / (grid[-1] - grid[0]) * 2.0
    tilt = np.hstack([rng.normal(0, 0.02, (n, 1)), rng.normal(0, 0.02, (n, 1))])
    if inst.flux_unit == "adu":
        scale = inst.unit_scale * 10.0 ** (-0.4 * obs["vmag"]) * obs["exptime"] / 1000.0
    else:
        scale = inst.unit_scale * 10.0 ** (-0.4 * obs["vmag"])
    shape = 1.0 + tilt[:, :1] * u + tilt[:, 1:] * u**2
    return ChunkSetup(grid, inst.effective_resolving_power(grid), inst.frame,
                      inst.response(grid) * shape, np.asarray(scale, np.float64), tilt, u)


def _write_chunk(chunk: Chunk) -> int:
    """Render and write one chunk of spectra of one instrument; returns the count."""
    inst = INSTRUMENTS[chunk.instrument]
    rng = chunk_rng(chunk)
    setup = chunk_setup(chunk, rng)
    grid, power, obs = setup.grid, setup.resolving_power, chunk.obs
    flux, ivar = render_batch(
        obs,
        grid,
        power,
        obs["snr"],
        rng,
        frame=inst.frame,
        response=setup.response,
        flux_scale=setup.flux_scale,
    )
    writer = FORMATS[inst.format].write
    for row, index, f, iv in zip(obs, chunk.indices, flux, ivar, strict=True):
        good = iv > 0
        meta = SpectrumMeta(
            obs_id=obs_id(inst, int(index)),
            target_name=str(row["target_name"]),
            ra=float(row["ra"]),
            dec=float(row["dec"]),
            t_min=float(row["mjd"]),
            t_max=float(row["mjd"] + row["exptime"] / SECONDS_PER_DAY),
            exptime=float(row["exptime"]),
            instrument=inst.name,
            facility=inst.facility,
            resolving_power=power,
            snr=round(float(np.median(f[good] * np.sqrt(iv[good]))), 1),
            collection=COLLECTION,
            flux_unit=inst.flux_unit,
            spec_frame=inst.frame,
            extra={"plate": 3000 + int(index) // 1000, "fiberid": int(index) % 1000 + 1},
        )
        spectrum = Spectrum(grid, f, iv, meta, inst.format)
        path = Path(chunk.out_dir) / relative_path(inst, int(index))
        if inst.format == fits_1d_wcs.NAME:
            fits_1d_wcs.write(spectrum, path, with_error=False)  # like HARPS s1d files
        else:
            writer(spectrum, path)
    return len(obs)


class _RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} spectra/s" if speed else "", style="progress.data.speed")


def _run(chunks: Sequence[Chunk], total: int, workers: int, progress: bool) -> None:
    columns = (
        TextColumn("writing spectra"),
        BarColumn(),
        MofNCompleteColumn(),
        _RateColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, disable=not progress) as bar:
        task = bar.add_task("write", total=total)
        if workers <= 1 or len(chunks) <= 1:
            results: Iterable[int] = map(_write_chunk, chunks)
            for count in results:
                bar.advance(task, count)
            return
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for count in pool.map(_write_chunk, chunks):
                bar.advance(task, count)


def _fmt(value: float, digits: int) -> str:
    return f"{value:.{digits}f}"


def _write_truth(
    path: Path,
    obs: np.ndarray,
    instruments: list[Instrument],
    assignment: np.ndarray,
    powers: list[float],
    reference: set[int],
) -> None:
    header = [
        "obs_id",
        "star_id",
        "target_name",
        "kind",
        "teff",
        "logg",
        "mh",
        "alpha_m",
        "rv",
        "ra",
        "dec",
        "t_min",
        "exptime",
        "snr",
        "airmass",
        "pwv",
        "vmag",
        "instrument",
        "resolving_power",
        "spec_frame",
        "format",
        "path",
        "in_reference",
    ]
    with path.open("w", newline="") as handle:
        out = csv.writer(handle, lineterminator="\n")
        out.writerow(header)
        for index, row in enumerate(obs):
            inst = instruments[assignment[index]]
            out.writerow(
                [
                    obs_id(inst, index),
                    int(row["star_id"]),
                    row["target_name"],
                    row["kind"],
                    _fmt(row["teff"], 2),
                    _fmt(row["logg"], 4),
                    _fmt(row["mh"], 4),
                    _fmt(row["alpha_m"], 4),
                    _fmt(row["rv"], 4),
                    _fmt(row["ra"], 8),
                    _fmt(row["dec"], 8),
                    _fmt(row["mjd"], 8),
                    _fmt(row["exptime"], 1),
                    _fmt(row["snr"], 3),
                    _fmt(row["airmass"], 4),
                    _fmt(row["pwv"], 3),
                    _fmt(row["vmag"], 3),
                    inst.name,
                    _fmt(powers[assignment[index]], 0),
                    inst.frame,
                    inst.format,
                    relative_path(inst, index),
                    int(row["star_id"]) in reference,
                ]
            )


def _reference_stars(obs: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Row (first observation) of each reference star, drawn from the restricted domain."""
    _, first = np.unique(obs["star_id"], return_index=True)
    stars = obs[first]
    eligible = np.flatnonzero(
        (stars["teff"] >= REFERENCE_DOMAIN["teff_min"])
        & (stars["teff"] <= REFERENCE_DOMAIN["teff_max"])
        & (stars["mh"] > REFERENCE_DOMAIN["mh_min"])
    )
    count = min(round(fraction * len(stars)), len(eligible))
    chosen = np.sort(rng.choice(eligible, size=count, replace=False))
    return stars[chosen]


def _write_reference(path: Path, stars: np.ndarray, rng: np.random.Generator) -> None:
    """Truth plus survey-like measurement errors (each star has its own error bars)."""
    with path.open("w", newline="") as handle:
        out = csv.writer(handle, lineterminator="\n")
        out.writerow(
            [
                "target_name",
                "teff",
                "teff_err",
                "logg",
                "logg_err",
                "mh",
                "mh_err",
                "alpha_m",
                "alpha_m_err",
            ]
        )
        digits = {"teff": 1, "logg": 3, "mh": 3, "alpha_m": 3}
        for star in stars:
            row: list[object] = [star["target_name"]]
            for key, (lo, hi) in REFERENCE_ERRORS.items():
                err = rng.uniform(lo, hi)
                row += [_fmt(star[key] + rng.normal(0.0, err), digits[key]), _fmt(err, digits[key])]
            out.writerow(row)


def plan(
    out: Path,
    n: int,
    seed: int,
    instruments: Sequence[Instrument],
    snr_range: tuple[float, float],
    n_pixels: int,
) -> tuple[np.ndarray, np.ndarray, list[Chunk]]:
    """Draw the observations, assign instruments and cut chunks, as seeded by ``seed``.

    Returns (observations, instrument index per observation into ``instruments``, chunks);
    ``ml.synth.replay`` calls it again to re-render a written archive's spectra.
    """
    rng = np.random.default_rng(seed)
    obs = draw_population(n, rng, snr_range=snr_range)
    shares = np.array([inst.share for inst in instruments])
    assignment = rng.choice(len(instruments), size=n, p=shares / shares.sum())
    chunks = []
    for k, inst in enumerate(instruments):
        indices = np.flatnonzero(assignment == k)
        for number in range(math.ceil(len(indices) / CHUNK)):
            part = indices[number * CHUNK : (number + 1) * CHUNK]
            chunks.append(
                Chunk(str(out), INSTRUMENTS.index(inst), number, seed, n_pixels, part, obs[part])
            )
    return obs, assignment, chunks


def write_archive(
    out_dir: str | Path,
    n: int,
    seed: int,
    formats: Iterable[str] | None = None,
    snr_range: tuple[float, float] = (10.0, 200.0),
    n_pixels: int = 4000,
    reference_fraction: float = 0.3,
    progress: bool = True,
    workers: int | None = None,
) -> ArchiveSummary:
    """Write ``n`` synthetic spectra plus truth, reference labels and manifest.

    ``formats`` restricts the archive to instruments writing those formats (default:
    all four). ``reference_fraction`` is the fraction of all stars that get reference
    labels, drawn only from Teff 4000-7000 K and [M/H] > -1.5 so that part of the
    archive lies outside the training domain.
    """
    started = time.perf_counter()
    wanted = set(FORMATS) if formats is None else set(formats)
    unknown = wanted - set(FORMATS)
    if unknown:
        raise ValueError(f"unknown formats {sorted(unknown)}; known: {sorted(FORMATS)}")
    instruments = [inst for inst in INSTRUMENTS if inst.format in wanted]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for inst in instruments:
        (out / inst.name.lower()).mkdir(exist_ok=True)

    obs, assignment, chunks = plan(out, n, seed, instruments, snr_range, n_pixels)
    _run(chunks, n, workers or os.cpu_count() or 1, progress)

    reference = _reference_stars(obs, reference_fraction, np.random.default_rng([seed, 1]))
    _write_reference(out / "reference_labels.csv", reference, np.random.default_rng([seed, 2]))
    powers = [inst.effective_resolving_power(inst.grid(n_pixels)) for inst in instruments]
    _write_truth(
        out / "truth.csv",
        obs,
        instruments,
        assignment,
        powers,
        {int(s) for s in reference["star_id"]},
    )

    by_format = Counter(instruments[a].format for a in assignment)
    by_instrument = Counter(instruments[a].name for a in assignment)
    n_stars = len(np.unique(obs["star_id"]))
    manifest = {
        "generator": "latentvo ml.synth",
        "version": GENERATOR_VERSION,
        "seed": seed,
        "n_spectra": n,
        "n_stars": n_stars,
        "n_reference_stars": len(reference),
        "n_pixels": n_pixels,
        "snr_range": list(snr_range),
        "reference_domain": REFERENCE_DOMAIN,
        "collection": COLLECTION,
        "counts": {
            "format": dict(sorted(by_format.items())),
            "instrument": dict(sorted(by_instrument.items())),
        },
        "instruments": [
            {
                "name": inst.name,
                "format": inst.format,
                "facility": inst.facility,
                "wave_min": inst.wave_min,
                "wave_max": inst.wave_max,
                "frame": inst.frame,
                "resolving_power": power,
                "directory": inst.name.lower(),
            }
            for inst, power in zip(instruments, powers, strict=True)
        ],
        "files": {"truth": "truth.csv", "reference_labels": "reference_labels.csv"},
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return ArchiveSummary(
        out,
        seed,
        n,
        n_stars,
        len(reference),
        dict(by_format),
        dict(by_instrument),
        time.perf_counter() - started,
    )
