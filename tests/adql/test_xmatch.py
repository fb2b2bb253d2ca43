"""Positional joins: exact pairs, and a plan that probes the zone index (n log n).

``xmatch_test.sky`` is a declared catalogue (HEALPix and zone indexes) whose
rows crowd the places where RA/Dec shortcuts go wrong: both poles (rows at
dec ±89.9 and on the poles themselves), RA 0/360 (rows on both sides of it,
and RA written as 360 or slightly below 0), dense patches. ``xmatch_test.probe``
has positions but no declared position, like a TAP upload: no index. Every
ADQL form of a positional join must return exactly the pairs of a numpy
brute force, and EXPLAIN must show the zone index probed once per outer row
instead of a nested loop over all pairs or a declination strip.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import sqlalchemy as sa

from schema.sky_zones import zone_index
from schema.tables import published_tables
from schema.vo import PositionIndex, VOTable, vo_column, vo_table
from vo_service.adql import Catalog, translate

SCHEMA = "xmatch_test"
RADIUS = 0.01
metadata = sa.MetaData()

sky = vo_table(
    "sky", metadata,
    vo_column("id", sa.Integer, primary_key=True, description="Row id", ucd="meta.id"),
    vo_column("ra", sa.Double, nullable=False, description="RA", unit="deg", ucd="pos.eq.ra"),
    vo_column("dec", sa.Double, nullable=False, description="Dec", unit="deg",
              ucd="pos.eq.dec"),
    vo_column("hpx", sa.BigInteger, description="HEALPix 29", ucd="pos.healpix"),
    zone_index("sky", "ra", "dec"),
    schema=SCHEMA,
    vo=VOTable(description="Cross-match test sky",
               position=PositionIndex(ra="ra", dec="dec", healpix="hpx")),
)

probe = vo_table(
    "probe", metadata,
    vo_column("id", sa.Integer, primary_key=True, description="Row id", ucd="meta.id"),
    vo_column("ra", sa.Double, nullable=False, description="RA", unit="deg", ucd="pos.eq.ra"),
    vo_column("dec", sa.Double, nullable=False, description="Dec", unit="deg",
              ucd="pos.eq.dec"),
    schema=SCHEMA,
    vo=VOTable(description="Positions without an index, as an upload"),
)


def _patch(rng: np.random.Generator, n: int, ra: float, dec: float, size: float
           ) -> tuple[np.ndarray, np.ndarray]:
    """n points within about ``size`` deg of (ra, dec), uniform on the sphere there."""
    v = np.array([math.cos(math.radians(dec)) * math.cos(math.radians(ra)),
                  math.cos(math.radians(dec)) * math.sin(math.radians(ra)),
                  math.sin(math.radians(dec))])
    pts = v + rng.normal(0, math.radians(size), (n, 3))
    pts /= np.linalg.norm(pts, axis=1, keepdims=True)
    return (np.degrees(np.arctan2(pts[:, 1], pts[:, 0])) % 360.0,
            np.degrees(np.arcsin(np.clip(pts[:, 2], -1, 1))))


def sky_rows(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    ras, decs = [rng.uniform(0, 360, 800)], [np.degrees(np.arcsin(rng.uniform(-1, 1, 800)))]
    for ra, dec, size in ((0.0, 90.0, 0.05), (180.0, -90.0, 0.05), (30.0, 89.9, 0.03),
                          (200.0, -89.9, 0.03), (0.0, 0.0, 0.03), (0.0, 60.0, 0.03),
                          (359.99, -85.0, 0.03), (123.4, -45.6, 0.03)):
        r, d = _patch(rng, 400, ra, dec, size)
        ras.append(r)
        decs.append(d)
    # exact poles, RA written as 360 and just below 0, twins across RA 0/360
    ras.append(np.array([0.0, 77.0, 0.0, 250.0, 360.0, 0.0, -0.004, 359.999, 0.001, 180.0]))
    decs.append(np.array([90.0, 90.0, -90.0, -90.0, 10.0, 10.0, 10.0, 10.0, -30.0, 89.995]))
    return np.concatenate(ras), np.concatenate(decs)


def _unit(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    r, d = np.radians(ra), np.radians(dec)
    return np.stack([np.cos(d) * np.cos(r), np.cos(d) * np.sin(r), np.sin(d)], axis=1)


def brute_force(a: tuple, b: tuple, radius: float, strict: bool = False
                ) -> tuple[set, set]:
    """All (id_a, id_b) within ``radius``: sure ones, and those within 1e-9 deg of it."""
    ua, ub = _unit(*a[1:]), _unit(*b[1:])
    sure, maybe = set(), set()
    for start in range(0, len(ua), 500):
        chunk = ua[start:start + 500]
        cross = np.linalg.norm(np.cross(chunk[:, None, :], ub[None, :, :]), axis=2)
        sep = np.degrees(np.arctan2(cross, chunk @ ub.T))
        for i, j in zip(*np.nonzero(sep < radius + 1e-9), strict=True):
            pair = (int(a[0][start + i]), int(b[0][j]))
            if abs(sep[i, j] - radius) <= 1e-9:
                maybe.add(pair)
            elif sep[i, j] < radius or not strict and sep[i, j] <= radius:
                sure.add(pair)
    return sure, maybe


@pytest.fixture(scope="module")
def xdb(database):
    rng = np.random.default_rng(1607)
    ra, dec = sky_rows(rng)
    ids = np.arange(1, len(ra) + 1)
    pra, pdec = _patch(rng, 600, 0.0, 0.0, 0.05)  # the probe: over RA 0/360 ...
    pra2, pdec2 = _patch(rng, 300, 0.0, 90.0, 0.05)  # ... and the north pole
    pra, pdec = np.concatenate([pra, pra2]), np.concatenate([pdec, pdec2])
    pids = np.arange(1, len(pra) + 1)
    engine = database.engine
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
        conn.execute(sa.text(f"CREATE SCHEMA {SCHEMA}"))
    metadata.create_all(engine)
    reader = database.settings.reader_role
    with engine.begin() as conn:
        conn.execute(sky.insert(), [{"id": int(i), "ra": float(r), "dec": float(d)}
                                    for i, r, d in zip(ids, ra, dec, strict=True)])
        conn.execute(probe.insert(), [{"id": int(i), "ra": float(r), "dec": float(d)}
                                      for i, r, d in zip(pids, pra, pdec, strict=True)])
        conn.execute(sa.text(f'GRANT USAGE ON SCHEMA {SCHEMA} TO "{reader}"'))
        conn.execute(sa.text(f'GRANT SELECT ON ALL TABLES IN SCHEMA {SCHEMA} TO "{reader}"'))
        conn.execute(sa.text(f"ANALYZE {SCHEMA}.sky"))
        conn.execute(sa.text(f"ANALYZE {SCHEMA}.probe"))
    catalog = Catalog.from_tables([*published_tables(), sky, probe])
    yield database, catalog, (ids, ra, dec), (pids, pra, pdec)
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))


def _run(xdb, query: str, explain: bool = False) -> list[tuple]:
    database, catalog = xdb[0], xdb[1]
    t = translate(query, catalog)
    with database.reader_engine.begin() as conn:
        for stmt in t.setup_sql(timeout_ms=60000):
            conn.execute(sa.text(stmt))
        sql = ("EXPLAIN " if explain else "") + t.sql
        return [tuple(r) for r in conn.execute(sa.text(sql))]


SELF_JOINS = {
    "contains": "1 = CONTAINS(POINT('ICRS', b.ra, b.dec), CIRCLE('ICRS', a.ra, a.dec, {r}))",
    "contains, circle on b": "CONTAINS(POINT(a.ra, a.dec), CIRCLE(b.ra, b.dec, {r})) = 1",
    "distance <=": "DISTANCE(POINT(a.ra, a.dec), POINT(b.ra, b.dec)) <= {r}",
    "distance <": "DISTANCE(POINT('ICRS', b.ra, b.dec), POINT('ICRS', a.ra, a.dec)) < {r}",
    "r > distance": "{r} > DISTANCE(POINT(a.ra, a.dec), POINT(b.ra, b.dec))",
}


@pytest.mark.parametrize("form", SELF_JOINS)
def test_self_join_pairs_are_exact(xdb, form):
    ids, ra, dec = xdb[2]
    strict = "<" in form or ">" in form
    sure, maybe = brute_force(xdb[2], xdb[2], RADIUS, strict=strict)
    sure = {(i, j) for i, j in sure if i < j}
    got = set(_run(xdb, f"SELECT a.id, b.id FROM {SCHEMA}.sky AS a JOIN {SCHEMA}.sky AS b "
                        f"ON {SELF_JOINS[form].format(r=RADIUS)} WHERE a.id < b.id"))
    assert got - maybe == sure - maybe
    assert len(sure) > 2000
    near_pole = {p for p in sure if abs(dec[p[0] - 1]) > 89.9}
    across_ra0 = {p for p in sure if abs(ra[p[0] - 1] - ra[p[1] - 1]) > 300}
    assert len(near_pole) > 100 and len(across_ra0) > 50  # the hard cases are there


@pytest.mark.parametrize("circle_on", ["probe", "sky"])
def test_join_with_unindexed_table_is_exact(xdb, circle_on):
    """The probe (an upload's stand-in) on either side of CONTAINS."""
    if circle_on == "probe":
        cond = "CONTAINS(POINT(s.ra, s.dec), CIRCLE(p.ra, p.dec, {r})) = 1"
    else:
        cond = "CONTAINS(POINT(p.ra, p.dec), CIRCLE(s.ra, s.dec, {r})) = 1"
    sure, maybe = brute_force(xdb[3], xdb[2], RADIUS)
    got = set(_run(xdb, f"SELECT p.id, s.id FROM {SCHEMA}.probe AS p JOIN {SCHEMA}.sky AS s "
                        f"ON {cond.format(r=RADIUS)}"))
    assert got - maybe == sure - maybe and len(sure) > 500


@pytest.mark.parametrize("radius", [0.0005, 0.2])
def test_other_radii_are_exact(xdb, radius):
    """Below a zone's height and spanning two dozen zones."""
    sure, maybe = brute_force(xdb[3], xdb[2], radius)
    got = set(_run(xdb, f"SELECT p.id, s.id FROM {SCHEMA}.probe AS p JOIN {SCHEMA}.sky AS s "
                        f"ON DISTANCE(POINT(p.ra, p.dec), POINT(s.ra, s.dec)) <= {radius}"))
    assert got - maybe == sure - maybe and len(sure) > 10


@pytest.mark.parametrize("query", [
    f"SELECT a.id, b.id FROM {SCHEMA}.sky AS a JOIN {SCHEMA}.sky AS b ON 1 = CONTAINS("
    f"POINT(b.ra, b.dec), CIRCLE(a.ra, a.dec, 0.001)) WHERE a.id < b.id AND a.dec "
    "BETWEEN 0 AND 10",
    f"SELECT a.id, b.id FROM {SCHEMA}.sky AS a JOIN {SCHEMA}.sky AS b ON DISTANCE("
    "POINT(a.ra, a.dec), POINT(b.ra, b.dec)) < 0.001",
    f"SELECT p.id, s.id FROM {SCHEMA}.probe AS p JOIN {SCHEMA}.sky AS s ON 1 = CONTAINS("
    "POINT(p.ra, p.dec), CIRCLE(s.ra, s.dec, 0.001))",
    f"SELECT p.id, s.id FROM {SCHEMA}.probe AS p, {SCHEMA}.sky AS s WHERE 1 = CONTAINS("
    "POINT(s.ra, s.dec), CIRCLE(p.ra, p.dec, 0.001))",
])
def test_plan_probes_the_zone_index(xdb, query):
    """Each outer row probes the zone index of the declared table with its zones and RA
    window: no nested loop over all pairs, no declination strip."""
    plan = "\n".join(r[0] for r in _run(xdb, query, explain=True))
    assert "Nested Loop" in plan, plan
    inner = plan.split("Index Scan using ix_sky_sky_zone on sky", 1)
    assert len(inner) == 2, plan
    cond = inner[1].split("Index Cond:", 1)[1].split("\n", 1)[0]
    assert "= ANY (ARRAY[floor(" in cond and ">=" in cond and "<=" in cond, plan
    assert "Join Filter" not in plan, plan
