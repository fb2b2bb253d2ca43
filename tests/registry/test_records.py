"""The VOResource records of the site (``vo_service.registry.site``): which resources,
what each says (capabilities, tableset, coverage, relationships), and that every one
validates against the IVOA schemas."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import UTC, datetime

import httpx
import numpy as np
import pytest
import sqlalchemy as sa

from tests.conftest import start_server, stop_server
from tests.registry.conftest import BASE, FROZEN_SPECTRA, PUBLISHED
from vo_service.registry.validate import record_problems, record_schema

XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
AUTH = "ivo://latentvo.example"
CREATED = datetime(2025, 3, 4, 5, 6, 7, 890_000, tzinfo=UTC)
UPDATED = datetime(2026, 7, 8, 9, 10, 11, tzinfo=UTC)
MANIFEST = {"spectra": 240, "labels": 240, "latent": 240,  # of a release with no schema
            "models": [{"model_id": "ae-test-1"}, {"model_id": "labels-test-1"}],
            "coverage": {"em_min": 3.8e-7, "em_max": 6.9e-7, "t_min": 58000.0,
                         "t_max": 58239.01}}


def parsed(draft) -> ET.Element:
    return ET.fromstring(draft.render(CREATED, UPDATED))


def relations(root: ET.Element) -> dict[str, list[str]]:
    """relationshipType -> the ivo-ids (or names) of the related resources."""
    return {r.findtext("relationshipType"): [x.get("ivo-id") or x.text
                                             for x in r.findall("relatedResource")]
            for r in root.findall("content/relationship")}


def test_one_record_per_resource_and_only_published_releases(drafts):
    assert sorted(drafts) == sorted([
        AUTH, f"{AUTH}/registry", f"{AUTH}/tap", f"{AUTH}/ssa", f"{AUTH}/spectra",
        f"{AUTH}/ml", f"{AUTH}/catalogue/mlspec.spectra", f"{AUTH}/release/{PUBLISHED}"])
    types = {i: parsed(d).get(XSI_TYPE) for i, d in drafts.items()}
    assert types[AUTH] == "vg:Authority"
    assert types[f"{AUTH}/registry"] == "vg:Registry"
    assert types[f"{AUTH}/tap"] == types[f"{AUTH}/ssa"] == "vs:CatalogService"
    assert {types[i] for i in drafts if "/release/" in i or "/catalogue/" in i} \
        == {"vs:DataCollection"}
    for identifier, draft in drafts.items():
        assert draft.resource_type == types[identifier]
        root = parsed(draft)
        assert root.tag == "{http://www.ivoa.net/xml/RegistryInterface/v1.0}Resource"
        assert root.findtext("identifier") == identifier
        assert len(root.findtext("shortName")) <= 16
        assert (root.get("created"), root.get("updated")) == ("2025-03-04T05:06:07Z",
                                                              "2026-07-08T09:10:11Z")


def test_fingerprint_ignores_the_dates_only(drafts):
    draft = drafts[f"{AUTH}/tap"]
    assert draft.render(CREATED, CREATED) != draft.render(CREATED, UPDATED)
    assert draft.fingerprint == drafts[f"{AUTH}/tap"].fingerprint


def test_every_record_validates_against_the_ivoa_schemas(drafts, shared):
    schema = record_schema(shared("ivoa-xsd", "the IVOA XML schemas"))
    for draft in drafts.values():
        assert record_problems(schema, draft, draft.render(CREATED, UPDATED)) == []


def test_schema_validation_finds_a_broken_record(drafts, shared):
    schema = record_schema(shared("ivoa-xsd", "the IVOA XML schemas"))
    draft = drafts[f"{AUTH}/ssa"]
    broken = draft.render(CREATED, UPDATED).replace("<complianceLevel>full</complianceLevel>",
                                                    "")
    problems = record_problems(schema, draft, broken)
    assert len(problems) == 1 and problems[0].startswith(f"{AUTH}/ssa: line 1: ")
    assert "dataSource" in problems[0]


def test_registry_record_harvests_over_oai(drafts, settings):
    root = parsed(drafts[f"{AUTH}/registry"])
    cap = root.find("capability")
    assert (cap.get("standardID"), cap.get(XSI_TYPE)) == ("ivo://ivoa.net/std/Registry",
                                                          "vg:Harvest")
    assert cap.find("interface").get(XSI_TYPE) == "vg:OAIHTTP"
    assert cap.findtext("interface/accessURL") == BASE + "/oai"
    assert cap.findtext("maxRecords") == str(settings.registry.page_size)
    assert root.findtext("full") == "false"
    assert root.findtext("managedAuthority") == "latentvo.example"
    assert parsed(drafts[AUTH]).findtext("managingOrg") == settings.service.publisher


def test_tap_record_has_every_capability_and_the_tables(drafts, settings, site):
    from schema.catalogues import all_published_tables
    from schema.tap_schema import adql_name
    from vo_service.urls import PublicURLs
    from vo_service.vosi.capabilities import tap_capability

    root = parsed(drafts[f"{AUTH}/tap"])
    caps = {c.get("standardID"): c for c in root.findall("capability")}
    assert set(caps) == {
        "ivo://ivoa.net/std/TAP", "ivo://ivoa.net/std/VOSI#capabilities",
        "ivo://ivoa.net/std/VOSI#availability", "ivo://ivoa.net/std/VOSI#tables-1.1",
        "ivo://ivoa.net/std/DALI#examples", "ivo://ivoa.net/std/DataLink#links-1.1"}
    tap = caps["ivo://ivoa.net/std/TAP"]
    assert tap.get(XSI_TYPE) == "tr:TableAccess"
    # the very element /tap/capabilities serves, not a second rendering
    assert tap_capability(PublicURLs(BASE), settings.tap) in drafts[f"{AUTH}/tap"].render(
        CREATED, UPDATED)
    forms = [f.findtext("form") for f in tap.findall("language/languageFeatures/feature")]
    assert any(f.startswith("lvo_") for f in forms) and any(f.startswith("ivo_")
                                                          for f in forms)
    assert tap.findtext("outputLimit/hard") == str(settings.tap.maxrec_hard)
    assert caps["ivo://ivoa.net/std/DataLink#links-1.1"].findtext(
        "interface/accessURL") == BASE + "/datalink/links"

    tables = {t.findtext("name"): t for t in root.findall("tableset/schema/table")}
    for name in ("tap_schema.tables", "tap_schema.columns", "ivoa.obscore",
                 "latentvo.spectra", "latentvo.labels", "latentvo.models", "mlspec.spectra"):
        assert name in tables, name
    columns = {c.findtext("name"): c for c in tables["ivoa.obscore"].findall("column")}
    assert columns["s_ra"].findtext("unit") == "deg"
    assert columns["s_ra"].findtext("ucd").startswith("pos.eq.ra")
    assert columns["s_ra"].findtext("utype")
    assert columns["s_ra"].find("dataType").text == "double"
    # every column with the unit and UCD its declaration gives
    with site.engine.connect() as conn:
        declared = all_published_tables(conn)
    assert {f"{t.schema}.{t.name}" for t in declared} == set(tables)
    for table in declared:
        written = {c.findtext("name"): c for c in tables[f"{table.schema}.{table.name}"]
                   .findall("column")}
        for column in table.columns:
            if "vo" not in column.info:
                continue
            vo = column.info["vo"]
            got = written[adql_name(column.name)]
            assert (got.findtext("unit"), got.findtext("ucd")) == (vo.unit, vo.ucd), column
    assert root.findall("tableset/schema")[-1].findtext("name") == "tap_schema"


def test_ssa_record(drafts, settings):
    root = parsed(drafts[f"{AUTH}/ssa"])
    ssa = next(c for c in root.findall("capability")
               if c.get("standardID") == "ivo://ivoa.net/std/SSA")
    assert ssa.get(XSI_TYPE) == "ssa:SimpleSpectralAccess"
    assert ssa.findtext("complianceLevel") == "full"
    assert ssa.findtext("dataSource") and ssa.findtext("creationType") == "archival"
    assert float(ssa.findtext("maxSearchRadius")) == settings.ssa.max_size / 2
    assert int(ssa.findtext("maxRecords")) == settings.ssa.maxrec_hard
    assert int(ssa.findtext("defaultMaxRecords")) == settings.ssa.maxrec_default
    assert {f.text for f in ssa.findall("supportedFrame")} >= {"ICRS"}
    assert ssa.findtext("interface/accessURL") == BASE + "/ssa?"
    assert relations(root) == {"IsServiceFor": [f"{AUTH}/spectra"]}


def test_ssa_test_query_returns_rows_from_a_real_server(site, latentvo_env):
    """The testQuery of the record, and of /ssa/capabilities, finds spectra through /ssa."""
    from vo_service.registry.site import site_drafts

    proc, url = start_server(latentvo_env)
    try:
        with site.engine.connect() as conn:
            record = next(d for d in site_drafts(conn, site.settings, url)
                          if d.identifier == f"{AUTH}/ssa")
        served = ET.fromstring(httpx.get(url + "/ssa/capabilities", timeout=30).content)
        for root in (parsed(record), served):
            test = next(c for c in root.findall("capability")
                        if c.get("standardID") == "ivo://ivoa.net/std/SSA").find("testQuery")
            pos = f"{test.findtext('pos/long')},{test.findtext('pos/lat')}"
            response = httpx.get(url + "/ssa", timeout=30, params={
                "REQUEST": "queryData", "POS": pos, "SIZE": test.findtext("size")})
            assert response.status_code == 200
            assert response.text.count("<TR>") >= 1
    finally:
        stop_server(proc)


def test_coverage_moc_and_ranges(drafts, site):
    from mocpy import MOC

    with site.engine.connect() as conn:
        ra, dec, em_min, em_max, t_min, t_max = conn.execute(sa.text(
            "SELECT array_agg(s_ra), array_agg(s_dec), min(em_min), max(em_max), min(t_min), "
            "max(t_max) FROM latentvo.spectra")).one()
    coverage = parsed(drafts[f"{AUTH}/spectra"]).find("coverage")
    moc = MOC.from_str(coverage.findtext("spatial"))
    assert not moc.empty()
    assert moc.contains_lonlat(np.array(ra) * _deg(), np.array(dec) * _deg()).all()
    assert moc.sky_fraction < 0.5  # 240 positions, not the whole sky
    low, high = map(float, coverage.findtext("spectral").split())
    hc = 6.62607015e-34 * 299_792_458.0
    assert low == pytest.approx(hc / em_max, rel=1e-5)
    assert high == pytest.approx(hc / em_min, rel=1e-5)
    assert list(map(float, coverage.findtext("temporal").split())) == pytest.approx(
        [t_min, t_max])
    catalogue = parsed(drafts[f"{AUTH}/catalogue/mlspec.spectra"]).find("coverage")
    assert not MOC.from_str(catalogue.findtext("spatial")).empty()
    # em_min is declared in Angstrom there: converted to metres before the energies
    low, high = map(float, catalogue.findtext("spectral").split())
    assert hc / high > 1e-7 and hc / low < 3e-6
    release = parsed(drafts[f"{AUTH}/release/{PUBLISHED}"]).find("coverage")
    frozen = MOC.from_str(release.findtext("spatial"))
    assert frozen.sky_fraction < moc.sky_fraction  # its 100 frozen spectra only
    with site.engine.connect() as conn:
        ra, dec = conn.execute(sa.text(
            f"SELECT array_agg(s_ra), array_agg(s_dec) FROM {PUBLISHED}.spectra")).one()
    assert len(ra) == FROZEN_SPECTRA
    assert frozen.contains_lonlat(np.array(ra) * _deg(), np.array(dec) * _deg()).all()


def _deg():
    import astropy.units as u

    return u.deg


def test_relationships(drafts):
    tap = relations(parsed(drafts[f"{AUTH}/tap"]))["IsServiceFor"]
    assert set(tap) == {f"{AUTH}/spectra", f"{AUTH}/ml", f"{AUTH}/catalogue/mlspec.spectra",
                        f"{AUTH}/release/{PUBLISHED}"}
    assert relations(parsed(drafts[f"{AUTH}/spectra"])) == {
        "IsServedBy": [f"{AUTH}/tap", f"{AUTH}/ssa"]}
    assert relations(parsed(drafts[f"{AUTH}/ml"])) == {
        "IsDerivedFrom": [f"{AUTH}/spectra"], "IsServedBy": [f"{AUTH}/tap", f"{AUTH}/ssa"]}
    release = parsed(drafts[f"{AUTH}/release/{PUBLISHED}"])
    assert relations(release) == {"IsDerivedFrom": [f"{AUTH}/spectra"],
                                  "IsServedBy": [f"{AUTH}/tap"]}
    assert release.findtext("altIdentifier") == "doi:10.5072/latentvo.test"
    assert release.findtext("content/referenceURL") == f"{BASE}/releases/{PUBLISHED}"
    assert release.get("version") == PUBLISHED


def test_supplement_dois_and_service_metadata(site):
    from vo_service.registry.site import site_drafts

    service = replace(site.settings.service, supplement_dois=("10.5072/paper.1",),
                      facility="Test telescope", publisher_id="ivo://latentvo.example/org",
                      reference_url="https://example.org/latentvo")
    settings = replace(site.settings, service=service)
    with site.engine.connect() as conn:
        drafts = {d.identifier: d for d in site_drafts(conn, settings, BASE)}
    for identifier in (f"{AUTH}/spectra", f"{AUTH}/ml", f"{AUTH}/release/{PUBLISHED}"):
        assert relations(parsed(drafts[identifier]))["IsSupplementTo"] == [
            "doi:10.5072/paper.1"]
    tap = parsed(drafts[f"{AUTH}/tap"])
    assert tap.find("curation/publisher").get("ivo-id") == "ivo://latentvo.example/org"
    assert tap.findtext("content/referenceURL") == "https://example.org/latentvo"
    assert tap.findtext("facility") == "Test telescope"
    assert [s.text for s in tap.findall("content/subject")] == list(service.subjects)
    assert tap.find("rights").get("rightsURI") == service.license_url
    assert tap.findtext("curation/contact/email") == service.contact_email


@pytest.mark.parametrize("cells", [
    np.array([5]), np.arange(12 * 4**8), np.arange(4096, 8192),
    np.random.default_rng(3).integers(0, 12 * 4**8, 3000),
    np.concatenate([np.arange(64, 80), np.random.default_rng(4).integers(0, 12 * 4**8, 50)]),
], ids=["one", "whole sky", "one order-2 cell", "scattered", "mixed"])
def test_moc_is_the_one_mocpy_makes(cells):
    """The MOC of the records (written without mocpy, which the web process must not
    load) equals mocpy's normalised MOC of the same cells."""
    from mocpy import MOC

    from vo_service.registry.coverage import moc_ascii

    unique = np.unique(cells).astype(np.uint64)
    expected = MOC.from_healpix_cells(unique, np.full(unique.size, 8, dtype=np.uint8), 8)
    text = moc_ascii(cells, 8)
    assert MOC.from_str(text) == expected
    assert text == expected.to_string(format="ascii")


def test_release_without_frozen_spectra_takes_the_manifest_ranges(site):
    from vo_service.registry.data_collections import Services, release_collection
    from vo_service.registry.identifiers import Identifiers
    from vo_service.registry.vor import Related
    from vo_service.releases.store import Release
    from vo_service.urls import PublicURLs

    release = Release("rtest_nofrozen", "No frozen tables", "", None, "published", CREATED,
                      UPDATED, None, MANIFEST)
    with site.engine.connect() as conn:
        collection = release_collection(
            conn, site.settings.service, Identifiers(AUTH), PublicURLs(BASE),
            Services(Related("tap", f"{AUTH}/tap"), Related("ssa", f"{AUTH}/ssa")), release)
    assert collection.coverage.moc is None
    assert collection.coverage.wavelength == (3.8e-7, 6.9e-7)
    assert collection.coverage.mjd == (58000.0, 58239.01)
    root = parsed(collection.draft(site.settings.service))
    assert root.find("coverage/spatial") is None and root.find("coverage/spectral") is not None
    assert root.find("altIdentifier") is None
