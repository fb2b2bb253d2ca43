"""The VOResource 1.1 vocabulary every record of this site shares: the ``ri:Resource``
frame, curation, content and relationships, from the ``[service]`` settings.

Records are written as text, like the VOSI documents whose capability and
tableset elements they embed (``vo_service.vosi``): the same functions render
both, so a record never disagrees with what ``/tap/capabilities`` or
``/tap/tables`` say. Child elements are unqualified, as VOResource defines them;
``xsi:type`` values use the prefixes declared on the root (:data:`NAMESPACES`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from xml.sax.saxutils import escape

from vo_service.config import SHORT_NAME_MAX, ServiceSettings
from vo_service.ssa.vosi import SSA_NS
from vo_service.vosi.xml import TR, VR, VS, XSI, element

RI = "http://www.ivoa.net/xml/RegistryInterface/v1.0"
VG = "http://www.ivoa.net/xml/VORegistry/v1.0"
NAMESPACES = {"ri": RI, "vr": VR, "vs": VS, "vg": VG, "tr": TR, "ssa": SSA_NS, "xsi": XSI}

# relationshipType values (VOResource 1.1, vocabulary http://www.ivoa.net/rdf/voresource/relationship_type)
IS_SERVED_BY, IS_SERVICE_FOR = "IsServedBy", "IsServiceFor"
IS_DERIVED_FROM, IS_SUPPLEMENT_TO = "IsDerivedFrom", "IsSupplementTo"


def timestamp(when: datetime) -> str:
    """A VOResource ``UTCTimestamp``: UTC, whole seconds, with ``Z``."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def short_name(base: str, suffix: str = "") -> str:
    """``base suffix`` within VOResource's 16 characters (``base`` cut when needed)."""
    if not suffix or len(suffix) > SHORT_NAME_MAX // 2:
        return (suffix or base)[:SHORT_NAME_MAX]
    return f"{base[:SHORT_NAME_MAX - len(suffix) - 1]} {suffix}"


@dataclass(frozen=True)
class Related:
    """A resource a record points to: its name and, for a VO resource, its identifier."""

    name: str
    ivo_id: str | None = None

    def xml(self) -> str:
        return element("relatedResource", self.name, ivo_id=self.ivo_id)


def relationships(kinds: dict[str, Sequence[Related]]) -> str:
    """``relationship`` elements, one per kind that has related resources."""
    return "".join(
        "<relationship>" + element("relationshipType", kind)
        + "".join(r.xml() for r in related) + "</relationship>"
        for kind, related in kinds.items() if related)


def supplements(meta: ServiceSettings) -> list[Related]:
    """The papers the data supplement (``[service] supplement_dois``), as DOI URIs."""
    return [Related(f"doi:{doi}") for doi in meta.supplement_dois]


def curation(meta: ServiceSettings, *, version: str | None = None,
             dates: Sequence[tuple[str, datetime]] = ()) -> str:
    """The ``curation`` element: publisher, creators, dates by role, version, contact."""
    return ("<curation>"
            + element("publisher", meta.publisher, ivo_id=meta.publisher_id)
            + "".join(f"<creator>{element('name', c)}</creator>" for c in meta.creators)
            + "".join(element("date", timestamp(when), role=role) for role, when in dates)
            + element("version", version)
            + "<contact>" + element("name", meta.contact_name)
            + element("email", meta.contact_email) + "</contact></curation>")


def content(meta: ServiceSettings, description: str, reference_url: str, *,
            content_type: str | None = None, related: str = "") -> str:
    """The ``content`` element: subjects, ``description``, reference URL, type, content
    levels and the ``related`` relationship elements (:func:`relationships`)."""
    return ("<content>"
            + "".join(element("subject", s) for s in meta.subjects)
            + element("description", description)
            + element("referenceURL", reference_url)
            + element("type", content_type or meta.content_type)
            + "".join(element("contentLevel", level) for level in meta.content_levels)
            + related + "</content>")


def rights(meta: ServiceSettings) -> str:
    """The ``rights`` element: the license's SPDX identifier and its URL."""
    return element("rights", meta.license, rightsURI=meta.license_url)


def resource(xsi_type: str, identifier: str, title: str, created: datetime,
             updated: datetime, *, short: str, body: str, alt_identifiers: Sequence[str] = (),
             version: str | None = None) -> str:
    """One ``ri:Resource`` element, namespaces declared on it.

    Parameters
    ----------
    xsi_type
        The resource type, e.g. ``vs:CatalogService``.
    body
        ``curation``, ``content`` and the type's own elements, in schema order.
    alt_identifiers
        Other identifiers (``doi:10...``) of the same resource.
    version
        The resource's version attribute (a release's name), if any.
    """
    ns = " ".join(f'xmlns:{prefix}="{uri}"' for prefix, uri in NAMESPACES.items())
    extra = f' version="{escape(version)}"' if version else ""
    return (f'<ri:Resource {ns} xsi:type="{xsi_type}" created="{timestamp(created)}" '
            f'updated="{timestamp(updated)}" status="active"{extra}>'
            + element("title", title) + element("shortName", short)
            + element("identifier", identifier)
            + "".join(element("altIdentifier", a) for a in alt_identifiers)
            + body + "</ri:Resource>")
