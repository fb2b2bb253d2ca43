"""Positional joins as index probes on declination zones (n log n, exact).

A condition "point p within r of a moving centre c" (``CONTAINS(POINT(b..),
CIRCLE(a.., r))``, ``DISTANCE(..) < r``) with a constant r joins two tables.
The exact haversine test alone makes PostgreSQL compare every pair; a
declination band (the earlier translation) still reads every row of the
other table in a strip 2r high, which grows with the table (quadratic).

Here the side whose point is a table's declared position also gets a
necessary condition that its zone index (``schema.sky_zones``) serves:

* its zone is one of the few zones the band [dec(c) - r, dec(c) + r] spans
  (``zone = ANY(ARRAY[z0, z0 + 1, ..., z1])``: one index descent per zone);
* its RA (in [0, 360)) lies in the window ra(c) ± w around the centre, where
  w is at least asin(sin r / cos dec(c)), the largest RA difference on the
  circle. When the window crosses RA 0/360, or the circle reaches a pole, the
  window is the whole zone instead: exact everywhere, and such probes are
  rare (a fraction w/180 of them) and read only a zone's rows.

So each probe reads about the rows that can match, and the join costs
n log n. The exact test stays AND-ed; the keys are widened by a hair so
that rounding never loses a boundary match.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from schema.sky_zones import ZONES_PER_DEGREE, ra_key_sql, zone_sql
from schema.vo import PositionIndex
from vo_service.adql.values import float_sql

if TYPE_CHECKING:  # geometry calls this module
    from vo_service.adql.geometry import Point

MAX_ZONES = 64
"""Zones one probe may span (radius up to about half a degree); beyond, the
declination band (``geometry.lat_band_sql``) serves the join."""


def zone_probe_sql(p: Point, center: Point, radius: float) -> str | None:
    """Zone conditions for ``p`` within ``radius`` degrees of a moving ``center``.

    Written for one side whose point is a table's declared position (which has
    the zone index): ``p``'s if it is, else the centre's; that table is then the
    inner side of the join, probed once per row of the other (an upload, say).
    Only one side, because the other side's conditions would be checked for
    every pair that matches, to no use. None when neither side has the index,
    or the radius spans more than :data:`MAX_ZONES`.
    """
    if not 0 <= radius < 90:
        return None
    r = radius * (1 + 1e-9) + 1e-9
    zones = math.floor(2 * r * ZONES_PER_DEGREE + 1e-6) + 2
    if zones > MAX_ZONES:
        return None
    if table_position(p) is not None:
        return _probe(p, center, r, zones)
    if table_position(center) is not None:
        return _probe(center, p, r, zones)
    return None


def table_position(p: Point) -> tuple[str, PositionIndex] | None:
    """(SQL alias, declared position) when ``p`` is a table's declared position columns.

    Such tables (``latentvo.spectra``, published catalogues) have the HEALPix and
    zone indexes; uploads and computed points have none.
    """
    src_lon, src_lat = p.lon.source, p.lat.source
    if src_lon is None or src_lat is None or src_lon.rel is not src_lat.rel:
        return None
    rel = src_lon.rel
    table = rel.table if rel is not None else None
    if rel is None or table is None or table.position is None:
        return None
    pos = table.position
    if src_lon.column is None or src_lat.column is None or (
            src_lon.column.name, src_lat.column.name) != (pos.ra, pos.dec):
        return None
    return rel.sql_alias, pos


def _probe(indexed: Point, center: Point, r: float, zones: int) -> str:
    """``indexed`` lies in a zone and RA window that hold every point within r of ``center``.

    The window's half-width over-estimates asin(sin r / cos dec) by
    sin r / (cos dec - sin r) (radians; asin u <= u / (1 - u)), which needs no
    asin and grows without bound as the circle reaches a pole (cos dec <= sin r,
    i.e. |dec| + r >= 90), where the window is the whole zone; so it is when it
    crosses RA 0/360.
    """
    rs = float_sql(r)
    sin_r = float_sql(math.sin(math.radians(r)))
    lat, lon = center.lat.sql, center.lon.sql
    # the zones from dec - r to dec + r: at most ``zones`` of them; the last is named
    # by itself, so that a circle within one zone (most, for small radii) costs one
    # descent (the index scan drops repeated keys)
    first = zone_sql(f"({lat} - {rs})")
    candidates = ", ".join([first] + [f"{first} + {k}" for k in range(1, zones - 1)]
                           + [zone_sql(f"({lat} + {rs})")])
    ra = ra_key_sql(lon)
    half = f"degrees({sin_r} / greatest(cosd({lat}) - {sin_r}, 1e-300::float8))"
    width = (f"(CASE WHEN {half} < {ra} AND {half} < 360 - {ra} THEN {half} "
             "ELSE 'Infinity'::float8 END)")
    return (f"{zone_sql(indexed.lat.sql)} = ANY(ARRAY[{candidates}]) AND "
            f"{ra_key_sql(indexed.lon.sql)} BETWEEN {ra} - {width} AND {ra} + {width}")
