"""FAIR Signposting (https://signposting.org/FAIR/): typed links in the HTTP ``Link``
header of a landing page, so that machines find what to cite (``cite-as``), the
metadata (``describedby``), the licence, the content (``item``) and the kind of
resource (``type``) without reading the HTML. The documents the links lead to point
back with ``describes``."""

from __future__ import annotations

from dataclasses import dataclass

from vo_service.releases.citation import DATACITE_MIME, cite_as
from vo_service.releases.publisher import Publisher
from vo_service.releases.store import WITHDRAWN, Release
from vo_service.urls import PublicURLs

VORESOURCE_MIME = "application/xml"
CRATE_MIME = "application/ld+json"
CRATE_PROFILE = "https://w3id.org/ro/crate"
DATASET = "https://schema.org/Dataset"
ABOUT_PAGE = "https://schema.org/AboutPage"
DATA_CATALOG = "https://schema.org/DataCatalog"


@dataclass(frozen=True)
class Link:
    """One typed link (RFC 8288)."""

    href: str
    rel: str
    type: str | None = None
    profile: str | None = None  # RFC 6906, e.g. RO-Crate's

    def header_value(self) -> str:
        """The link as one value of a ``Link`` header."""
        value = f'<{self.href}>; rel="{self.rel}"'
        if self.type:
            value += f'; type="{self.type}"'
        if self.profile:
            value += f'; profile="{self.profile}"'
        return value


def link_header(links: list[Link]) -> str:
    """The ``Link`` header carrying ``links``."""
    return ", ".join(link.header_value() for link in links)


def release_links(release: Release, pub: Publisher, urls: PublicURLs) -> list[Link]:
    """The Signposting links of a release's landing page (its tombstone: no items)."""
    links = [Link(cite_as(release, urls), "cite-as"),
             Link(urls.release_datacite(release.name), "describedby", DATACITE_MIME),
             Link(urls.voresource(pub.ids.release(release.name)), "describedby",
                  VORESOURCE_MIME),
             Link(pub.service.license_url, "license")]
    if release.state != WITHDRAWN:
        links += [Link(urls.release_crate(release.name), "item", CRATE_MIME, CRATE_PROFILE),
                  Link(urls.tap, "item")]
    return links + [Link(DATASET, "type"), Link(ABOUT_PAGE, "type")]


def service_links(pub: Publisher, urls: PublicURLs) -> list[Link]:
    """The Signposting links of the service's landing page."""
    return [Link(urls.landing, "cite-as"),
            Link(urls.voresource(pub.ids.tap), "describedby", VORESOURCE_MIME),
            Link(pub.service.license_url, "license"),
            Link(DATA_CATALOG, "type"), Link(ABOUT_PAGE, "type")]


def describes(page: str) -> list[Link]:
    """The link of a metadata document back to the landing page it describes."""
    return [Link(page, "describes", "text/html")]
