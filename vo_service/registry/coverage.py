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


def sky_moc(conn: sa.Connection, table: sa.FromClause, healpix: str) -> str | None:
    """The ASCII MOC of the positions in ``table``'s HEALPix column ``healpix``; None
    when it holds no position."""
    shift = 2 * (HEALPIX_DEPTH - MOC_ORDER)
    column = table.c[healpix]
    cells = np.array(conn.execute(sa.select(column.op(">>")(shift)).distinct()
                                  .where(column.is_not(None))).scalars().all(),
                     dtype=np.uint64)
    if cells.size == 0:
        return None
    order = MOC_ORDER
    text = moc_ascii(cells, order)
    while len(text) > MOC_MAX_CHARS and order > 0:
        order -= 1
        cells = np.unique(cells >> np.uint64(2))
        text = moc_ascii(cells, order)
    return text


def value_range(conn: sa.Connection, table: sa.FromClause, low: str, high: str,
                scale: float = 1.0) -> tuple[float, float] | None:
    """(smallest ``low``, largest ``high``) of ``table`` times ``scale``; None when empty."""
    row = conn.execute(sa.select(sa.func.min(table.c[low]), sa.func.max(table.c[high]))).one()
    if row[0] is None or row[1] is None:
        return None
    return float(row[0]) * scale, float(row[1]) * scale


def table_coverage(conn: sa.Connection, table: sa.FromClause, *, healpix: str | None,
                   wavelength: tuple[str, str, float] | None,
                   mjd: tuple[str, str] | None) -> Coverage:
    """The coverage of ``table`` from its HEALPix column, its wavelength columns (low,
    high, factor to metres) and its MJD columns, each where the table has them."""
    return Coverage(
        moc=sky_moc(conn, table, healpix) if healpix else None,
        wavelength=value_range(conn, table, *wavelength) if wavelength else None,
        mjd=value_range(conn, table, *mjd) if mjd else None)
