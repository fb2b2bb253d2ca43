"""The ``vs:DataCollection`` records: the spectra, the ML products, each published
catalogue and each published data release, with their coverage and relationships.

A release that is a draft or was withdrawn gives no record: the registry store then
marks its record deleted (a withdrawn resource stays a deleted header for ever).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from xml.sax.saxutils import escape

import sqlalchemy as sa

from schema.catalogue_declaration import Declaration
from schema.tables import labels, latent, models, spectra
from vo_service.config import ServiceSettings
from vo_service.registry import vor
from vo_service.registry.coverage import Coverage, Extent, table_extent
from vo_service.registry.identifiers import Identifiers
from vo_service.registry.record import ResourceDraft
from vo_service.registry.vor import IS_DERIVED_FROM, IS_SERVED_BY, IS_SUPPLEMENT_TO, Related
from vo_service.releases.store import Release
from vo_service.urls import PublicURLs
from vo_service.vosi.xml import element

log = logging.getLogger("latentvo.registry")


@dataclass(frozen=True)
class Collection:
    """What one ``vs:DataCollection`` record says, before it is rendered."""

    identifier: str
    title: str
    short: str
    description: str
    reference_url: str
    coverage: Coverage
    related: dict[str, Sequence[Related]]
    facilities: Sequence[str] = ()
    instruments: Sequence[str] = ()
    formats: Sequence[str] = ()
    access_url: str | None = None
    alt_identifiers: Sequence[str] = ()
    version: str | None = None
    dates: Sequence[tuple[str, datetime]] = ()

    def draft(self, meta: ServiceSettings) -> ResourceDraft:
        """The record of this collection, with the ``[service]`` curation and rights."""
        body = (vor.curation(meta, version=self.version, dates=self.dates)
                + vor.content(meta, self.description, self.reference_url,
                              related=vor.relationships(self.related))
                + "".join(element("facility", f) for f in self.facilities)
                + "".join(element("instrument", i) for i in self.instruments)
                + vor.rights(meta)
                + "".join(element("format", f) for f in self.formats)
                + self.coverage.xml(meta.wavebands)
                + (f'<accessURL use="full">{escape(self.access_url)}</accessURL>'
                   if self.access_url else ""))

        def render(created: datetime, updated: datetime) -> str:
            return vor.resource("vs:DataCollection", self.identifier, self.title, created,
                                updated, short=self.short, body=body,
                                alt_identifiers=self.alt_identifiers, version=self.version)
        return ResourceDraft(self.identifier, "vs:DataCollection", self.title, render)


def _distinct(conn: sa.Connection, column: sa.ColumnElement[str], limit: int = 20) -> list[str]:
    """Up to ``limit`` distinct non-empty values of ``column``, sorted."""
    return list(conn.execute(sa.select(column).where(column.is_not(None)).distinct()
                             .order_by(column).limit(limit)).scalars())


def _spectra_extent(conn: sa.Connection, table: sa.FromClause) -> Extent:
    """The rows and coverage of rows shaped like ``latentvo.spectra`` (wavelengths in m)."""
    return table_extent(conn, table, healpix="healpix_index",
                        wavelength=("em_min", "em_max", 1.0), mjd=("t_min", "t_max"))


@dataclass(frozen=True)
class Services:
    """The services collections point to (IsServedBy)."""

    tap: Related
    ssa: Related


def spectra_collection(conn: sa.Connection, meta: ServiceSettings, ids: Identifiers,
                       urls: PublicURLs, services: Services) -> Collection:
    """The archive's observed spectra (``latentvo.spectra``, ``ivoa.obscore``)."""
    extent = _spectra_extent(conn, spectra)
    return Collection(
        ids.spectra, f"{meta.title}: observed spectra", vor.short_name(meta.short_name, "spec"),
        f"The {extent.rows:,} observed 1D spectra of {meta.title}, with their ObsCore metadata "
        "(table latentvo.spectra, view ivoa.obscore), files and previews through "
        "DataLink and getData.",
        meta.reference_url or urls.landing, extent.coverage,
        {IS_SERVED_BY: [services.tap, services.ssa], IS_SUPPLEMENT_TO: vor.supplements(meta)},
        facilities=[meta.facility] if meta.facility else
        _distinct(conn, spectra.c.facility_name),
        instruments=[meta.instrument] if meta.instrument else
        _distinct(conn, spectra.c.instrument_name),
        formats=_distinct(conn, spectra.c.access_format))


