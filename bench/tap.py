"""TAP benchmark: latentvo against GAVO DaCHS on the same 200,000 rows, in one run.

Prints, for the DaCHS kit's 13 queries (``shared/anchors/dachs/bench_tap.py``, run
with both services as interleaved targets), both services' medians and the
ratios, and checks the goals:

* the kit's queries return the same rows (and values: fingerprints) as DaCHS;
* small queries (count, cones, TOP 100) take at most 1/8 of DaCHS's median;
* the 100,000-row query streams at least 10x DaCHS's rows/s, and it and a
  1,000,000-row result grow the server's memory (PSS) by less than 100 MB;
* an async job takes under 0.3 s from submission to fetched result;

plus the practical limit for the large query: PostgreSQL's own ``COPY (query)
TO STDOUT`` of the same rows (text and binary), timed on our database.

Prerequisites (see docs/tap.md):

    bash ../shared/anchors/dachs/setup.sh                 # DaCHS on :8080 (once)
    python ../shared/anchors/dachs/gen_data.py -n 200000 --csv /tmp/mlspec.csv \\
        --summary /tmp/mlspec.summary.json
    latentvo publish table bench/mlspec.toml /tmp/mlspec.csv
    latentvo serve --port 8000 &

Usage:  python bench/tap.py [--ours http://127.0.0.1:8000/tap]
        [--dachs http://127.0.0.1:8080/tap] [-r 5] [--no-memory]
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
KIT = REPO.parent / "shared" / "anchors" / "dachs"
sys.path.insert(0, str(REPO))

LARGE = ("SELECT TOP 100000 spec_id, target_name, ra, dec, survey, snr, em_min, em_max, t_min, "
         "teff_pred, teff_err, logg_pred, logg_err, mh_pred, mh_err, in_training_domain, latent "
         "FROM mlspec.spectra ORDER BY spec_id")
MILLION = ("SELECT TOP 1000000 a.spec_id, a.target_name, a.ra, a.dec, a.survey, a.snr, "
           "a.em_min, a.em_max, a.t_min, a.teff_pred, a.teff_err, a.logg_pred, a.logg_err, "
           "a.mh_pred, a.mh_err, a.in_training_domain, a.latent "
           "FROM mlspec.spectra AS a JOIN mlspec.spectra AS b ON b.spec_id <= 5")
SMALL = ("q01_count", "q02_cone_0.1", "q03_cone_1", "q05_top_snr")


def reachable(url: str) -> bool:
    try:
        return httpx.get(url + "/availability", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def run_kit(targets: list[str], repeat: int, out: Path) -> dict:
    cmd = [sys.executable, str(KIT / "bench_tap.py"), "-r", str(repeat), "--warmup", "1",
           "--json", str(out)]
    summary = Path("/tmp/mlspec.summary.json")
    if summary.exists():
        cmd += ["--expect", str(summary)]
    for target in targets:
        cmd += ["--target", target]
    print("$", " ".join(cmd), file=sys.stderr)
    subprocess.run(cmd, check=True, stdout=sys.stderr)
    return json.loads(out.read_text())


# -- memory -------------------------------------------------------------------------


def pss(pid: int) -> int:
    """PSS of a process and its descendants, bytes."""
    import psutil

    total = 0
    try:
        procs = [psutil.Process(pid)] + psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return 0
    for proc in procs:
        try:
            with open(f"/proc/{proc.pid}/smaps_rollup") as f:
                total += next(int(ln.split()[1]) * 1024 for ln in f if ln.startswith("Pss:"))
        except (OSError, StopIteration):
            pass
    return total


def server_pid(url: str) -> int | None:
    import psutil

    port = httpx.URL(url).port
    for conn in psutil.net_connections("tcp"):
        if conn.laddr and conn.laddr.port == port and conn.status == "LISTEN" and conn.pid:
            return conn.pid
    return None


def timed_with_memory(url: str, query: str, pid: int | None, maxrec: int) -> dict:
    """Run a sync query, streaming the body away; sample the server's PSS meanwhile."""
    peak, stop = [0], threading.Event()
    idle = pss(pid) if pid else 0

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], pss(pid))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    if pid:
        sampler.start()
    t0 = time.perf_counter()
    size = 0
    with httpx.stream("POST", url + "/sync", data={"LANG": "ADQL", "QUERY": query,
                                                   "MAXREC": str(maxrec)}, timeout=600) as r:
        for chunk in r.iter_raw(1 << 20):
            size += len(chunk)
        status = r.status_code
    seconds = time.perf_counter() - t0
    stop.set()
    if pid:
        sampler.join()
    return {"seconds": seconds, "bytes": size, "http": status, "idle_MB": idle / 2**20,
            "peak_MB": peak[0] / 2**20, "growth_MB": (peak[0] - idle) / 2**20 if pid else None}


