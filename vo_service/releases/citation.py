"""How to cite a data release or the service: DataCite XML, BibTeX and schema.org JSON-LD.

All three are rendered from the same values (the release, its manifest and the
:class:`~vo_service.releases.publisher.Publisher`), with the libraries the formats have:
DataCite 4.3 with the ``datacite`` package (validated against its JSON schema before it
is written), BibTeX with ``bibtexparser``.

A release without a DOI: DataCite's kernel 4.3 makes ``<identifier identifierType="DOI">``
mandatory, and only a DataCite member can mint one. The document then names the release
by its landing page and IVOA identifier (``alternateIdentifiers``), which the package's
JSON schema accepts, but DataCite's XML schema does not: it is the metadata to register
the DOI with, and says so in a comment. The BibTeX and JSON-LD cite the landing page.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from vo_service.releases import contents
from vo_service.releases.publisher import Publisher, bare_doi, doi_url, is_person
from vo_service.releases.store import WITHDRAWN, Release
from vo_service.urls import PublicURLs

DATACITE_MIME = "application/vnd.datacite.datacite+xml"
BIBTEX_MIME = "text/x-bibtex"
RESOURCE_TYPE = "Data release: spectra and machine-learning products"
_TEX_SPECIAL = re.compile(r"([\\{}&%$#_~^])")
_TEX_ESCAPES = {"\\": r"\textbackslash{}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


class InvalidCitation(ValueError):
    """A DataCite document the schema refuses: a bug in what we render, never the user's."""


def cite_as(release: Release, urls: PublicURLs) -> str:
    """What a citation points to: the DOI's resolver URL, else the landing page."""
    return doi_url(release.doi) if release.doi else urls.release_page(release.name)


# -- DataCite ------------------------------------------------------------------------


def datacite_metadata(release: Release, pub: Publisher, urls: PublicURLs) -> dict[str, Any]:
    """The release as DataCite 4.3 JSON (the ``datacite`` package's input)."""
    identifiers = [{"identifier": bare_doi(release.doi), "identifierType": "DOI"}] \
        if release.doi else []
    identifiers += [{"identifier": urls.release_page(release.name), "identifierType": "URL"},
                    {"identifier": pub.ids.release(release.name), "identifierType": "IVOID"}]
    dates = [{"date": contents.day(release.created), "dateType": "Created"}]
    if release.published:
        dates.append({"date": contents.day(release.published), "dateType": "Issued"})
    if release.withdrawn:
        dates.append({"date": contents.day(release.withdrawn), "dateType": "Withdrawn"})
    observed = contents.time_range(release)
    if observed:
        dates.append({"date": f"{contents.day(observed[0])}/{contents.day(observed[1])}",
                      "dateType": "Collected",
                      "dateInformation": "observation dates of the spectra"})
    descriptions = [{"description": release.description or release.title,
                     "descriptionType": "Abstract"}]
    if technical := technical_info(release):
        descriptions.append({"description": technical, "descriptionType": "TechnicalInfo"})
    related = [{"relatedIdentifier": urls.voresource(pub.ids.spectra),
                "relatedIdentifierType": "URL", "relationType": "IsDerivedFrom",
                "resourceTypeGeneral": "Dataset"},
               {"relatedIdentifier": urls.voresource(pub.ids.release(release.name)),
                "relatedIdentifierType": "URL", "relationType": "HasMetadata",
                "relatedMetadataScheme": "VOResource",
                "schemeUri": "http://www.ivoa.net/xml/VOResource/v1.0"}]
    related += [{"relatedIdentifier": bare_doi(doi), "relatedIdentifierType": "DOI",
                 "relationType": "IsSupplementTo"} for doi in pub.service.supplement_dois]
    if release.state != WITHDRAWN:
        related += [{"relatedIdentifier": urls.tap_query(f"SELECT * FROM {t.qualified}"),
                     "relatedIdentifierType": "URL", "relationType": "HasPart",
                     "resourceTypeGeneral": "Dataset"} for t in contents.frozen_tables(release)]
    return {
        "identifiers": identifiers,
        "creators": [{"name": c, "nameType": "Personal" if is_person(c) else "Organizational"}
                     for c in pub.service.creators],
        "titles": [{"title": release.title}],
        "publisher": pub.service.publisher,
        "publicationYear": str(contents.issued(release).year),
        "types": {"resourceTypeGeneral": "Dataset", "resourceType": RESOURCE_TYPE},
        "subjects": [{"subject": s} for s in pub.service.subjects],
        "dates": dates,
        "language": "en",
        "version": release.name,
        "sizes": [f"{n} {what}" for what, n in contents.counts(release)],
        "formats": ["application/x-votable+xml", "text/csv", "application/fits"],
        "rightsList": [{"rights": pub.service.license, "rightsUri": pub.service.license_url,
                        "rightsIdentifier": pub.service.license, "rightsIdentifierScheme": "SPDX",
                        "schemeUri": "https://spdx.org/licenses/"}],
        "descriptions": descriptions,
        "relatedIdentifiers": related,
        "schemaVersion": "http://datacite.org/schema/kernel-4",
    }


