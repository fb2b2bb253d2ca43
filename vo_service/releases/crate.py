"""A release as an RO-Crate 1.1 (https://w3id.org/ro/crate/1.1), made with ``rocrate``.

The root ``Dataset`` is the release, with its licence, creators, publisher, identifiers
and the papers it supplements; its parts are files with their checksums. Online
(``/releases/<name>/ro-crate-metadata.json``) the frozen tables are their TAP query
URLs and the model artifacts the files that ``latentvo release export`` packs; the
export (:mod:`vo_service.releases.export`) lists the files it wrote instead, each with
its size and SHA-256.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vo_service.releases import contents
from vo_service.releases.citation import cite_as
from vo_service.releases.publisher import Publisher, doi_url, is_person
from vo_service.releases.store import Release
from vo_service.urls import PublicURLs

if TYPE_CHECKING:
    from rocrate.rocrate import ROCrate

CRATE_VERSION = "1.1"
VOTABLE_MIME = "application/x-votable+xml"


@dataclass(frozen=True)
class Part:
    """One data entity of the crate: a file of the package, or an online resource.

    ``path`` is relative to the crate's folder, or an absolute URL for a resource that is
    only online.
    """

    path: str
    name: str
    description: str
    encoding: str
    sha256: str | None = None
    size: int | None = None
    url: str | None = None  # where the same content is served online

    def properties(self) -> dict[str, Any]:
        """The entity's schema.org properties."""
        found: dict[str, Any] = {"name": self.name, "description": self.description,
                                 "encodingFormat": self.encoding}
        if self.sha256:
            found["sha256"] = self.sha256
        if self.size is not None:
            found["contentSize"] = str(self.size)
        if self.url:
            found["url"] = self.url
        return found


def table_description(table: contents.FrozenTable) -> str:
    """A frozen table in words: rows, and the manifest's checksum over them."""
    text = f"The table {table.qualified} of the release"
    if table.rows is not None:
        text += f", rows: {table.rows}"
    if table.sha256:
        text += f" (SHA-256 over its ordered rows in the manifest: {table.sha256})"
    return text + "."


def online_tables(release: Release, urls: PublicURLs) -> list[Part]:
    """The release's tables as their TAP queries (VOTable)."""
    return [Part(urls.tap_query(f"SELECT * FROM {t.qualified}"), t.qualified,
                 table_description(t), VOTABLE_MIME)
            for t in contents.frozen_tables(release)]


def model_description(model: dict[str, Any]) -> str:
    """A model artifact in words, with its training provenance."""
    text = (f"Artifact of the {model.get('kind')} model {model.get('model_id')} "
            f"(latentvo {model.get('code_version')}), trained on "
            f"{model.get('training_size')} spectra selected by "
            f"{model.get('training_selection')}; training checksum "
            f"{model.get('training_checksum')}")
    if model.get("reference_label_source"):
        text += f"; reference labels {model['reference_label_source']}"
    if model.get("base_model_id"):
        text += f"; built on {model['base_model_id']}"
    return text + "."


def model_parts(release: Release, artifact_paths: dict[str, str]) -> list[Part]:
    """The release's model artifacts at their paths in the package, with the manifest's
    SHA-256 (``artifact_paths``: model id -> path relative to ``$LATENTVO_HOME``)."""
    return [Part(artifact_paths[m["model_id"]], f"model {m['model_id']}",
                 model_description(m), "application/octet-stream", m.get("artifact_sha256"))
            for m in contents.models(release) if m.get("model_id") in artifact_paths]


def _agent_id(name: str) -> str:
    """A local identifier (``#family-given``) for a person or organisation."""
    return "#" + (re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "agent")


def release_crate(release: Release, pub: Publisher, urls: PublicURLs,
                  parts: list[Part]) -> ROCrate:
    """The RO-Crate of ``release`` with ``parts`` as its data entities."""
    # Imported here: rocrate loads requests and its entity model (~0.3 s), which only
    # crate requests and exports need.
    from rocrate.model.contextentity import ContextEntity
    from rocrate.rocrate import ROCrate

    crate = ROCrate(version=CRATE_VERSION)
    root = crate.root_dataset
    root["name"] = release.title
    root["description"] = release.description or release.title
    root["identifier"] = cite_as(release, urls)
    root["url"] = urls.release_page(release.name)
    root["version"] = release.name
    root["datePublished"] = contents.instant(contents.issued(release))
    root["dateCreated"] = contents.instant(release.created)
    root["creativeWorkStatus"] = release.state
    root["keywords"] = list(pub.service.subjects)
    root["cite-as"] = cite_as(release, urls)
    root["license"] = crate.add(ContextEntity(crate, pub.service.license_url, properties={
        "@type": "CreativeWork", "name": pub.service.license, "identifier": pub.service.license}))
    root["author"] = [crate.add(ContextEntity(crate, _agent_id(c), properties={
        "@type": "Person" if is_person(c) else "Organization", "name": c}))
        for c in pub.service.creators]
    service = pub.service
    root["publisher"] = crate.add(ContextEntity(crate, _agent_id(service.publisher), properties={
        "@type": "Organization", "name": service.publisher, "email": service.contact_email}))
    if pub.service.supplement_dois:
        root["citation"] = [crate.add(ContextEntity(crate, doi_url(doi), properties={
            "@type": "ScholarlyArticle", "identifier": doi_url(doi)}))
            for doi in pub.service.supplement_dois]
    root["isBasedOn"] = crate.add(ContextEntity(crate, pub.ids.spectra, properties={
        "@type": "CreativeWork", "name": "the archive's spectra collection",
        "url": urls.voresource(pub.ids.spectra)}))
    for part in parts:
        online = "://" in part.path  # an online resource: its URL is its identifier
        crate.add_file(source=part.path if online else None,
                       dest_path=None if online else part.path, properties=part.properties())
    return crate


def crate_document(crate: ROCrate) -> dict[str, Any]:
    """The crate's ``ro-crate-metadata.json`` as JSON."""
    document: dict[str, Any] = crate.metadata.generate()
    return document


def write_metadata(crate: ROCrate, folder: Path) -> Path:
    """Write ``ro-crate-metadata.json`` into ``folder``; returns its path."""
    crate.metadata.write(folder)
    return folder / "ro-crate-metadata.json"
