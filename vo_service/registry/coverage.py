"""What part of the sky, the spectrum and time a table covers, as VODataService 1.2
``coverage``: a MOC of the positions, spectral and temporal intervals.

The MOC is made from the distinct HEALPix cells of the positions, which every
table with a position already holds (NESTED, at :data:`schema.vo.HEALPIX_DEPTH`):
the database reduces the rows to cells, and :func:`moc_ascii` writes them as a
normalised MOC 2.0 ASCII string. That is a few lines of numpy rather than a call
of mocpy because the web process makes these records at start-up, and importing
mocpy loads matplotlib and astropy (about 3 s and the memory the architecture
keeps out of web workers, ``docs/architecture.md``); the tests check the result
against mocpy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import sqlalchemy as sa

from schema.vo import HEALPIX_DEPTH
from vo_service.vosi.xml import element

MOC_ORDER = 8  # cells of about 0.23 deg; VODataService asks for at least order 6
MOC_MAX_CHARS = 32_000  # "smaller than a few dozens of kB": coarser orders until it fits
PLANCK_C = 6.62607015e-34 * 299_792_458.0  # h c [J m]: photon energy = h c / wavelength


@dataclass(frozen=True)
class Coverage:
    """The coverage of one resource; each part None when unknown."""

    moc: str | None = None  # ASCII MOC, ICRS
    wavelength: tuple[float, float] | None = None  # metres
    mjd: tuple[float, float] | None = None  # MJD

    def xml(self, wavebands: Sequence[str]) -> str:
        """The ``coverage`` element (spectral limits as photon energies in J, as
        VODataService 1.2 asks), or nothing when nothing is known."""
        parts = element("spatial", self.moc)
        if self.mjd is not None:
            parts += element("temporal", f"{self.mjd[0]!r} {self.mjd[1]!r}")
        if self.wavelength is not None:
            low, high = PLANCK_C / self.wavelength[1], PLANCK_C / self.wavelength[0]
            parts += element("spectral", f"{low:.6e} {high:.6e}")
        if not parts:
            return ""
        return "<coverage>" + parts + "".join(element("waveband", w) for w in wavebands) \
            + "</coverage>"


def _runs(cells: np.ndarray) -> str:
    """Sorted cell numbers as MOC ASCII ranges (``3 5-9 12``)."""
    runs = np.split(cells, np.flatnonzero(np.diff(cells) != 1) + 1)
    return " ".join(str(r[0]) if r.size == 1 else f"{r[0]}-{r[-1]}" for r in runs)


def moc_ascii(cells: np.ndarray, order: int) -> str:
    """The normalised MOC (ASCII serialisation of MOC 2.0) of NESTED HEALPix ``cells``
    at ``order``: four sibling cells become their parent, from ``order`` up to 0."""
    current = np.unique(cells.astype(np.uint64))
    by_order: dict[int, np.ndarray] = {}
    for o in range(order, 0, -1):
        parents, counts = np.unique(current >> np.uint64(2), return_counts=True)
        full = parents[counts == 4]
        by_order[o] = current[~np.isin(current >> np.uint64(2), full)]
        current = full
    by_order[0] = current
    parts = [f"{o}/{_runs(by_order[o])}" for o in range(order + 1) if by_order[o].size]
    if not by_order[order].size:
        parts.append(f"{order}/")  # states the MOC's order
    return " ".join(parts)


def sky_moc(cells: np.ndarray) -> str | None:
    """The ASCII MOC of HEALPix ``cells`` at :data:`MOC_ORDER`, coarser until it has at
    most :data:`MOC_MAX_CHARS`; None without cells."""
    if cells.size == 0:
        return None
    order = MOC_ORDER
    text = moc_ascii(cells, order)
    while len(text) > MOC_MAX_CHARS and order > 0:
        order -= 1
        cells = np.unique(cells >> np.uint64(2))
        text = moc_ascii(cells, order)
    return text


@dataclass(frozen=True)
class Extent:
    """How many rows a table holds, and what they cover."""

    rows: int
    coverage: Coverage


def table_extent(conn: sa.Connection, table: sa.FromClause, *, healpix: str | None,
                 wavelength: tuple[str, str, float] | None,
                 mjd: tuple[str, str] | None) -> Extent:
    """The rows and coverage of ``table`` from its HEALPix column, its wavelength
    columns (low, high, factor to metres) and its MJD columns, each where the table has
    them, in one pass over the table."""
    c = table.c
    aggregates: list[sa.ColumnElement[Any]] = [sa.func.count()]
    if healpix:
        cells = c[healpix].op(">>")(2 * (HEALPIX_DEPTH - MOC_ORDER))
        aggregates.append(sa.func.array_agg(sa.distinct(cells))
                          .filter(c[healpix].is_not(None)))
    for pair in (wavelength[:2] if wavelength else None, mjd):
        if pair:
            aggregates += [sa.func.min(c[pair[0]]), sa.func.max(c[pair[1]])]
    row = list(conn.execute(sa.select(*aggregates).select_from(table)).one())
    rows = int(row.pop(0))
    moc = sky_moc(np.array(row.pop(0) or [], dtype=np.uint64)) if healpix else None

    def interval(scale: float) -> tuple[float, float] | None:
        low, high = row.pop(0), row.pop(0)
        return None if low is None or high is None else (float(low) * scale,
                                                         float(high) * scale)
    return Extent(rows, Coverage(moc=moc,
                                 wavelength=interval(wavelength[2]) if wavelength else None,
                                 mjd=interval(1.0) if mjd else None))
