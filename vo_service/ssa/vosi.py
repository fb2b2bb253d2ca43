"""The SSA capability (SimpleDALRegExt ``ssa:SimpleSpectralAccess``) in VOSI capabilities.

The document around it (VOSI endpoints) is ``vo_service.vosi.capabilities``', shared
with TAP.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

from vo_service.config import SSALimits
from vo_service.ssa.params import FRAMES
from vo_service.urls import PublicURLs
from vo_service.vosi.capabilities import capabilities_document
from vo_service.vosi.xml import element

SSA_NS = "http://www.ivoa.net/xml/SSA/v1.1"
TEST_QUERY = (10.68, 41.27, 0.2)  # pos (deg) and size (diameter, deg)


def ssa_capabilities(urls: PublicURLs, limits: SSALimits) -> str:
    """The SSA service's capabilities: SSA 1.1 with its ``[ssa]`` limits, VOSI, and the
    DataLink its records use."""
    ssa = urls.ssa
    frames = [f for f in FRAMES if f != "J2000"]
    ra, dec, size = TEST_QUERY
    cap = (
        '<capability standardID="ivo://ivoa.net/std/SSA" xsi:type="ssa:SimpleSpectralAccess">'
        '<interface xsi:type="vs:ParamHTTP" role="std" version="1.1">'
        f'<accessURL use="base">{escape(ssa)}?</accessURL>'
        "<queryType>GET</queryType><queryType>POST</queryType>"
        "<resultType>application/x-votable+xml</resultType></interface>"
        "<complianceLevel>full</complianceLevel>"
        "<dataSource>survey</dataSource><dataSource>pointed</dataSource>"
        "<creationType>archival</creationType>"
        + "".join(element("supportedFrame", f) for f in frames)
        + element("maxSearchRadius", f"{limits.max_size / 2:g}")
        + element("maxRecords", limits.maxrec_hard)
        + element("defaultMaxRecords", limits.maxrec_default)
        + "<testQuery><pos>" + element("long", ra) + element("lat", dec)
        + "</pos>" + element("size", size) + "</testQuery></capability>")
    datalink = (
        '<capability standardID="ivo://ivoa.net/std/DataLink#links-1.1">'
        '<interface xsi:type="vs:ParamHTTP" role="std" version="1.1">'
        f'<accessURL use="base">{escape(urls.links())}</accessURL>'
        "<queryType>GET</queryType><queryType>POST</queryType>"
        "<resultType>application/x-votable+xml;content=datalink</resultType>"
        "</interface></capability>")
    return capabilities_document(ssa, cap, [datalink], {"ssa": SSA_NS})
