"""VOSI capabilities documents, and the TAPRegExt ``tr:TableAccess`` capability of TAP.

:func:`capabilities_document` is the frame both TAP and SSA use around their list of
capability elements: the protocol's own capability, then the VOSI capabilities and
availability endpoints (and whatever else the protocol lists). The VOResource
records of the registry (``vo_service.registry``) hold the same elements, from the
same functions. The TAP capability declares what the service
really does: the ADQL language features and UDFs from ``vo_service.adql.features``,
the output formats from ``vo_service.formats``, the limits from the ``[tap]``
settings (``vo_service.config.TAPLimits``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol
from xml.sax.saxutils import escape

from vo_service import obscore
from vo_service.formats import FORMATS
from vo_service.urls import PublicURLs
from vo_service.vosi.xml import TR, VR, VS, XSI, element

VOSI_CAP = "http://www.ivoa.net/xml/VOSICapabilities/v1.0"
TAPREGEXT = "ivo://ivoa.net/std/TAPRegExt"
# Feature keys that ADQL 2.1 defines but TAPRegExt 1.0 validators (STILTS taplint 3.4)
# reject as unknown (E-CAP-KEYX); they are declared under latentvo's own feature type
# instead, which validators accept as a custom group.
CUSTOM_FEATURES = "ivo://latentvo.example/std/adql-features"
_UNKNOWN_TO_TAPREGEXT_1_0 = {f"{TAPREGEXT}#features-adql-conditional": CUSTOM_FEATURES
                             + "#conditional"}
# The rr schema (schema/regtap.py) holds only this site's own records, so the capability
# does not declare the RegTAP data model: RegTAP ("Discovering Relational Registries")
# forbids that to services not offering the whole VO registry, so that VO-wide searches
# are never sent here.


class DeclaredLimits(Protocol):
    """The TAP limits that the capabilities declare (TAPRegExt), as the service enforces them."""

    @property
    def retention_default(self) -> int: ...
    @property
    def retention_hard(self) -> int: ...
    @property
    def async_duration_default(self) -> int: ...
    @property
    def async_duration_hard(self) -> int: ...
    @property
    def maxrec_default(self) -> int: ...
    @property
    def maxrec_hard(self) -> int: ...
    @property
    def upload_bytes(self) -> int: ...
    @property
    def sync_timeout(self) -> int: ...
    @property
    def query_length(self) -> int: ...
    @property
    def query_nodes(self) -> int: ...


def _limits_note(limits: DeclaredLimits) -> str:
    """The limits TAPRegExt has no element for, in the capability's description.

    TAPRegExt's one ``executionDuration`` is the UWS parameter of async jobs; the
    time limit of synchronous queries and the size limits of the ADQL text are
    stated here, in the same words as the errors that enforce them.
    """
    return element("description",
                   f"Synchronous queries (/sync) run for at most {limits.sync_timeout} s; "
                   "executionDuration gives the limits of asynchronous jobs. A query may "
                   f"have at most {limits.query_length} characters and "
                   f"{limits.query_nodes} syntax elements (e.g. IN-list items).")


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


def vosi_capability(standard_id: str, url: str, version: str | None = None) -> str:
    """A capability with one ParamHTTP interface at ``url`` (VOSI endpoints, DataLink)."""
    v = f' version="{version}"' if version else ""
    return (f'<capability standardID="{standard_id}">'
            f'<interface xsi:type="vs:ParamHTTP"{v}><accessURL use="full">{escape(url)}'
            f"</accessURL></interface></capability>")


def vosi_capabilities(base: str) -> list[str]:
    """The VOSI capabilities and availability endpoints of the service at ``base``."""
    return [vosi_capability("ivo://ivoa.net/std/VOSI#capabilities", f"{base}/capabilities"),
            vosi_capability("ivo://ivoa.net/std/VOSI#availability", f"{base}/availability")]


def capabilities_document(capabilities: Iterable[str],
                          namespaces: dict[str, str] | None = None) -> str:
    """A ``vosi:capabilities`` document of ``capabilities`` (capability elements).

    ``namespaces`` are the extra namespace prefixes the elements use (``{"tr": TR}``).
    The VOResource records of the publishing registry (``vo_service.registry``) hold
    the same elements.
    """
    extra = "".join(f' xmlns:{prefix}="{uri}"' for prefix, uri in (namespaces or {}).items())
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<vosi:capabilities xmlns:vosi="{VOSI_CAP}" xmlns:xsi="{XSI}" xmlns:vr="{VR}" '
        f'xmlns:vs="{VS}"{extra}>'
        + "".join(capabilities)
        + "</vosi:capabilities>\n")


def tap_capability(urls: PublicURLs, limits: DeclaredLimits) -> str:
    """The ``tr:TableAccess`` capability (TAPRegExt): what the TAP service really does."""
    base = escape(urls.tap)
    return (
        '<capability standardID="ivo://ivoa.net/std/TAP" xsi:type="tr:TableAccess">'
        + _limits_note(limits)
        + '<interface xsi:type="vs:ParamHTTP" role="std" version="1.1">'
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


def tap_capability_list(urls: PublicURLs, limits: DeclaredLimits) -> list[str]:
    """Every capability of the TAP service: TAPRegExt, VOSI, tables and examples."""
    return [tap_capability(urls, limits), *vosi_capabilities(urls.tap),
            vosi_capability("ivo://ivoa.net/std/VOSI#tables-1.1", f"{urls.tap}/tables", "1.1"),
            '<capability standardID="ivo://ivoa.net/std/DALI#examples">'
            '<interface xsi:type="vr:WebBrowser">'
            f'<accessURL use="full">{escape(urls.tap)}/examples</accessURL></interface>'
            "</capability>"]


def tap_capabilities(urls: PublicURLs, limits: DeclaredLimits) -> str:
    """The TAP service's VOSI capabilities document."""
    return capabilities_document([*tap_capability_list(urls, limits), registry_capability(urls)],
                                 {"tr": TR})


def registry_capability(urls: PublicURLs) -> str:
    """The publishing registry (OAI-PMH) of this site's records, TAP's included: named
    in TAP's capabilities so that a client holding only the TAP URL finds the records.

    Its interface is a ``vs:ParamHTTP`` (OAI-PMH is HTTP GET/POST with parameters)
    rather than VORegistry's ``vg:OAIHTTP``, which the registry's own ``vg:Registry``
    record uses: taplint validates capabilities without the VORegistry schema and
    reports ``vg:OAIHTTP`` as an unresolvable type (E-CPV-BABO).
    """
    return ('<capability standardID="ivo://ivoa.net/std/Registry">'
            '<interface xsi:type="vs:ParamHTTP" role="std" version="1.0">'
            f'<accessURL use="base">{escape(urls.oai)}</accessURL></interface></capability>')
