"""Every resource this site publishes, as VOResource drafts: :func:`site_drafts`.

The registry store (``vo_service.registry.store``) dates the drafts and keeps
the records that OAI-PMH and RegTAP serve; ``latentvo registry check`` validates
them. Everything comes from the settings and the database, read in the caller's
transaction, so the drafts describe one consistent state.
"""

from __future__ import annotations

import sqlalchemy as sa

from schema.catalogues import all_published_tables, catalogue_declarations, schema_descriptions
from vo_service.config import Settings
from vo_service.registry import data_collections as dc
from vo_service.registry import services
from vo_service.registry.coverage import Coverage
from vo_service.registry.identifiers import Identifiers
from vo_service.registry.record import ResourceDraft
from vo_service.registry.vor import Related
from vo_service.releases.store import read_releases
from vo_service.ssa.vosi import test_query
from vo_service.urls import PublicURLs
from vo_service.vosi.tables import schemas_xml


def site_drafts(conn: sa.Connection, settings: Settings, base: str) -> list[ResourceDraft]:
    """The drafts of the authority, the registry, TAP, SSA and the data collections
    (spectra, ML products, each published catalogue, each published release) whose
    URLs start with ``base``."""
    meta, ids, urls = settings.service, Identifiers(settings.authority), PublicURLs(base)
    tap = Related(f"{meta.title}: TAP service", ids.tap)
    ssa = Related(f"{meta.title}: SSA service", ids.ssa)
    served = dc.Services(tap, ssa)
    spectra_coll = dc.spectra_collection(conn, meta, ids, urls, served)
    collections = [spectra_coll, dc.ml_collection(conn, meta, ids, urls, served)]
    collections += [dc.catalogue_collection(conn, meta, ids, urls, served, decl)
                    for decl in catalogue_declarations(conn)]
    collections += [dc.release_collection(conn, meta, ids, urls, served, release)
                    for release in read_releases(conn) if release.public]
    schemas = schemas_xml(all_published_tables(conn), schema_descriptions(conn))
    archive: Coverage = spectra_coll.coverage
    return [
        services.authority_draft(meta, ids, urls),
        services.registry_draft(meta, ids, urls, settings.registry.page_size),
        services.tap_draft(meta, ids, urls, settings.tap, schemas, archive,
                           [Related(c.title, c.identifier) for c in collections]),
        services.ssa_draft(meta, ids, urls, settings.ssa, test_query(conn), archive,
                           [Related(spectra_coll.title, spectra_coll.identifier)]),
        *(c.draft(meta) for c in collections),
    ]

