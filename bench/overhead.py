"""Per-query service overhead of TAP /sync over PostgreSQL's own time for the same SQL.

Issue 16's figure: a sync ``SELECT TOP 100 ... ORDER BY <indexed column>`` over
HTTP, against the planning + execution time PostgreSQL reports (EXPLAIN ANALYZE)
for the translated SQL; the difference is what the service adds (HTTP, parameter
checks, ADQL parsing and translation, the transaction's setup round trips,
VOTable writing). Goal: <= 1.5 ms p50. The server process's CPU time per request
is printed too: on a busy host wall times grow with the load, CPU time much less.

Each ``--checkout`` (default: this one) is served by its own ``latentvo serve``
process on the same database, one after the other and then again in reverse
order, so a before/after pair is measured in one run on the same machine state:

    python bench/overhead.py --checkout /path/to/main --checkout .

Uses ``$LATENTVO_HOME`` (embedded PostgreSQL unless ``LATENTVO_DATABASE_URL`` is
set); fills ``latentvo.spectra`` with ``--rows`` synthetic rows if it holds fewer.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vo_service.config import load_settings  # noqa: E402
from vo_service.db.database import Database  # noqa: E402

QUERY = "SELECT TOP 100 spectrum_id, s_ra, s_dec, snr FROM latentvo.spectra ORDER BY spectrum_id"


def fill(db: Database, rows: int) -> None:
    """Synthetic spectra rows (metadata only), when the table has fewer than ``rows``."""
    with db.engine.begin() as conn:
        have = conn.scalar(sa.text("SELECT count(*) FROM latentvo.spectra"))
        if have >= rows:
            return
        conn.execute(sa.text(
            "INSERT INTO latentvo.spectra (obs_publisher_did, obs_id, obs_collection, s_ra, "
            "s_dec, healpix_index, em_min, em_max, em_xel, source_format, access_format, "
            "access_estsize, file_sha256, file_name, release, snr) "
            "SELECT 'ivo://bench/overhead?' || i, 'ovh-' || i, 'bench', random() * 360, "
            "random() * 180 - 90, i, 4e-7, 7e-7, 100, 'bench', 'application/fits', 1, "
            "'ovh-' || i, 'ovh-' || i || '.fits', 'bench', random() * 100 "
            "FROM generate_series(:a, :b) AS i"), {"a": have + 1, "b": rows})
        conn.execute(sa.text("ANALYZE latentvo.spectra"))


def postgres_ms(db: Database, n: int) -> float:
    """p50 of planning + execution time of the translated query, as the reader role."""
    from schema.tables import published_tables
    from vo_service.adql import Catalog, translate

    t = translate(QUERY, Catalog.from_tables(published_tables()), maxrec=20_000)
    times = []
    with db.reader_engine.connect() as conn:
        for _ in range(n):
            plan = "\n".join(conn.scalars(sa.text("EXPLAIN (ANALYZE) " + t.sql)))
            times.append(sum(float(plan.split(f"{what} Time: ")[1].split(" ms")[0])
                             for what in ("Planning", "Execution")))
    return statistics.median(times)


def serve(checkout: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([sys.executable, "-m", "vo_service.cli", "serve", "--port",
                             str(port)], cwd=checkout, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/tap/availability", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"the server of {checkout} did not start")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def http_ms(url: str, pid: int, n: int, warmup: int = 30) -> tuple[float, float]:
    """p50 wall time of sync TOP 100 requests over one keep-alive connection, and the
    server process's CPU time per request (which other load on the host does not
    inflate the way it inflates wall time)."""
    times = []
    with httpx.Client(base_url=url, timeout=30) as client:
        for i in range(warmup + n):
            if i == warmup:
                cpu = cpu_seconds(pid)
            start = time.perf_counter()
            r = client.post("/tap/sync", data={"REQUEST": "doQuery", "LANG": "ADQL",
                                               "QUERY": QUERY})
            elapsed = time.perf_counter() - start
            r.raise_for_status()
            if i >= warmup:
                times.append(elapsed * 1000)
    return statistics.median(times), (cpu_seconds(pid) - cpu) / n * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkout", action="append", type=Path,
                        help="a checkout whose server to measure (repeatable)")
    parser.add_argument("-n", type=int, default=300, help="requests per measurement")
    parser.add_argument("--rows", type=int, default=20_000)
    args = parser.parse_args()
    checkouts = [c.resolve() for c in (args.checkout or [ROOT])]
    db = Database(load_settings())
    db.upgrade()
    fill(db, args.rows)
    figures: dict[Path, list[tuple[float, float]]] = {c: [] for c in checkouts}
    pg: list[float] = []
    for order in (checkouts, checkouts[::-1]):
        for checkout in order:
            proc, url = serve(checkout)
            try:
                figures[checkout].append(http_ms(url, proc.pid, args.n))
            finally:
                proc.terminate()
                proc.wait(timeout=30)
            pg.append(postgres_ms(db, 50))
    pg_ms = statistics.median(pg)
    print(f"query: {QUERY}")
    print(f"PostgreSQL planning + execution p50: {pg_ms:.2f} ms")
    for checkout, runs in figures.items():
        http = statistics.median(r[0] for r in runs)
        cpu = statistics.median(r[1] for r in runs)
        print(f"{checkout}: HTTP p50 {http:.2f} ms (runs "
              f"{', '.join(f'{r[0]:.2f}' for r in runs)}), overhead {http - pg_ms:.2f} ms "
              f"(goal <= 1.5 ms); server CPU {cpu:.2f} ms per request")
    db.dispose()


if __name__ == "__main__":
    main()
