"""VOTable documents of SSA and DataLink: a results table plus PARAMs and service descriptors.

The serialisation itself is the TAP output layer's (``vo_service.formats``):
``document_start``/``info``/``field_xml`` for the header and
:class:`~vo_service.formats.votable.VOTableWriter` for the TABLEDATA rows. What
this module adds is what SSA and DataLink documents have and query results do
not: PARAMs in the results RESOURCE (SSA ``INPUT:`` parameters), FIELD IDs that
service descriptors refer to, and ``adhoc:service`` RESOURCEs after the results.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr

import pyarrow as pa

from vo_service.formats.fields import Field
from vo_service.formats.votable import VOTableWriter, document_start, field_xml, info

VOTABLE_MIME = "application/x-votable+xml"
DATALINK_MIME = "application/x-votable+xml;content=datalink"
DATALINK_STANDARD = "ivo://ivoa.net/std/DataLink#links-1.1"


def _attr(name: str, value) -> str:
    return f" {name}={quoteattr(str(value))}" if value not in (None, "") else ""


@dataclass(frozen=True)
class Param:
    """A VOTable PARAM (``value`` is always written: VOTable requires the attribute)."""

    name: str
    value: str = ""
    datatype: str = "char"
    arraysize: str | None = None
    unit: str | None = None
    ucd: str | None = None
    utype: str | None = None
    xtype: str | None = None
    ref: str | None = None
    description: str | None = None
    minimum: str | None = None
    maximum: str | None = None
    options: tuple[str, ...] = ()

    def xml(self) -> str:
        arraysize = self.arraysize or ("*" if self.datatype == "char" else None)
        attrs = (_attr("name", self.name) + _attr("datatype", self.datatype)
                 + _attr("arraysize", arraysize) + _attr("unit", self.unit)
                 + _attr("ucd", self.ucd) + _attr("utype", self.utype)
                 + _attr("xtype", self.xtype) + _attr("ref", self.ref)
                 + f" value={quoteattr(str(self.value))}")
        inner = ""
        if self.description:
            inner += f"<DESCRIPTION>{escape(self.description)}</DESCRIPTION>"
        if self.minimum is not None or self.maximum is not None or self.options:
            inner += "<VALUES>"
            if self.minimum is not None:
                inner += f"<MIN value={quoteattr(str(self.minimum))}/>"
            if self.maximum is not None:
                inner += f"<MAX value={quoteattr(str(self.maximum))}/>"
            inner += "".join(f"<OPTION value={quoteattr(o)}/>" for o in self.options)
            inner += "</VALUES>"
        return f"<PARAM{attrs}>{inner}</PARAM>\n" if inner else f"<PARAM{attrs}/>\n"


@dataclass(frozen=True)
class ServiceDescriptor:
    """A DataLink 1.1 service descriptor (``RESOURCE type="meta" utype="adhoc:service"``)."""

    ident: str
    access_url: str
    description: str
    input_params: Sequence[Param]
    standard_id: str | None = None
    content_type: str | None = None

    def xml(self) -> str:
        parts = [f'<RESOURCE type="meta" utype="adhoc:service" ID={quoteattr(self.ident)} '
                 f'name={quoteattr(self.ident)}>\n',
                 f"<DESCRIPTION>{escape(self.description)}</DESCRIPTION>\n",
                 Param("accessURL", self.access_url, ucd="meta.ref.url").xml()]
        if self.standard_id:
            parts.append(Param("standardID", self.standard_id, ucd="meta.ref.ivoid").xml())
        if self.content_type:
            parts.append(Param("contentType", self.content_type, ucd="meta.code.mime").xml())
        parts.append('<GROUP name="inputParams">\n')
        parts += [p.xml() for p in self.input_params]
        parts.append("</GROUP>\n</RESOURCE>\n")
        return "".join(parts)


def datalink_descriptor(links_url: str, id_field: str) -> ServiceDescriptor:
    """The descriptor that makes a result table DataLink-aware (pyvo, TOPCAT)."""
    return ServiceDescriptor(
        ident="datalink", access_url=links_url, standard_id=DATALINK_STANDARD,
        content_type=DATALINK_MIME,
        description="DataLink: files in every format, preview, machine-learning products "
        "and similar spectra of a spectrum",
        input_params=[Param("ID", "", ref=id_field, ucd="meta.id;meta.main",
                            description="Publisher DID of the spectrum")])


@dataclass
class ResultDocument:
    """One results table streamed as TABLEDATA, with the extras SSA/DataLink need."""

    fields: list[Field]
    infos: list[tuple[str, str, str | None]] = field(default_factory=list)
    params: list[Param] = field(default_factory=list)
    field_ids: dict[str, str] = field(default_factory=dict)  # field name -> XML ID
    descriptors: list[ServiceDescriptor] = field(default_factory=list)
    table_name: str = "results"
    status: tuple[str, str] = ("OK", "Query successful")

    def header(self) -> bytes:
        parts = [document_start([("QUERY_STATUS", *self.status), *self.infos])]
        parts += [p.xml() for p in self.params]
        parts.append(f"<TABLE name={quoteattr(self.table_name)}>\n")
        parts += [field_xml(f, self.field_ids.get(f.name)) for f in self.fields]
        parts.append("<DATA><TABLEDATA>\n")
        return "".join(parts).encode()

    def rows(self, table: pa.Table | Iterable[pa.RecordBatch]) -> bytes:
        writer = VOTableWriter(self.fields, "TABLEDATA")
        batches = table.to_batches() if isinstance(table, pa.Table) else table
        return b"".join(writer.rows(batches))

    def footer(self, *, overflow: bool = False, error: str | None = None) -> bytes:
        parts = ["</TABLEDATA></DATA>\n</TABLE>\n"]
        if error:
            parts.append(info("QUERY_STATUS", "ERROR", error))
        elif overflow:
            parts.append(info("QUERY_STATUS", "OVERFLOW",
                              "Result truncated: more rows match than MAXREC allows"))
        parts.append("</RESOURCE>\n")
        parts += [d.xml() for d in self.descriptors]
        parts.append("</VOTABLE>\n")
        return "".join(parts).encode()

    def render(self, table: pa.Table | None, *, overflow: bool = False) -> bytes:
        body = self.rows(table) if table is not None and table.num_rows else b""
        return self.header() + body + self.footer(overflow=overflow)


def arrow_table(fields: list[Field], columns: dict[str, list]) -> pa.Table:
    """An Arrow table of Python column lists, typed as the fields say."""
    arrays = []
    for f in fields:
        values = columns[f.name]
        arrays.append(pa.array(values, type=f.arrow_type))
    return pa.Table.from_arrays(arrays, names=[f.name for f in fields])
