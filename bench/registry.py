"""Publishing-registry benchmark: syncing and harvesting 1,000 VOResource records.

    python bench/registry.py [--records 1000] [--repeat 5] [--home DIR]

What it does, in a fresh LATENTVO_HOME (embedded PostgreSQL) unless --home is given:

1. generates ``--records`` drafts (the authority, the registry and vs:DataCollection
   records of about 2 kB, like those of published catalogues and releases) and
   syncs them into the registry store: all new, then all unchanged, then 1 % changed;
2. starts ``latentvo serve`` (one worker, the default ``[registry] page_size`` of 100)
   and times, the median of ``--repeat`` runs over HTTP with keep-alive:

   * a full harvest: ListRecords (ivo_vor) following every resumption token, against
     reading the same rows straight from PostgreSQL (psycopg2, one query);
   * the same in oai_dc (Dublin Core derived from each record), and ListIdentifiers;
   * one GetRecord (median of 100), against one indexed row read from PostgreSQL.

Figures and ratios are printed; nothing is asserted (not part of the test suite).
Goal (issue 17): a ListRecords harvest of 1,000 records under 1 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.serving import service_home, wait_until_up  # noqa: E402

AUTHORITY = "ivo://latentvo.example"
NS = ('xmlns:ri="http://www.ivoa.net/xml/RegistryInterface/v1.0" '
      'xmlns:vr="http://www.ivoa.net/xml/VOResource/v1.0" '
      'xmlns:vg="http://www.ivoa.net/xml/VORegistry/v1.0" '
      'xmlns:vs="http://www.ivoa.net/xml/VODataService/v1.1" '
      'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"')
OAI = "{http://www.openarchives.org/OAI/2.0/}"


def _drafts(n: int, base: str, edition: int = 0) -> list:
    from vo_service.registry.record import ResourceDraft

    def draft(xsi_type: str, identifier: str, title: str, body: str) -> ResourceDraft:
        def render(created: datetime, updated: datetime) -> str:
            stamp = "%Y-%m-%dT%H:%M:%SZ"
            return (f'<ri:Resource {NS} xsi:type="{xsi_type}" created="{created:{stamp}}" '
                    f'updated="{updated:{stamp}}" status="active"><title>{title}</title>'
                    f"<identifier>{identifier}</identifier><curation><publisher>Latentvo "
                    "Bench Archive</publisher><creator><name>Doe, J.</name></creator>"
                    "<contact><name>Archive staff</name><email>archive@example.org</email>"
                    f"</contact></curation>{body}</ri:Resource>")
        return ResourceDraft(identifier, xsi_type, title, render)

    def content(text: str, kind: str) -> str:
        return ("<content><subject>Spectroscopy</subject><subject>Stellar spectra</subject>"
                f"<description>{text}</description><referenceURL>{base}/</referenceURL>"
                f"<type>{kind}</type><contentLevel>Research</contentLevel></content>")

    drafts = [
        draft("vg:Authority", AUTHORITY, "Bench authority",
              content("The bench site's identifiers.", "Organisation")
              + "<managingOrg>Latentvo Bench Archive</managingOrg>"),
        draft("vg:Registry", f"{AUTHORITY}/registry", "Bench registry",
              content("The bench site's publishing registry.", "Registry")
              + '<capability standardID="ivo://ivoa.net/std/Registry" xsi:type="vg:Harvest">'
              f'<interface xsi:type="vg:OAIHTTP" role="std" version="1.0"><accessURL '
              f'use="base">{base}/oai</accessURL></interface><maxRecords>100</maxRecords>'
              "</capability><full>false</full><managedAuthority>latentvo.example"
              "</managedAuthority>")]
    words = ("Stellar spectra and their machine-learning products, predicted labels and "
             "latent vectors, frozen as one catalogue of the archive. ") * 8
    for i in range(n - 2):
        changed = f" Edition {edition}." if i % 100 == 0 else ""
        drafts.append(draft(
            "vs:DataCollection", f"{AUTHORITY}/catalogue/bench.table_{i:05d}",
            f"Bench catalogue {i}", content(words + changed, "Catalog")
            + f'<rights rightsURI="https://spdx.org/licenses/CC-BY-4.0.html">CC-BY 4.0</rights>'
            f"<accessURL use=\"base\">{base}/tap</accessURL>"))
    return drafts






def _median(times: list[float]) -> float:
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--records", type=int, default=1000)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--home", help="LATENTVO_HOME to use (default: a fresh temporary one)")
    args = p.parse_args()

    home, port, base = service_home(args.home)

    import httpx
    import sqlalchemy as sa
    from lxml import etree

    from vo_service.config import load_settings
    from vo_service.db.database import Database
    from vo_service.registry.store import sync

    settings = load_settings()
    database = Database(settings)
    database.upgrade()
    with database.engine.begin() as conn:
        conn.execute(sa.text("TRUNCATE latentvo_ops.registry_records"))
    syncs = []
    for label, edition in (("all new", 0), ("all unchanged", 0), ("1 % changed", 1)):
        drafts = _drafts(args.records, base, edition)
        t0 = time.perf_counter()
        with database.engine.begin() as conn:
            report = sync(conn, drafts, datetime.now(UTC))
        syncs.append((label, time.perf_counter() - t0, report.summary()))
        time.sleep(1.0)  # the next sync dates its changes a second later

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "vo_service.cli", "serve", "--port",
                             str(port)], env=env, cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    oai = base + "/oai"
    try:
        wait_until_up(base + "/tap/availability")
        client = httpx.Client(timeout=60)

        def harvest(verb: str, prefix: str) -> tuple[float, int, int]:
            t0 = time.perf_counter()
            params = {"verb": verb, "metadataPrefix": prefix}
            n = pages = 0
            while True:
                root = etree.fromstring(client.get(oai, params=params).content)
                pages += 1
                n += sum(1 for _ in root.iter(f"{OAI}header"))
                token = root.find(f"{OAI}{verb}/{OAI}resumptionToken")
                if token is None or not token.text:
                    return time.perf_counter() - t0, n, pages
                params = {"verb": verb, "resumptionToken": token.text}

        harvest("ListRecords", "ivo_vor")  # warm-up: connections, caches
        figures = {}
        for verb, prefix in (("ListRecords", "ivo_vor"), ("ListRecords", "oai_dc"),
                             ("ListIdentifiers", "ivo_vor")):
            runs = [harvest(verb, prefix) for _ in range(args.repeat)]
            figures[(verb, prefix)] = (_median([r[0] for r in runs]), runs[0][1], runs[0][2])

        raw_times = []
        for _ in range(args.repeat):
            raw = database.engine.raw_connection()
            try:
                cur = raw.cursor()
                t0 = time.perf_counter()
                cur.execute("SELECT identifier, updated_at, status, xml FROM "
                            "latentvo_ops.registry_records ORDER BY updated_at, identifier")
                rows = cur.fetchall()
                raw_times.append(time.perf_counter() - t0)
            finally:
                raw.close()

        one = f"{AUTHORITY}/catalogue/bench.table_00042"
        get_times, row_times = [], []
        raw = database.engine.raw_connection()
        cur = raw.cursor()
        for _ in range(100):
            t0 = time.perf_counter()
            client.get(oai, params={"verb": "GetRecord", "metadataPrefix": "ivo_vor",
                                    "identifier": one})
            get_times.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            cur.execute("SELECT xml FROM latentvo_ops.registry_records WHERE identifier = %s",
                        (one,))
            cur.fetchall()
            row_times.append(time.perf_counter() - t0)
        raw.close()
    finally:
        proc.terminate()
        proc.wait(20)
        database.dispose()
        if database.embedded is not None:
            database.embedded.stop()

    print(f"registry benchmark: {args.records:,} records, page size "
          f"{settings.registry.page_size}, median of {args.repeat} runs")
    for label, seconds, summary in syncs:
        print(f"  sync ({label}): {seconds * 1000:8.1f} ms  ({summary})")
    raw_s = _median(raw_times)
    print(f"  PostgreSQL, the {len(rows):,} rows in one query: {raw_s * 1000:8.1f} ms")
    for (verb, prefix), (seconds, n, pages) in figures.items():
        print(f"  {verb} {prefix}: {seconds * 1000:8.1f} ms for {n:,} records in {pages} "
              f"pages ({seconds / raw_s:.1f}x the single query)")
    get_s, row_s = _median(get_times), _median(row_times)
    print(f"  GetRecord: {get_s * 1000:8.2f} ms (median of 100) against one row from "
          f"PostgreSQL {row_s * 1000:.2f} ms ({get_s / row_s:.1f}x)")
    full = figures[("ListRecords", "ivo_vor")][0]
    print(f"  goal: ListRecords of {args.records:,} records < 1 s: "
          f"{'met' if full < 1 else 'NOT met'} ({full:.3f} s)")


if __name__ == "__main__":
    main()
