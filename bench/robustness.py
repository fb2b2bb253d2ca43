"""Robustness benchmark: abandoned queries, sustained load, per-query service overhead.

    python bench/robustness.py [--rows 200000] [--abandoned 45] [--clients 8 32]
        [--seconds 60] [--workers 1 2] [--upload-megabytes 600] [--home DIR]

In a fresh LATENTVO_HOME (embedded PostgreSQL) unless --home is given, it fills
``latentvo.spectra`` with ``--rows`` synthetic metadata rows (``bench/ssa.py``'s
COPY helper), starts ``latentvo serve`` as an operator would and prints each
section's figures against a baseline measured in the same run:

* **abandoned** (issue 16, finding 1): ``--abandoned`` sync cross joins from one
  client (``--abandon-clients``: from that many), each given up after
  ``--give-up`` seconds (with ``--resend`` sent again until the probes end);
  meanwhile, for ``--probe-seconds``, another client probes ``/tap/availability``
  and a TOP-10 query. p50/p99 of both against the same probes on the idle service, the
  answers the abandoned requests got, and the cross-join backends still active in
  PostgreSQL a moment after the last client gave up.
* **load**: for each ``--workers`` and ``--clients`` value, that many clients (each
  its own address, ``X-Forwarded-For``) send small queries (a cone, a TOP 10, a
  COUNT) for ``--seconds``: req/s, errors, p50/p99 and the growth of the server's
  memory (PSS of its processes) from after a warm-up to the end.
* **overhead**: p50 of a sync ``TOP 100 ... ORDER BY`` the primary key over HTTP
  against PostgreSQL's own planning + execution time (``EXPLAIN ANALYZE``) of the
  same translated SQL.
* **translation** (finding 9): how fast a 10 MB query (an IN list of 1.5M values)
  is refused, what the largest IN list under the limits (``--in-list``) costs,
  and TOP-10 latency while four clients keep sending 10 MB queries.
* **upload** (finding 3): the server's memory around a rejected chunked upload of
  ``--upload-megabytes`` MiB (``bench/upload_rss.py``): growth of its RSS from
  before to the peak while the body streamed in (goal: <= 5 MB).

Each section is a function in ``SECTIONS`` taking the :class:`Bench` and returning
its printed lines and figures; another measurement is one more function there.
Nothing is asserted (not part of the test suite); ``--json`` writes the figures.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import sqlalchemy as sa

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.serving import free_port, wait_until_up  # noqa: E402
from bench.ssa import _copy_synthetic_rows  # noqa: E402
from bench.tap import pss  # noqa: E402

CROSS_JOIN = ("SELECT COUNT(*) AS n FROM latentvo.spectra AS a CROSS JOIN latentvo.spectra AS b "
              "CROSS JOIN latentvo.spectra AS c")
TOP10 = "SELECT TOP 10 spectrum_id, s_ra, s_dec FROM latentvo.spectra"
CONE = ("SELECT spectrum_id, s_ra, s_dec FROM latentvo.spectra WHERE 1 = CONTAINS("
        "POINT('ICRS', s_ra, s_dec), CIRCLE('ICRS', {ra}, {dec}, 0.5))")
COUNT = "SELECT COUNT(*) AS n FROM latentvo.spectra WHERE snr > {snr}"
TOP100 = "SELECT TOP 100 spectrum_id, s_ra, s_dec, snr FROM latentvo.spectra ORDER BY spectrum_id"
PROBE_CLIENT = "10.255.0.1"  # the well-behaved client beside the abandoned ones


@dataclass
class Bench:
    """What the sections share: the options, the data directory, the database."""

    args: argparse.Namespace
    home: Path
    database: Any  # vo_service.db.database.Database
    figures: dict[str, object] = field(default_factory=dict)

    @contextmanager
    def server(self, workers: int = 1) -> Iterator[tuple[str, int]]:
        """``latentvo serve --workers N`` on a free port: (base URL, its process id)."""
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = {**os.environ, "LATENTVO_HOME": str(self.home), "LATENTVO_BASE_URL": base,
               "PYTHONPATH": str(REPO)}
        proc = subprocess.Popen(
            [sys.executable, "-m", "vo_service.cli", "serve", "--port", str(port),
             "--workers", str(workers)], env=env, cwd=REPO, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            wait_until_up(base + "/tap/availability")
            yield base, proc.pid
        finally:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def _sync(client: httpx.Client, base: str, query: str, **params: str) -> httpx.Response:
    return client.post(base + "/tap/sync", data={"LANG": "ADQL", "QUERY": query, **params})


def _ms(times: list[float], q: float) -> float | None:
    if not times:
        return None
    ordered = sorted(times)
    return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _summary(times: list[float], errors: int) -> dict[str, float | int | None]:
    return {"n": len(times), "errors": errors, "p50_ms": _ms(times, 0.5),
            "p99_ms": _ms(times, 0.99)}


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


# -- (a) abandoned queries ----------------------------------------------------------------


def _probe(base: str, seconds: float, stop: threading.Event | None = None
           ) -> dict[str, dict[str, float | int | None]]:
    """Availability and a TOP-10 query, one after the other, for ``seconds``."""
    times: dict[str, list[float]] = {"availability": [], "top10": []}
    errors = dict.fromkeys(times, 0)
    headers = {"X-Forwarded-For": PROBE_CLIENT}
    deadline = time.monotonic() + seconds
    with httpx.Client(timeout=20, headers=headers) as client:
        while time.monotonic() < deadline and not (stop and stop.is_set()):
            for name in times:
                t0 = time.perf_counter()
                try:
                    if name == "availability":
                        ok = client.get(base + "/tap/availability").status_code == 200
                    else:
                        ok = _sync(client, base, TOP10).status_code == 200
                except httpx.HTTPError:
                    ok = False
                times[name].append(time.perf_counter() - t0)
                errors[name] += not ok
            time.sleep(0.05)
    return {name: _summary(times[name], errors[name]) for name in times}


def _cross_join_backends(database) -> int:
    # as the reader role: a role sees the queries of its own sessions
    with database.reader_engine.connect() as conn:
        return int(conn.scalar(sa.text(
            "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
            "AND query LIKE '%CROSS JOIN \"latentvo\".\"spectra\"%' "
            "AND pid <> pg_backend_pid()")))


def abandoned(bench: Bench) -> list[str]:
    """Finding 1: the service under abandoned cross joins, against the idle service."""
    args = bench.args
    with bench.server() as (base, _pid):
        _probe(base, 1.0)  # warm-up: the first query loads the catalog and the driver
        idle = _probe(base, args.probe_seconds / 2)
        answers: dict[str, int] = {}
        lock, stop = threading.Lock(), threading.Event()

        def abandon(i: int) -> None:
            n = i % max(1, args.abandon_clients)
            headers = {"X-Forwarded-For": f"10.254.{n // 250}.{n % 250}"}
            while not stop.is_set():  # once, or until the probes end with --resend
                try:
                    status = str(httpx.post(base + "/tap/sync", headers=headers,
                                            data={"LANG": "ADQL", "QUERY": CROSS_JOIN},
                                            timeout=args.give_up).status_code)
                    time.sleep(0.2)  # an answer (503) came at once: do not spin
                except httpx.TimeoutException:
                    status = "gave up"
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                with lock:
                    answers[status] = answers.get(status, 0) + 1
                if not args.resend:
                    return

        with concurrent.futures.ThreadPoolExecutor(args.abandoned) as pool:
            for i in range(args.abandoned):
                pool.submit(abandon, i)
            time.sleep(0.2)  # the queries are in flight
            loaded = _probe(base, args.probe_seconds)
            stop.set()
        time.sleep(1.5)  # the last clients gave up at most --give-up seconds ago
        left = _cross_join_backends(bench.database)
    lines = [f"## abandoned queries: {args.abandoned} cross joins from "
             f"{max(1, args.abandon_clients)} client address(es), given up after "
             f"{args.give_up:g} s{' and resent' if args.resend else ''}; probes for "
             f"{args.probe_seconds:g} s from another client", "",
             "| probe | idle p50 ms | idle p99 ms | loaded p50 ms | loaded p99 ms | "
             "loaded errors |", "|---|---|---|---|---|---|"]
    for name in ("availability", "top10"):
        a, b = idle[name], loaded[name]
        lines.append(f"| {name} | {_fmt(a['p50_ms'])} | {_fmt(a['p99_ms'])} | "
                     f"{_fmt(b['p50_ms'])} | {_fmt(b['p99_ms'])} | {b['errors']} |")
    lines += ["", "answers to the abandoned requests: "
              + ", ".join(f"{k}: {v}" for k, v in sorted(answers.items())),
              f"cross-join backends still active 1.5 s after the last client gave up: {left}"]
    bench.figures["abandoned"] = {"idle": idle, "loaded": loaded, "answers": answers,
                                  "backends_left": left}
    return lines


# -- (b) sustained load -------------------------------------------------------------------


def _small_queries() -> Iterator[str]:
    for i in itertools.count():
        yield (CONE.format(ra=(37 * i) % 360, dec=((23 * i) % 160) - 80), TOP10,
               COUNT.format(snr=5 + (i % 150)))[i % 3]


def _client_loop(base: str, address: str, deadline: float) -> tuple[list[float], int]:
    times, errors = [], 0
    queries = _small_queries()
    with httpx.Client(timeout=30, headers={"X-Forwarded-For": address}) as client:
        while time.monotonic() < deadline:
            t0 = time.perf_counter()
            try:
                ok = _sync(client, base, next(queries)).status_code == 200
            except httpx.HTTPError:
                ok = False
            times.append(time.perf_counter() - t0)
            errors += not ok
    return times, errors


def load(bench: Bench) -> list[str]:
    """K clients x T seconds of small queries, for each web worker count."""
    args = bench.args
    lines = [f"## load: small queries (cone, TOP 10, COUNT) for {args.seconds:g} s", "",
             "| workers | clients | req/s | errors | p50 ms | p99 ms | p99/p50 | "
             "memory growth MB |", "|---|---|---|---|---|---|---|---|"]
    figures = []
    for workers in args.workers:
        with bench.server(workers) as (base, pid):
            warm_until = time.monotonic() + 3
            with concurrent.futures.ThreadPoolExecutor(8) as pool:  # warm every worker up
                for i in range(8):
                    pool.submit(_client_loop, base, f"10.252.0.{i}", warm_until)
            for clients in args.clients:
                before = pss(pid)
                deadline = time.monotonic() + args.seconds
                with concurrent.futures.ThreadPoolExecutor(clients) as pool:
                    futures = [pool.submit(_client_loop, base, f"10.251.{i // 250}.{i % 250}",
                                           deadline) for i in range(clients)]
                    results = [f.result() for f in futures]
                growth = (pss(pid) - before) / 2**20
                times = [t for ts, _ in results for t in ts]
                errors = sum(e for _, e in results)
                s = _summary(times, errors)
                rate = len(times) / args.seconds
                ratio = (s["p99_ms"] / s["p50_ms"]) if s["p50_ms"] else None
                lines.append(f"| {workers} | {clients} | {rate:.0f} | {errors} | "
                             f"{_fmt(s['p50_ms'])} | {_fmt(s['p99_ms'])} | "
                             f"{_fmt(ratio)} | {growth:.1f} |")
                figures.append({"workers": workers, "clients": clients, "req_per_s": rate,
                                "growth_MB": growth, **s})
    bench.figures["load"] = figures
    return lines


# -- (c) per-query overhead ---------------------------------------------------------------


def overhead(bench: Bench) -> list[str]:
    """Sync TOP 100 ORDER BY the primary key over HTTP against EXPLAIN ANALYZE of its SQL."""
    from schema.catalogues import PublishedTables
    from vo_service.adql import Catalog, translate

    args = bench.args
    database = bench.database
    catalog = Catalog.from_tables(PublishedTables(database.engine).tables())
    sql = translate(TOP100, catalog, maxrec=20_000).sql
    pg: list[float] = []
    with database.reader_engine.connect() as conn:
        for _ in range(args.repeat + 5):
            plan = conn.execute(sa.text("EXPLAIN (ANALYZE, FORMAT JSON) " + sql)).scalar()
            pg.append((plan[0]["Planning Time"] + plan[0]["Execution Time"]) / 1000)
    http: list[float] = []
    with bench.server() as (base, _pid), httpx.Client(timeout=30) as client:
        for i in range(args.repeat + 5):
            t0 = time.perf_counter()
            response = _sync(client, base, TOP100)
            if i >= 5:  # after a warm-up
                http.append(time.perf_counter() - t0)
            response.raise_for_status()
    p50_http, p50_pg = 1000 * statistics.median(http), 1000 * statistics.median(pg[5:])
    bench.figures["overhead"] = {"http_p50_ms": p50_http, "postgres_p50_ms": p50_pg,
                                 "overhead_ms": p50_http - p50_pg}
    return [f"## per-query overhead: {TOP100!r}, {args.repeat} runs", "",
            f"sync over HTTP p50 {p50_http:.2f} ms; PostgreSQL planning + execution "
            f"(EXPLAIN ANALYZE) p50 {p50_pg:.2f} ms; service overhead {p50_http - p50_pg:.2f} ms"]


# -- (d) translation work ----------------------------------------------------------------


def _in_list(n: int) -> str:
    return ("SELECT spectrum_id FROM latentvo.spectra WHERE spectrum_id IN ("
            + ",".join(str(i) for i in range(n)) + ")")


def translation(bench: Bench) -> list[str]:
    """Finding 9: a 10 MB query is refused at once; the largest accepted query's cost; and
    TOP-10 latency while other clients keep sending 10 MB queries."""
    args = bench.args
    huge = _in_list(1_500_000)  # the 10 MB query
    form = {"content": urlencode({"LANG": "ADQL", "QUERY": huge}).encode(),  # encoded once
            "headers": {"Content-Type": "application/x-www-form-urlencoded"}}
    largest = _in_list(args.in_list)
    with bench.server() as (base, _pid):
        _probe(base, 1.0)
        refused: list[float] = []
        statuses: set[int] = set()
        with httpx.Client(timeout=120) as client:
            for _ in range(5):
                t0 = time.perf_counter()
                statuses.add(client.post(base + "/tap/sync", **form).status_code)
                refused.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            big_status = _sync(client, base, largest).status_code
            big_s = time.perf_counter() - t0
        idle = _probe(base, args.probe_seconds / 2)["top10"]
        stop = threading.Event()

        def flood(i: int) -> None:
            with httpx.Client(timeout=120, headers={"X-Forwarded-For": f"10.250.0.{i}"}) as c:
                while not stop.is_set():
                    c.post(base + "/tap/sync", **form)

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            for i in range(4):
                pool.submit(flood, i)
            loaded = _probe(base, args.probe_seconds / 2)["top10"]
            stop.set()
    p50 = 1000 * statistics.median(refused)
    bench.figures["translation"] = {"refused_10MB_p50_ms": p50, "statuses": sorted(statuses),
                                    "in_list": args.in_list, "in_list_s": big_s,
                                    "in_list_status": big_status, "top10_idle": idle,
                                    "top10_under_10MB_flood": loaded}
    return [f"## translation work: a {len(huge) / 1e6:.1f} MB query (IN list of 1,500,000)",
            "", f"answered {sorted(statuses)} in p50 {p50:.1f} ms (HTTP round trip, the "
            f"{len(form['content']) / 1e6:.1f} MB form encoded beforehand)",
            f"an IN list of {args.in_list:,} ({len(largest):,} characters): HTTP {big_status} "
            f"in {1000 * big_s:.0f} ms",
            f"TOP-10 from another client: idle p50 {_fmt(idle['p50_ms'])} ms / p99 "
            f"{_fmt(idle['p99_ms'])} ms; while 4 clients send 10 MB queries p50 "
            f"{_fmt(loaded['p50_ms'])} ms / p99 {_fmt(loaded['p99_ms'])} ms"]


# -- (e) a rejected oversize upload --------------------------------------------------------


def upload(bench: Bench) -> list[str]:
    """RSS of the server around a chunked upload far over ``[tap] upload_bytes``."""
    from bench.upload_rss import rejected_upload_rss

    megabytes = bench.args.upload_megabytes
    with bench.server() as (base, pid):
        figures = rejected_upload_rss(base, pid, megabytes)
    bench.figures["upload"] = figures
    return [f"## rejected upload: {megabytes} MiB chunked multipart to /tap/sync", "",
            f"HTTP {figures['status']} in {figures['seconds']:.2f} s; server RSS "
            f"{figures['rss_before_mib']:.1f} MiB before, {figures['rss_peak_mib']:.1f} peak, "
            f"{figures['rss_after_mib']:.1f} after: growth {figures['growth_mib']:.1f} MiB "
            "(goal <= 5)"]


SECTIONS: dict[str, Callable[[Bench], list[str]]] = {
    "abandoned": abandoned, "load": load, "overhead": overhead, "translation": translation,
    "upload": upload}


def prepare(home: Path, rows: int):
    """The database of ``home``, migrated, with at least ``rows`` spectra."""
    os.environ["LATENTVO_HOME"] = str(home)
    from vo_service.config import load_settings
    from vo_service.db.database import Database

    database = Database(load_settings())
    database.upgrade()
    with database.engine.connect() as conn:
        existing = conn.scalar(sa.text("SELECT count(*) FROM latentvo.spectra"))
    if existing < rows:
        print(f"preparing {home}: {rows - existing:,} synthetic spectra", file=sys.stderr)
        _copy_synthetic_rows(database, rows - existing)
    return database


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=200_000, help="synthetic spectra")
    p.add_argument("--abandoned", type=int, default=45, help="abandoned cross joins in flight")
    p.add_argument("--abandon-clients", type=int, default=1,
                   help="addresses the abandoned queries come from (1: one client)")
    p.add_argument("--give-up", type=float, default=2.0, help="seconds before a client gives up")
    p.add_argument("--resend", action="store_true",
                   help="send each abandoned query again until the probes end (default: once)")
    p.add_argument("--probe-seconds", type=float, default=10.0)
    p.add_argument("--clients", type=int, nargs="+", default=[8, 32])
    p.add_argument("--seconds", type=float, default=60.0, help="of each load run")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="web workers")
    p.add_argument("-r", "--repeat", type=int, default=200, help="overhead runs")
    p.add_argument("--in-list", type=int, default=14_000,
                   help="values of the largest IN list timed (the defaults allow ~16,000)")
    p.add_argument("--upload-megabytes", type=int, default=600,
                   help="size of the rejected upload")
    p.add_argument("--only", nargs="+", choices=list(SECTIONS), help="run only these sections")
    p.add_argument("--home", help="LATENTVO_HOME to use (default: a fresh temporary one)")
    p.add_argument("--json", help="write all figures here")
    args = p.parse_args()

    home = Path(args.home) if args.home else Path(tempfile.mkdtemp(prefix="latentvo-bench-"))
    bench = Bench(args, home, prepare(home, args.rows))
    try:
        for name, section in SECTIONS.items():
            if args.only and name not in args.only:
                continue
            print("\n".join(["", *section(bench)]), flush=True)
    finally:
        bench.database.dispose()
    if args.json:
        Path(args.json).write_text(json.dumps(bench.figures, indent=2))


if __name__ == "__main__":
    main()
