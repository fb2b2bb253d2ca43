"""Landing pages, citations, Signposting and RO-Crate of data releases, through a real
server (``site``) serving releases in every state (``releases``)."""

from __future__ import annotations

import html
import io
import json
from html.parser import HTMLParser
from urllib.parse import quote

import bibtexparser
import httpx
import pytest
from astropy.io.votable import parse_single_table
from lxml import etree

from tests.conftest import start_server, stop_server
from tests.releases.citation_data import (
    DOI,
    DRAFT,
    NO_DOI,
    PUBLISHED,
    REASON,
    TABLES,
    WITHDRAWN,
    made_releases,
)

DATACITE_NS = "{http://datacite.org/schema/kernel-4}"
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}


@pytest.fixture(scope="module")
def releases(database):
    """Releases in every state (``citation_data``), removed after the module."""
    yield from made_releases(database)


@pytest.fixture(scope="module")
def site(releases, latentvo_env):
    """Base URL of a real ``latentvo serve`` serving the releases."""
    proc, url = start_server(latentvo_env)
    yield url
    stop_server(proc)


class StrictPage(HTMLParser):
    """An HTML page read with its elements balanced (a void element needs no end tag);
    collects the JSON-LD scripts and the ``<link>`` elements."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[str] = []
        self.problems: list[str] = []
        self.jsonld: list[dict] = []
        self.links: list[dict[str, str]] = []
        self.hrefs: list[str] = []
        self._script: str | None = None
        self.feed(text)
        self.close()
        if self.open:
            self.problems.append(f"never closed: {self.open}")

    def handle_starttag(self, tag, attrs):
        attributes = {k: v or "" for k, v in attrs}
        if tag == "link":
            self.links.append(attributes)
        if tag == "a":
            self.hrefs.append(attributes.get("href", ""))
        if tag == "script" and attributes.get("type") == "application/ld+json":
            self._script = ""
        if tag not in VOID:
            self.open.append(tag)

    def handle_endtag(self, tag):
        if not self.open or self.open[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.open[-1:] or 'nothing'}")
            return
        self.open.pop()
        if tag == "script" and self._script is not None:
            self.jsonld.append(json.loads(self._script))
            self._script = None

    def handle_data(self, data):
        if self._script is not None:
            self._script += data


def page(response: httpx.Response) -> StrictPage:
    assert response.headers["content-type"].startswith("text/html")
    parsed = StrictPage(response.text)
    assert not parsed.problems, parsed.problems
    return parsed


def _all_links(header: str) -> list[dict[str, str]]:
    """A ``Link`` header's links: url, rel, type, ... (httpx's ``Response.links`` keeps
    one link per rel; Signposting repeats rels)."""
    found = []
    for value in header.split(", <"):
        target, *params = value.strip().lstrip("<").split(";")
        link = {"url": target.strip().rstrip(">")}
        for param in params:
            key, _, text = param.strip().partition("=")
            link[key] = text.strip('"')
        found.append(link)
    return found


def record_url(site: str, identifier: str) -> str:
    return (f"{site}/oai?verb=GetRecord&metadataPrefix=ivo_vor"
            f"&identifier={quote(identifier, safe='')}")


def test_release_page_has_contents_provenance_and_a_dataset(site, releases):
    response = httpx.get(f"{site}/releases/{PUBLISHED}")
    assert response.status_code == 200
    parsed = page(response)
    manifest = releases.manifests[PUBLISHED]
    text = response.text
    assert "Test release &lt;one&gt;" in text  # the title, escaped
    assert f"{manifest['spectra']:,}" in text
    for model in manifest["models"]:
        assert model["model_id"] in text and model["artifact_sha256"] in text
        assert model["training_checksum"] in text
    assert "ref-test" in text and "CC-BY-4.0" in text
    # how to cite: the BibTeX shown and the documents linked
    assert f"doi = {{{DOI}}}" in text
    assert f"{site}/releases/{PUBLISHED}/citation.bib" in parsed.hrefs
    assert f"{site}/releases/{PUBLISHED}/datacite.xml" in parsed.hrefs
    # access: TAP, SSA, and example queries on the frozen tables as TAP sync URLs
    assert f"{site}/tap" in parsed.hrefs and f"{site}/ssa" in parsed.hrefs
    examples = [h for h in parsed.hrefs if h.startswith(f"{site}/tap/sync?")]
    assert any(quote(f"FROM {PUBLISHED}.spectra") in h for h in examples)
    assert any(quote(f"FROM {PUBLISHED}.obscore") in h for h in examples)

    [dataset] = parsed.jsonld
    assert dataset["@context"] == "https://schema.org" and dataset["@type"] == "Dataset"
    assert dataset["name"] == "Test release <one>"
    assert dataset["description"].startswith("Test release <one>: spectra & ML products")
    assert dataset["license"] == "https://creativecommons.org/licenses/by/4.0/"
    assert dataset["creator"] and all(c["name"] for c in dataset["creator"])
    assert f"https://doi.org/{DOI}" in dataset["identifier"]
    assert "ivo://latentvo.example/release/cit_pub" in dataset["identifier"]
    assert dataset["url"] == f"{site}/releases/{PUBLISHED}"
    assert {d["name"] for d in dataset["distribution"]} == {f"{PUBLISHED}.{t}" for t in TABLES}


def test_example_queries_run(site, releases):
    """The example links are TAP queries that a client can follow: each answers rows of
    the published release."""
    parsed = page(httpx.get(f"{site}/releases/{PUBLISHED}"))
    examples = [h for h in parsed.hrefs if h.startswith(f"{site}/tap/sync?")]
    assert examples
    for example in examples:
        response = httpx.get(example, timeout=30)
        assert response.status_code == 200, (example, response.text)
        assert "votable" in response.headers["content-type"].lower()
        assert len(parse_single_table(io.BytesIO(response.content)).to_table()) > 0, example


def test_signposting_link_header(site, releases):
    for method in ("GET", "HEAD"):
        response = httpx.request(method, f"{site}/releases/{PUBLISHED}")
        found = _all_links(response.headers["link"])
        by_rel: dict[str, list[dict]] = {}
        for link in found:
            by_rel.setdefault(link["rel"], []).append(link)
        assert [lk["url"] for lk in by_rel["cite-as"]] == [f"https://doi.org/{DOI}"]
        described = {lk["type"]: lk["url"] for lk in by_rel["describedby"]}
        assert described == {
            "application/vnd.datacite.datacite+xml": f"{site}/releases/{PUBLISHED}/datacite.xml",
            "application/xml": record_url(site, "ivo://latentvo.example/release/cit_pub")}
        assert [lk["url"] for lk in by_rel["license"]] == [
            "https://creativecommons.org/licenses/by/4.0/"]
        items = {lk["url"]: lk for lk in by_rel["item"]}
        crate = items[f"{site}/releases/{PUBLISHED}/ro-crate-metadata.json"]
        assert crate["type"] == "application/ld+json"
        assert crate["profile"] == "https://w3id.org/ro/crate"
        assert f"{site}/tap" in items
        assert {lk["url"] for lk in by_rel["type"]} == {
            "https://schema.org/Dataset", "https://schema.org/AboutPage"}
    # the same links in the page's head
    parsed = page(httpx.get(f"{site}/releases/{PUBLISHED}"))
    assert {(lk["rel"], lk["href"]) for lk in parsed.links} == {
        (lk["rel"], lk["url"]) for lk in found}


def test_cite_as_is_the_landing_page_without_a_doi(site, releases):
    response = httpx.get(f"{site}/releases/{NO_DOI}")
    assert response.status_code == 200
    [cite] = [lk for lk in _all_links(response.headers["link"]) if lk["rel"] == "cite-as"]
    assert cite["url"] == f"{site}/releases/{NO_DOI}"
    [dataset] = page(response).jsonld
    assert dataset["identifier"] == ["ivo://latentvo.example/release/cit_nodoi"]


def test_datacite_xml(site, releases, database):
    from datacite import schema43

    from vo_service.releases.citation import datacite_metadata
    from vo_service.releases.publisher import publisher_of
    from vo_service.releases.store import read_release
    from vo_service.urls import PublicURLs

    response = httpx.get(f"{site}/releases/{PUBLISHED}/datacite.xml")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/vnd.datacite.datacite+xml")
    assert _all_links(response.headers["link"]) == [
        {"url": f"{site}/releases/{PUBLISHED}", "rel": "describes", "type": "text/html"}]
    root = etree.fromstring(response.content)
    assert root.tag == f"{DATACITE_NS}resource"
    identifier = root.find(f"{DATACITE_NS}identifier")
    assert identifier.text == DOI and identifier.get("identifierType") == "DOI"
    assert root.findtext(f"{DATACITE_NS}titles/{DATACITE_NS}title") == "Test release <one>"
    assert root.find(f"{DATACITE_NS}resourceType").get("resourceTypeGeneral") == "Dataset"
    relations = {(r.get("relationType"), r.text)
                 for r in root.iter(f"{DATACITE_NS}relatedIdentifier")}
    assert ("IsDerivedFrom", record_url(site, "ivo://latentvo.example/spectra")) in relations
    rights = root.find(f"{DATACITE_NS}rightsList/{DATACITE_NS}rights")
    assert rights.get("rightsIdentifier") == "CC-BY-4.0"
    dates = {d.get("dateType") for d in root.iter(f"{DATACITE_NS}date")}
    assert {"Created", "Issued"} <= dates
    # The JSON the XML was made from is valid by the package's DataCite 4.3 schema
    # (the server refuses to write an invalid one; checked here directly too).
    with database.engine.connect() as conn:
        release = read_release(conn, PUBLISHED)
    data = datacite_metadata(release, publisher_of(database.settings), PublicURLs(site))
    assert schema43.validate(data), list(schema43.validator.iter_errors(data))


def test_datacite_xml_without_a_doi_says_so(site, releases):
    response = httpx.get(f"{site}/releases/{NO_DOI}/datacite.xml")
    root = etree.fromstring(response.content)
    assert root.find(f"{DATACITE_NS}identifier") is None
    alternates = {a.get("alternateIdentifierType"): a.text
                  for a in root.iter(f"{DATACITE_NS}alternateIdentifier")}
    assert alternates == {"URL": f"{site}/releases/{NO_DOI}",
                          "IVOID": "ivo://latentvo.example/release/cit_nodoi"}
    comments = [c.text for c in root.iter(etree.Comment)]
    assert any("No DOI" in c for c in comments)


def test_bibtex(site, releases):
    response = httpx.get(f"{site}/releases/{PUBLISHED}/citation.bib")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/x-bibtex")
    library = bibtexparser.parse_string(response.text)
    assert not library.failed_blocks
    [entry] = library.entries
    assert entry.entry_type == "misc" and entry.key == "latentvo_cit_pub"
    fields = {k: f.value for k, f in entry.fields_dict.items()}
    assert fields["doi"] == DOI and fields["url"] == f"https://doi.org/{DOI}"
    assert fields["title"] == "{Test release <one>}"
    assert fields["author"] == "{latentvo developers}"
    assert fields["year"].isdigit()


def test_ro_crate_metadata(site, releases, tmp_path):
    from rocrate.rocrate import ROCrate

    response = httpx.get(f"{site}/releases/{PUBLISHED}/ro-crate-metadata.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/ld+json")
    (tmp_path / "ro-crate-metadata.json").write_bytes(response.content)
    crate = ROCrate(tmp_path)
    root = crate.root_dataset
    assert root["name"] == "Test release <one>"
    assert root["identifier"] == f"https://doi.org/{DOI}"
    assert crate.license.id == "https://creativecommons.org/licenses/by/4.0/"
    assert root["author"][0]["name"] == "latentvo developers"
    assert root.get("datePublished")
    parts = {e.id: e for e in root["hasPart"]}
    for table in TABLES:
        url = f"{site}/tap/sync?REQUEST=doQuery&LANG=ADQL&QUERY=" \
              + quote(f"SELECT * FROM {PUBLISHED}.{table}", safe="")
        assert url in parts, sorted(parts)
    for path, sha in releases.artifacts.values():
        assert parts[path]["sha256"] == sha


def test_withdrawn_release_is_a_tombstone(site, releases):
    response = httpx.get(f"{site}/releases/{WITHDRAWN}")
    assert response.status_code == 410
    parsed = page(response)
    text = response.text
    assert "Withdrawn test release" in text and "withdrawn" in text
    assert REASON in text
    assert "@misc{latentvo_cit_gone" in text  # still citable
    assert not any("/tap" in h or "ro-crate" in h for h in parsed.hrefs)  # no data links
    [dataset] = parsed.jsonld
    assert dataset["creativeWorkStatus"] == "Withdrawn" and "distribution" not in dataset
    rels = {lk["rel"] for lk in _all_links(response.headers["link"])}
    assert "cite-as" in rels and "item" not in rels
    # the citation documents stay; the package of its (dropped) data does not
    datacite = httpx.get(f"{site}/releases/{WITHDRAWN}/datacite.xml")
    assert datacite.status_code == 200
    assert "Withdrawn" in {d.get("dateType") for d in
                           etree.fromstring(datacite.content).iter(f"{DATACITE_NS}date")}
    assert httpx.get(f"{site}/releases/{WITHDRAWN}/citation.bib").status_code == 200
    crate = httpx.get(f"{site}/releases/{WITHDRAWN}/ro-crate-metadata.json")
    assert crate.status_code == 410 and crate.headers["content-type"].startswith("text/html")


@pytest.mark.parametrize("name", [DRAFT, "no_such_release"])
@pytest.mark.parametrize("suffix", ["", "/datacite.xml", "/citation.bib",
                                    "/ro-crate-metadata.json"])
def test_draft_and_unknown_are_404(site, releases, name, suffix):
    response = httpx.get(f"{site}/releases/{name}{suffix}")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "404 Not Found" in response.text


def test_release_list(site, releases):
    response = httpx.get(f"{site}/releases")
    assert response.status_code == 200
    parsed = page(response)
    assert f"{site}/releases/{PUBLISHED}" in parsed.hrefs
    assert f"{site}/releases/{WITHDRAWN}" in parsed.hrefs
    assert f"{site}/releases/{DRAFT}" not in parsed.hrefs


def test_service_landing_page_cites_the_service(site, releases):
    response = httpx.get(f"{site}/")
    assert response.status_code == 200
    parsed = page(response)
    found = _all_links(response.headers["link"])
    assert {"url": f"{site}/", "rel": "cite-as"} in found
    assert {"url": record_url(site, "ivo://latentvo.example/tap"), "rel": "describedby",
            "type": "application/xml"} in found
    assert any(lk["rel"] == "license" for lk in found)
    [catalog] = parsed.jsonld
    assert catalog["@type"] == "DataCatalog" and catalog["url"] == f"{site}/"
    assert {d["url"] for d in catalog["dataset"]} >= {f"{site}/releases/{PUBLISHED}",
                                                      f"{site}/releases/{NO_DOI}"}
    assert f"{site}/releases/{WITHDRAWN}" not in {d["url"] for d in catalog["dataset"]}
    assert f"{site}/releases/{PUBLISHED}" in parsed.hrefs
    bib = response.text.split("<pre>")[1].split("</pre>")[0]
    [entry] = bibtexparser.parse_string(html.unescape(bib)).entries
    assert entry.key == "latentvo_service" and entry.fields_dict["url"].value == f"{site}/"
    assert f'href="{site}/tap"' in response.text  # the page's services are still there
    head = httpx.head(f"{site}/")  # Signposting clients ask with HEAD
    assert head.status_code == 200 and _all_links(head.headers["link"]) == found
