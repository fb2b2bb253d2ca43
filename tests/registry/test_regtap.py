"""RegTAP 1.1 over the registry's own records: the rr rows, and discovery by real clients.

The rr tables are filled from VOResource records shaped like the builders' (see
``resources.py``) whose access URLs point at the real test server; then
pyvo.registry, pointed at that server's TAP service, must find the services by
type, data model and keyword and use them, STILTS must find them with a RegTAP
query, and taplint must still report no errors with the rr schema filled.
"""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime

import httpx
import pytest
import sqlalchemy as sa
from lxml import etree
from pyvo import registry
from pyvo.dal import TAPService

from schema.regtap import (
    RR_TABLES,
    RR_UTYPE,
    alt_identifier,
    capability,
    interface,
    intf_param,
    relationship,
    res_date,
    res_detail,
    res_role,
    res_schema,
    res_subject,
    res_table,
    resource,
    table_column,
)
from tests.registry.resources import AUTHORITY, site_records
from tests.tap.test_taplint import test_taplint_has_no_errors as taplint_check
from vo_service.registry.record import ResourceRecord
from vo_service.registry.regtap import fill, rr_rows

BASE = "http://example.org/lvo"


def by_ivoid(rows, ivoid):
    return [r for r in rows if r["ivoid"] == ivoid]


# The schemas of the records' namespaces, imported in dependency order by one wrapper
# schema, so that lxml never follows the network schemaLocations inside them.
XSDS = (
    ("http://www.w3.org/XML/1998/namespace", "xml.xsd"),
    ("http://www.w3.org/1999/xlink", "xlink.xsd"),
    ("http://www.ivoa.net/xml/STC/stc-v1.30.xsd", "stc.xsd"),
    ("http://www.ivoa.net/xml/VOResource/v1.0", "VOResource.xsd"),
    ("http://www.ivoa.net/xml/VODataService/v1.1", "VODataService.xsd"),
    ("http://www.ivoa.net/xml/TAPRegExt/v1.0", "TAPRegExt.xsd"),
    ("http://www.ivoa.net/xml/SSA/v1.1", "SSA.xsd"),
    ("http://www.ivoa.net/xml/RegistryInterface/v1.0", "RegistryInterface.xsd"),
)


def test_the_test_records_are_valid_voresource(shared):
    """The records these tests map are valid VOResource 1.1, as the builders' must be."""
    folder = shared("ivoa-xsd", "the IVOA XML schemas")
    wrapper = ('<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">' + "".join(
        f'<xs:import namespace="{ns}" schemaLocation="{(folder / name).as_uri()}"/>'
        for ns, name in XSDS) + "</xs:schema>")
    parser = etree.XMLParser(no_network=True)
    schema = etree.XMLSchema(etree.fromstring(wrapper.encode(), parser))
    for record in site_records(BASE):
        if record.xml:
            assert schema.validate(etree.fromstring(record.xml.encode())), (
                record.identifier, [str(e) for e in schema.error_log])


def test_resource_rows_follow_regtap():
    rows = rr_rows(site_records(BASE))
    tap = by_ivoid(rows[resource], f"{AUTHORITY}/tap")[0]
    assert tap["res_type"] == "vs:catalogservice"
    assert tap["created"] == datetime(2026, 12, 1, 10, tzinfo=UTC)
    assert tap["creator_seq"] == "Doe, J.; Roe, R."
    assert tap["content_level"] == "research" and tap["content_type"] == "catalog"
    assert tap["rights_uri"] == "https://spdx.org/licenses/CC-BY-4.0.html"
    collection = by_ivoid(rows[resource], f"{AUTHORITY}/spectra")[0]
    assert collection["res_type"] == "vs:datacollection"
    assert collection["waveband"] == "optical"
    assert collection["region_of_regard"] == pytest.approx(0.0003)
    # the withdrawn release gives no row anywhere
    assert all(not by_ivoid(rows[t], f"{AUTHORITY}/release/dr0") for t in RR_TABLES)


