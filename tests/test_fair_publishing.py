"""FAIR publishing end to end: one real server over the TAP tests' archive, its registry
records synced by the server itself at start-up, and an operator's commands.

Where tests/registry and tests/releases check each part on hand-made records, this
module takes the records the site really describes (``site_drafts``) through
everything a harvester, a registry client and a reader do: an OAI-PMH harvest with
``sickle`` over small pages (every answer valid against ../shared/ivoa-xsd where that
is beside the checkout), a release created, published and withdrawn with ``latentvo
release`` (the harvest ``from`` before it, its landing page and citation links, RegTAP's
``rr`` and pyvo.registry discovery following it), and ``latentvo registry check`` on the
same site.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import astropy.units as u
import httpx
import numpy as np
import pytest
import sqlalchemy as sa
from lxml import etree, html
from mocpy import MOC
from pyvo import registry
from sickle import Sickle

from schema.catalogues import refresh_tap_schema
from tests.conftest import run_cli, start_server, stop_server
from tests.registry.oai_records import assert_valid, schema
from tests.tap.conftest import N_SPECTRA, fill_archive, tap_data  # noqa: F401 - fixture
from vo_service.registry.site import site_drafts

OAI = "{http://www.openarchives.org/OAI/2.0/}"
RI = "{http://www.ivoa.net/xml/RegistryInterface/v1.0}"
XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
PAGE_SIZE = 3
RELEASE = "e2e1"


def _forget(engine: sa.Engine, release_id: str) -> None:
    """Remove what the lifecycle leaves: the release's schema, row and registry record."""
    with engine.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{RELEASE}" CASCADE'))
        conn.execute(sa.text("DELETE FROM latentvo_ops.releases WHERE name = :n"),
                     {"n": RELEASE})
        conn.execute(sa.text("DELETE FROM latentvo_ops.registry_records "
                             "WHERE identifier = :i"), {"i": release_id})
        refresh_tap_schema(conn)


@pytest.fixture(scope="module")
def site_env(latentvo_env) -> dict[str, str]:
    """The settings of the site, for the server and the operator's commands alike (the
    registry's record states the page size); the base URL is left to the server."""
    return {**{k: v for k, v in latentvo_env.items() if k != "LATENTVO_BASE_URL"},
            "LATENTVO_REGISTRY_PAGE_SIZE": str(PAGE_SIZE)}


@pytest.fixture(scope="module")
def site(tap_data, database, site_env):  # noqa: F811 - the imported fixture
    """The base URL of a server over the TAP tests' archive and catalogue, paging
    OAI-PMH lists by 3, whose records are those its own start-up sync wrote (none left
    by other tests)."""
    fill_archive(database.engine)  # other modules truncate the archive
    release_id = f"{database.settings.authority}/release/{RELEASE}"
    _forget(database.engine, release_id)
    with database.engine.begin() as conn:
        conn.execute(sa.text("TRUNCATE latentvo_ops.registry_records"))
    # no base_url: the records name where ``latentvo serve`` listens (LATENTVO_SERVED_AT)
    proc, base = start_server(site_env, set_base_url=False)
    try:
        yield base
    finally:
        stop_server(proc)
        _forget(database.engine, release_id)


@pytest.fixture(scope="module")
def valid(shared) -> Callable[[bytes, str], etree._Element]:
    """``valid(body, what)``: the parsed OAI-PMH answer, checked against the schemas of
    ../shared/ivoa-xsd; without ../shared only parsed (the rest of each test still runs)."""
    try:
        folder = shared("ivoa-xsd/OAI-PMH.xsd", "the OAI-PMH and IVOA XML schemas").parent
    except pytest.skip.Exception:
        return lambda body, what: etree.fromstring(body)
    xml_schema = schema(folder)
    return lambda body, what: assert_valid(xml_schema, body, what)


