"""Small valid VOResource records for the OAI-PMH tests, as :class:`ResourceDraft` objects,
and validation of OAI-PMH responses against the schemas in ``../shared/ivoa-xsd``.

The drafts have the shapes of this site's resources that a publishing registry must
carry: the authority (vg:Authority), the registry itself (vg:Registry with a
vg:Harvest capability on an OAIHTTP interface) and data collections (vs:DataCollection).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from lxml import etree

from vo_service.registry.record import ResourceDraft

AUTHORITY = "ivo://latentvo.example"
NAMESPACES = (
    'xmlns:ri="http://www.ivoa.net/xml/RegistryInterface/v1.0" '
    'xmlns:vr="http://www.ivoa.net/xml/VOResource/v1.0" '
    'xmlns:vg="http://www.ivoa.net/xml/VORegistry/v1.0" '
    'xmlns:vs="http://www.ivoa.net/xml/VODataService/v1.1" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"')
CURATION = ("<curation><publisher>Latentvo Test Archive</publisher>"
            "<creator><name>Doe, J.</name></creator><date role=\"Created\">2026-01-01</date>"
            "<contact><name>Archive staff</name><email>archive@example.org</email></contact>"
            "</curation>")


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _draft(xsi_type: str, identifier: str, title: str, body: str) -> ResourceDraft:
    def render(created: datetime, updated: datetime) -> str:
        return (f'<ri:Resource {NAMESPACES} xsi:type="{xsi_type}" created="{_stamp(created)}" '
                f'updated="{_stamp(updated)}" status="active"><title>{title}</title>'
                f"<identifier>{identifier}</identifier>{CURATION}{body}</ri:Resource>")
    return ResourceDraft(identifier, xsi_type, title, render)


def _content(description: str, kind: str = "Archive") -> str:
    return (f"<content><subject>Spectroscopy</subject><description>{description}</description>"
            f"<referenceURL>https://latentvo.example/</referenceURL><type>{kind}</type>"
            "</content>")


def authority() -> ResourceDraft:
    return _draft("vg:Authority", AUTHORITY, "The latentvo test authority",
                  _content("Identifiers of the latentvo test site.", "Organisation")
                  + "<managingOrg>Latentvo Test Archive</managingOrg>")


def registry(base: str) -> ResourceDraft:
    return _draft(
        "vg:Registry", f"{AUTHORITY}/registry", "The latentvo test publishing registry",
        _content("The registry of the latentvo test site's resources.", "Registry")
        + '<capability standardID="ivo://ivoa.net/std/Registry" xsi:type="vg:Harvest">'
        + '<interface xsi:type="vg:OAIHTTP" role="std" version="1.0">'
        + f'<accessURL use="base">{base}/oai</accessURL></interface>'
        + "<maxRecords>2</maxRecords></capability>"
        + f"<full>false</full><managedAuthority>{AUTHORITY[len('ivo://'):]}</managedAuthority>")


def collection(name: str, description: str = "Spectra of the test archive.") -> ResourceDraft:
    return _draft("vs:DataCollection", f"{AUTHORITY}/collection/{name}",
                  f"Collection {name}", _content(description, "Catalog")
                  + '<rights rightsURI="https://spdx.org/licenses/CC-BY-4.0.html">CC-BY 4.0'
                  "</rights>")


# -- validation ------------------------------------------------------------------------

WRAPPED = {  # namespace -> schema file of ../shared/ivoa-xsd
    "http://www.openarchives.org/OAI/2.0/": "OAI-PMH.xsd",
    "http://www.openarchives.org/OAI/2.0/oai_dc/": "oai_dc.xsd",
    "http://www.ivoa.net/xml/RegistryInterface/v1.0": "RegistryInterface.xsd",
    "http://www.ivoa.net/xml/VOResource/v1.0": "VOResource.xsd",
    "http://www.ivoa.net/xml/VORegistry/v1.0": "VORegistry.xsd",
    "http://www.ivoa.net/xml/VODataService/v1.1": "VODataService.xsd",
    "http://www.ivoa.net/xml/VOSICapabilities/v1.0": "VOSICapabilities.xsd",
    "http://www.ivoa.net/xml/TAPRegExt/v1.0": "TAPRegExt.xsd",
    "http://www.ivoa.net/xml/SSA/v1.1": "SSA.xsd",  # the site's SSA capability
}


class _LocalSchemas(etree.Resolver):
    """Every schema an import names by URL, read from the folder (never the network)."""

    def __init__(self, folder: Path) -> None:
        super().__init__()
        self.folder = folder

    def resolve(self, url, pubid, context):
        path = self.folder / url.rsplit("/", 1)[-1]
        return self.resolve_filename(str(path), context) if path.is_file() else None


def schema(folder: Path) -> etree.XMLSchema:
    """One schema importing every namespace of the OAI-PMH answers and VOSI documents."""
    folder = folder.resolve()
    imports = "".join(f'<xs:import namespace="{ns}" schemaLocation="{(folder / name).as_uri()}"/>'
                      for ns, name in WRAPPED.items())
    wrapper = (f'<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" '
               f'targetNamespace="urn:latentvo:tests:wrapper">{imports}</xs:schema>')
    parser = etree.XMLParser(no_network=True)
    parser.resolvers.add(_LocalSchemas(folder))
    return etree.XMLSchema(etree.fromstring(wrapper.encode(), parser,
                                            base_url=(folder / "wrapper.xsd").as_uri()))


def assert_valid(xml_schema: etree.XMLSchema | None, body: bytes, what: str) -> etree._Element:
    """The parsed document, after checking it against ``xml_schema`` (when there is one:
    without ../shared the documents are only parsed)."""
    root = etree.fromstring(body)
    if xml_schema is not None and not xml_schema.validate(root):
        errors = "\n".join(str(e) for e in list(xml_schema.error_log)[:10])
        raise AssertionError(f"{what} is not valid:\n{errors}\n{body[:3000].decode()}")
    return root