def test_capabilities_interfaces_and_details():
    rows = rr_rows(site_records(BASE))
    caps = {(c["ivoid"], c["standard_id"]): c for c in rows[capability]}
    ssa = caps[(f"{AUTHORITY}/ssa", "ivo://ivoa.net/std/ssa")]  # lower-cased
    assert ssa["cap_type"] == "ssap:simplespectralaccess"  # canonical prefix
    assert caps[(f"{AUTHORITY}/tap", "ivo://ivoa.net/std/tap")]["cap_type"] == "tr:tableaccess"
    intf = [i for i in rows[interface] if i["ivoid"] == f"{AUTHORITY}/ssa"][0]
    assert intf["cap_index"] == ssa["cap_index"]
    assert (intf["intf_type"], intf["intf_role"], intf["url_use"], intf["query_type"]) == (
        "vs:paramhttp", "std", "base", "get")
    assert intf["access_url"] == f"{BASE}/ssa?" and intf["authenticated_only"] == 0
    assert intf["result_type"] == "application/x-votable+xml"
    param = [p for p in rows[intf_param] if p["ivoid"] == f"{AUTHORITY}/ssa"][0]
    assert (param["name"], param["std"], param["datatype"], param["arraysize"],
            param["param_use"]) == ("pos", 1, "real", "2", "required")
    details = {(d["ivoid"], d["detail_xpath"], d["detail_value"]) for d in rows[res_detail]}
    tap, ssa_id = f"{AUTHORITY}/tap", f"{AUTHORITY}/ssa"
    for expected in [
        (tap, "/capability/dataModel/@ivo-id", "ivo://ivoa.net/std/ObsCore#core-1.1"),
        (tap, "/capability/language/name", "ADQL"),
        (tap, "/capability/language/version/@ivo-id", "ivo://ivoa.net/std/ADQL#v2.1"),
        (tap, "/capability/language/languageFeatures/feature/form",
         "ivo_hasword(haystack TEXT, needle TEXT) -> INTEGER"),
        (tap, "/capability/outputFormat/mime",
         "application/x-votable+xml;serialization=BINARY2"),
        (tap, "/capability/uploadMethod/@ivo-id",
         "ivo://ivoa.net/std/TAPRegExt#upload-inline"),
        (tap, "/capability/outputLimit/hard", "1000000"),
        (tap, "/capability/interface/securityMethod/@standardID",
         "ivo://ivoa.net/sso#tls-with-password"),
        (ssa_id, "/capability/complianceLevel", "full"),
        (ssa_id, "/capability/maxSearchRadius", "10"),
        (ssa_id, "/capability/testQuery/pos/long", "180"),
        (f"{AUTHORITY}/spectra", "/facility", "Test telescope"),
        (f"{AUTHORITY}/spectra", "/accessURL", f"{BASE}/"),
    ]:
        assert expected in details
    # members with their own tables are not repeated as details
    assert {d[1] for d in details if d[1].startswith("/capability/interface")} == {
        "/capability/interface/securityMethod/@standardID"}
    tap_intfs = {i["access_url"]: i for i in rows[interface] if i["ivoid"] == tap}
    assert tap_intfs[f"{BASE}/tap"]["authenticated_only"] == 0
    assert tap_intfs[f"{BASE}/tap/capabilities"]["authenticated_only"] == 1


def test_tableset_roles_subjects_and_relationships():
    rows = rr_rows(site_records(BASE))
    tap = f"{AUTHORITY}/tap"
    schemas = by_ivoid(rows[res_schema], tap)
    assert [s["schema_name"] for s in schemas] == ["ivoa", "latentvo"]
    tables = {t["table_name"]: t for t in by_ivoid(rows[res_table], tap)}
    obscore = tables["ivoa.obscore"]
    assert (obscore["table_type"], obscore["table_utype"]) == (
        "view", "ivo://ivoa.net/std/obscore#table-1.1")
    assert tables["latentvo.latent"]["schema_index"] == schemas[1]["schema_index"]
    columns = {c["name"]: c for c in by_ivoid(rows[table_column], tap)}
    assert columns["s_ra"]["table_index"] == obscore["table_index"]
    assert (columns["s_ra"]["flag"], columns["s_ra"]["type_system"], columns["s_ra"]["unit"]
            ) == ("indexed#primary", "vs:votabletype", "deg")
    assert columns["vec"]["arraysize"] == "*"
    assert [s["res_subject"] for s in by_ivoid(rows[res_subject], tap)] == [
        "Spectroscopy", "Astronomy software"]
    roles = {(r["base_role"], r["role_name"]): r for r in by_ivoid(rows[res_role], tap)}
    assert roles[("publisher", "Latentvo Test Archive")]["role_ivoid"] == (
        f"{AUTHORITY}/org")
    assert roles[("creator", "Doe, J.")]["logo"] == "https://example.org/logo.png"
    assert roles[("creator", "Roe, R.")]["role_ivoid"] == f"{AUTHORITY}/people/roe"
    assert roles[("contact", "Archive staff")]["email"] == "archive@example.org"
    dates = by_ivoid(rows[res_date], tap)
    assert [(d["date_value"], d["value_role"]) for d in dates] == [
        (datetime(2026, 1, 2, tzinfo=UTC), "created"),
        (datetime(2026, 12, 7, 4, tzinfo=UTC), "updated")]
    assert by_ivoid(rows[relationship], f"{AUTHORITY}/spectra") == [{
        "ivoid": f"{AUTHORITY}/spectra", "relationship_type": "isservedby",
        "related_id": f"{AUTHORITY}/tap", "related_name": "latentvo TAP service"}]
    assert [a["alt_identifier"] for a in rows[alt_identifier]] == ["doi:10.5072/latentvo.tap"]


