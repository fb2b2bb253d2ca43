"""Who publishes the releases and the service, and under which licence: what every
citation format (landing pages, DataCite, BibTeX, JSON-LD, RO-Crate) credits.

:func:`publisher_of` is the one place that reads it from the configuration, so that
every format credits the same people under the same licence.
"""

from __future__ import annotations

from dataclasses import dataclass

from vo_service.config import ServiceSettings, Settings
from vo_service.registry.identifiers import Identifiers


@dataclass(frozen=True)
class Publisher:
    """What every citation format credits: the ``[service]`` settings (title, creators,
    publisher, licence, ...) and the IVOA identifiers of the site's resources."""

    service: ServiceSettings
    ids: Identifiers


def publisher_of(settings: Settings) -> Publisher:
    """The publisher metadata of the service configured by ``settings``."""
    return Publisher(settings.service, Identifiers(settings.authority))


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
