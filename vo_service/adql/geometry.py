"""ADQL sky geometry on plain PostgreSQL (no pgsphere, no q3c).

Geometry values are kept symbolic during translation (a point is a pair of
SQL expressions, a circle a point and a radius, a polygon a list of points)
and become SQL only as what a query needs:

* in results, DALI arrays (``point`` double[2], ``circle`` double[3],
  ``polygon`` double[2n]) in ICRS degrees;
* in conditions, exact tests on the unit sphere: the haversine form of the
  great-circle distance for circles, and for polygons half-space tests
  against great-circle edges (the polygon is split into convex pieces in a
  gnomonic projection, so either vertex orientation gives the smaller
  region);
* for positional searches on a table with a HEALPix column, a superset of
  the matching rows as ranges of that (btree-indexed) column, computed with
  cdshealpix from a cone around the region, AND-ed to the exact test;
* for circles of constant radius around a moving centre (cross-match joins),
  declination zones and an RA window around the centre, AND-ed to the exact
  test, which the zone index of either table serves (``crossmatch``); for
  radii too large for zones, a declination band, which a btree index on the
  other side's declination can serve.

Everything is exact at the poles and across RA = 0/360 because no test
works in (ra, dec) rectangles.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import TypeAlias

import numpy as np
import numpy.typing as npt

from vo_service.adql import crossmatch
from vo_service.adql import types as T
from vo_service.adql.ast import Pos
from vo_service.adql.errors import ADQLSemanticError, at
from vo_service.adql.values import Value, float_sql

DEG = math.pi / 180.0
SQ_DEG_PER_SR = (180.0 / math.pi) ** 2
# HEALPix cell size at depth 0 is about 58.6 deg.
_DEPTH0_SIZE = 58.6
_MAX_RANGE_RADIUS = 30.0  # beyond this a sequential scan is as good as ranges

# Coordinate systems accepted (and read as ICRS); ADQL 2.1 deprecates the argument.
_ICRS_LIKE = ("", "ICRS", "FK5", "J2000", "UNKNOWNFRAME")

Vec: TypeAlias = npt.NDArray[np.float64]
"""A 3-vector (unit vectors on the sphere, great-circle normals)."""


@dataclass(slots=True)
class Point:
    """A point as two SQL values (ICRS degrees), constant or not."""

    lon: Value
    lat: Value

    def const(self) -> tuple[float, float] | None:
        """(lon, lat) when both are constants, else None."""
        lon, lat = self.lon.number(), self.lat.number()
        return None if lon is None or lat is None else (float(lon), float(lat))


@dataclass(slots=True)
class Circle:
    """A circle: its centre and its radius in degrees."""

    center: Point
    radius: Value


@dataclass(slots=True)
class Polygon:
    """A polygon: its vertices, or for a polygon column only the column's SQL."""

    vertices: list[Point] | None  # None: a polygon column of unknown size
    sql: str | None = None  # the array, for polygon columns

    def const(self) -> list[tuple[float, float]] | None:
        """The vertices as (lon, lat) when all are constants, else None."""
        if self.vertices is None:
            return None
        out: list[tuple[float, float]] = []
        for v in self.vertices:
            c = v.const()
            if c is None:
                return None
            out.append(c)
        return out


Geometry: TypeAlias = Point | Circle | Polygon
"""The symbolic form of an ADQL geometry value."""


# ------------------------------------------------------------------ values


def check_coordsys(value: Value, pos: Pos) -> None:
    """Accept a geometry constructor's coordinate-system argument if it means ICRS.

    ADQL 2.1 deprecates the argument; a constant one must name ICRS (or an
    equivalent), a NULL or computed one (a column, an expression) is ignored.

    Raises
    ------
    ADQLSemanticError
        For a constant naming any other frame: this service works in ICRS only.
    """
    if not value.is_const or value.const is None:
        return
    text = str(value.const).strip().upper()
    if text.split(" ")[0] not in _ICRS_LIKE:
        raise ADQLSemanticError(
            f"coordinate system {value.const!r} is not supported; this service works in "
            "ICRS (give 'ICRS' or leave the argument out)",
            token=str(value.const), **at(pos))


def _component(array_sql: str, index: int) -> Value:
    return Value(f"({array_sql})[{index}]", T.DOUBLE, unit="deg")


