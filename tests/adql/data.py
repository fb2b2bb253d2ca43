"""Generated rows for the ADQL database tests, and loading them fast (COPY)."""

from __future__ import annotations

import io

import numpy as np
import sqlalchemy as sa
from cdshealpix.nested import lonlat_to_healpix

from tests.adql.tables import MODELS, SCHEMA
from vo_service.db.copy import copy_text

N_POINTS = 60_000
N_VECTORS = 20_000

# positions that break naive implementations: poles, RA 0/360, the date line
EDGE_POSITIONS = [
    (0.0, 90.0), (123.0, 90.0), (0.0, -90.0), (271.0, -90.0), (0.0, 0.0), (359.9999, 0.0),
    (0.0001, 0.0), (360.0 - 1e-9, 45.0), (180.0, 0.0), (179.99, -89.99), (0.0, 89.95),
    (180.0, 89.95), (90.0, -89.95), (270.0, 89.9), (359.95, -30.0), (0.05, -30.0),
    (10.0, 20.0), (10.05, 20.0), (10.0, 20.1), (9.9, 19.9),
]
CATEGORIES = np.array(["alpha", "beta", "Gamma", "delta eps", "o'hara"])


def point_rows(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Uniform on the sphere, plus clusters near the poles and RA 0, plus the edge cases."""
    k = n - len(EDGE_POSITIONS)
    ra = rng.uniform(0.0, 360.0, k)
    dec = np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, k)))
    # a quarter of the rows in small patches around the tricky places
    m = k // 4
    centres = np.array([[0.0, 90.0], [0.0, -90.0], [0.0, 0.0], [10.0, 20.0]])
    which = rng.integers(0, len(centres), m)
    ra[:m] = (centres[which, 0] + rng.normal(0, 0.3, m)) % 360.0
    dec[:m] = np.clip(centres[which, 1] + rng.normal(0, 0.3, m), -90.0, 90.0)
    ra = np.concatenate([np.array([p[0] for p in EDGE_POSITIONS]), ra])
    dec = np.concatenate([np.array([p[1] for p in EDGE_POSITIONS]), dec])
    hpx = lonlat_to_healpix_deg(ra, dec)
    mag = rng.normal(15, 3, n).astype(np.float32)
    mag[rng.random(n) < 0.05] = np.nan  # NULLs
    return {
        "id": np.arange(1, n + 1),
        "ra": ra, "dec": dec, "hpx": hpx, "mag": mag,
        "n": rng.integers(-50, 50, n),
        "big": rng.integers(-10**12, 10**12, n),
        "flag": rng.random(n) < 0.3,
        "name": np.array([f"obj {i:05d}" for i in range(n)]),
        "cat": CATEGORIES[rng.integers(0, len(CATEGORIES), n)],
    }


def lonlat_to_healpix_deg(ra: np.ndarray, dec: np.ndarray, depth: int = 29) -> np.ndarray:
    import astropy.units as u
    from astropy.coordinates import Latitude, Longitude

    return lonlat_to_healpix(Longitude(ra * u.deg), Latitude(dec * u.deg), depth).astype(
        np.int64)


def _copy(engine: sa.Engine, table: str, columns: list[str], lines: list[str]) -> None:
    with engine.begin() as conn:
        copy_text(conn, f"{SCHEMA}.{table}", columns, io.StringIO("\n".join(lines) + "\n"))


def fill_points(engine: sa.Engine, rows: dict[str, np.ndarray]) -> None:
    cols = ["id", "ra", "dec", "hpx", "mag", "n", "big", "flag", "name", "cat"]
    lines = []
    for i in range(len(rows["id"])):
        mag = rows["mag"][i]
        lines.append("\t".join([
            str(rows["id"][i]), repr(float(rows["ra"][i])), repr(float(rows["dec"][i])),
            str(rows["hpx"][i]), "\\N" if np.isnan(mag) else repr(float(mag)),
            str(rows["n"][i]), str(rows["big"][i]), "t" if rows["flag"][i] else "f",
            rows["name"][i], rows["cat"][i],
        ]))
    _copy(engine, "points", cols, lines)


def vector_rows(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    return {model: rng.normal(0, 1, (n, plan.dim)).astype(np.float32)
            for model, plan in MODELS.items()}


def fill_vectors(engine: sa.Engine, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    vecs = vector_rows(rng, n)
    lines = []
    for model, arr in vecs.items():
        for i, v in enumerate(arr):
            lines.append(f"{i + 1}\t{model}\t[{','.join(repr(float(x)) for x in v)}]")
    _copy(engine, "vectors", ["id", "model_id", "vec"], lines)
    with engine.begin() as conn:
        for model, plan in MODELS.items():
            conn.execute(sa.text(
                f"CREATE INDEX ix_vectors_{model} ON {SCHEMA}.vectors USING hnsw "
                f"(({plan.expression('vec')}) {plan.opclass}) WHERE model_id = '{model}'"))
    return vecs
