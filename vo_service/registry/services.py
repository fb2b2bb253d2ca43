"""The records of this site's authority, its registry and its services (TAP, SSA).

The capabilities are the elements that ``/tap/capabilities`` and
``/ssa/capabilities`` serve (``vo_service.vosi.capabilities``,
``vo_service.ssa.vosi``) and the TAP tableset is what ``/tap/tables`` serves
(``vo_service.vosi.tables``): one rendering, so a record cannot drift from the
service it describes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from xml.sax.saxutils import escape

from vo_service.config import ServiceSettings, SSALimits, TAPLimits
from vo_service.registry import vor
from vo_service.registry.coverage import Coverage
from vo_service.registry.identifiers import Identifiers
from vo_service.registry.record import ResourceDraft
from vo_service.registry.vor import IS_SERVICE_FOR, Related
from vo_service.ssa.vosi import datalink_capability, ssa_capability_list
from vo_service.urls import PublicURLs
from vo_service.vosi.capabilities import tap_capability_list
from vo_service.vosi.xml import element


def _reference(meta: ServiceSettings, urls: PublicURLs) -> str:
    return meta.reference_url or urls.landing


def _facilities(meta: ServiceSettings) -> str:
    return element("facility", meta.facility) + element("instrument", meta.instrument)


def authority_draft(meta: ServiceSettings, ids: Identifiers, urls: PublicURLs) -> ResourceDraft:
    """``vg:Authority``: the naming authority of every identifier here."""
    title = f"Naming authority of {meta.title}"
    body = (vor.curation(meta)
            + vor.content(meta, f"The authority {ids.authority} names the resources of "
                          f"{meta.title}, published by {meta.publisher}.",
                          _reference(meta, urls), content_type="Organisation")
            + element("managingOrg", meta.publisher, ivo_id=meta.publisher_id))

    def render(created: datetime, updated: datetime) -> str:
        return vor.resource("vg:Authority", ids.authority, title, created, updated,
                            short=vor.short_name(meta.short_name), body=body)
    return ResourceDraft(ids.authority, "vg:Authority", title, render)


def registry_draft(meta: ServiceSettings, ids: Identifiers, urls: PublicURLs,
                   page_size: int) -> ResourceDraft:
    """``vg:Registry``: the OAI-PMH publishing registry (vg:Harvest over vg:OAIHTTP) that
    manages this authority; ``page_size`` is its records per response."""
    title = f"{meta.title}: publishing registry"
    capability = (
        '<capability standardID="ivo://ivoa.net/std/Registry" xsi:type="vg:Harvest">'
        '<interface xsi:type="vg:OAIHTTP" role="std" version="1.0">'
        f'<accessURL use="base">{escape(urls.oai)}</accessURL></interface>'
        + element("maxRecords", page_size) + "</capability>")
    body = (vor.curation(meta)
            + vor.content(meta, f"The OAI-PMH publishing registry of {meta.title}: the "
                          f"VOResource records of every resource of {ids.authority}.",
                          _reference(meta, urls), content_type="Registry")
            + vor.rights(meta) + capability
            + "<full>false</full>" + element("managedAuthority", ids.authority_id))

    def render(created: datetime, updated: datetime) -> str:
        return vor.resource("vg:Registry", ids.registry, title, created, updated,
                            short=vor.short_name(meta.short_name, "reg"), body=body)
    return ResourceDraft(ids.registry, "vg:Registry", title, render)


def tap_draft(meta: ServiceSettings, ids: Identifiers, urls: PublicURLs, limits: TAPLimits,
              schemas: str, coverage: Coverage, serves: Sequence[Related]) -> ResourceDraft:
    """``vs:CatalogService`` of TAP: TAPRegExt, VOSI, examples and DataLink capabilities,
    the tables (``schemas``: the ``schema`` elements of ``/tap/tables``), the archive's
    ``coverage`` and the collections it ``serves``."""
    title = f"{meta.title}: TAP service"
    related = vor.relationships({IS_SERVICE_FOR: serves})
    body = (vor.curation(meta)
            + vor.content(meta, meta.description + " The TAP service answers ADQL 2.1 "
                          "queries over every table, the ObsCore table ivoa.obscore and the "
                          "published catalogues and data releases.",
                          _reference(meta, urls), related=related)
            + vor.rights(meta)
            + "".join(tap_capability_list(urls, limits)) + datalink_capability(urls)
            + _facilities(meta) + coverage.xml(meta.wavebands)
            + "<tableset>" + schemas + "</tableset>")

    def render(created: datetime, updated: datetime) -> str:
        return vor.resource("vs:CatalogService", ids.tap, title, created, updated,
                            short=vor.short_name(meta.short_name, "TAP"), body=body)
    return ResourceDraft(ids.tap, "vs:CatalogService", title, render)


def ssa_draft(meta: ServiceSettings, ids: Identifiers, urls: PublicURLs, limits: SSALimits,
              test: tuple[float, float, float] | None, coverage: Coverage,
              serves: Sequence[Related]) -> ResourceDraft:
    """``vs:CatalogService`` of SSA: the SSA 1.1 capability with its ``test`` query, VOSI,
    DataLink, the spectra's ``coverage`` and the collections it ``serves``."""
    title = f"{meta.title}: SSA service"
    related = vor.relationships({IS_SERVICE_FOR: serves})
    body = (vor.curation(meta)
            + vor.content(meta, meta.description + " The SSA service finds spectra by "
                          "position, band, time and machine-learning labels.",
                          _reference(meta, urls), related=related)
            + vor.rights(meta) + "".join(ssa_capability_list(urls, limits, test))
            + _facilities(meta) + coverage.xml(meta.wavebands))

    def render(created: datetime, updated: datetime) -> str:
        return vor.resource("vs:CatalogService", ids.ssa, title, created, updated,
                            short=vor.short_name(meta.short_name, "SSA"), body=body)
    return ResourceDraft(ids.ssa, "vs:CatalogService", title, render)
