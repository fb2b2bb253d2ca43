"""VOSI capabilities of the TAP service, with the TAPRegExt ``tr:TableAccess`` capability.

Everything declared here is read from what the service really does: the
ADQL language features and UDFs from ``vo_service.adql.features``, the output
formats from ``vo_service.formats``, the limits from the ``[tap]`` settings
(``vo_service.config.TAPLimits``).
"""

from __future__ import annotations

from email.utils import format_datetime

from fastapi import APIRouter, Request
from fastapi.responses import Response

from vo_service import obscore
from vo_service.formats import FORMATS
from vo_service.vosi.xml import TR, VR, VS, XSI, element, tap_base

router = APIRouter()
VOSI_CAP = "http://www.ivoa.net/xml/VOSICapabilities/v1.0"
TAPREGEXT = "ivo://ivoa.net/std/TAPRegExt"
# Feature keys that ADQL 2.1 defines but TAPRegExt 1.0 validators (STILTS taplint 3.4)
# reject as unknown (E-CAP-KEYX); they are declared under latentvo's own feature type
# instead, which validators accept as a custom group.
CUSTOM_FEATURES = "ivo://latentvo.example/std/adql-features"
_UNKNOWN_TO_TAPREGEXT_1_0 = {f"{TAPREGEXT}#features-adql-conditional": CUSTOM_FEATURES
                             + "#conditional"}


def _language() -> str:
    from vo_service.adql.features import ADQL_VERSIONS, LANGUAGE_FEATURES

    parts = ["<language>", "<name>ADQL</name>"]
    for version, ivo_id in ADQL_VERSIONS:
        parts.append(element("version", version, ivo_id=ivo_id))
    parts.append(element("description", "ADQL 2.1 (2.0 queries are accepted too) with "
                         "latentvo's machine-learning functions over latent vectors"))
    for group in LANGUAGE_FEATURES:
        kind = _UNKNOWN_TO_TAPREGEXT_1_0.get(group.type, group.type)
        parts.append(f'<languageFeatures type="{kind}">')
        for feature in group.features:
            parts.append("<feature>" + element("form", feature.form)
                         + element("description", feature.description) + "</feature>")
        parts.append("</languageFeatures>")
    parts.append("</language>")
    return "".join(parts)


def _output_formats() -> str:
    parts = []
    for fmt in FORMATS:
        ivo = f' ivo-id="{fmt.ivo_id}"' if fmt.ivo_id else ""
        aliases = "".join(element("alias", a) for a in fmt.aliases if "/" not in a
                          or a.startswith("votable/"))
        parts.append(f"<outputFormat{ivo}>{element('mime', fmt.mime)}{aliases}</outputFormat>")
    return "".join(parts)


def _vosi(standard_id: str, url: str, version: str | None = None) -> str:
    v = f' version="{version}"' if version else ""
    return (f'<capability standardID="{standard_id}">'
            f'<interface xsi:type="vs:ParamHTTP"{v}><accessURL use="full">{url}</accessURL>'
            f"</interface></capability>")


def capabilities_document(base: str, limits) -> str:
    tap = (
        '<capability standardID="ivo://ivoa.net/std/TAP" xsi:type="tr:TableAccess">'
        '<interface xsi:type="vs:ParamHTTP" role="std" version="1.1">'
        f'<accessURL use="base">{base}</accessURL></interface>'
        + obscore.data_model_xml()
        + _language() + _output_formats()
        + f'<uploadMethod ivo-id="{TAPREGEXT}#upload-inline"/>'
        + f'<uploadMethod ivo-id="{TAPREGEXT}#upload-http"/>'
        + f'<uploadMethod ivo-id="{TAPREGEXT}#upload-https"/>'
        + f"<retentionPeriod><default>{limits.retention_default}</default>"
          f"<hard>{limits.retention_hard}</hard></retentionPeriod>"
        + f"<executionDuration><default>{limits.async_duration_default}</default>"
          f"<hard>{limits.async_duration_hard}</hard></executionDuration>"
        + f'<outputLimit><default unit="row">{limits.maxrec_default}</default>'
          f'<hard unit="row">{limits.maxrec_hard}</hard></outputLimit>'
        + f'<uploadLimit><hard unit="byte">{limits.upload_bytes}</hard></uploadLimit>'
        + "</capability>")
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<vosi:capabilities xmlns:vosi="{VOSI_CAP}" xmlns:xsi="{XSI}" xmlns:vr="{VR}" '
        f'xmlns:vs="{VS}" xmlns:tr="{TR}">'
        + tap
        + _vosi("ivo://ivoa.net/std/VOSI#capabilities", f"{base}/capabilities")
        + _vosi("ivo://ivoa.net/std/VOSI#availability", f"{base}/availability")
        + _vosi("ivo://ivoa.net/std/VOSI#tables-1.1", f"{base}/tables", "1.1")
        + '<capability standardID="ivo://ivoa.net/std/DALI#examples">'
          '<interface xsi:type="vr:WebBrowser">'
          f'<accessURL use="full">{base}/examples</accessURL></interface></capability>'
        + "</vosi:capabilities>\n")


@router.api_route("/tap/capabilities", methods=["GET", "HEAD"])
def capabilities(request: Request) -> Response:
    body = capabilities_document(tap_base(request), request.app.state.tap.limits)
    modified = format_datetime(request.app.state.started, usegmt=True)
    return Response(body, media_type="text/xml", headers={"Last-Modified": modified})