def technical_info(release: Release) -> str:
    """The models and label sets of a release in words, checksums included (DataCite has
    no identifier type for a checksum: they are described, not related)."""
    parts = []
    for m in contents.models(release):
        parts.append(f"Model {m.get('model_id')} ({m.get('kind')}, latentvo "
                     f"{m.get('code_version')}): artifact sha256 {m.get('artifact_sha256')}; "
                     f"trained on {m.get('training_size')} spectra selected by "
                     f"{m.get('training_selection')} (training checksum "
                     f"{m.get('training_checksum')})"
                     + (f", reference labels {m['reference_label_source']}"
                        if m.get("reference_label_source") else "") + ".")
    for s in release.manifest.get("label_sets", ()):
        parts.append(f"Reference label set {s.get('name')}: {s.get('n_rows')} rows, "
                     f"sha256 {s.get('source_sha256')}.")
    return " ".join(parts)


def datacite_xml(release: Release, pub: Publisher, urls: PublicURLs) -> str:
    """The release's DataCite 4.3 XML, checked against the package's JSON schema.

    Raises
    ------
    InvalidCitation
        When the schema refuses the document (with every complaint).
    """
    # Imported here: the package pulls in its HTTP clients (~0.5 s), which a web process
    # that never serves a DataCite document should not pay at start.
    from datacite import schema43
    from lxml import etree

    data = datacite_metadata(release, pub, urls)
    errors = sorted(e.message for e in schema43.validator.iter_errors(data))
    if errors:
        raise InvalidCitation("DataCite 4.3: " + "; ".join(errors))
    root = schema43.dump_etree(data)
    if not release.doi:
        root.insert(0, etree.Comment(
            " No DOI has been minted for this release yet: this is the metadata to register "
            "one with (DataCite requires the identifier element, which the DOI fills). "))
    return str(schema43.etree_to_string(root))


# -- BibTeX --------------------------------------------------------------------------


def tex(text: str) -> str:
    """``text`` with BibTeX/LaTeX special characters escaped."""
    return _TEX_SPECIAL.sub(lambda m: _TEX_ESCAPES.get(m.group(1), "\\" + m.group(1)), text)


def bibtex_authors(creators: tuple[str, ...]) -> str:
    """BibTeX's author list: persons as "Family, Given", organisations in braces."""
    return " and ".join(tex(c) if is_person(c) else "{" + tex(c) + "}" for c in creators)


def _write_entry(key: str, fields: dict[str, str]) -> str:
    import bibtexparser
    from bibtexparser.library import Library
    from bibtexparser.model import Entry, Field

    library = Library()
    library.add(Entry("misc", key, [Field(k, v) for k, v in fields.items() if v]))
    return str(bibtexparser.write_string(library)).strip() + "\n"


def bibtex_key(*parts: str) -> str:
    """A citation key from ``parts`` (letters, digits and underscores only)."""
    return re.sub(r"[^A-Za-z0-9]+", "_", "_".join(parts)).strip("_")


def release_bibtex(release: Release, pub: Publisher, urls: PublicURLs) -> str:
    """The release as a BibTeX ``@misc`` entry (BibTeX has no dataset type)."""
    moment = contents.issued(release)
    note = f"Data release {release.name}, IVOA identifier {pub.ids.release(release.name)}"
    if release.state == WITHDRAWN and release.withdrawn:
        note += f"; withdrawn on {contents.day(release.withdrawn)}"
    return _write_entry(bibtex_key(pub.service.short_name, release.name), {
        "author": bibtex_authors(pub.service.creators),
        "title": "{" + tex(release.title) + "}",
        "howpublished": tex(pub.service.title),
        "publisher": tex(pub.service.publisher),
        "year": str(moment.year),
        "month": str(moment.month),
        "version": tex(release.name),
        "doi": bare_doi(release.doi) if release.doi else "",
        "url": cite_as(release, urls),
        "note": tex(note),
    })


