"""The SSA capability (SimpleDALRegExt ``ssa:SimpleSpectralAccess``) in VOSI capabilities.

The document around it (VOSI endpoints) is ``vo_service.vosi.capabilities``', shared
with TAP.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

import sqlalchemy as sa

from schema.tables import spectra
from vo_service.config import SSALimits
from vo_service.db.outage import OUTAGE_ERRORS, is_outage
from vo_service.ssa.params import FRAMES
from vo_service.urls import PublicURLs
from vo_service.vosi.capabilities import capabilities_document, vosi_capabilities
from vo_service.vosi.xml import element

SSA_NS = "http://www.ivoa.net/xml/SSA/v1.1"
TEST_SIZE = 0.1  # diameter (deg) of the test query's cone around a published spectrum


def test_query(conn: sa.Connection) -> tuple[float, float, float] | None:
    """A POS (deg) and SIZE (diameter, deg) that return rows: a cone around the first
    spectrum's position; None when there is no spectrum."""
    row = conn.execute(sa.select(spectra.c.s_ra, spectra.c.s_dec)
                       .order_by(spectra.c.spectrum_id).limit(1)).first()
    return (round(row.s_ra, 6), round(row.s_dec, 6), TEST_SIZE) if row else None


def current_test_query(engine: sa.Engine) -> tuple[float, float, float] | None:
    """:func:`test_query` now; None too while the database cannot answer (the
    capabilities are served without a test query then, not refused)."""
    try:
        with engine.connect() as conn:
            return test_query(conn)
    except OUTAGE_ERRORS as exc:
        if not is_outage(exc):
            raise
        return None


def ssa_capability(urls: PublicURLs, limits: SSALimits,
                   test: tuple[float, float, float] | None) -> str:
    """The ``ssa:SimpleSpectralAccess`` capability with the ``[ssa]`` limits and, when there
    is data, a ``test`` query (ra, dec, size) that returns rows.

    No ``maxAperture``: the service does no spectral extraction, so it takes no APERTURE.
    """
    frames = [f for f in FRAMES if f != "J2000"]
    test_query_xml = ""
    if test is not None:
        ra, dec, size = test
        test_query_xml = ("<testQuery><pos>" + element("long", ra) + element("lat", dec)
                          + "</pos>" + element("size", size) + "</testQuery>")
    return (
        '<capability standardID="ivo://ivoa.net/std/SSA" xsi:type="ssa:SimpleSpectralAccess">'
        '<interface xsi:type="vs:ParamHTTP" role="std" version="1.1">'
        f'<accessURL use="base">{escape(urls.ssa)}?</accessURL>'
        "<queryType>GET</queryType><queryType>POST</queryType>"
        "<resultType>application/x-votable+xml</resultType></interface>"
        "<complianceLevel>full</complianceLevel>"
        "<dataSource>survey</dataSource><dataSource>pointed</dataSource>"
        "<creationType>archival</creationType>"
        + "".join(element("supportedFrame", f) for f in frames)
        + element("maxSearchRadius", f"{limits.max_size / 2:g}")
        + element("maxRecords", limits.maxrec_hard)
        + element("defaultMaxRecords", limits.maxrec_default)
        + test_query_xml + "</capability>")


def datalink_capability(urls: PublicURLs) -> str:
    """The DataLink 1.1 ``{links}`` endpoint that the SSA and ObsCore records point to."""
    return (
        '<capability standardID="ivo://ivoa.net/std/DataLink#links-1.1">'
        '<interface xsi:type="vs:ParamHTTP" role="std" version="1.1">'
        f'<accessURL use="base">{escape(urls.links())}</accessURL>'
        "<queryType>GET</queryType><queryType>POST</queryType>"
        "<resultType>application/x-votable+xml;content=datalink</resultType>"
        "</interface></capability>")


def ssa_capability_list(urls: PublicURLs, limits: SSALimits,
                        test: tuple[float, float, float] | None) -> list[str]:
    """Every capability of the SSA service: SSA 1.1, VOSI, and the DataLink its records use."""
    return [ssa_capability(urls, limits, test), *vosi_capabilities(urls.ssa),
            datalink_capability(urls)]


def ssa_capabilities(urls: PublicURLs, limits: SSALimits,
                     test: tuple[float, float, float] | None) -> str:
    """The SSA service's VOSI capabilities document."""
    return capabilities_document(ssa_capability_list(urls, limits, test), {"ssa": SSA_NS})
