"""SSA and getData benchmark: cone latency over 1,000,000 spectra, downloads, throughput.

    python bench/ssa.py [--rows 1000000] [--queries 300] [--downloads 1000] [--home DIR]

What it does, in a fresh LATENTVO_HOME (embedded PostgreSQL) unless --home is given:

1. ingests a small synthetic archive of real files (``ml.synth``) for the downloads;
2. adds ``--rows`` synthetic metadata rows to ``latentvo.spectra`` with COPY (positions
   uniform on the sphere, their HEALPix index, unique DIDs), then ANALYZE;
3. starts the service (uvicorn, one worker: the app of ``create_app`` plus SSA,
   DataLink, getData, ObsCore) and measures, each against a baseline timed in the
   same run:

   * SSA queryData of a 0.5-degree cone (SIZE=0.5, the diameter) at random centres,
     median latency over HTTP (client keep-alive), against the same SQL run
     directly in PostgreSQL (psycopg2, median);
   * single-spectrum download latency (getData, native file, median), against a
     plain threaded static file server (``http.server``) serving the same file;
   * getData throughput (MB/s) with 100 concurrent downloads, against the same
     static server.

Figures and ratios are printed; nothing is asserted (not part of the test suite).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import http.server
import io
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.serving import service_home, wait_until_up  # noqa: E402


def app_factory():
    """uvicorn --factory target: the service with SSA, DataLink, getData, ObsCore."""
    from vo_service.app import create_app

    return create_app()




def _copy_synthetic_rows(database, n: int, seed: int = 7) -> None:
    import astropy.units as u
    import cdshealpix
    from astropy.coordinates import Latitude, Longitude

    rng = np.random.default_rng(seed)
    chunk = 200_000
    raw = database.engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute("SELECT coalesce(max(spectrum_id), 0) FROM latentvo.spectra")
        start = cur.fetchone()[0] + 1
        cols = ("spectrum_id, obs_publisher_did, obs_id, obs_collection, target_name, s_ra, "
                "s_dec, healpix_index, t_min, t_max, t_exptime, em_min, em_max, em_res_power, "
                "em_xel, snr, instrument_name, facility_name, flux_unit, spec_frame, "
                "source_format, access_format, access_estsize, file_sha256, file_name, release")
        for offset in range(0, n, chunk):
            m = min(chunk, n - offset)
            ids = np.arange(start + offset, start + offset + m)
            ra = rng.uniform(0, 360, m)
            dec = np.degrees(np.arcsin(rng.uniform(-1, 1, m)))
            hpx = cdshealpix.nested.lonlat_to_healpix(Longitude(ra, u.deg), Latitude(dec, u.deg),
                                                      29).astype(np.int64)
            t0 = rng.uniform(51000, 60000, m)
            snr = rng.uniform(5, 200, m)
            buf = io.StringIO()
            for i in range(m):
                sid = int(ids[i])
                buf.write(
                    f"{sid}\tivo://bench/spectra?B{sid}\tB{sid}\tbench\tBSTAR-{sid}\t{float(ra[i])!r}\t"
                    f"{float(dec[i])!r}\t{hpx[i]}\t{float(t0[i])!r}\t{float(t0[i]) + 0.01!r}\t"
                    "900\t3.8e-07\t6.9e-07\t"
                    f"40000\t4000\t{snr[i]:.2f}\tBENCH\tBench telescope\tadu\tair\tfits-1d-wcs\t"
                    f"application/fits\t64\tbench{sid:059d}\tb{sid}.fits\tdr1\n")
            buf.seek(0)
            cur.copy_expert(f"COPY latentvo.spectra ({cols}) FROM STDIN", buf)
            raw.commit()
            print(f"  {offset + m:,} synthetic rows", flush=True)
        cur.execute("ANALYZE latentvo.spectra")
        raw.commit()
    finally:
        raw.close()




def _median_ms(times: list[float]) -> float:
    return 1000 * statistics.median(times)


def _static_server(root: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # noqa: D102
        pass


async def _throughput(urls: list[str], concurrency: int, total: int) -> tuple[float, float]:
    import httpx

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    done = 0
    nbytes = 0
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        async def worker(k: int):
            nonlocal done, nbytes
            while done < total:
                done += 1
                r = await client.get(urls[(k + done) % len(urls)])
                nbytes += len(r.content)
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(k) for k in range(concurrency)))
        elapsed = time.perf_counter() - t0
    return nbytes / elapsed / 1e6, done / elapsed


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--files", type=int, default=40, help="real spectra ingested for downloads")
    p.add_argument("--queries", type=int, default=300)
    p.add_argument("--downloads", type=int, default=1000, help="for the throughput figure")
    p.add_argument("--concurrency", type=int, default=100)
    p.add_argument("--size", type=float, default=0.5, help="SSA SIZE (diameter, deg)")
    p.add_argument("--home", help="LATENTVO_HOME to use (default: a fresh temporary one)")
    args = p.parse_args()

    home, port, base = service_home(args.home)

    import httpx
    import sqlalchemy as sa

    from ml.synth import write_archive
    from vo_service.archive.ingest import Ingester, expand_paths
    from vo_service.config import load_settings
    from vo_service.db.database import Database
    from vo_service.ssa.params import SSAQuery
    from vo_service.ssa.query import build_sql

    settings = load_settings()
    database = Database(settings)
    database.upgrade()
    with database.engine.connect() as conn:
        existing = conn.scalar(sa.text("SELECT count(*) FROM latentvo.spectra"))
    if existing < args.rows:
        print(f"preparing {home}: {args.files} real spectra + {args.rows:,} metadata rows")
        files = home / "bench-files"
        write_archive(files, n=args.files, seed=99, progress=False, workers=2)
        Ingester(database.engine, settings, workers=2).run(expand_paths([str(files)]))
        t0 = time.perf_counter()
        _copy_synthetic_rows(database, args.rows)
        print(f"  loaded in {time.perf_counter() - t0:.0f} s")
    with database.engine.connect() as conn:
        n_rows = conn.scalar(sa.text("SELECT count(*) FROM latentvo.spectra"))
        real = conn.execute(sa.text(
            "SELECT obs_publisher_did, file_sha256 FROM latentvo.spectra "
            "WHERE file_name NOT LIKE 'b%' AND file_name NOT LIKE '%.gz' "
            "ORDER BY spectrum_id")).all()

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "bench.ssa:app_factory", "--factory", "--port",
         str(port), "--log-level", "warning", "--no-access-log"], env=env, cwd=REPO,
        start_new_session=True)
    try:
        wait_until_up(base + "/ssa/availability")
        rng = np.random.default_rng(1)
        centres = [(float(rng.uniform(0, 360)), float(np.degrees(np.arcsin(rng.uniform(-1, 1)))))
                   for _ in range(args.queries)]
        client = httpx.Client(timeout=30)
        for ra, dec in centres[:20]:  # warm-up (HEALPix ranges, connections, caches)
            client.get(base + "/ssa", params={"REQUEST": "queryData", "POS": f"{ra},{dec}",
                                              "SIZE": str(args.size)})
        ssa_times, nrows = [], []
        for ra, dec in centres:
            t0 = time.perf_counter()
            r = client.get(base + "/ssa", params={"REQUEST": "queryData", "POS": f"{ra},{dec}",
                                                  "SIZE": str(args.size)})
            ssa_times.append(time.perf_counter() - t0)
            nrows.append(r.text.count("<TR>"))
        sql_times = []
        raw = database.reader_engine.raw_connection()
        cur = raw.cursor()
        for ra, dec in centres:
            q = SSAQuery(pos=(ra % 360.0, dec), size=args.size)
            sql, params = build_sql(q, q.maxrec + 1)
            text = sa.text(sql).bindparams(**params).compile(
                dialect=database.engine.dialect, compile_kwargs={"literal_binds": True})
            t0 = time.perf_counter()
            cur.execute(str(text))
            cur.fetchall()
            sql_times.append(time.perf_counter() - t0)
        raw.close()

        # single downloads
        from vo_service.urls import PublicURLs

        did, sha = real[0]
        url = PublicURLs(base).getdata(did)
        store = settings.store_dir
        static, static_base = _static_server(store)
        rel = f"{sha[:2]}/{sha[2:4]}/{sha}"
        size = len(client.get(url).content)
        dl_times, st_times = [], []
        with httpx.Client(timeout=30) as sc:
            for _ in range(200):
                t0 = time.perf_counter()
                client.get(url)
                dl_times.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                sc.get(f"{static_base}/{rel}")
                st_times.append(time.perf_counter() - t0)
        urls = [PublicURLs(base).getdata(d) for d, _ in real]
        static_urls = [f"{static_base}/{s[:2]}/{s[2:4]}/{s}" for _, s in real]
        mbps, rps = asyncio.run(_throughput(urls, args.concurrency, args.downloads))
        smbps, srps = asyncio.run(_throughput(static_urls, args.concurrency, args.downloads))
        static.shutdown()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(15)
        database.dispose()
        if database.embedded is not None:
            database.embedded.stop()

    ssa_ms, sql_ms = _median_ms(ssa_times), _median_ms(sql_times)
    dl_ms, st_ms = _median_ms(dl_times), _median_ms(st_times)
    print(f"\nspectra rows: {n_rows:,}; cone SIZE={args.size} deg (diameter); "
          f"{args.queries} cones, median {statistics.median(nrows):.0f} rows "
          f"(max {max(nrows)})")
    print(f"{'figure':52s} {'latentvo':>10s} {'baseline':>10s} {'ratio':>7s}")
    print(f"{'SSA cone query, median ms (baseline: same SQL in PG)':52s} "
          f"{ssa_ms:10.2f} {sql_ms:10.2f} {ssa_ms / sql_ms:7.1f}")
    print(f"{'SSA cone query, p90 ms':52s} "
          f"{1000 * np.percentile(ssa_times, 90):10.2f} "
          f"{1000 * np.percentile(sql_times, 90):10.2f}")
    print(f"{f'single download ({size / 1024:.0f} kB), median ms (baseline: static)':52s} "
          f"{dl_ms:10.2f} {st_ms:10.2f} {dl_ms / st_ms:7.1f}")
    print(f"{f'getData MB/s, {args.concurrency} concurrent (baseline: static)':52s} "
          f"{mbps:10.1f} {smbps:10.1f} {mbps / smbps:7.2f}")
    print(f"{'getData downloads/s':52s} {rps:10.0f} {srps:10.0f} {rps / srps:7.2f}")
    print("\ntargets: SSA cone <= 15 ms median (DaCHS: 57-81 ms on 200,000 rows); "
          "download <= 20 ms (DaCHS: 128 ms)")


if __name__ == "__main__":
    main()