def described(database, base: str) -> set[str]:
    """The identifiers of the resources the site describes now."""
    with database.engine.connect() as conn:
        return {d.identifier for d in site_drafts(conn, database.settings, base)}


def oai_get(base: str, **params: str) -> httpx.Response:
    response = httpx.get(f"{base}/oai", params=params, timeout=60)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/xml")
    return response


def pages(base: str, verb: str, prefix: str, **window: str):
    """Each page of a list (following its resumption tokens) as a response."""
    params = {"verb": verb, "metadataPrefix": prefix, **window}
    while True:
        response = oai_get(base, **params)
        yield response
        token = etree.fromstring(response.content).find(f"{OAI}{verb}/{OAI}resumptionToken")
        if token is None or not token.text:
            return
        params = {"verb": verb, "resumptionToken": token.text}


def harvested(base: str, **window: str) -> dict[str, bool]:
    """Identifier -> deleted of a ``sickle`` harvest of ivo_vor records, none twice."""
    headers = [r.header for r in Sickle(f"{base}/oai").ListRecords(metadataPrefix="ivo_vor",
                                                                    **window)]
    ids = [h.identifier for h in headers]
    assert len(ids) == len(set(ids)), ids
    return {h.identifier: h.deleted for h in headers}


def tap_rows(base: str, query: str) -> list[list[str]]:
    response = httpx.post(f"{base}/tap/sync", data={"LANG": "ADQL", "QUERY": query,
                                                    "RESPONSEFORMAT": "csv"}, timeout=60)
    assert response.status_code == 200, response.text
    return list(csv.reader(io.StringIO(response.text)))[1:]


def release_cli(env: dict[str, str], *args: str) -> str:
    result = run_cli(env, "release", *args)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def test_harvest_gives_every_record_of_the_site_once(site, database, valid):
    every = described(database, site)
    assert len(every) > PAGE_SIZE * 2  # several pages
    assert harvested(site) == dict.fromkeys(every, False)

    harvester = Sickle(f"{site}/oai")
    dublin = [r.header.identifier for r in harvester.ListRecords(metadataPrefix="oai_dc")]
    assert sorted(dublin) == sorted(every)
    headers = [h.identifier for h in harvester.ListIdentifiers(metadataPrefix="ivo_vor")]
    assert sorted(headers) == sorted(every)

    # every page valid, counted and numbered
    for verb, prefix in (("ListRecords", "ivo_vor"), ("ListRecords", "oai_dc"),
                         ("ListIdentifiers", "ivo_vor")):
        seen, cursors = [], []
        for response in pages(site, verb, prefix):
            root = valid(response.content, f"{verb} {prefix} page {len(cursors)}")
            seen += [h.findtext(f"{OAI}identifier") for h in root.iter(f"{OAI}header")]
            token = root.find(f"{OAI}{verb}/{OAI}resumptionToken")
            assert token.get("completeListSize") == str(len(every))
            cursors.append(int(token.get("cursor")))
        assert sorted(seen) == sorted(every)
        assert cursors == list(range(0, len(every), PAGE_SIZE))

    for params in ({"verb": "Identify"}, {"verb": "ListMetadataFormats"},
                   {"verb": "ListSets"}):
        valid(oai_get(site, **params).content, params["verb"])
    identify = etree.fromstring(oai_get(site, verb="Identify").content)
    assert identify.findtext(f"{OAI}Identify/{OAI}baseURL") == f"{site}/oai"
    error = valid(oai_get(site, verb="GetRecord", metadataPrefix="ivo_vor",
                                      identifier="ivo://nowhere.example/x").content,
                         "an error")
    assert error.find(f"{OAI}error").get("code") == "idDoesNotExist"

    tap = f"{database.settings.authority}/tap"
    record = valid(oai_get(site, verb="GetRecord", metadataPrefix="ivo_vor",
                                       identifier=tap).content, "GetRecord")
    resource = record.find(f"{OAI}GetRecord/{OAI}record/{OAI}metadata/{RI}Resource")
    assert resource.findtext("identifier") == tap
    # the records name the server's own URLs
    assert resource.findtext("capability/interface/accessURL").startswith(site)


