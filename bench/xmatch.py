"""Cross-match benchmark: the DaCHS kit's spatial self-join at growing table sizes.

For each size N, publishes N positions drawn as the kit's generator draws them
(``shared/anchors/dachs/gen_data.py``: targets uniform on the sphere, one row in
ten a re-observation 0.2 arcsec off; same seed, same positions) as the catalogue
``xmatch_bench.sky_N`` (spec_id, ra, dec, with the HEALPix and zone indexes any
published catalogue gets and, as the kit's table, an index on dec), and times the
kit's query q10:

    SELECT a.spec_id AS id_a, b.spec_id AS id_b FROM T AS a JOIN T AS b
    ON 1=CONTAINS(POINT('ICRS', b.ra, b.dec), CIRCLE('ICRS', a.ra, a.dec, 0.001))
    WHERE a.spec_id < b.spec_id AND a.dec BETWEEN 0 AND 10

as the translated SQL on the database (the reader role, as TAP runs it) and, with
``--tap``, over a running server's ``/tap/sync``. It prints pairs and milliseconds
(median of ``-r`` runs) per size, and the time ratio against the first size next to
the size ratio: n log n means about 5.7x for 5x the rows (the goal: <= 6x). Up to
``--check`` rows, the pairs are compared with a reference from unit vectors in a
k-d tree.

Uses the database of the environment (``LATENTVO_HOME`` or ``LATENTVO_DATABASE_URL``,
as ``latentvo serve``); the tables stay published (``--drop`` removes them).

Usage:  python bench/xmatch.py [SIZES ...] [--tap http://127.0.0.1:8000/tap] [-r 3]
        [--radius 0.001] [--check 250000] [--drop]
e.g.    python bench/xmatch.py 200000 1000000 10000000     (10M: a big machine)
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import sqlalchemy as sa

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from schema.catalogue_declaration import Declaration  # noqa: E402
from schema.catalogues import all_published_tables  # noqa: E402
from vo_service.adql import Catalog, translate  # noqa: E402
from vo_service.config import load_settings  # noqa: E402
from vo_service.db.database import Database  # noqa: E402
from vo_service.publish.loader import publish, unpublish  # noqa: E402

SCHEMA = "xmatch_bench"
KIT_SEED = 20250101
QUERY = ("SELECT a.spec_id AS id_a, b.spec_id AS id_b FROM {t} AS a JOIN {t} AS b "
         "ON 1=CONTAINS(POINT('ICRS', b.ra, b.dec), CIRCLE('ICRS', a.ra, a.dec, {r})) "
         "WHERE a.spec_id < b.spec_id AND a.dec BETWEEN 0 AND 10")


def kit_positions(n: int, seed: int = KIT_SEED, repeat_fraction: float = 0.10
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(ra, dec) of the kit's ``generate(n)``: the same random draws in the same order.

    The kit draws each target's labels between its position and its observations;
    those draws are made (and dropped) here so that the observations come out alike.
    """
    rng = np.random.default_rng(seed)
    n_unique = max(1, int(round(n * (1.0 - repeat_fraction))))
    t_ra = rng.uniform(0.0, 360.0, n_unique)
    t_dec = np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, n_unique)))
    rng.choice(3, size=n_unique, p=[0.6, 0.3, 0.1])  # population
    for draw in ((5600, 700, "n"), (4700, 350, "n"), (3000, 9000, "u"),  # teff
                 (4.35, 0.25, "n"), (2.5, 0.6, "n"), (3.5, 5.0, "u"),  # logg
                 (-0.3, 0.35, "n")):  # metallicity
        (rng.normal if draw[2] == "n" else rng.uniform)(draw[0], draw[1], n_unique)
    target = np.concatenate([np.arange(n_unique), rng.integers(0, n_unique, n - n_unique)])
    target = target[rng.permutation(n)]
    _, first = np.unique(target, return_index=True)
    repeat = np.ones(n, dtype=bool)
    repeat[first] = False  # every row but a target's first observation
    jitter = np.where(repeat, 0.2 / 3600.0, 0.0)
    cos_dec = np.maximum(np.cos(np.radians(t_dec[target])), 1e-3)
    ra = (t_ra[target] + rng.normal(0, 1, n) * jitter / cos_dec) % 360.0
    dec = np.clip(t_dec[target] + rng.normal(0, 1, n) * jitter, -90.0, 90.0)
    return np.round(ra, 9), np.round(dec, 9)


def declaration(n: int) -> Declaration:
    return Declaration.from_dict({
        "schema": {"name": SCHEMA, "description": "Cross-match benchmark positions"},
        "table": {"name": f"sky_{n}", "description": f"{n} positions of the DaCHS kit",
                  "position": {"ra": "ra", "dec": "dec", "healpix": "healpix"}},
        "column": [
            {"name": "spec_id", "type": "bigint", "primary_key": True, "ucd": "meta.id",
             "description": "Row identifier"},
            {"name": "ra", "type": "double", "unit": "deg", "ucd": "pos.eq.ra",
             "description": "Right ascension (ICRS)"},
            {"name": "dec", "type": "double", "unit": "deg", "ucd": "pos.eq.dec",
             "description": "Declination (ICRS)"},
        ],
        # as the kit's table (bench/mlspec.toml): what the earlier declination band used
        "index": [{"columns": ["dec"]}]}, origin="bench/xmatch.py")


