"""VOSI for SSA: capabilities (SimpleDALRegExt ``ssa:SimpleSpectralAccess``) and availability."""

from __future__ import annotations

import datetime as dt
from xml.sax.saxutils import escape

import sqlalchemy as sa

from vo_service.config import SSALimits
from vo_service.ssa.params import FRAMES
from vo_service.vosi.xml import VR, VS, XSI, element

VOSI_CAP = "http://www.ivoa.net/xml/VOSICapabilities/v1.0"
VOSI_AVAIL = "http://www.ivoa.net/xml/VOSIAvailability/v1.0"
SSA_NS = "http://www.ivoa.net/xml/SSA/v1.1"
TEST_QUERY = (10.68, 41.27, 0.2)  # pos (deg) and size (diameter, deg)


def _vosi(standard_id: str, url: str) -> str:
    return (f'<capability standardID="{standard_id}">'
            f'<interface xsi:type="vs:ParamHTTP"><accessURL use="full">{escape(url)}'
            f"</accessURL></interface></capability>")


def capabilities_document(base_url: str, limits: SSALimits) -> str:
    """The VOSI capabilities of SSA at ``base_url``, declaring its ``[ssa]`` limits."""
    ssa = f"{base_url}/ssa"
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
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<vosi:capabilities xmlns:vosi="{VOSI_CAP}" xmlns:xsi="{XSI}" xmlns:vr="{VR}" '
        f'xmlns:vs="{VS}" xmlns:ssa="{SSA_NS}">'
        + cap
        + _vosi("ivo://ivoa.net/std/VOSI#capabilities", f"{ssa}/capabilities")
        + _vosi("ivo://ivoa.net/std/VOSI#availability", f"{ssa}/availability")
        + '<capability standardID="ivo://ivoa.net/std/DataLink#links-1.1">'
          '<interface xsi:type="vs:ParamHTTP" role="std" version="1.1">'
          f'<accessURL use="base">{escape(base_url)}/datalink/links</accessURL>'
          "<queryType>GET</queryType><queryType>POST</queryType>"
          "<resultType>application/x-votable+xml;content=datalink</resultType>"
          "</interface></capability>"
        + "</vosi:capabilities>\n")


def check(engine: sa.Engine) -> tuple[bool, str]:
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1 FROM latentvo.spectra LIMIT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure means "not available"
        return False, f"the database cannot be reached: {type(exc).__name__}"
    return True, "SSA queries are accepted"


def availability_document(ok: bool, note: str, started: float) -> str:
    up = dt.datetime.fromtimestamp(started, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<vosi:availability xmlns:vosi="{VOSI_AVAIL}">'
            f'<vosi:available>{"true" if ok else "false"}</vosi:available>'
            + (f"<vosi:upSince>{up}</vosi:upSince>" if ok else "")
            + f"<vosi:note>{escape(note)}</vosi:note></vosi:availability>\n")