def resource_of(base: str, identifier: str) -> etree._Element | None:
    root = etree.fromstring(oai_get(base, verb="GetRecord", metadataPrefix="ivo_vor",
                                    identifier=identifier).content)
    return root.find(f"{OAI}GetRecord/{OAI}record/{OAI}metadata/{RI}Resource")


def json_ld(response: httpx.Response) -> list[dict]:
    scripts = html.fromstring(response.text).xpath('//script[@type="application/ld+json"]')
    return [json.loads(s.text) for s in scripts]


def links(header: str) -> dict[str, list[str]]:
    """rel -> the targets of an HTTP Link header."""
    found: dict[str, list[str]] = {}
    for value in header.split(", <"):
        target, *params = value.strip().lstrip("<").split(";")
        for param in params:
            key, _, text = param.strip().partition("=")
            if key == "rel":
                for rel in text.strip('"').split():
                    found.setdefault(rel, []).append(target.strip().rstrip(">"))
    return found


def test_release_lifecycle_is_harvested_discovered_and_cited(site, site_env, database, valid):
    authority = database.settings.authority
    release_id, tap = f"{authority}/release/{RELEASE}", f"{authority}/tap"
    before = described(database, site)
    assert release_id not in before
    moment = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
    time.sleep(max(0.0, (moment - datetime.now(UTC)).total_seconds()) + 1)
    since = moment.strftime("%Y-%m-%dT%H:%M:%SZ")

    # the operator publishes; the command line re-syncs with the base of the server's sync
    env = site_env
    release_cli(env, "create", RELEASE, "--title", "End-to-end release",
                "--description", "The archive of the end-to-end test, frozen.")
    out = release_cli(env, "publish", RELEASE)
    assert f"registry records under {site}" in " ".join(out.split()), out

    changed = harvested(site, **{"from": since})
    # the new collection, and the TAP service whose tableset lists e2e1 now
    assert changed == {release_id: False, tap: False}
    assert described(database, site) == before | {release_id}
    for response in pages(site, "ListRecords", "ivo_vor", **{"from": since}):
        valid(response.content, f"ListRecords from={since}")

    collection = resource_of(site, release_id)
    assert collection.get(XSI_TYPE) == "vs:DataCollection"
    assert collection.findtext("title") == "End-to-end release"
    assert collection.findtext("content/referenceURL") == f"{site}/releases/{RELEASE}"
    moc = MOC.from_string(collection.findtext("coverage/spatial"), format="ascii")
    positions = np.array(tap_rows(site, f"SELECT s_ra, s_dec FROM {RELEASE}.spectra"),
                         dtype=float)
    assert len(positions) == N_SPECTRA  # every frozen spectrum lies in the MOC
    assert moc.contains_lonlat(positions[:, 0] * u.deg, positions[:, 1] * u.deg).all()
    assert moc.sky_fraction < 0.5
    service = resource_of(site, tap)
    assert service.get("created") < since <= service.get("updated")  # ISO 8601, UTC
    [header] = [h for h in Sickle(f"{site}/oai").ListIdentifiers(
        metadataPrefix="ivo_vor", **{"from": since}) if h.identifier == tap]
    assert header.datestamp == service.get("updated")
    tableset = service.find("tableset")
    assert RELEASE in [s.findtext("name") for s in tableset.findall("schema")]

    landing = httpx.get(f"{site}/releases/{RELEASE}", timeout=30)
    assert landing.status_code == 200
    [dataset] = json_ld(landing)
    assert dataset["@type"] == "Dataset" and dataset["name"] == "End-to-end release"
    assert release_id in dataset["identifier"]
    signposts = links(landing.headers["link"])
    assert signposts["cite-as"] == [f"{site}/releases/{RELEASE}"]  # no DOI given
    for target in signposts["describedby"]:  # DataCite XML and the VOResource record
        assert httpx.get(target, timeout=30).status_code == 200, target
    [record_link] = [t for t in signposts["describedby"] if "/oai?" in t]
    linked = valid(httpx.get(record_link, timeout=30).content, "describedby")
    assert linked.findtext(f".//{RI}Resource/identifier") == release_id

    listed = {row[0] for row in tap_rows(site, "SELECT ivoid FROM rr.resource")}
    assert listed == described(database, site)
    assert [tap] in tap_rows(site, f"SELECT related_id FROM rr.relationship "
                                   f"WHERE ivoid = '{release_id}'")
    assert tap_rows(site, f"SELECT ivoid FROM rr.res_table WHERE table_name = "
                          f"'{RELEASE}.spectra'") == [[tap]]

    previous = registry.regtap.get_RegTAP_service_url()
    registry.choose_RegTAP_service(f"{site}/tap")
    try:
        discover(site, authority)
    finally:
        registry.choose_RegTAP_service(previous)

    # withdrawn: a deleted record, kept; gone from rr; the page a tombstone
    release_cli(env, "withdraw", RELEASE, "--reason", "end of the test")
    record = valid(oai_get(site, verb="GetRecord", metadataPrefix="ivo_vor",
                                       identifier=release_id).content, "deleted GetRecord")
    header = record.find(f"{OAI}GetRecord/{OAI}record/{OAI}header")
    assert header.get("status") == "deleted"
    assert record.find(f"{OAI}GetRecord/{OAI}record/{OAI}metadata") is None
    headers = {h.identifier: h.deleted for h in
               Sickle(f"{site}/oai").ListIdentifiers(metadataPrefix="ivo_vor")}
    assert headers == {**dict.fromkeys(before, False), release_id: True}
    assert release_id not in {row[0] for row in tap_rows(site, "SELECT ivoid FROM rr.resource")}
    assert tap_rows(site, f"SELECT ivoid FROM rr.res_table WHERE table_name = "
                          f"'{RELEASE}.spectra'") == []
    assert harvested(site, **{"from": since}) == {release_id: True, tap: False}
    for response in pages(site, "ListRecords", "ivo_vor", **{"from": since}):
        valid(response.content, f"ListRecords from={since}, one deleted")
    assert httpx.get(f"{site}/releases/{RELEASE}", timeout=30).status_code == 410