def from_value(value: Value, pos: Pos) -> Geometry:
    """The symbolic geometry of a geometry-typed value (column or expression)."""
    if value.geom is not None:
        return value.geom
    if value.type == T.POINT:
        return Point(_component(value.sql, 1), _component(value.sql, 2))
    if value.type == T.CIRCLE:
        return Circle(Point(_component(value.sql, 1), _component(value.sql, 2)),
                      _component(value.sql, 3))
    if value.type == T.POLYGON:
        return Polygon(None, value.sql)
    raise ADQLSemanticError(f"a geometry is needed here, not a {value.type} value",
                            **at(pos))


def point_value(p: Point) -> Value:
    """The value of a POINT: a DALI point array that keeps its symbolic form."""
    return Value(f"ARRAY[{p.lon.sql}, {p.lat.sql}]::float8[]", T.POINT, geom=p,
                 ucd="pos.eq", unit="deg")


def circle_value(c: Circle) -> Value:
    """The value of a CIRCLE: a DALI circle array that keeps its symbolic form."""
    return Value(
        f"ARRAY[{c.center.lon.sql}, {c.center.lat.sql}, {c.radius.sql}]::float8[]",
        T.CIRCLE, geom=c, unit="deg")


def polygon_value(poly: Polygon) -> Value:
    """The value of a POLYGON: a DALI polygon array that keeps its symbolic form."""
    if poly.vertices is None:
        assert poly.sql is not None, "a polygon without vertices is a column's SQL"
        return Value(poly.sql, T.POLYGON, geom=poly, unit="deg")
    coords = ", ".join(f"{v.lon.sql}, {v.lat.sql}" for v in poly.vertices)
    return Value(f"ARRAY[{coords}]::float8[]", T.POLYGON, geom=poly, unit="deg")


def box_polygon(center: Point, width: Value, height: Value) -> Polygon:
    """ADQL BOX: the polygon with corners (lon ± w/2, lat ± h/2).

    With constant arguments the corners are computed here (so that the box can
    be used in conditions, which need constant vertices); otherwise they are
    SQL expressions, as for a POLYGON computed from columns.
    """
    c, w, h = center.const(), width.number(), height.number()
    if c is not None and w is not None and h is not None:
        lon, lat = c
        corners = [(lon - w / 2, lat - h / 2), (lon + w / 2, lat - h / 2),
                   (lon + w / 2, lat + h / 2), (lon - w / 2, lat + h / 2)]
        return Polygon([Point(_const(x), _const(y)) for x, y in corners])

    def shifted(v: Value, sign: str, extent: Value) -> Value:
        n = extent.number()
        half = (float_sql(n / 2) if n is not None
                else f"0.5 * CAST({extent.sql} AS DOUBLE PRECISION)")
        return Value(f"({v.sql} {sign} {half})", T.DOUBLE, unit="deg")

    return Polygon([Point(shifted(center.lon, dx, width), shifted(center.lat, dy, height))
                    for dx, dy in (("-", "-"), ("+", "-"), ("+", "+"), ("-", "+"))])


def _const(x: float) -> Value:
    return Value(float_sql(x), T.DOUBLE, const=x, unit="deg")


# ------------------------------------------------------------------ sphere math


def unit_vector(lon: float, lat: float) -> Vec:
    """The unit vector of (lon, lat) in degrees."""
    lon_r, lat_r = lon * DEG, lat * DEG
    return np.array([math.cos(lat_r) * math.cos(lon_r), math.cos(lat_r) * math.sin(lon_r),
                     math.sin(lat_r)])


def _angle_deg(a: Vec, b: Vec) -> float:
    return math.degrees(math.atan2(np.linalg.norm(np.cross(a, b)), float(np.dot(a, b))))


@dataclass(frozen=True)
class PolygonShape:
    """A constant polygon prepared for SQL: convex pieces, edges, bounding cone."""

    pieces: tuple[tuple[Vec, ...], ...]  # inward edge normals per convex piece
    edges: tuple[tuple[Vec, Vec], ...]  # boundary arcs (A, B)
    vertices: tuple[Vec, ...]
    center: Vec
    radius: float  # deg, cone around center containing the polygon
    area: float  # sr


