"""The rows of the RegTAP 1.1 ``rr`` tables, read from the registry's VOResource records.

The publishing registry keeps one VOResource document per resource
(:class:`~vo_service.registry.record.ResourceRecord`); RegTAP is the same
information as relational tables, so that ``pyvo.registry`` and TOPCAT can find
this site's resources with ADQL through its own TAP service. The rows are derived
from the stored XML and nothing else, so the two views cannot disagree. The
mapping follows RegTAP 1.1: one ``rr.resource`` row per active record; the
capabilities, interfaces, tables and columns, curation roles, dates, subjects,
relationships, validation levels and alternative identifiers in their tables; and
the remaining capability members (data models, languages, output formats, limits,
test queries...) and resource members (facility, instrument, managed authority...)
as xpath/value pairs in ``rr.res_detail``. Identifiers, xsi types and terms of
controlled vocabularies are lower-cased, and xsi types carry RegTAP's canonical
prefixes whatever prefixes the document declared. Deleted records give no rows.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from lxml import etree

from schema.ops import registry_records
from schema.regtap import (
    RR_TABLES,
    alt_identifier,
    capability,
    interface,
    intf_param,
    relationship,
    res_date,
    res_detail,
    res_role,
    res_schema,
    res_subject,
    res_table,
    resource,
    table_column,
    validation,
)
from vo_service.db.copy import copy_rows
from vo_service.registry.record import ACTIVE, ResourceRecord

Rows = dict[sa.Table, list[dict[str, Any]]]

XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"

# RegTAP 1.1 writes xsi types with these prefixes (its canonical prefix mapping), whichever
# a document used; DocRegExt came later and has no canonical prefix there.
CANONICAL_PREFIXES = {
    "http://www.ivoa.net/xml/VOResource/v1.0": "vr",
    "http://www.ivoa.net/xml/VODataService/v1.0": "vs",
    "http://www.ivoa.net/xml/VODataService/v1.1": "vs",
    "http://www.ivoa.net/xml/TAPRegExt/v1.0": "tr",
    "http://www.ivoa.net/xml/SSA/v1.0": "ssap",
    "http://www.ivoa.net/xml/SSA/v1.1": "ssap",
    "http://www.ivoa.net/xml/VORegistry/v1.0": "vg",
    "http://www.ivoa.net/xml/ConeSearch/v1.0": "cs",
    "http://www.ivoa.net/xml/SIA/v1.0": "sia",
    "http://www.ivoa.net/xml/SIA/v1.1": "sia",
    "http://www.ivoa.net/xml/SLAP/v1.0": "slap",
    "http://www.ivoa.net/xml/StandardsRegExt/v1.0": "vstd",
    "http://www.ivoa.net/xml/DocRegExt/v1": "doc",
    "http://www.ivoa.net/xml/RegistryInterface/v1.0": "ri",
}

# Members of a resource (outside its capabilities) that RegTAP keeps in res_detail.
RESOURCE_DETAILS = (
    "accessURL", "coverage/footprint", "coverage/footprint/@ivo-id", "deprecated",
    "endorsedVersion", "facility", "facility/@ivo-id", "format", "format/@isMIMEType", "full",
    "instrument", "instrument/@ivo-id", "managedAuthority", "managingOrg", "rights",
    "rights/@rightsURI", "schema/@namespace",
)
# Members of an interface that RegTAP keeps in res_detail, with the capability's index.
INTERFACE_DETAILS = ("securityMethod/@standardID", "testQueryString")

# Members of a capability that have their own tables or columns.
_CAPABILITY_OWN = frozenset({"interface", "validationLevel", "description"})

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, remove_comments=True,
                          remove_pis=True)


def rr_rows(records: Iterable[ResourceRecord]) -> Rows:
    """The rows of every ``rr`` table describing the active ``records``.

    Parameters
    ----------
    records
        The registry's records; deleted ones contribute nothing.

    Returns
    -------
    dict
        For each table of :data:`schema.regtap.RR_TABLES`, its rows as insert
        parameters.

    Raises
    ------
    ValueError
        When a record's XML is not well-formed or misses a date RegTAP requires.
    """
    rows: Rows = {table: [] for table in RR_TABLES}
    for record in records:
        if not record.deleted:
            _ResourceRows(record, rows).add()
    return rows


def fill(conn: sa.Connection, records: Iterable[ResourceRecord]) -> None:
    """Replace the content of the ``rr`` tables with the rows of ``records``.

    Runs in the caller's transaction, so a RegTAP query sees the old or the new
    records, never a mix.

    Raises
    ------
    ValueError
        As :func:`rr_rows`, before anything is changed.
    """
    rows = rr_rows(records)
    for table in reversed(RR_TABLES):
        conn.execute(table.delete())  # not TRUNCATE: queries in flight keep their snapshot
    for table in RR_TABLES:
        copy_rows(conn, table, [c.name for c in table.columns], rows[table])


class _ResourceRows:
    """The rows of one record, appended to the shared :data:`Rows` by :meth:`add`."""

    def __init__(self, record: ResourceRecord, rows: Rows):
        try:
            self.root = etree.fromstring(record.xml.encode(), _PARSER)
        except etree.XMLSyntaxError as exc:
            raise ValueError(f"registry record {record.identifier}: {exc}") from exc
        self.record = record
        self.ivoid = record.identifier.lower()
        self.rows = rows

    def row(self, table: sa.Table, **values: Any) -> None:
        self.rows[table].append({"ivoid": self.ivoid, **values})

    def add(self) -> None:
        root = self.root
        self.add_resource()
        for subject in dict.fromkeys(_texts(root, "content/subject")):
            self.row(res_subject, res_subject=subject)
        for alt in _texts(root, "altIdentifier"):
            self.row(alt_identifier, alt_identifier=alt)
        self.add_roles()
        for date in root.findall("curation/date"):
            if value := _text(date):
                self.row(res_date, date_value=_timestamp(value, self.record.identifier),
                         value_role=_lower(date.get("role")))
        for rel in root.findall("content/relationship"):
            kind = _lower(_text(rel.find("relationshipType")))
            for related in rel.findall("relatedResource"):
                self.row(relationship, relationship_type=kind,
                         related_id=_lower(related.get("ivo-id")), related_name=_text(related))
        self.add_validation(root, None)
        for path in RESOURCE_DETAILS:
            for value in _path_values(root, path):
                self.row(res_detail, cap_index=None, detail_xpath="/" + path,
                         detail_value=value)
        intf_index = 0
        for cap_index, cap in enumerate(root.findall("capability"), start=1):
            self.add_capability(cap, cap_index)
            for intf in cap.findall("interface"):
                intf_index += 1
                self.add_interface(intf, cap_index, intf_index)
        self.add_tableset()

    def add_resource(self) -> None:
        root, identifier = self.root, self.record.identifier
        rights = root.findall("rights")
        region = _text(root.find("coverage/regionOfRegard"))
        self.row(
            resource,
            res_type=_xsi_type(root) or self.record.resource_type.lower(),
            created=_timestamp(root.get("created"), identifier),
            short_name=_text(root.find("shortName")),
            res_title=_text(root.find("title")) or self.record.title,
            updated=_timestamp(root.get("updated"), identifier),
            content_level=_hash_list(_texts(root, "content/contentLevel"), lower=True),
            res_description=_text(root.find("content/description")),
            reference_url=_text(root.find("content/referenceURL")),
            creator_seq="; ".join(_texts(root, "curation/creator/name")) or None,
            content_type=_hash_list(_texts(root, "content/type"), lower=True),
            source_format=_lower(_attr(root.find("content/source"), "format")),
            source_value=_text(root.find("content/source")),
            res_version=_text(root.find("curation/version")),
            region_of_regard=float(region) if region else None,
            waveband=_hash_list(_texts(root, "coverage/waveband"), lower=True),
            rights=_hash_list(t for r in rights if (t := _text(r))),
            rights_uri=_hash_list(u for r in rights if (u := r.get("rightsURI"))),
        )

    def add_roles(self) -> None:
        curation = self.root.find("curation")
        if curation is None:
            return
        for element in curation:
            base_role = element.tag if isinstance(element.tag, str) else ""
            if base_role in ("publisher", "contributor"):
                self.row(res_role, role_name=_text(element),
                         role_ivoid=_lower(element.get("ivo-id")), street_address=None,
                         email=None, telephone=None, logo=None, base_role=base_role)
            elif base_role in ("creator", "contact"):
                name = element.find("name")
                self.row(res_role, role_name=_text(name), role_ivoid=_lower(_attr(name, "ivo-id")),
                         street_address=_text(element.find("address")),
                         email=_text(element.find("email")),
                         telephone=_text(element.find("telephone")),
                         logo=_text(element.find("logo")), base_role=base_role)

    def add_validation(self, parent: etree._Element, cap_index: int | None) -> None:
        for level in parent.findall("validationLevel"):
            if value := _text(level):
                self.row(validation, validated_by=_lower(level.get("validatedBy")),
                         val_level=int(value), cap_index=cap_index)

    def add_capability(self, cap: etree._Element, cap_index: int) -> None:
        self.row(capability, cap_index=cap_index, cap_type=_xsi_type(cap),
                 cap_description=_text(cap.find("description")),
                 standard_id=_lower(cap.get("standardID")))
        self.add_validation(cap, cap_index)
        for path, value in _leaves(cap, "/capability", skip=_CAPABILITY_OWN):
            self.row(res_detail, cap_index=cap_index, detail_xpath=path, detail_value=value)

    def add_interface(self, intf: etree._Element, cap_index: int, intf_index: int) -> None:
        access = intf.find("accessURL")
        methods = intf.findall("securityMethod")
        self.row(
            interface, cap_index=cap_index, intf_index=intf_index,
            intf_type=_xsi_type(intf), intf_role=_lower(intf.get("role")),
            std_version=_lower(intf.get("version")),
            query_type=_hash_list(_texts(intf, "queryType"), lower=True),
            result_type=_lower(_text(intf.find("resultType"))),
            wsdl_url=_text(intf.find("wsdlURL")),
            url_use=_lower(_attr(access, "use")), access_url=_text(access),
            mirror_url=_hash_list(_texts(intf, "mirrorURL")),
            # anonymous clients are served unless every security method names a standard
            authenticated_only=int(bool(methods) and all(m.get("standardID") for m in methods)),
        )
        for path in INTERFACE_DETAILS:
            for value in _path_values(intf, path):
                self.row(res_detail, cap_index=cap_index,
                         detail_xpath=f"/capability/interface/{path}", detail_value=value)
        for param in intf.findall("param"):
            data_type = param.find("dataType")
            self.row(
                intf_param, intf_index=intf_index, name=_lower(_text(param.find("name"))),
                ucd=_lower(_text(param.find("ucd"))), unit=_text(param.find("unit")),
                utype=_lower(_text(param.find("utype"))),
                std=_flag(param.get("std")),
                datatype=_lower(_text(data_type)),
                extended_schema=_attr(data_type, "extendedSchema"),
                extended_type=_attr(data_type, "extendedType"),
                arraysize=_attr(data_type, "arraysize"), delim=_attr(data_type, "delim"),
                param_use=_lower(param.get("use")),
                param_description=_text(param.find("description")),
            )

    def add_tableset(self) -> None:
        table_index = 0
        for schema_index, schema in enumerate(self.root.findall("tableset/schema"), start=1):
            self.row(res_schema, schema_index=schema_index,
                     schema_description=_text(schema.find("description")),
                     schema_name=_lower(_text(schema.find("name"))),
                     schema_title=_text(schema.find("title")),
                     schema_utype=_lower(_text(schema.find("utype"))))
            for table in schema.findall("table"):
                table_index += 1
                self.row(res_table, schema_index=schema_index,
                         table_description=_text(table.find("description")),
                         table_name=_text(table.find("name")), table_index=table_index,
                         table_title=_text(table.find("title")),
                         table_type=_lower(table.get("type")),
                         table_utype=_lower(_text(table.find("utype"))))
                for column in table.findall("column"):
                    self.add_column(column, table_index)

    def add_column(self, column: etree._Element, table_index: int) -> None:
        # one pass over the children: tablesets have thousands of columns
        members: dict[str, etree._Element] = {}
        flags = []
        for child in column:
            if child.tag == "flag":
                flags.append(child)
            elif isinstance(child.tag, str):
                members.setdefault(child.tag, child)
        data_type = members.get("dataType")
        self.row(
            table_column, table_index=table_index, name=_lower(_text(members.get("name"))),
            ucd=_lower(_text(members.get("ucd"))), unit=_text(members.get("unit")),
            utype=_lower(_text(members.get("utype"))), std=_flag(column.get("std")),
            datatype=_lower(_text(data_type)),
            extended_schema=_attr(data_type, "extendedSchema"),
            extended_type=_attr(data_type, "extendedType"),
            arraysize=_attr(data_type, "arraysize"), delim=_attr(data_type, "delim"),
            type_system=_xsi_type(data_type) if data_type is not None else None,
            flag=_hash_list(t for f in flags if (t := _text(f))),
            column_description=_text(members.get("description")),
        )


def _text(element: etree._Element | None) -> str | None:
    """An element's whitespace-stripped text; None when absent or empty."""
    if element is None or element.text is None:
        return None
    return element.text.strip() or None


