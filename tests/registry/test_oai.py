"""OAI-PMH at /oai on a real server: a harvest with the ``sickle`` harvester, selective
harvesting, resumption tokens, every error code, and every answer valid against the
OAI-PMH and IVOA schemas of ../shared/ivoa-xsd.

The records are synced here, at fixed datestamps, from small VOResource drafts; the
server pages lists by 2 (``[registry] page_size``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import httpx
import pytest
import sqlalchemy as sa
from lxml import etree
from sickle import Sickle
from sickle.oaiexceptions import NoRecordsMatch

from tests.conftest import start_server, stop_server
from tests.registry.oai_records import (
    AUTHORITY,
    assert_valid,
    authority,
    collection,
    registry,
    schema,
)
from vo_service.registry import oai as oai_module
from vo_service.registry.store import sync

OAI = "{http://www.openarchives.org/OAI/2.0/}"
RI = "{http://www.ivoa.net/xml/RegistryInterface/v1.0}"
T0 = datetime(2026, 1, 1, 0, 0, 0, tzinfo=UTC)
T1 = datetime(2026, 1, 2, 12, 0, 0, tzinfo=UTC)
T2 = datetime(2026, 1, 3, 0, 0, 5, tzinfo=UTC)
C = {name: f"{AUTHORITY}/collection/{name}" for name in ("c1", "c2", "c3", "c4", "c5")}
REGISTRY = f"{AUTHORITY}/registry"
AT_T0 = {AUTHORITY, REGISTRY, C["c1"]}
AT_T1 = {C["c2"], C["c4"]}
AT_T2 = {C["c3"], C["c5"]}  # c3 deleted at T2
EVERY = AT_T0 | AT_T1 | AT_T2


def stage(engine, base: str) -> None:
    """Seven records: five at T0, c2 changed and c4 added at T1, c3 deleted and c5
    added at T2."""
    with engine.begin() as conn:
        conn.execute(sa.text("TRUNCATE latentvo_ops.registry_records"))
        first = [authority(), registry(base), collection("c1"), collection("c2"),
                 collection("c3")]
        sync(conn, first, T0)
        second = [*first[:3], collection("c2", "Changed at T1."), collection("c3"),
                  collection("c4")]
        sync(conn, second, T1)
        sync(conn, [*second[:4], collection("c4"), collection("c5")], T2)


@pytest.fixture(scope="module")
def oai(database, latentvo_env):
    """The OAI-PMH URL of a server paging by 2, with the staged records."""
    proc, url = start_server({**latentvo_env, "LATENTVO_REGISTRY_PAGE_SIZE": "2"})
    try:
        stage(database.engine, url)
        yield url + "/oai"
    finally:
        stop_server(proc)


@pytest.fixture(scope="module")
def xsd(shared):
    """The OAI-PMH and IVOA schemas of ../shared/ivoa-xsd; None without ../shared, where
    the answers are only parsed and every other check of the tests still runs."""
    try:
        folder = shared("ivoa-xsd/OAI-PMH.xsd", "the OAI-PMH and IVOA XML schemas").parent
    except pytest.skip.Exception:
        return None
    return schema(folder)


def get(url: str, **params: str) -> etree._Element:
    response = httpx.get(url, params=params, timeout=30)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/xml")
    return etree.fromstring(response.content)


def error_code(root: etree._Element) -> str | None:
    error = root.find(f"{OAI}error")
    return error.get("code") if error is not None else None


# -- harvesting ------------------------------------------------------------------------


def test_harvest_with_sickle_follows_tokens_and_sees_every_record_once(oai):
    harvester = Sickle(oai)
    records = list(harvester.ListRecords(metadataPrefix="ivo_vor"))
    ids = [record.header.identifier for record in records]
    assert len(ids) == len(set(ids)) == 7 and set(ids) == EVERY
    assert [r.header.identifier for r in records if r.header.deleted] == [C["c3"]]
    for record in records:
        assert record.header.setSpecs == ["ivo_managed"]
        resource = record.xml.find(f"{OAI}metadata/{RI}Resource")
        if record.header.deleted:
            assert resource is None
        else:
            assert resource.findtext("identifier") == record.header.identifier
    changed = next(r for r in records if r.header.identifier == C["c2"])
    assert changed.header.datestamp == "2026-01-02T12:00:00Z"
    assert "Changed at T1." in etree.tostring(changed.xml).decode()

    headers = list(harvester.ListIdentifiers(metadataPrefix="oai_dc"))
    assert sorted(h.identifier for h in headers) == sorted(EVERY)
    dublin = {r.header.identifier: r.metadata
              for r in harvester.ListRecords(metadataPrefix="oai_dc", ignore_deleted=True)}
    assert set(dublin) == EVERY - {C["c3"]}
    c1 = dublin[C["c1"]]
    assert c1["title"] == ["Collection c1"] and c1["creator"] == ["Doe, J."]
    assert c1["subject"] == ["Spectroscopy"] and c1["publisher"] == ["Latentvo Test Archive"]
    assert C["c1"] in c1["identifier"] and "https://latentvo.example/" in c1["identifier"]
    assert "https://spdx.org/licenses/CC-BY-4.0.html" in c1["rights"]
    assert c1["type"] == ["Catalog"] and "2026-01-01T00:00:00Z" in c1["date"]


def test_every_page_is_valid_and_counted(oai, xsd):
    for verb, prefix in (("ListRecords", "ivo_vor"), ("ListRecords", "oai_dc"),
                         ("ListIdentifiers", "ivo_vor")):
        params = {"verb": verb, "metadataPrefix": prefix}
        seen, cursors = [], []
        while True:
            response = httpx.get(oai, params=params, timeout=30)
            root = assert_valid(xsd, response.content, f"{verb} {params}")
            seen += [h.findtext(f"{OAI}identifier") for h in root.iter(f"{OAI}header")]
            token = root.find(f"{OAI}{verb}/{OAI}resumptionToken")
            assert token is not None
            assert token.get("completeListSize") == "7"
            cursors.append(int(token.get("cursor")))
            if not token.text:
                assert token.get("expirationDate") is None
                break
            assert token.get("expirationDate")
            params = {"verb": verb, "resumptionToken": token.text}
        assert cursors == [0, 2, 4, 6]
        assert len(seen) == 7 and set(seen) == EVERY


def test_selective_harvest_by_second_and_by_day(oai):
    harvester = Sickle(oai)

    def ids(**window: str) -> set[str]:
        return {h.identifier for h in harvester.ListIdentifiers(metadataPrefix="ivo_vor",
                                                                  **window)}

    assert ids(**{"from": "2026-01-02T12:00:00Z"}) == AT_T1 | AT_T2
    assert ids(**{"from": "2026-01-02T12:00:01Z"}) == AT_T2
    assert ids(until="2026-01-02T12:00:00Z") == AT_T0 | AT_T1
    assert ids(until="2026-01-02T11:59:59Z") == AT_T0
    assert ids(**{"from": "2026-01-02T12:00:00Z", "until": "2026-01-02T12:00:00Z"}) == AT_T1
    assert ids(**{"from": "2026-01-02"}) == AT_T1 | AT_T2
    assert ids(until="2026-01-02") == AT_T0 | AT_T1
    assert ids(**{"from": "2026-01-03", "until": "2026-01-03"}) == AT_T2
    assert ids(set="ivo_managed") == EVERY
    with pytest.raises(NoRecordsMatch):
        ids(**{"from": "2026-01-03T00:00:06Z"})


def test_a_token_continues_on_another_server(oai, database, latentvo_env):
    """Tokens are stateless: another web process (or the same after a restart) goes on."""
    first = get(oai, verb="ListIdentifiers", metadataPrefix="ivo_vor")
    token = first.find(f"{OAI}ListIdentifiers/{OAI}resumptionToken").text
    proc, other = start_server({**latentvo_env, "LATENTVO_REGISTRY_PAGE_SIZE": "2"})
    try:
        stage(database.engine, oai[:-len("/oai")])  # the same records, whatever it synced
        page = get(other + "/oai", verb="ListIdentifiers", resumptionToken=token)
    finally:
        stop_server(proc)
    ids = [h.findtext(f"{OAI}identifier") for h in first.iter(f"{OAI}header")]
    ids += [h.findtext(f"{OAI}identifier") for h in page.iter(f"{OAI}header")]
    assert len(ids) == 4 and len(set(ids)) == 4
    assert page.find(f"{OAI}ListIdentifiers/{OAI}resumptionToken").get("cursor") == "2"


# -- the other verbs -------------------------------------------------------------------


def test_identify_describes_the_registry(oai, xsd):
    response = httpx.get(oai, params={"verb": "Identify"}, timeout=30)
    root = assert_valid(xsd, response.content, "Identify")
    identify = root.find(f"{OAI}Identify")
    assert identify.findtext(f"{OAI}baseURL") == oai
    assert identify.findtext(f"{OAI}repositoryName") == "The latentvo test publishing registry"
    assert identify.findtext(f"{OAI}protocolVersion") == "2.0"
    assert identify.findtext(f"{OAI}adminEmail") == "archive@example.org"
    assert identify.findtext(f"{OAI}earliestDatestamp") == "2026-01-01T00:00:00Z"
    assert identify.findtext(f"{OAI}deletedRecord") == "persistent"
    assert identify.findtext(f"{OAI}granularity") == "YYYY-MM-DDThh:mm:ssZ"
    resource = identify.find(f"{OAI}description/{RI}Resource")
    assert resource.get("{http://www.w3.org/2001/XMLSchema-instance}type") == "vg:Registry"
    assert resource.findtext("capability/interface/accessURL") == oai
    assert root.find(f"{OAI}request").get("verb") == "Identify"


def test_formats_sets_and_records(oai, xsd):
    for params in ({"verb": "ListMetadataFormats"},
                   {"verb": "ListMetadataFormats", "identifier": C["c1"]},
                   {"verb": "ListSets"},
                   {"verb": "GetRecord", "identifier": C["c2"], "metadataPrefix": "ivo_vor"},
                   {"verb": "GetRecord", "identifier": C["c2"], "metadataPrefix": "oai_dc"},
                   {"verb": "GetRecord", "identifier": C["c3"], "metadataPrefix": "ivo_vor"}):
        response = httpx.get(oai, params=params, timeout=30)
        root = assert_valid(xsd, response.content, str(params))
        assert error_code(root) is None, params
        assert root.find(f"{OAI}request").attrib == params
    formats = get(oai, verb="ListMetadataFormats")
    assert [p.text for p in formats.iter(f"{OAI}metadataPrefix")] == ["ivo_vor", "oai_dc"]
    assert [s.text for s in get(oai, verb="ListSets").iter(f"{OAI}setSpec")] == ["ivo_managed"]
    record = get(oai, verb="GetRecord", identifier=C["c2"], metadataPrefix="ivo_vor")
    resource = record.find(f"{OAI}GetRecord/{OAI}record/{OAI}metadata/{RI}Resource")
    assert (resource.get("created"), resource.get("updated")) == ("2026-01-01T00:00:00Z",
                                                                  "2026-01-02T12:00:00Z")
    deleted = get(oai, verb="GetRecord", identifier=C["c3"], metadataPrefix="ivo_vor")
    header = deleted.find(f"{OAI}GetRecord/{OAI}record/{OAI}header")
    assert header.get("status") == "deleted"
    assert header.findtext(f"{OAI}datestamp") == "2026-01-03T00:00:05Z"
    assert deleted.find(f"{OAI}GetRecord/{OAI}record/{OAI}metadata") is None
    post = httpx.post(oai, data={"verb": "GetRecord", "identifier": C["c1"],
                                 "metadataPrefix": "oai_dc"}, timeout=30)
    assert post.status_code == 200 and b"<dc:title>Collection c1</dc:title>" in post.content


# -- errors ----------------------------------------------------------------------------


def _token(oai: str, verb: str = "ListRecords") -> str:
    return get(oai, verb=verb, metadataPrefix="ivo_vor").find(
        f"{OAI}{verb}/{OAI}resumptionToken").text


def test_every_error_code(oai, xsd):
    token = _token(oai)
    data, _, checksum = token.partition(".")
    tampered = data[:-2] + ("A" if data[-2] != "A" else "B") + data[-1] + "." + checksum
    cases = [
        ([], "badVerb"),
        ([("verb", "Nonsense")], "badVerb"),
        ([("verb", "Identify"), ("verb", "Identify")], "badVerb"),
        ([("Verb", "Identify")], "badVerb"),  # names are case-sensitive
        ([("verb", "Identify"), ("extra", "1")], "badArgument"),
        ([("verb", "GetRecord"), ("identifier", C["c1"])], "badArgument"),
        ([("verb", "ListRecords")], "badArgument"),
        ([("verb", "ListRecords"), ("metadataPrefix", "ivo_vor"),
          ("metadataPrefix", "oai_dc")], "badArgument"),
        ([("verb", "ListRecords"), ("metadataPrefix", "ivo_vor"),
          ("from", "2026-01-01T00:00:00.5Z")], "badArgument"),
        ([("verb", "ListRecords"), ("metadataPrefix", "ivo_vor"),
          ("from", "2026-01-01T00:00Z")], "badArgument"),
        ([("verb", "ListRecords"), ("metadataPrefix", "ivo_vor"),
          ("until", "2026-13-01")], "badArgument"),
        ([("verb", "ListRecords"), ("metadataPrefix", "ivo_vor"), ("from", "2026-01-01"),
          ("until", "2026-01-02T00:00:00Z")], "badArgument"),
        ([("verb", "ListRecords"), ("metadataPrefix", "ivo_vor"), ("from", "2026-01-03"),
          ("until", "2026-01-02")], "badArgument"),
        ([("verb", "ListRecords"), ("metadataPrefix", "ivo_vor"),
          ("resumptionToken", token)], "badArgument"),
        ([("verb", "ListRecords"), ("resumptionToken", "garbage")], "badResumptionToken"),
        ([("verb", "ListRecords"), ("resumptionToken", tampered)], "badResumptionToken"),
        ([("verb", "ListIdentifiers"), ("resumptionToken", token)], "badResumptionToken"),
        ([("verb", "ListSets"), ("resumptionToken", token)], "badResumptionToken"),
        ([("verb", "GetRecord"), ("identifier", C["c1"]), ("metadataPrefix", "marc21")],
         "cannotDisseminateFormat"),
        ([("verb", "ListIdentifiers"), ("metadataPrefix", "marc21")],
         "cannotDisseminateFormat"),
        ([("verb", "GetRecord"), ("identifier", f"{AUTHORITY}/nothing"),
          ("metadataPrefix", "ivo_vor")], "idDoesNotExist"),
        ([("verb", "ListMetadataFormats"), ("identifier", f"{AUTHORITY}/nothing")],
         "idDoesNotExist"),
        ([("verb", "ListRecords"), ("metadataPrefix", "ivo_vor"), ("from", "2030-01-01")],
         "noRecordsMatch"),
        ([("verb", "ListRecords"), ("metadataPrefix", "ivo_vor"), ("set", "other")],
         "noRecordsMatch"),
        ([("verb", "ListMetadataFormats"), ("identifier", C["c3"])], "noMetadataFormats"),
        ([("verb", "Identify"), ("x" * 20_000, "1")], "badArgument"),  # [requests] limit
    ]
    for pairs, code in cases:
        for method in ("GET", "POST"):
            if method == "GET":
                response = httpx.get(oai, params=pairs, timeout=30)
            else:
                response = httpx.post(oai, content=urlencode(pairs), timeout=30, headers={
                    "Content-Type": "application/x-www-form-urlencoded"})
            assert response.status_code == 200, (pairs, method)
            root = assert_valid(xsd, response.content, f"{method} {pairs}")
            assert error_code(root) == code, (pairs, method, response.text[-300:])
            request = root.find(f"{OAI}request")
            assert request.text == oai
            if code in ("badVerb", "badArgument"):
                assert request.attrib == {}


def test_a_body_over_the_limit_is_refused_in_oai_form(oai, xsd):
    body = "verb=Identify&padding=" + "a" * 1_100_000  # over [requests] body_bytes
    response = httpx.post(oai, content=body, timeout=30,
                          headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 413
    root = assert_valid(xsd, response.content, "413")
    assert error_code(root) == "badArgument"


def test_expired_token_is_a_bad_resumption_token():
    query = oai_module.ListQuery("ListRecords", "ivo_vor", None, None, None,
                                 (T0, AUTHORITY), 2)
    token = oai_module.encode_token(query, T1)
    assert oai_module.decode_token(token, "ListRecords", T1 + timedelta(seconds=60), 60) == query
    with pytest.raises(oai_module.OAIError, match="expired") as caught:
        oai_module.decode_token(token, "ListRecords", T1 + timedelta(seconds=61), 60)
    assert caught.value.code == "badResumptionToken"


# -- where the registry is named -------------------------------------------------------


def test_tap_capabilities_and_landing_page_name_the_registry(oai, xsd):
    base = oai[:-len("/oai")]
    response = httpx.get(base + "/tap/capabilities", timeout=30)
    root = assert_valid(xsd, response.content, "TAP capabilities")
    urls = [c.findtext("interface/accessURL") for c in root.findall("capability")
            if c.get("standardID") == "ivo://ivoa.net/std/Registry"]
    assert urls == [oai]
    page = httpx.get(base + "/", timeout=30).text
    assert oai in page and "ivo://latentvo.example" in page and "OAI-PMH" in page


def test_embedded_records_leave_the_oai_namespace():
    """VOResource's elements are unqualified: embedded in an OAI-PMH document (whose
    default namespace is OAI's) the record undeclares it, once."""
    record = ('<?xml version="1.0" encoding="UTF-8"?>\n'
              '<ri:Resource xmlns:ri="http://www.ivoa.net/xml/RegistryInterface/v1.0" '
              'status="active"><title>T</title></ri:Resource>')
    embedded = oai_module._resource(record)
    assert embedded.startswith('<ri:Resource xmlns="" xmlns:ri=')
    assert oai_module._resource(embedded) == embedded
    root = etree.fromstring(f'<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/">'
                            f"{embedded}</OAI-PMH>")
    assert root.find(f"{RI}Resource/title").text == "T"
