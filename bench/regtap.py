"""RegTAP benchmark: pyvo.registry searches against our TAP service with ~1,000 records.

    python bench/regtap.py [--records 1000] [--repeat 20] [--home DIR]

What it does, in a fresh LATENTVO_HOME (embedded PostgreSQL) unless --home is given:

1. starts ``latentvo serve`` (whose start-up sync fills ``rr`` with the site's own
   records) and points ``pyvo.registry`` at its ``/tap``;
2. generates ``--records`` VOResource records like the site's own (a third TAP-like
   services with a tableset of 4 tables x 12 columns, a third SSA services, a third
   data collections; subjects, creators, relationships; one word in ten
   descriptions is "latent") and fills the ``rr`` tables from them with
   ``vo_service.registry.regtap.fill``, then ANALYZE;
3. times (median of ``--repeat`` runs, after one warm-up) ``pyvo.registry.search``
   with ``keywords=["latent"]``, ``servicetype="ssa"``, both together and
   ``datamodel="obscore"``, each against a baseline measured in the same run: the
   translated SQL of the same ADQL run directly in PostgreSQL as the reader role.

Goal: each search under 200 ms. Figures are printed; nothing is asserted.
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

AUTHORITY = "ivo://bench.example"
NS = ('xmlns:ri="http://www.ivoa.net/xml/RegistryInterface/v1.0" '
      'xmlns:vs="http://www.ivoa.net/xml/VODataService/v1.1" '
      'xmlns:tr="http://www.ivoa.net/xml/TAPRegExt/v1.0" '
      'xmlns:ssa="http://www.ivoa.net/xml/SSA/v1.1" '
      'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"')
WORDS = ("stellar spectra survey photometry radial velocity abundance catalogue quasar "
         "galaxy cluster redshift emission absorption line variable binary").split()
SUBJECTS = ("Spectroscopy", "Stellar astronomy", "Galaxies", "Photometry", "Surveys")


def _record_xml(i: int, base: str) -> tuple[str, str, str]:
    """(identifier, xsi type, ri:Resource XML) of generated resource ``i``."""
    kind = ("tap", "ssa", "collection")[i % 3]
    ivoid = f"{AUTHORITY}/{kind}/{i}"
    words = " ".join(WORDS[(i * 7 + k) % len(WORDS)] for k in range(25))
    if i % 10 == 0:
        words += " with latent vectors"
    curation = (f"<curation><publisher>Bench archive {i % 17}</publisher>"
                f"<creator><name>Author {i}</name></creator><creator><name>Coauthor {i % 31}"
                "</name></creator><date role=\"Created\">2025-01-01</date><contact><name>Desk"
                "</name><email>desk@bench.example</email></contact></curation>")
    content = ("<content>" + "".join(f"<subject>{SUBJECTS[(i + k) % len(SUBJECTS)]}</subject>"
                                     for k in range(3))
               + f"<description>Resource {i}: {words}.</description>"
               f"<referenceURL>{base}/</referenceURL><contentLevel>Research</contentLevel>"
               f"<relationship><relationshipType>IsServiceFor</relationshipType>"
               f"<relatedResource ivo-id=\"{AUTHORITY}/collection/{i + 2}\">c</relatedResource>"
               "</relationship></content>")
    if kind == "tap":
        xsi_type = "vs:CatalogService"
        columns = "".join(
            f"<column><name>col{c}</name><description>Column {c} {WORDS[c]}</description>"
            f"<unit>deg</unit><ucd>pos.eq.ra</ucd><dataType xsi:type=\"vs:VOTableType\">"
            "double</dataType><flag>indexed</flag></column>" for c in range(12))
        tables = "".join(f"<table><name>s{i}.t{t}</name><description>Table {t}</description>"
                         f"{columns}</table>" for t in range(4))
        body = (
            f'<capability standardID="ivo://ivoa.net/std/TAP" xsi:type="tr:TableAccess">'
            f'<interface xsi:type="vs:ParamHTTP" role="std" version="1.1"><accessURL use="base">'
            f"{base}/tap</accessURL></interface>"
            + ('<dataModel ivo-id="ivo://ivoa.net/std/ObsCore#core-1.1">ObsCore-1.1</dataModel>'
               if i % 6 == 0 else "")
            + "<language><name>ADQL</name><version>2.1</version></language>"
            "<outputFormat><mime>application/x-votable+xml</mime></outputFormat></capability>"
            f"<tableset><schema><name>s{i}</name>{tables}</schema></tableset>")
    elif kind == "ssa":
        xsi_type = "vs:CatalogService"
        body = ('<capability standardID="ivo://ivoa.net/std/SSA" '
                'xsi:type="ssa:SimpleSpectralAccess"><interface xsi:type="vs:ParamHTTP" '
                f'role="std"><accessURL use="base">{base}/ssa?</accessURL></interface>'
                "<complianceLevel>full</complianceLevel><dataSource>survey</dataSource>"
                "<creationType>archival</creationType><supportedFrame>ICRS</supportedFrame>"
                "<maxSearchRadius>10</maxSearchRadius>"
                "<maxRecords>10000</maxRecords><defaultMaxRecords>1000</defaultMaxRecords>"
                "<maxAperture>0.001</maxAperture><testQuery><pos><long>180</long><lat>0</lat>"
                "</pos><size>1</size></testQuery></capability>")
    else:
        xsi_type = "vs:DataCollection"
        body = ("<format>application/fits</format>"
                "<coverage><waveband>Optical</waveband></coverage>"
                f'<accessURL use="base">{base}/</accessURL>')
    xml = (f'<ri:Resource {NS} xsi:type="{xsi_type}" created="2025-01-01T00:00:00Z" '
           f'updated="2026-12-01T00:00:00Z" status="active"><title>Bench resource {i} '
           f"{WORDS[i % len(WORDS)]}</title><shortName>bench{i}</shortName>"
           f"<identifier>{ivoid}</identifier>{curation}{content}"
           + ("<facility>Bench telescope</facility>" if kind == "collection" else "")
           + f"<rights>CC-BY-4.0</rights>{body}</ri:Resource>")
    return ivoid, xsi_type, xml


def _records(n: int, base: str) -> list:
    from vo_service.registry.record import ACTIVE, ResourceRecord

    stamp = datetime(2026, 12, 1, tzinfo=UTC)
    records = []
    for i in range(n):
        ivoid, xsi_type, xml = _record_xml(i, base)
        records.append(ResourceRecord(ivoid, xsi_type, f"Bench resource {i}", ACTIVE,
                                      stamp, stamp, xml))
    return records






def _median_ms(times: list[float]) -> float:
    return 1000 * statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--records", type=int, default=1000)
    p.add_argument("--repeat", type=int, default=20)
    p.add_argument("--home", help="LATENTVO_HOME to use (default: a fresh temporary one)")
    args = p.parse_args()

    home, port, base = service_home(args.home)

    import sqlalchemy as sa
    from pyvo import registry
    from pyvo.dal import TAPService
    from pyvo.registry import rtcons

    from schema.catalogues import all_published_tables
    from schema.regtap import RR_TABLES
    from vo_service.adql import Catalog, translate
    from vo_service.config import load_settings
    from vo_service.db.database import Database
    from vo_service.registry.regtap import fill

    database = Database(load_settings())
    database.upgrade()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "vo_service.cli", "serve", "--port",
                             str(port)], env=env, cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_until_up(base + "/tap/availability")
        # after the server's start-up sync, which refills rr with the site's own records
        records = _records(args.records, base)
        t0 = time.perf_counter()
        with database.engine.begin() as conn:
            fill(conn, records)
        fill_s = time.perf_counter() - t0
        with database.engine.begin() as conn:
            for table in RR_TABLES:
                conn.execute(sa.text(f"ANALYZE {table.schema}.{table.name}"))
            counts = {t.name: conn.scalar(sa.select(sa.func.count()).select_from(t))
                      for t in RR_TABLES}
            catalog = Catalog.from_tables(all_published_tables(conn))
        print(f"rr filled from {args.records} records in {fill_s:.2f} s: "
              + ", ".join(f"{k} {v}" for k, v in counts.items() if v))

        registry.choose_RegTAP_service(base + "/tap")
        service = TAPService(base + "/tap")
        searches = {
            'keywords=["latent"]': {"keywords": ["latent"]},
            'servicetype="ssa"': {"servicetype": "ssa"},
            'keywords=["latent"], servicetype="ssa"': {"keywords": ["latent"],
                                                        "servicetype": "ssa"},
            'datamodel="obscore"': {"datamodel": "obscore"},
        }
        raw = database.reader_engine.raw_connection()
        cur = raw.cursor()
        print(f"{'search':42s} {'rows':>5s} {'pyvo ms':>8s} {'SQL ms':>7s}")
        for label, kw in searches.items():
            t0 = time.perf_counter()
            found = registry.search(**kw)
            cold = time.perf_counter() - t0
            times = []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                registry.search(**kw)
                times.append(time.perf_counter() - t0)
            adql = rtcons.build_regtap_query(rtcons.keywords_to_constraints(kw), service)
            sql = translate(adql, catalog).sql
            sql_times = []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                cur.execute(sql)
                cur.fetchall()
                sql_times.append(time.perf_counter() - t0)
            print(f"{label:42s} {len(found):5d} {_median_ms(times):8.1f} "
                  f"{_median_ms(sql_times):7.1f}   (first call {1000 * cold:.0f} ms)")
        raw.close()
    finally:
        proc.terminate()
        proc.wait(15)
        database.dispose()
        if database.embedded is not None:
            database.embedded.stop()


if __name__ == "__main__":
    main()