def _texts(parent: etree._Element, path: str) -> list[str]:
    return [t for e in parent.findall(path) if (t := _text(e))]


def _attr(element: etree._Element | None, name: str) -> str | None:
    return None if element is None else element.get(name)


def _lower(value: str | None) -> str | None:
    return value.lower() if value else None


def _hash_list(values: Iterable[str], *, lower: bool = False) -> str | None:
    """RegTAP's hash-separated list of several values (None for none)."""
    items = [v.lower() if lower else v for v in values]
    return "#".join(items) or None


def _flag(value: str | None) -> int | None:
    """An xs:boolean attribute as RegTAP's 0/1, None when absent."""
    return None if value is None else int(value.strip() in ("true", "1"))


def _timestamp(value: str | None, identifier: str) -> datetime:
    """A VOResource date or dateTime as an aware UTC datetime."""
    if not value:
        raise ValueError(f"registry record {identifier}: a date RegTAP needs is missing")
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"registry record {identifier}: bad date {value!r}") from exc
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _qname(element: etree._Element, name: str) -> str:
    """A ``{namespace}local`` name as ``prefix:local`` with RegTAP's canonical prefix."""
    if not name.startswith("{"):
        return name
    namespace, local = name[1:].split("}", 1)
    prefix = CANONICAL_PREFIXES.get(namespace) or next(
        (p for p, uri in element.nsmap.items() if uri == namespace and p), namespace)
    return f"{prefix}:{local}"


