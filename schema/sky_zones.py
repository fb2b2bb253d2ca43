"""Declination zones: the index that makes positional joins n log n.

A table with a sky position gets a btree index on (zone of dec, RA in
[0, 360)), where a zone is a declination strip :data:`ZONE_HEIGHT` degrees
high. A cross-match probes it, for each row of the other side, with the few
zones the search circle spans and an RA window around the centre, so every
probe reads about the rows that can match (``vo_service.adql.crossmatch``).

The index stores expressions, and PostgreSQL uses an expression index only
for the very same expression, so the SQL of both is written here, once.
"""

from __future__ import annotations

import sqlalchemy as sa

ZONES_PER_DEGREE = 60
"""Zones per degree of declination: one arcminute high, several times a typical
cross-match radius, and small enough that a zone's RA window holds few rows even in
dense fields."""

ZONE_HEIGHT = 1.0 / ZONES_PER_DEGREE


def zone_sql(dec_sql: str) -> str:
    """The zone number (a float8 integer, 0 at dec -90) of a declination in SQL."""
    return f"floor(({dec_sql} + 90::float8) * {ZONES_PER_DEGREE}::float8)"


def ra_key_sql(ra_sql: str) -> str:
    """RA brought into [0, 360) (unchanged when it already is), in SQL."""
    return f"({ra_sql} - 360::float8 * floor({ra_sql} / 360::float8))"


def zone_index(table_name: str, ra: str, dec: str, name: str | None = None) -> sa.Index:
    """The zone index of a table's (ra, dec) columns, for its declaration.

    Unbound (the columns are named in SQL text), so it is passed to ``sa.Table``
    among the columns; ``name`` defaults to ``ix_<table>_sky_zone``.
    """
    return sa.Index(name or f"ix_{table_name}_sky_zone", sa.text(zone_sql(_quote(dec))),
                    sa.text(ra_key_sql(_quote(ra))))


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