def load(db: Database, n: int, ra: np.ndarray, dec: np.ndarray) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sky.csv"
        with path.open("w", newline="") as fh:
            out = csv.writer(fh)
            out.writerow(["spec_id", "ra", "dec"])
            out.writerows(zip(range(1, n + 1), ra.tolist(), dec.tolist(), strict=True))
        publish(db.engine, declaration(n), path, reader_role=db.settings.reader_role,
                replace=True)


def reference_pairs(ra: np.ndarray, dec: np.ndarray, radius: float) -> tuple[set, set]:
    """The query's pairs (sure ones, and those within 1e-9 deg of the radius)."""
    from scipy.spatial import cKDTree

    r, d = np.radians(ra), np.radians(dec)
    v = np.stack([np.cos(d) * np.cos(r), np.cos(d) * np.sin(r), np.sin(d)], axis=1)
    chord = 2 * math.sin(math.radians(radius + 1e-6) / 2)
    pairs = np.array(sorted(cKDTree(v).query_pairs(chord)), dtype=np.int64).reshape(-1, 2)
    i, j = pairs[:, 0], pairs[:, 1]  # i < j: row index = spec_id - 1, so a = i
    sep = np.degrees(np.arctan2(np.linalg.norm(np.cross(v[i], v[j]), axis=1),
                                np.einsum("ij,ij->i", v[i], v[j])))
    keep = (dec[i] >= 0) & (dec[i] <= 10)
    ids = np.stack([i + 1, j + 1], axis=1)
    sure = {tuple(p) for p in ids[keep & (sep < radius - 1e-9)].tolist()}
    maybe = {tuple(p) for p in ids[keep & (np.abs(sep - radius) <= 1e-9)].tolist()}
    return sure, maybe


def time_sql(db: Database, query: str, repeat: int) -> tuple[set, list[float]]:
    with db.engine.connect() as conn:
        catalog = Catalog.from_tables(all_published_tables(conn))
    t = translate(query, catalog)
    times, rows = [], set()
    for _ in range(repeat):
        with db.reader_engine.begin() as conn:
            for stmt in t.setup_sql(timeout_ms=3_600_000):
                conn.execute(sa.text(stmt))
            start = time.perf_counter()
            rows = {tuple(r) for r in conn.execute(sa.text(t.sql))}
            times.append((time.perf_counter() - start) * 1000)
    return rows, times


def time_tap(url: str, query: str, repeat: int) -> tuple[set, list[float]]:
    import httpx

    times, rows = [], set()
    for _ in range(repeat):
        start = time.perf_counter()
        resp = httpx.post(url + "/sync", data={"REQUEST": "doQuery", "LANG": "ADQL",
                                               "QUERY": query, "FORMAT": "csv",
                                               "MAXREC": "100000000"}, timeout=3600)
        times.append((time.perf_counter() - start) * 1000)
        resp.raise_for_status()
        lines = resp.text.splitlines()[1:]
        rows = {tuple(int(x) for x in line.split(",")) for line in lines if line}
    return rows, times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sizes", nargs="*", type=int, default=[50_000, 250_000])
    parser.add_argument("--radius", type=float, default=0.001, help="deg (kit: 0.001)")
    parser.add_argument("-r", "--repeat", type=int, default=3)
    parser.add_argument("--tap", help="also time over this TAP service (same database)")
    parser.add_argument("--check", type=int, default=250_000,
                        help="compare with the reference up to this many rows")
    parser.add_argument("--drop", action="store_true", help="unpublish the tables after")
    args = parser.parse_args()
    db = Database(load_settings(os.environ))
    db.upgrade()
    results, published = [], []
    try:
        for n in args.sizes:
            ra, dec = kit_positions(n)
            start = time.perf_counter()
            load(db, n, ra, dec)
            published.append(n)
            print(f"{n:>11,} rows published in {time.perf_counter() - start:.1f} s", flush=True)
            query = QUERY.format(t=f"{SCHEMA}.sky_{n}", r=args.radius)
            rows, sql_ms = time_sql(db, query, args.repeat)
            tap_ms: list[float] = []
            if args.tap:
                tap_rows, tap_ms = time_tap(args.tap, query, args.repeat)
                assert tap_rows == rows, f"{n}: TAP and SQL pairs differ"
            check = ""
            if n <= args.check:
                sure, maybe = reference_pairs(ra, dec, args.radius)
                assert rows - maybe == sure - maybe, (
                    f"{n}: {len(rows - maybe - sure)} extra, {len(sure - maybe - rows)} missing")
                check = "pairs = reference"
            results.append((n, len(rows), statistics.median(sql_ms),
                            statistics.median(tap_ms) if tap_ms else None))
            tap = f"{results[-1][3]:10.1f}" if tap_ms else f"{'-':>10}"
            print(f"{n:>11,} rows {len(rows):>9,} pairs  SQL {results[-1][2]:10.1f} ms  "
                  f"TAP {tap} ms  {check}", flush=True)
    finally:
        if args.drop:
            for n in published:
                unpublish(db.engine, SCHEMA, f"sky_{n}")
        db.dispose()
    n0, _, sql0, tap0 = results[0]
    for n, _, sql, tap in results[1:]:
        ratios = f"SQL {sql / sql0:.2f}x" + (f", TAP {tap / tap0:.2f}x" if tap and tap0 else "")
        print(f"{n0:,} -> {n:,} rows ({n / n0:.1f}x): {ratios} "
              f"(n log n: {n * math.log(n) / (n0 * math.log(n0)):.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