def test_fill_replaces_everything(database):
    base = "http://example.org/first"
    with database.engine.begin() as conn:
        fill(conn, site_records(base))
        fill(conn, site_records(BASE)[:1])
    with database.reader_engine.connect() as conn:  # readable by TAP's role
        assert conn.scalars(sa.select(resource.c.ivoid)).all() == [f"{AUTHORITY}/tap"]
        urls = conn.scalars(sa.text("SELECT access_url FROM rr.interface")).all()
    assert urls and all(u.startswith(BASE) for u in urls)


def test_a_broken_record_changes_nothing(database):
    broken = ResourceRecord(f"{AUTHORITY}/broken", "vs:DataCollection", "broken", "active",
                            datetime.now(UTC), datetime.now(UTC), "<ri:Resource")
    with database.engine.begin() as conn:
        fill(conn, site_records(BASE))
    with pytest.raises(ValueError, match="broken"):
        with database.engine.begin() as conn:
            fill(conn, [broken])
    with database.engine.connect() as conn:
        assert conn.scalar(sa.text("SELECT count(*) FROM rr.resource")) == 3


# ------------------------------------------------------------------ real clients


@pytest.fixture
def published(database, tap_server):
    """rr filled with the site's records pointing at the running test server."""
    with database.engine.begin() as conn:
        fill(conn, site_records(tap_server.removesuffix("/tap")))
    registry.choose_RegTAP_service(tap_server)
    yield tap_server
    registry.choose_RegTAP_service("https://reg.g-vo.org/tap")


def ivoids(results):
    return {r.ivoid for r in results}


def test_tap_schema_describes_rr(tap_server, published):
    service = TAPService(tap_server)
    tables = service.tables
    assert "rr.resource" in tables and "rr.res_detail" in tables
    assert "ivoid" in [c.name for c in tables["rr.resource"].columns]
    schemas = service.run_sync(
        "SELECT description, utype FROM tap_schema.schemas WHERE schema_name = 'rr'")
    assert "RegTAP" in schemas[0]["description"] and schemas[0]["utype"] == RR_UTYPE
    vosi = etree.fromstring(httpx.get(f"{tap_server}/tables", timeout=30).content)
    rr = [s for s in vosi.findall("schema") if s.findtext("name") == "rr"]
    assert rr and "RegTAP" in rr[0].findtext("description")
    assert rr[0].findtext("utype") == RR_UTYPE
    assert len(rr[0].findall("table")) == 14
    capabilities = service.capabilities
    models = [m.ivo_id.lower() for c in capabilities if c.standardid == "ivo://ivoa.net/std/TAP"
              for m in c.datamodels]
    # RegTAP forbids the data model to services that do not hold the whole VO registry
    assert models and not [m for m in models if "regtap" in m]