def service_bibtex(pub: Publisher, urls: PublicURLs, today: datetime) -> str:
    """The service itself as a BibTeX ``@misc`` entry, accessed ``today``."""
    return _write_entry(bibtex_key(pub.service.short_name, "service"), {
        "author": bibtex_authors(pub.service.creators),
        "title": "{" + tex(pub.service.title) + "}",
        "howpublished": "IVOA TAP, SSA and DataLink services",
        "publisher": tex(pub.service.publisher),
        "year": str(today.year),
        "url": urls.landing,
        "note": tex(f"IVOA identifier {pub.ids.tap}; accessed {contents.day(today)}"),
    })


# -- schema.org JSON-LD ----------------------------------------------------------------


def _agent(name: str) -> dict[str, str]:
    return {"@type": "Person" if is_person(name) else "Organization", "name": name}


def dataset_jsonld(release: Release, pub: Publisher, urls: PublicURLs) -> dict[str, Any]:
    """The release as a schema.org ``Dataset`` (Google Dataset Search, FAIR checkers)."""
    page = urls.release_page(release.name)
    identifiers = ([doi_url(release.doi)] if release.doi else []) \
        + [pub.ids.release(release.name)]
    doc: dict[str, Any] = {
        "@context": "https://schema.org",
        "@type": "Dataset",
        "@id": cite_as(release, urls),
        "name": release.title,
        "description": release.description or release.title,
        "url": page,
        "identifier": identifiers,
        "version": release.name,
        "license": pub.service.license_url,
        "creator": [_agent(c) for c in pub.service.creators],
        "publisher": {"@type": "Organization", "name": pub.service.publisher},
        "keywords": list(pub.service.subjects),
        "isAccessibleForFree": True,
        "dateCreated": contents.instant(release.created),
        "includedInDataCatalog": {"@type": "DataCatalog", "name": pub.service.title,
                                  "url": urls.landing},
        "isBasedOn": urls.voresource(pub.ids.spectra),
        "subjectOf": {"@type": "CreativeWork", "url": urls.release_datacite(release.name),
                      "encodingFormat": DATACITE_MIME},
    }
    if release.doi:
        doc["sameAs"] = doi_url(release.doi)
    if release.published:
        doc["datePublished"] = contents.instant(release.published)
    observed = contents.time_range(release)
    if observed:
        doc["temporalCoverage"] = f"{contents.day(observed[0])}/{contents.day(observed[1])}"
    if release.state == WITHDRAWN:
        doc["creativeWorkStatus"] = "Withdrawn"
        if release.withdrawn:
            doc["expires"] = contents.instant(release.withdrawn)
    else:
        doc["distribution"] = [
            {"@type": "DataDownload", "name": t.qualified,
             "encodingFormat": "application/x-votable+xml",
             "contentUrl": urls.tap_query(f"SELECT * FROM {t.qualified}")}
            for t in contents.frozen_tables(release)]
    return doc


def catalog_jsonld(pub: Publisher, urls: PublicURLs,
                   releases: list[Release]) -> dict[str, Any]:
    """The service as a schema.org ``DataCatalog`` of its published releases."""
    return {
        "@context": "https://schema.org",
        "@type": "DataCatalog",
        "@id": urls.landing,
        "name": pub.service.title,
        "alternateName": pub.service.short_name,
        "description": pub.service.description,
        "url": urls.landing,
        "identifier": pub.ids.tap,
        "license": pub.service.license_url,
        "creator": [_agent(c) for c in pub.service.creators],
        "publisher": {"@type": "Organization", "name": pub.service.publisher,
                      "email": pub.service.contact_email},
        "keywords": list(pub.service.subjects),
        "dataset": [{"@type": "Dataset", "@id": cite_as(r, urls), "name": r.title,
                     "url": urls.release_page(r.name), "version": r.name}
                    for r in releases if r.public],
    }


def jsonld_script(doc: dict[str, Any]) -> str:
    """``doc`` as an HTML ``<script type="application/ld+json">`` element."""
    # "</" would end the script element early; "<\/" is the same JSON string.
    text = json.dumps(doc, indent=1, ensure_ascii=False).replace("</", "<\\/")
    return f'<script type="application/ld+json">\n{text}\n</script>'