# -- COPY baseline ---------------------------------------------------------------------


def copy_baseline(repeat: int) -> dict:
    """PostgreSQL's own COPY (query) TO STDOUT of the large query's rows, on our database."""
    from schema.catalogues import PublishedTables
    from vo_service.adql import Catalog, translate
    from vo_service.config import load_settings
    from vo_service.db.database import Database

    database = Database(load_settings())
    catalog = Catalog.from_tables(PublishedTables(database.engine).tables())
    sql = translate(LARGE, catalog).sql
    out = {}
    raw = database.reader_engine.raw_connection()
    try:
        for fmt in ("text", "binary"):
            times = []
            for _ in range(repeat + 1):
                sink = io.BytesIO()
                t0 = time.perf_counter()
                with raw.cursor() as cur:
                    cur.copy_expert(f"COPY ({sql}) TO STDOUT WITH (FORMAT {fmt})", sink)
                times.append(time.perf_counter() - t0)
                raw.commit()
            out[fmt] = {"median_s": statistics.median(times[1:]), "bytes": len(sink.getvalue())}
    finally:
        raw.close()
        database.dispose()
    return out


# -- report ----------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ours", default="http://127.0.0.1:8000/tap")
    parser.add_argument("--dachs", default="http://127.0.0.1:8080/tap")
    parser.add_argument("-r", "--repeat", type=int, default=5)
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--json", help="write all figures here")
    args = parser.parse_args()

    if not reachable(args.ours):
        sys.exit(f"latentvo is not answering at {args.ours} (latentvo serve --port 8000)")
    dachs = reachable(args.dachs)
    if not dachs:
        print(f"note: DaCHS is not answering at {args.dachs}; run the kit's setup.sh for the "
              "comparison. Showing latentvo's figures only.", file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        colmap = Path(tmp) / "ours.json"
        colmap.write_text(json.dumps({"bool_true": "1"}))
        targets = [f"label=ours,url={args.ours},table=mlspec.spectra,colmap={colmap}"]
        if dachs:
            targets.insert(0, f"label=dachs,url={args.dachs},table=mlspec.spectra")
        kit = run_kit(targets, args.repeat, Path(tmp) / "kit.json")

    copy = copy_baseline(args.repeat)
    memory = {}
    if not args.no_memory:
        pid = server_pid(args.ours)
        memory["ours_100k"] = timed_with_memory(args.ours, LARGE, pid, 200_000)
        memory["ours_1m"] = timed_with_memory(args.ours, MILLION, pid, 1_000_000)
        if dachs:
            dpid = None
            try:
                dpid = int(Path("/var/gavo/state/web.pid").read_text().split()[0])
            except (OSError, ValueError):
                pass
            memory["dachs_100k"] = timed_with_memory(args.dachs, LARGE, dpid, 200_000)

    labels = [t["label"] for t in kit["targets"]]
    print(f"\n## latentvo vs DaCHS (bench_tap.py, {args.repeat} runs, medians)\n")
    print("| query | rows | " + " | ".join(f"{lb} ms" for lb in labels)
          + (" | DaCHS/ours | rows agree | values agree |" if dachs else " |"))
    print("|---" * (2 + len(labels) + (3 if dachs else 0)) + "|")
    goals = []
    for q in kit["queries"]:
        per = q["per_target"]
        ours = per["ours"]
        cells = [q["id"], str(ours.get("rows"))]
        for lb in labels:
            r = per[lb]
            cells.append("ERROR" if r.get("error") else f"{1000 * r['median_s']:.1f}")
        if dachs:
            d = per["dachs"]
            ratio = (d["median_s"] / ours["median_s"]) if not d.get("error") and not \
                ours.get("error") else None
            cells += [f"{ratio:.1f}x" if ratio else "-",
                      "yes" if q["rows_agree"] else "NO",
                      "yes" if q["fingerprints_agree"] else "no"]
            if q["id"] in SMALL and ratio:
                goals.append((f"{q['id']} at most 1/8 of DaCHS", ratio >= 8, f"{ratio:.1f}x"))
            if q["id"] != "q13_latent_knn":
                goals.append((f"{q['id']} same rows as DaCHS", q["rows_agree"],
                              "fingerprint " + ("equal" if q["fingerprints_agree"] else
                                                "differs")))
        print("| " + " | ".join(cells) + " |")

    large = next(q for q in kit["queries"] if q["id"].startswith("q11"))["per_target"]
    asyn = next(q for q in kit["queries"] if q["id"].startswith("q12"))["per_target"]
    ours_rate = large["ours"].get("rows_per_s", 0)
    print("\nlarge result (q11, 100,000 rows, 17 columns incl. float[16]):")
    size = large["ours"].get("bytes", 0) / 1e6
    print(f"  latentvo      {ours_rate:10,.0f} rows/s  ({size:.1f} MB)")
    if dachs and large["dachs"].get("rows_per_s"):
        d_rate = large["dachs"]["rows_per_s"]
        print(f"  DaCHS         {d_rate:10,.0f} rows/s  -> latentvo is {ours_rate / d_rate:.1f}x")
        goals.append(("q11 >= 10x DaCHS rows/s", ours_rate >= 10 * d_rate,
                      f"{ours_rate / d_rate:.1f}x"))
    for fmt, c in copy.items():
        rate = 100_000 / c["median_s"]
        print(f"  PostgreSQL COPY ({fmt:6}) {rate:10,.0f} rows/s  ({c['bytes'] / 1e6:.1f} MB) "
              f"-> latentvo reaches {ours_rate / rate:.0%} of it")
    print(f"\nasync job, submission to fetched result (q12): latentvo "
          f"{1000 * asyn['ours']['median_s']:.0f} ms"
          + (f", DaCHS {1000 * asyn['dachs']['median_s']:.0f} ms" if dachs else ""))
    goals.append(("async job < 0.3 s", asyn["ours"]["median_s"] < 0.3,
                  f"{1000 * asyn['ours']['median_s']:.0f} ms"))
    if memory:
        print("\nserver memory (PSS of the server process and its children):")
        for name, m in memory.items():
            rows = 1_000_000 if "1m" in name else 100_000
            growth = f"{m['growth_MB']:+.0f} MB" if m["growth_MB"] is not None else "n/a"
            print(f"  {name:11} {m['seconds']:6.2f} s  {rows / m['seconds']:10,.0f} rows/s  "
                  f"idle {m['idle_MB']:.0f} MB, peak {m['peak_MB']:.0f} MB, growth {growth}")
        for name in ("ours_100k", "ours_1m"):
            g = memory[name]["growth_MB"]
            if g is not None:
                goals.append((f"{name} memory growth < 100 MB", g < 100, f"{g:+.0f} MB"))
    print("\n## goals\n")
    for name, ok, detail in goals:
        print(f"  [{'x' if ok else ' '}] {name}: {detail}")
    if args.json:
        Path(args.json).write_text(json.dumps({"kit": kit, "copy": copy, "memory": memory,
                                               "goals": goals}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
