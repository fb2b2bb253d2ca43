"""What part of the sky, the spectrum and time a table covers, as VODataService 1.2
``coverage``: a MOC of the positions, spectral and temporal intervals.

The MOC is made with mocpy from the distinct HEALPix cells of the positions, which
every table with a position already holds (NESTED, at
:data:`schema.vo.HEALPIX_DEPTH`): the database reduces the rows to cells, so the
cost does not grow with the rows held in one cell.
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


def sky_moc(conn: sa.Connection, table: sa.TableClause, healpix: str) -> str | None:
    """The ASCII MOC of the positions in ``table``'s HEALPix column ``healpix``; None
    when it holds no position."""
    shift = 2 * (HEALPIX_DEPTH - MOC_ORDER)
    column = table.c[healpix]
    cells = np.array(conn.execute(sa.select(column.op(">>")(shift)).distinct()
                                  .where(column.is_not(None))).scalars().all(),
                     dtype=np.uint64)
    if cells.size == 0:
        return None
    from mocpy import MOC  # loads astropy: only where records are made

    moc = MOC.from_healpix_cells(cells, np.full(cells.size, MOC_ORDER, dtype=np.uint8),
                                 MOC_ORDER)
    text = moc.to_string(format="ascii")
    order = MOC_ORDER
    while len(text) > MOC_MAX_CHARS and order > 0:
        order -= 1
        text = moc.degrade_to_order(order).to_string(format="ascii")
    return str(text)


def value_range(conn: sa.Connection, table: sa.TableClause, low: str, high: str,
                scale: float = 1.0) -> tuple[float, float] | None:
    """(smallest ``low``, largest ``high``) of ``table`` times ``scale``; None when empty."""
    row = conn.execute(sa.select(sa.func.min(table.c[low]), sa.func.max(table.c[high]))).one()
    if row[0] is None or row[1] is None:
        return None
    return float(row[0]) * scale, float(row[1]) * scale


def table_coverage(conn: sa.Connection, table: sa.TableClause, *, healpix: str | None,
                   wavelength: tuple[str, str, float] | None,
                   mjd: tuple[str, str] | None) -> Coverage:
    """The coverage of ``table`` from its HEALPix column, its wavelength columns (low,
    high, factor to metres) and its MJD columns, each where the table has them."""
    return Coverage(
        moc=sky_moc(conn, table, healpix) if healpix else None,
        wavelength=value_range(conn, table, *wavelength) if wavelength else None,
        mjd=value_range(conn, table, *mjd) if mjd else None)
