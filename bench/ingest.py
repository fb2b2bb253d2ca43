"""Ingest throughput: end to end, and the metadata COPY alone.

    python bench/ingest.py [--n 20000] [--archive DIR] [--workers 2]

Writes (or reuses) a synthetic archive, starts a fresh embedded PostgreSQL in
a temporary LATENTVO_HOME and prints:

* spectra/s for ``Ingester.run`` over the whole archive (hash, read, store,
  COPY), next to the baseline of the same machine reading the files in one
  process without a database (``read_spectrum`` only);
* rows/s for the metadata COPY alone, next to the baseline of a plain
  multi-row INSERT of the same rows.

The machines are noisy: compare the ratios, not absolute figures across runs.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ml.synth import write_archive  # noqa: E402
from schema.tables import spectra  # noqa: E402
from vo_service.archive.ingest import SPECTRA_COLUMNS, Ingester, expand_paths  # noqa: E402
from vo_service.archive.readers import read_spectrum  # noqa: E402
from vo_service.config import load_settings  # noqa: E402
from vo_service.db.copy import copy_rows  # noqa: E402
from vo_service.db.database import Database  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--archive", type=Path, default=Path("bench/out/ingest-archive"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--baseline-sample", type=int, default=2000,
                        help="files read for the single-process baseline")
    args = parser.parse_args()

    if not (args.archive / "manifest.json").exists():
        t0 = time.perf_counter()
        write_archive(args.archive, n=args.n, seed=20261122, progress=True)
        print(f"wrote archive of {args.n} spectra in {time.perf_counter() - t0:.1f} s")
    files = expand_paths([str(args.archive)])
    pixels = len(read_spectrum(files[0]).wavelength)
    print(f"archive: {len(files)} files, e.g. {pixels} pixels, {args.archive}")

    # Baseline: reading alone, one process, no database, on every k-th file so that
    # the sample has the archive's mix of formats (files are sorted by directory).
    sample = files[:: max(1, len(files) // args.baseline_sample)]
    t0 = time.perf_counter()
    for f in sample:
        read_spectrum(f)
    read_rate = len(sample) / (time.perf_counter() - t0)

    with tempfile.TemporaryDirectory(prefix="latentvo-bench-") as home:
        settings = load_settings({"LATENTVO_HOME": home})
        database = Database(settings)
        database.upgrade()
        try:
            t0 = time.perf_counter()
            report = Ingester(database.engine, settings, workers=args.workers).run(files)
            elapsed = time.perf_counter() - t0
            assert report.ingested == len(files), report.summary()
            ingest_rate = len(files) / elapsed

            copy_rate, insert_rate = metadata_rates(database.engine)
        finally:
            database.dispose()
            database.embedded.stop()

    print()
    print(f"{'measure':44s} {'figure':>14s}")
    print(f"{'end-to-end ingest (' + str(args.workers) + ' workers)':44s} "
          f"{ingest_rate:10,.0f} sp/s")
    print(f"{'baseline: read_spectrum only, 1 process':44s} {read_rate:10,.0f} sp/s")
    print(f"{'ratio ingest / read-only baseline':44s} {ingest_rate / read_rate:12.2f} x")
    print(f"{'metadata COPY':44s} {copy_rate:10,.0f} rows/s")
    print(f"{'baseline: multi-row INSERT':44s} {insert_rate:10,.0f} rows/s")
    print(f"{'ratio COPY / INSERT':44s} {copy_rate / insert_rate:12.2f} x")
    print(f"target: >= 300 spectra/s end to end -> {'met' if ingest_rate >= 300 else 'NOT met'}")


def metadata_rates(engine: sa.Engine) -> tuple[float, float]:
    """rows/s of COPY and of INSERT for the ingested rows, into an empty copy of spectra."""
    with engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(
            sa.select(*[spectra.c[c] for c in SPECTRA_COLUMNS])).mappings()]
    rates = []
    for method in ("copy", "insert"):
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TEMP TABLE bench_spectra "
                                 "(LIKE latentvo.spectra INCLUDING ALL) ON COMMIT DROP"))
            target = sa.Table("bench_spectra", sa.MetaData(),
                              *[sa.Column(c.name, c.type) for c in spectra.columns])
            t0 = time.perf_counter()
            if method == "copy":
                copy_rows(conn, target, SPECTRA_COLUMNS, rows)
            else:
                conn.execute(target.insert(), rows)
            rates.append(len(rows) / (time.perf_counter() - t0))
    return rates[0], rates[1]


if __name__ == "__main__":
    main()