def _xsi_type(element: etree._Element) -> str | None:
    """An element's xsi:type, with the canonical prefix of its namespace, lower-cased."""
    value = element.get(XSI_TYPE)
    if not value:
        return None
    prefix, _, local = value.strip().rpartition(":")
    namespace = element.nsmap.get(prefix or None)
    canonical = CANONICAL_PREFIXES.get(namespace or "", prefix)
    return (f"{canonical}:{local}" if canonical else local).lower()


def _path_values(root: etree._Element, path: str) -> list[str]:
    """The values of a resource member written ``a/b`` or ``a/b/@attr``."""
    elements, _, attribute = path.partition("/@")
    found = root.findall(elements)
    if attribute:
        return [v for e in found if (v := e.get(attribute))]
    return [t for e in found if (t := _text(e))]


def _leaves(element: etree._Element, path: str, *,
            skip: Collection[str] = ()) -> Iterator[tuple[str, str]]:
    """(xpath, value) of every attribute and leaf text below ``element``.

    ``skip`` names children of ``element`` that are left out with their subtrees.
    The element's own attributes are not included (its caller maps them to columns).
    """
    for child in element:
        if not isinstance(child.tag, str) or child.tag in skip:
            continue
        child_path = f"{path}/{_qname(child, child.tag)}"
        for name, value in child.attrib.items():
            name, value = str(name), str(value).strip()
            if name != XSI_TYPE and value:
                yield f"{child_path}/@{_qname(child, name)}", value
        if len(child):
            yield from _leaves(child, child_path)
        elif text := _text(child):
            yield child_path, text


def in_step(conn: sa.Connection) -> bool:
    """Whether ``rr.resource`` holds exactly the active records of the registry store."""
    active = conn.execute(sa.select(sa.func.count()).select_from(registry_records)
                          .where(registry_records.c.status == ACTIVE)).scalar_one()
    held = conn.execute(sa.select(sa.func.count()).select_from(resource)).scalar_one()
    return bool(active == held)