def ml_collection(conn: sa.Connection, meta: ServiceSettings, ids: Identifiers,
                  urls: PublicURLs, services: Services) -> Collection:
    """The ML products: latent vectors, labels and the models that made them; their
    coverage is that of the spectra they were inferred from."""
    products = sa.union(sa.select(labels.c.spectrum_id), sa.select(latent.c.spectrum_id))
    annotated = sa.select(spectra).where(spectra.c.spectrum_id.in_(products)).subquery()
    n_models = conn.scalar(sa.select(sa.func.count()).select_from(models))
    extent = _spectra_extent(conn, annotated)
    return Collection(
        ids.ml, f"{meta.title}: machine-learning products", vor.short_name(meta.short_name, "ML"),
        f"Machine-learning products of {extent.rows:,} spectra from {n_models:,} models: "
        "latent vectors of autoencoders (latentvo.latent), stellar labels with "
        "uncertainties and a training-domain flag (latentvo.labels), and the model "
        "registry with training provenance (latentvo.models).",
        meta.reference_url or urls.landing, extent.coverage,
        {IS_DERIVED_FROM: [Related(f"{meta.title}: observed spectra", ids.spectra)],
         IS_SERVED_BY: [services.tap, services.ssa], IS_SUPPLEMENT_TO: vor.supplements(meta)})


def _catalogue_extent(conn: sa.Connection, decl: Declaration) -> Extent:
    """From the declared position's HEALPix column and, where declared with a unit,
    ``em_min``/``em_max`` (any length unit) and ``t_min``/``t_max`` (MJD, unit d)."""
    import astropy.units as u

    columns = {c.name: c for c in decl.columns}
    healpix = decl.position["healpix"] if decl.position else None
    table = sa.table(decl.name, *(sa.column(n) for n in [*columns, healpix] if n),
                     schema=decl.schema)
    wavelength = None
    if "em_min" in columns and "em_max" in columns and columns["em_min"].unit:
        try:
            scale = u.Unit(columns["em_min"].unit).to(u.m)
            wavelength = ("em_min", "em_max", float(scale))
        except (ValueError, u.UnitConversionError):
            log.info("%s: em_min's unit is not a length; no spectral coverage", decl.qualified_name)
    mjd = (("t_min", "t_max") if "t_min" in columns and "t_max" in columns
           and columns["t_min"].unit == "d" else None)
    return table_extent(conn, table, healpix=healpix, wavelength=wavelength, mjd=mjd)


def catalogue_collection(conn: sa.Connection, meta: ServiceSettings, ids: Identifiers,
                         urls: PublicURLs, services: Services, decl: Declaration
                         ) -> Collection:
    """A catalogue published with ``latentvo publish table``."""
    extent = _catalogue_extent(conn, decl)
    return Collection(
        ids.catalogue(decl.qualified_name), f"{meta.title}: catalogue {decl.qualified_name}",
        vor.short_name(decl.qualified_name), f"{decl.description} ({extent.rows:,} rows; query it "
        f"through TAP as {decl.qualified_name}.)",
        meta.reference_url or urls.landing, extent.coverage,
        {IS_SERVED_BY: [services.tap], IS_SUPPLEMENT_TO: vor.supplements(meta)})


def _release_coverage(conn: sa.Connection, release: Release) -> Coverage:
    """From the release's frozen spectra (``<name>.spectra``), else from the manifest's
    ranges (no MOC)."""
    needed = ("healpix_index", "em_min", "em_max", "t_min", "t_max")
    present = set(conn.scalars(sa.text(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = :schema AND table_name = 'spectra'"), {"schema": release.name}))
    if present.issuperset(needed):
        frozen = sa.table("spectra", *(sa.column(c) for c in needed), schema=release.name)
        return _spectra_extent(conn, frozen).coverage
    ranges = release.manifest.get("coverage") or {}

    def pair(low: str, high: str) -> tuple[float, float] | None:
        if ranges.get(low) is None or ranges.get(high) is None:
            return None
        return float(ranges[low]), float(ranges[high])
    return Coverage(wavelength=pair("em_min", "em_max"), mjd=pair("t_min", "t_max"))


def release_collection(conn: sa.Connection, meta: ServiceSettings, ids: Identifiers,
                       urls: PublicURLs, services: Services, release: Release) -> Collection:
    """A published data release: its frozen tables, counts, models and DOI."""
    manifest = release.manifest
    counts = ", ".join(f"{manifest[k]:,} {k}" for k in ("spectra", "labels", "latent")
                       if isinstance(manifest.get(k), int))
    models_used = ", ".join(m.get("model_id", "?") for m in manifest.get("models", []))
    description = release.description or release.title
    description += (f" Data release {release.name}" + (f": {counts}" if counts else "")
                    + (f"; models {models_used}" if models_used else "")
                    + f". Query its frozen tables through TAP as {release.name}.*.")
    dates = [("Created", release.created)]
    if release.published is not None:
        dates.append(("Issued", release.published))
    return Collection(
        ids.release(release.name), release.title, vor.short_name(meta.short_name, release.name),
        description, urls.release_page(release.name), _release_coverage(conn, release),
        {IS_DERIVED_FROM: [Related(f"{meta.title}: observed spectra", ids.spectra)],
         IS_SERVED_BY: [services.tap], IS_SUPPLEMENT_TO: vor.supplements(meta)},
        access_url=urls.release_page(release.name),
        alt_identifiers=[f"doi:{release.doi}"] if release.doi else (),
        version=release.name, dates=dates)