def discover(site: str, authority: str) -> None:
    """pyvo.registry, pointed at the site's RegTAP, finds its real records and uses them."""
    def ivoids(**constraints) -> set[str]:
        return {r.ivoid for r in registry.search(**constraints)}

    assert ivoids(servicetype="ssa") == {f"{authority}/ssa"}
    assert ivoids(servicetype="tap") == {f"{authority}/tap"}
    assert ivoids(datamodel="obscore") == {f"{authority}/tap"}
    assert ivoids(keywords=["latent"]) == {f"{authority}/{name}" for name in
                                           ("tap", "ssa", "ml", f"release/{RELEASE}")}
    [ssa] = registry.search(servicetype="ssa")
    assert len(ssa.get_service("ssa").search(pos=(180.0, 0.0), diameter=4.0)) > 0
    [tap] = registry.search(servicetype="tap")
    assert f"{RELEASE}.spectra" in tap.get_tables()
    assert tap.get_service("tap").run_sync(
        f"SELECT COUNT(*) AS n FROM {RELEASE}.spectra")[0]["n"] > 0


def test_registry_check_validates_every_record(site, site_env, database, shared):
    folder = shared("ivoa-xsd", "the IVOA XML schemas")
    result = run_cli({**site_env, "LATENTVO_REGISTRY_SCHEMA_DIR": str(folder)},
                     "registry", "check", "--base-url", site)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == (
        f"{len(described(database, site))} records checked: no problems found")

