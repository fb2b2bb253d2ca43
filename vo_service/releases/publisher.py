"""Who publishes the releases and the service, and under which licence: what every
citation format (landing pages, DataCite, BibTeX, JSON-LD, RO-Crate) credits.

:func:`publisher_of` is the one place that reads it from the configuration, so that
every format credits the same people under the same licence.
"""

from __future__ import annotations

from dataclasses import dataclass

from vo_service.config import Settings


@dataclass(frozen=True)
class Publisher:
    """The service's publisher metadata as the citation formats need it."""

    title: str  # the service's title
    short_name: str
    description: str
    publisher: str
    creators: tuple[str, ...]  # persons as "Family, Given", organisations by name
    contact_email: str
    subjects: tuple[str, ...]
    rights: str  # the licence as credited (the SPDX identifier of [service] license)
    license: str  # SPDX identifier
    license_url: str
    supplement_dois: tuple[str, ...]  # papers the data supplement (IsSupplementTo)
    authority: str  # ivo://... of the publisher's identifiers

    def release_id(self, name: str) -> str:
        """The IVOA identifier of the data release ``name``."""
        return f"{self.authority}/release/{name}"

    @property
    def spectra_id(self) -> str:
        """The IVOA identifier of the archive's spectra collection."""
        return f"{self.authority}/spectra"

    @property
    def tap_id(self) -> str:
        """The IVOA identifier of the TAP service."""
        return f"{self.authority}/tap"


def publisher_of(settings: Settings) -> Publisher:
    """The publisher metadata of the service configured by ``settings`` (``[service]``)."""
    s = settings.service
    return Publisher(
        title=s.title, short_name=s.short_name, description=s.description,
        publisher=s.publisher, creators=s.creators, contact_email=s.contact_email,
        subjects=s.subjects, rights=s.license, license=s.license, license_url=s.license_url,
        supplement_dois=s.supplement_dois, authority=settings.authority)


def is_person(name: str) -> bool:
    """Whether a creator is a person: written "Family, Given", as DataCite asks."""
    return ", " in name


def doi_url(doi: str) -> str:
    """The resolver URL of a DOI given bare, as ``doi:...`` or as a URL."""
    return "https://doi.org/" + bare_doi(doi)


def bare_doi(doi: str) -> str:
    """``10.xxxx/...`` of a DOI given bare, as ``doi:...`` or as a resolver URL."""
    doi = doi.strip()
    for prefix in ("https://doi.org/", "http://doi.org/", "https://dx.doi.org/", "doi:"):
        if doi.lower().startswith(prefix):
            return doi[len(prefix):]
    return doi