def test_regtap_functions_on_rr(published):
    """RegTAP's ivo_ functions answer 1 or 0, also for NULL columns (no flag, no unit)."""
    service = TAPService(published)

    def names(condition):
        rows = service.run_sync(f"SELECT name FROM rr.table_column WHERE {condition}")
        return sorted(r["name"] for r in rows)

    assert names("1 = ivo_hashlist_has(flag, 'INDEXED')") == ["s_ra"]
    assert names("0 = ivo_hashlist_has(flag, 'indexed')") == ["obs_publisher_did", "vec"]
    assert names("0 = ivo_hasword(unit, 'deg')") == ["obs_publisher_did", "vec"]
    assert names("0 = ivo_nocasematch(unit, 'DEG')") == ["obs_publisher_did", "vec"]
    assert names("NOT (1 = ivo_hasword(unit, 'deg'))") == ["obs_publisher_did", "vec"]
    assert names("1 = ivo_hasword(column_description, 'RIGHT')") == ["s_ra"]
    rows = service.run_sync("SELECT ivoid, ivo_string_agg(res_subject, '#') AS subjects "
                            "FROM rr.res_subject GROUP BY ivoid")
    assert len(rows) == 3
    assert all(set(r["subjects"].split("#")) == {"Spectroscopy", "Astronomy software"}
               for r in rows)


def test_pyvo_finds_the_services(published, archive):
    assert ivoids(registry.search(servicetype="ssa")) == {f"{AUTHORITY}/ssa"}
    assert ivoids(registry.search(servicetype="tap")) == {f"{AUTHORITY}/tap"}
    assert ivoids(registry.search(datamodel="obscore")) == {f"{AUTHORITY}/tap"}
    assert ivoids(registry.search(datamodel="regtap")) == set()  # we are not a full registry
    assert ivoids(registry.search(keywords=["latent"])) == {
        f"{AUTHORITY}/tap", f"{AUTHORITY}/ssa"}
    assert ivoids(registry.search(keywords=["SPECTROSCOPY"])) == {
        f"{AUTHORITY}/tap", f"{AUTHORITY}/ssa", f"{AUTHORITY}/spectra"}
    assert ivoids(registry.search(keywords=["latent"], servicetype="ssa")) == {
        f"{AUTHORITY}/ssa"}


def test_discovered_services_answer(published, archive):
    ssa_resource = registry.search(servicetype="ssa")[0]
    assert ssa_resource.res_title == "latentvo SSA service"
    assert [c.strip() for c in ssa_resource.creators] == ["Doe, J.", "Roe, R."]
    spectra = ssa_resource.get_service("ssa").search(pos=(180.0, 0.0), diameter=4.0)
    assert len(spectra) > 0
    tap_resource = registry.search(servicetype="tap")[0]
    tap = tap_resource.get_service("tap")
    assert tap.run_sync("SELECT COUNT(*) AS n FROM ivoa.obscore")[0]["n"] > 0
    tables = tap_resource.get_tables()
    assert set(tables) == {"ivoa.obscore", "latentvo.latent"}
    assert [c.name for c in tables["ivoa.obscore"].columns] == ["s_ra", "obs_publisher_did"]
    assert "archive@example.org" in tap_resource.get_contact()
    assert tap_resource.get_alt_identifiers() == ["doi:10.5072/latentvo.tap"]


def test_stilts_finds_them_with_a_regtap_query(stilts, published):
    """STILTS (like TOPCAT's registry windows) searches a RegTAP service with ADQL.

    Its ``regquery`` task speaks the SOAP Registry Interface 1.0 that registries have
    retired, not RegTAP, so the RegTAP query goes through ``tapquery``.
    """
    adql = ("SELECT ivoid, res_title, access_url, standard_id "
            "FROM rr.resource NATURAL JOIN rr.capability NATURAL JOIN rr.interface "
            "WHERE standard_id IN ('ivo://ivoa.net/std/ssa', 'ivo://ivoa.net/std/tap') "
            "AND intf_type = 'vs:paramhttp' AND intf_role = 'std' "
            "AND (1 = ivo_hasword(res_description, 'spectra') "
            "OR ivoid IN (SELECT ivoid FROM rr.res_subject WHERE res_subject ILIKE '%spectro%'))"
            " ORDER BY ivoid")
    run = subprocess.run(
        [stilts, "tapquery", f"tapurl={published}", f"adql={adql}", "ofmt=csv", "out=-"],
        capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[1:] == [
        f"{AUTHORITY}/ssa,latentvo SSA service,{published.removesuffix('/tap')}/ssa?,"
        "ivo://ivoa.net/std/ssa",
        f"{AUTHORITY}/tap,latentvo TAP service,{published},ivo://ivoa.net/std/tap"]


def test_taplint_with_rr_published(stilts, published, archive):
    taplint_check(stilts, published, archive)