def _cross2(o: tuple[float, float], a: tuple[float, float], b: tuple[float, float]
            ) -> float:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def _ear_clip(pts: list[tuple[float, float]]) -> list[tuple[int, ...]]:
    """Triangles of a simple counter-clockwise planar polygon."""
    idx = list(range(len(pts)))
    triangles: list[tuple[int, ...]] = []
    guard = 0
    while len(idx) > 3 and guard < 10000:
        guard += 1
        for k in range(len(idx)):
            i, j, m = idx[k - 1], idx[k], idx[(k + 1) % len(idx)]
            if _cross2(pts[i], pts[j], pts[m]) <= 0:
                continue
            if any(
                _cross2(pts[i], pts[j], pts[q]) >= 0 and _cross2(pts[j], pts[m], pts[q]) >= 0
                and _cross2(pts[m], pts[i], pts[q]) >= 0
                for q in idx if q not in (i, j, m)
            ):
                continue
            triangles.append((i, j, m))
            del idx[k]
            break
        else:
            raise ValueError("polygon is not simple")
    triangles.append(tuple(idx))
    return triangles


@lru_cache(maxsize=256)
def polygon_shape(vertices: tuple[tuple[float, float], ...]) -> PolygonShape:
    """Prepare a constant polygon; raises ValueError when it cannot be handled."""
    vs = [unit_vector(lon, lat) for lon, lat in vertices]
    # drop repeated consecutive vertices (and a closing repeat of the first)
    clean: list[Vec] = []
    for v in vs:
        if not clean or np.linalg.norm(v - clean[-1]) > 1e-14:
            clean.append(v)
    if len(clean) > 1 and np.linalg.norm(clean[0] - clean[-1]) <= 1e-14:
        clean.pop()
    if len(clean) < 3:
        raise ValueError("a polygon needs at least 3 distinct vertices")
    center = np.sum(clean, axis=0)
    norm = np.linalg.norm(center)
    if norm < 1e-12:
        raise ValueError("polygon does not fit in a hemisphere")
    center = center / norm
    if min(float(np.dot(v, center)) for v in clean) <= 1e-9:
        raise ValueError("polygon does not fit in a hemisphere")
    # gnomonic projection around the centre: great circles become straight lines
    helper = np.array([1.0, 0.0, 0.0]) if abs(center[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    e1 = np.cross(helper, center)
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(center, e1)
    plane = [(float(np.dot(v, e1) / np.dot(v, center)), float(np.dot(v, e2) / np.dot(v, center)))
             for v in clean]
    signed = sum(_cross2((0.0, 0.0), plane[i], plane[(i + 1) % len(plane)])
                 for i in range(len(plane)))
    if abs(signed) < 1e-18:
        raise ValueError("degenerate polygon")
    if signed < 0:  # make it counter-clockwise: either orientation means the small region
        clean.reverse()
        plane.reverse()
    n = len(clean)
    convex = all(_cross2(plane[i], plane[(i + 1) % n], plane[(i + 2) % n]) >= 0
                 for i in range(n))
    triangles = [tuple(range(n))] if convex else _ear_clip(plane)

    def normal(a: Vec, b: Vec) -> Vec:
        c = np.cross(a, b)
        return c / np.linalg.norm(c)

    pieces = tuple(
        tuple(normal(clean[t[i]], clean[t[(i + 1) % len(t)]]) for i in range(len(t)))
        for t in triangles
    )
    area = 0.0
    for t in ([(0, i, i + 1) for i in range(1, n - 1)] if convex else triangles):
        a, b, c = clean[t[0]], clean[t[1]], clean[t[2]]
        num = abs(float(np.dot(a, np.cross(b, c))))
        den = 1 + float(np.dot(a, b) + np.dot(b, c) + np.dot(c, a))
        area += 2 * math.atan2(num, den)
    edges = tuple((clean[i], clean[(i + 1) % n]) for i in range(n))
    radius = max(_angle_deg(center, v) for v in clean)
    return PolygonShape(pieces, edges, tuple(clean), center, radius, area)


def shape_of(poly: Polygon, pos: Pos) -> PolygonShape:
    """The prepared shape of a constant polygon, for conditions.

    Raises
    ------
    ADQLSemanticError
        When the vertices are not constant or the polygon cannot be handled
        (fewer than 3 distinct vertices, wider than a hemisphere, not simple).
    """
    coords = poly.const()
    if coords is None:
        raise ADQLSemanticError(
            "geometric tests with polygons need constant vertices (a polygon column or a "
            "polygon computed from columns is only supported in the SELECT list)",
            token="POLYGON", **at(pos))
    try:
        return polygon_shape(tuple(coords))
    except ValueError as exc:
        raise ADQLSemanticError(f"unsupported polygon: {exc}", token="POLYGON",
                                **at(pos)) from None


# ------------------------------------------------------------------ SQL building


def _unit_vector_sql(p: Point) -> tuple[str, str, str]:
    c = p.const()
    if c is not None:
        v = unit_vector(*c)
        return float_sql(float(v[0])), float_sql(float(v[1])), float_sql(float(v[2]))
    lon, lat = p.lon.sql, p.lat.sql
    return (f"(cosd({lat}) * cosd({lon}))", f"(cosd({lat}) * sind({lon}))", f"sind({lat})")


def _dot_sql(n: Vec, vec: tuple[str, str, str]) -> str:
    return (f"({float_sql(float(n[0]))} * {vec[0]} + {float_sql(float(n[1]))} * {vec[1]} "
            f"+ {float_sql(float(n[2]))} * {vec[2]})")


def haversine_sql(p: Point, q: Point) -> str:
    """hav(angle between p and q) = sin^2(angle/2), folding what is constant."""
    pc, qc = p.const(), q.const()
    if pc is not None and qc is None:
        p, q, pc, qc = q, p, qc, pc
    lon1, lat1 = p.lon.sql, p.lat.sql
    if qc is not None:
        lon2, lat2 = float_sql(qc[0]), float_sql(qc[1])
        cos2 = float_sql(math.cos(qc[1] * DEG))
    else:
        lon2, lat2 = q.lon.sql, q.lat.sql
        cos2 = f"cosd({lat2})"
    return (f"(power(sind(({lat1} - {lat2}) / 2), 2) + cosd({lat1}) * {cos2} * "
            f"power(sind(({lon1} - {lon2}) / 2), 2))")


def distance_sql(p: Point, q: Point) -> str:
    """Great-circle distance in degrees (haversine: accurate at all scales)."""
    return f"degrees(2 * asin(least(1::float8, sqrt({haversine_sql(p, q)}))))"


def _hav_threshold(radius: Value) -> str:
    r = radius.number()
    if r is not None:
        r = min(max(float(r), -1.0), 180.0)
        return float_sql(math.sin(r * DEG / 2) ** 2) if r >= 0 else "(-1)::float8"
    return f"power(sind(least(greatest({radius.sql}, 0), 180) / 2), 2)"


def within_sql(p: Point, center: Point, radius: Value, strict: bool = False) -> str:
    """p lies within ``radius`` degrees of ``center`` (exact, haversine)."""
    op = "<" if strict else "<="
    cond = f"{haversine_sql(p, center)} {op} {_hav_threshold(radius)}"
    r = radius.number()
    if r is None:
        cond = f"({cond} AND {radius.sql} >= 0)"
    return f"({cond})"


def in_polygon_sql(p: Point, shape: PolygonShape) -> str:
    """``p`` inside the polygon: on the inner side of every edge of one convex piece."""
    vec = _unit_vector_sql(p)
    pieces = [" AND ".join(f"{_dot_sql(n, vec)} >= 0" for n in piece) for piece in shape.pieces]
    return "(" + " OR ".join(f"({piece})" for piece in pieces) + ")"


def _circle_touches_boundary_sql(circle: Circle, shape: PolygonShape, strict: bool) -> str:
    """Some boundary point of the polygon lies within the circle.

    For each edge arc A-B with unit normal n: a vertex within the circle, or
    the nearest point of the great circle lies inside the arc and the circle
    reaches it (|n.c| <= sin r). Every test is linear in the centre vector c.
    """
    c = _unit_vector_sql(circle.center)
    r = circle.radius
    rn = r.number()
    if rn is not None:
        rn = min(max(float(rn), 0.0), 90.0)
        cos_r, sin_r = float_sql(math.cos(rn * DEG)), float_sql(math.sin(rn * DEG))
    else:
        cos_r, sin_r = f"cosd({r.sql})", f"sind({r.sql})"
    op = ">" if strict else ">="
    terms = [f"{_dot_sql(v, c)} {op} {cos_r}" for v in shape.vertices]
    for a, b in shape.edges:
        n = np.cross(a, b)
        n = n / np.linalg.norm(n)
        terms.append(
            f"(abs({_dot_sql(n, c)}) {'<' if strict else '<='} {sin_r} AND "
            f"{_dot_sql(np.cross(n, a), c)} >= 0 AND {_dot_sql(np.cross(b, n), c)} >= 0)")
    return "(" + " OR ".join(terms) + ")"


# ------------------------------------------------------------------ HEALPix ranges


@lru_cache(maxsize=512)
def cone_ranges(lon: float, lat: float, radius: float, depth: int) -> tuple[tuple[int, int], ...]:
    """Ranges of NESTED HEALPix indices at ``depth`` covering a cone (a superset)."""
    import astropy.units as u
    from astropy.coordinates import Latitude, Longitude
    from cdshealpix.nested import cone_search

    radius = radius * (1 + 1e-9) + 1e-9  # never lose a boundary cell to rounding
    order = int(math.floor(math.log2(_DEPTH0_SIZE / max(radius, 1e-9))))
    order = max(0, min(order, depth - 2, 27))
    ipix, depths, _ = cone_search(Longitude(lon % 360.0 * u.deg), Latitude(lat * u.deg),
                                  radius * u.deg, depth=order, depth_delta=2)
    shift = 2 * (depth - depths.astype(np.int64))
    lo = ipix.astype(np.int64) << shift
    hi = ((ipix.astype(np.int64) + 1) << shift) - 1
    order_ = np.argsort(lo)
    ranges: list[list[int]] = []
    for a, b in zip(lo[order_].tolist(), hi[order_].tolist(), strict=True):
        if ranges and a <= ranges[-1][1] + 1:
            ranges[-1][1] = max(ranges[-1][1], b)
        else:
            ranges.append([a, b])
    return tuple((a, b) for a, b in ranges)


def index_sql(p: Point, lon: float, lat: float, radius: float) -> str | None:
    """HEALPix range condition for points of an indexed table within a cone."""
    found = crossmatch.table_position(p)
    if found is None:
        return None
    alias, pos = found
    if not (-90.0 <= lat <= 90.0) or not (0 <= radius <= _MAX_RANGE_RADIUS):
        return None
    column = f"{alias}.{_quote(pos.healpix)}"
    ranges = cone_ranges(round(lon, 12), round(lat, 12), round(radius, 12), pos.depth)
    return "(" + " OR ".join(f"{column} BETWEEN {a} AND {b}" for a, b in ranges) + ")"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# ------------------------------------------------------------------ predicates


def _kind(g: Geometry) -> str:
    return type(g).__name__.lower()


def contains_sql(inner: Geometry, outer: Geometry, pos: Pos,
                 settings: dict[str, str] | None = None) -> str:
    """SQL boolean for ADQL CONTAINS(inner, outer); see :func:`point_in_circle_sql`.

    Parameters
    ----------
    inner, outer
        The two geometries, in the order of the ADQL call.
    pos
        Where the call is, for errors.
    settings
        The query's session settings; receives the planner settings that a
        cross-match condition needs.

    Raises
    ------
    ADQLSemanticError
        For pairs of geometries this service cannot test (e.g. a polygon in a
        polygon) and polygons that cannot be tested.
    """
    if isinstance(inner, Point):
        if isinstance(outer, Circle):
            return point_in_circle_sql(inner, outer, settings=settings)
        if isinstance(outer, Polygon):
            shape = shape_of(outer, pos)
            exact = in_polygon_sql(inner, shape)
            ranges = index_sql(inner, *_lonlat(shape.center), shape.radius)
            return f"({ranges} AND {exact})" if ranges else exact
        return (f"({inner.lon.sql} = {outer.lon.sql} AND {inner.lat.sql} = {outer.lat.sql})")
    if isinstance(inner, Circle) and isinstance(outer, Circle):
        return (f"({distance_sql(inner.center, outer.center)} + {inner.radius.sql} "
                f"<= {outer.radius.sql})")
    if isinstance(inner, Polygon) and isinstance(outer, Circle):
        shape = shape_of(inner, pos)
        tests = [within_sql(Point(_const(lo), _const(la)), outer.center, outer.radius)
                 for lo, la in (_lonlat(v) for v in shape.vertices)]
        return "(" + " AND ".join(tests) + ")"
    if isinstance(inner, Circle) and isinstance(outer, Polygon):
        shape = shape_of(outer, pos)
        return (f"({in_polygon_sql(inner.center, shape)} AND NOT "
                f"{_circle_touches_boundary_sql(inner, shape, strict=True)})")
    raise ADQLSemanticError(f"CONTAINS({_kind(inner)}, {_kind(outer)}) is not supported",
                            token="CONTAINS", **at(pos))


def intersects_sql(a: Geometry, b: Geometry, pos: Pos,
                   settings: dict[str, str] | None = None) -> str:
    """SQL boolean for ADQL INTERSECTS(a, b); a point reads as CONTAINS(point, other).

    Parameters and errors as for :func:`contains_sql`.
    """
    if isinstance(a, Point):
        return contains_sql(a, b, pos, settings)
    if isinstance(b, Point):
        return contains_sql(b, a, pos, settings)
    if isinstance(a, Circle) and isinstance(b, Circle):
        return (f"({distance_sql(a.center, b.center)} <= {a.radius.sql} + {b.radius.sql})")
    if isinstance(a, Circle) and isinstance(b, Polygon):
        return _circle_meets_polygon_sql(a, b, pos)
    if isinstance(a, Polygon) and isinstance(b, Circle):
        return _circle_meets_polygon_sql(b, a, pos)
    raise ADQLSemanticError(f"INTERSECTS({_kind(a)}, {_kind(b)}) is not supported",
                            token="INTERSECTS", **at(pos))


def _circle_meets_polygon_sql(circle: Circle, poly: Polygon, pos: Pos) -> str:
    shape = shape_of(poly, pos)
    return (f"({in_polygon_sql(circle.center, shape)} OR "
            f"{_circle_touches_boundary_sql(circle, shape, strict=False)})")


# PostgreSQL estimates a range whose bounds come from another table at 1/9 of the
# table, so with a declination band it prefers to AND the band's bitmap with any other
# index condition of the join (such as ``a.id < b.id``: half the table, per probe). The
# band matches a handful of rows, which a plain index scan reads directly.
BAND_SETTINGS = {"enable_bitmapscan": "off"}


def point_in_circle_sql(p: Point, circle: Circle, strict: bool = False,
                        settings: dict[str, str] | None = None) -> str:
    """``p`` within the circle; ``settings`` receives the planner settings this needs."""
    exact = within_sql(p, circle.center, circle.radius, strict)
    c, r = circle.center.const(), circle.radius.number()
    if c is not None and r is not None:
        ranges = index_sql(p, c[0], c[1], float(r))
        if ranges:
            return f"({ranges} AND {exact})"
    elif r is not None:
        zones = crossmatch.zone_probe_sql(p, circle.center, float(r))
        if zones:
            return f"({zones} AND {exact})"
        band = lat_band_sql(p, circle.center, float(r))
        if band:
            if settings is not None:
                settings.update(BAND_SETTINGS)
            return f"({band} AND {exact})"
    return exact


def lat_band_sql(p: Point, center: Point, radius: float) -> str | None:
    """A necessary condition for ``p`` within ``radius`` of a centre that is not constant.

    Latitude changes by at most the angle travelled along any great-circle arc, so
    two points at most ``radius`` apart differ in latitude by at most ``radius``:
    ``lat(p) BETWEEN lat(c) - r AND lat(c) + r`` holds for every match, at the poles
    and across RA 0/360 alike. It is written for each side whose latitude is a plain
    column, so that a btree index on either table's declination can serve a
    cross-match join, which HEALPix ranges (computed per constant cone) cannot. The
    band is widened by a hair so that rounding never loses a boundary match; the
    exact test stays.
    """
    if not 0 <= radius < 90:
        return None
    r = float_sql(radius * (1 + 1e-9) + 1e-9)
    bands = [f"{a.sql} BETWEEN {b.sql} - {r} AND {b.sql} + {r}"
             for a, b in ((p.lat, center.lat), (center.lat, p.lat)) if a.source is not None]
    return "(" + " AND ".join(bands) + ")" if bands else None


def _lonlat(v: Vec) -> tuple[float, float]:
    lon = math.degrees(math.atan2(float(v[1]), float(v[0]))) % 360.0
    lat = math.degrees(math.asin(max(-1.0, min(1.0, float(v[2])))))
    return lon, lat


def area_sql(geom: Geometry, pos: Pos) -> Value:
    """AREA in square degrees."""
    if isinstance(geom, Point):
        return Value("0::float8", T.DOUBLE, unit="deg**2", const=0.0)
    if isinstance(geom, Circle):
        return Value(f"((1 - cosd({geom.radius.sql})) * {float_sql(2 * math.pi * SQ_DEG_PER_SR)})",
                     T.DOUBLE, unit="deg**2", ucd="phys.angArea")
    area = shape_of(geom, pos).area * SQ_DEG_PER_SR
    return Value(float_sql(area), T.DOUBLE, unit="deg**2", ucd="phys.angArea", const=area)


def centroid(geom: Geometry, pos: Pos) -> Point:
    """CENTROID: a point itself, a circle's centre, a constant polygon's centre."""
    if isinstance(geom, Point):
        return geom
    if isinstance(geom, Circle):
        return geom.center
    shape = shape_of(geom, pos)
    lon, lat = _lonlat(shape.center)
    return Point(_const(lon), _const(lat))
