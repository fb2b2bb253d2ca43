"""Data releases: the cost of freezing, publishing and withdrawing, and cones on a release.

    python bench/releases.py [--n 20000] [--dim 16]

Starts a fresh embedded PostgreSQL in a temporary LATENTVO_HOME, fills it with ``n``
spectra, an autoencoder (``dim``-dimensional latent vectors) and a label model with
their products (generated in SQL), and prints:

* seconds for ``create`` (copy, indexes, view, manifest checksums, VACUUM), next to the
  baseline of the bare copies (``CREATE TABLE AS`` of the same rows, no indexes, no
  checksums);
* seconds for ``publish`` and ``withdraw`` (one transaction each, TAP_SCHEMA included);
* the median time of the same ADQL cone on ``latentvo.spectra`` and on ``dr1.spectra``
  (translated by the service's translator, run as the reader role).

The machines are noisy: compare the ratios, not absolute figures across runs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from schema.catalogues import all_published_tables  # noqa: E402
from schema.tables import spectra  # noqa: E402
from schema.vo import HEALPIX_DEPTH  # noqa: E402
from vo_service.adql import Catalog, translate  # noqa: E402
from vo_service.config import load_settings  # noqa: E402
from vo_service.db.database import Database  # noqa: E402
from vo_service.releases.freeze import create  # noqa: E402
from vo_service.releases.lifecycle import publish, withdraw  # noqa: E402

FILL = """
INSERT INTO latentvo.models (model_id, kind, architecture, hyperparameters, latent_dim,
    wavelength_grid, training_selection, training_checksum, training_size, code_version,
    random_seed, metrics, artifact_path, artifact_sha256)
VALUES ('ae', 'autoencoder', '{}', '{}', :dim, '{}', 'all', repeat('0', 64), 1000, 'bench',
        1, '{}', 'models/ae', repeat('1', 64)),
       ('labels', 'label-regressor', '{}', '{}', NULL, '{}', 'all', repeat('0', 64), 1000,
        'bench', 1, '{}', 'models/labels', repeat('2', 64));
INSERT INTO latentvo.latent (spectrum_id, model_id, vec)
SELECT i, 'ae', (SELECT array_agg(random())::real[]::vector FROM generate_series(1, :dim)
                 WHERE i > 0)
FROM generate_series(1, :n) AS i;
INSERT INTO latentvo.labels (spectrum_id, model_id, teff, teff_err, logg, logg_err, mh, mh_err,
    domain_score, in_domain)
SELECT i, 'labels', 4000 + random() * 3000, 50, random() * 5, 0.1, random() - 0.5, 0.05,
       random() * 3, random() < 0.8
FROM generate_series(1, :n) AS i;
"""

CONE = ("SELECT spectrum_id, s_ra, s_dec FROM {schema}.spectra WHERE 1 = CONTAINS("
        "POINT('ICRS', s_ra, s_dec), CIRCLE('ICRS', 180.0, 10.0, 3.0))")


def fill_spectra(conn: sa.Connection, n: int) -> None:
    """``n`` spectra spread over the sky, with their true HEALPix cells."""
    import astropy.units as u
    import cdshealpix
    from astropy.coordinates import Latitude, Longitude

    rng = np.random.default_rng(17)
    ra = rng.uniform(0, 360, n)
    dec = np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
    cells = cdshealpix.nested.lonlat_to_healpix(Longitude(ra, u.deg), Latitude(dec, u.deg),
                                                HEALPIX_DEPTH)
    conn.execute(spectra.insert(), [{
        "spectrum_id": i + 1, "obs_publisher_did": f"ivo://bench/spec?{i + 1}",
        "obs_id": f"obs-{i + 1}", "obs_collection": "bench", "target_name": f"STAR {i}",
        "s_ra": float(ra[i]), "s_dec": float(dec[i]), "healpix_index": int(cells[i]),
        "t_min": 58000.0 + i, "t_max": 58000.01 + i, "em_min": 3.8e-7, "em_max": 6.9e-7,
        "em_xel": 4000, "snr": 50.0, "source_format": "fits-1d-wcs",
        "access_format": "application/fits", "access_estsize": 64, "file_sha256": f"{i:064x}",
        "file_name": f"s{i}.fits", "release": "dr1"} for i in range(n)])


def seconds(work) -> float:
    t0 = time.perf_counter()
    work()
    return time.perf_counter() - t0


def median_ms(engine: sa.Engine, sql: str, repeat: int = 21) -> tuple[float, int]:
    times, rows = [], 0
    with engine.connect() as conn:
        for _ in range(repeat):
            t0 = time.perf_counter()
            rows = len(conn.execute(sa.text(sql)).all())
            times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--dim", type=int, default=16)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="latentvo-bench-") as home:
        settings = load_settings({"LATENTVO_HOME": home})
        database = Database(settings)
        database.upgrade()
        engine = database.engine
        try:
            with engine.begin() as conn:
                fill_spectra(conn, args.n)
                for statement in FILL.split(";\n"):
                    if statement.strip():
                        conn.execute(sa.text(statement), {"n": args.n, "dim": args.dim})
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(sa.text("VACUUM ANALYZE"))

            def bare_copy() -> None:
                with engine.begin() as conn:
                    conn.execute(sa.text("CREATE SCHEMA bare"))
                    for table in ("spectra", "models", "latent", "labels"):
                        conn.execute(sa.text(f"CREATE TABLE bare.{table} AS "
                                             f"SELECT * FROM latentvo.{table}"))
                    conn.execute(sa.text("DROP SCHEMA bare CASCADE"))

            baseline = seconds(bare_copy)
            created = seconds(lambda: create(engine, "dr1", title="Bench release"))
            published = seconds(lambda: publish(engine, "dr1", reader_role=settings.reader_role))
            with engine.connect() as conn:
                catalog = Catalog.from_tables(all_published_tables(conn))
            cones = {schema: median_ms(database.reader_engine,
                                       translate(CONE.format(schema=schema), catalog).sql)
                     for schema in ("latentvo", "dr1")}
            withdrawn = seconds(lambda: withdraw(engine, "dr1"))
        finally:
            database.dispose()
            assert database.embedded is not None
            database.embedded.stop()

    print(f"{args.n:,} spectra, {args.n:,} latent vectors ({args.dim} dimensions), "
          f"{args.n:,} label rows")
    print(f"{'measure':48s} {'figure':>12s}")
    print(f"{'release create (copy, indexes, checksums)':48s} {created:10.2f} s")
    print(f"{'baseline: bare CREATE TABLE AS of the same rows':48s} {baseline:10.2f} s")
    print(f"{'ratio create / bare copy':48s} {created / baseline:10.2f} x")
    print(f"{'release publish':48s} {published * 1000:10.0f} ms")
    print(f"{'release withdraw':48s} {withdrawn * 1000:10.0f} ms")
    for schema, (ms, rows) in cones.items():
        print(f"{f'cone of 3 deg on {schema}.spectra ({rows} rows)':48s} {ms:10.2f} ms")
    print(f"{'ratio dr1 / latentvo cone':48s} {cones['dr1'][0] / cones['latentvo'][0]:10.2f} x")


if __name__ == "__main__":
    main()
