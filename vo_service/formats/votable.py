"""Streaming VOTable 1.4 writer: TABLEDATA or BINARY2, with DALI INFOs.

Layout (DALI 1.1 §4.4):

    <VOTABLE version="1.4">
      <RESOURCE type="results">
        <INFO name="QUERY_STATUS" value="OK"/>  ... other INFOs
        <TABLE> <FIELD .../>... <DATA> rows </DATA> </TABLE>
        <INFO name="QUERY_STATUS" value="OVERFLOW"/>   only when truncated
        <INFO name="QUERY_STATUS" value="ERROR">...   only on mid-stream failure
      </RESOURCE>
    </VOTABLE>

The header can be written before the first row because every FIELD is known
from the query's translation; overflow and late errors go into the trailing
QUERY_STATUS INFO that clients read as authoritative.

:class:`ResultDocument` is the same layout for the small documents of SSA and
DataLink, with what they have and query results do not: PARAMs (:class:`Param`,
e.g. SSA's ``INPUT:`` parameters), FIELD IDs that service descriptors refer to,
and ``RESOURCE``s after the results (DataLink service descriptors).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from xml.sax.saxutils import escape, quoteattr

import pyarrow as pa

from vo_service.formats import binary2
from vo_service.formats.fields import Field
from vo_service.formats.textcells import cell_text, join_rows, xml_escape

NS = "http://www.ivoa.net/xml/VOTable/v1.3"
VERSION = "1.4"


def _attr(name: str, value: object) -> str:
    return f" {name}={quoteattr(str(value))}" if value not in (None, "") else ""


def info(name: str, value: str, text: str | None = None, **attrs: object) -> str:
    """An ``INFO`` element; ``text`` becomes its content, ``attrs`` extra attributes."""
    extra = "".join(_attr(k, v) for k, v in attrs.items())
    head = f"<INFO name={quoteattr(name)} value={quoteattr(value or '')}{extra}"
    return f"{head}>{escape(text)}</INFO>\n" if text else f"{head}/>\n"


def field_xml(field: Field, ident: str | None = None) -> str:
    """The FIELD element of ``field`` (with ``ID`` when given, for DataLink references)."""
    described = field.attributes()
    description = described.pop("description", None)
    attrs = _attr("name", described.pop("name")) + _attr("ID", ident) + "".join(
        _attr(key, value) for key, value in described.items())
    if description:
        return f"<FIELD{attrs}><DESCRIPTION>{escape(description)}</DESCRIPTION></FIELD>\n"
    return f"<FIELD{attrs}/>\n"


def document_start(infos: Iterable[tuple[str, str, str | None]] = ()) -> str:
    """The XML declaration, ``VOTABLE`` and ``RESOURCE type="results"`` start tags, INFOs.

    ``infos`` are ``(name, value, text)`` triples.
    """
    head = (f'<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<VOTABLE version="{VERSION}" xmlns="{NS}" '
            f'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\n'
            f'<RESOURCE type="results">\n')
    return head + "".join(info(n, v, t) for n, v, t in infos)


def error_document(message: str, infos: Iterable[tuple[str, str, str | None]] = ()) -> bytes:
    """A DALI error document: QUERY_STATUS=ERROR with the message, no TABLE."""
    return (document_start([("QUERY_STATUS", "ERROR", message), *infos])
            + "</RESOURCE>\n</VOTABLE>\n").encode()


class VOTableWriter:
    """Writes one result table; ``serialization`` is ``TABLEDATA`` or ``BINARY2``."""

    def __init__(self, fields: list[Field], serialization: str = "BINARY2",
                 infos: Iterable[tuple[str, str, str | None]] = (),
                 table_name: str = "result") -> None:
        self.fields = fields
        self.serialization = serialization
        self.infos = list(infos)
        self.table_name = table_name

    def header(self) -> bytes:
        """Everything before the first row: INFOs (QUERY_STATUS=OK first), FIELDs, DATA."""
        parts = [document_start([("QUERY_STATUS", "OK", "Query successful"), *self.infos]),
                 f'<TABLE name="{self.table_name}">\n']
        parts += [field_xml(f) for f in self.fields]
        if self.serialization == "TABLEDATA":
            parts.append("<DATA><TABLEDATA>\n")
        else:
            parts.append('<DATA><BINARY2><STREAM encoding="base64">\n')
        return "".join(parts).encode()

    def rows(self, batches: Iterable[pa.RecordBatch]) -> Iterator[bytes]:
        """The rows: ``TR`` elements, or the base64 of the BINARY2 stream."""
        if self.serialization == "TABLEDATA":
            for batch in batches:
                if batch.num_rows:
                    cells = [self._td(batch.column(j), f) for j, f in enumerate(self.fields)]
                    if cells:
                        yield join_rows(cells, prefix="<TR><TD>", separator="</TD><TD>",
                                        suffix="</TD></TR>\n")
                    else:
                        yield b"<TR></TR>\n" * batch.num_rows
        else:
            stream = binary2.Base64Stream()
            for batch in batches:
                data = stream.feed(binary2.encode_batch(batch, self.fields))
                if data:
                    yield data
            self._tail = stream.close()

    @staticmethod
    def _td(array: pa.Array, field: Field) -> pa.Array:
        text = cell_text(array, field)
        return xml_escape(text) if field.is_text else text

    def footer(self, *, overflow: bool = False, error: str | None = None) -> bytes:
        """Close the table; a trailing QUERY_STATUS INFO for an overflow or a late error."""
        parts = []
        if self.serialization == "TABLEDATA":
            parts.append("</TABLEDATA></DATA>\n")
        else:
            parts.append(getattr(self, "_tail", b"").decode())
            parts.append("</STREAM></BINARY2></DATA>\n")
        parts.append("</TABLE>\n")
        if error:
            parts.append(info("QUERY_STATUS", "ERROR", error))
        elif overflow:
            parts.append(info("QUERY_STATUS", "OVERFLOW",
                              "Result truncated: more rows match than MAXREC allows"))
        parts.append("</RESOURCE>\n</VOTABLE>\n")
        return "".join(parts).encode()


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
        """The ``PARAM`` element, with ``VALUES`` when there are bounds or options."""
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


class Resource(Protocol):
    """Anything written as a RESOURCE after the results (a DataLink service descriptor)."""

    def xml(self) -> str: ...


@dataclass
class ResultDocument:
    """One results table as TABLEDATA, with the extras SSA/DataLink need."""

    fields: list[Field]
    infos: list[tuple[str, str, str | None]] = field(default_factory=list)
    params: list[Param] = field(default_factory=list)
    field_ids: dict[str, str] = field(default_factory=dict)  # field name -> XML ID
    descriptors: Sequence[Resource] = field(default_factory=list)
    table_name: str = "results"
    status: tuple[str, str] = ("OK", "Query successful")

    def header(self) -> bytes:
        """Everything before the first row: INFOs, PARAMs, FIELDs."""
        parts = [document_start([("QUERY_STATUS", *self.status), *self.infos])]
        parts += [p.xml() for p in self.params]
        parts.append(f"<TABLE name={quoteattr(self.table_name)}>\n")
        parts += [field_xml(f, self.field_ids.get(f.name)) for f in self.fields]
        parts.append("<DATA><TABLEDATA>\n")
        return "".join(parts).encode()

    def rows(self, table: pa.Table | Iterable[pa.RecordBatch]) -> bytes:
        """The ``TR`` elements of ``table``'s rows."""
        writer = VOTableWriter(self.fields, "TABLEDATA")
        batches = table.to_batches() if isinstance(table, pa.Table) else table
        return b"".join(writer.rows(batches))

    def footer(self, *, overflow: bool = False, error: str | None = None) -> bytes:
        """Close the table, add the QUERY_STATUS of an overflow or error, the descriptors."""
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
        """The whole document, with the rows of ``table`` (None: no rows)."""
        body = self.rows(table) if table is not None and table.num_rows else b""
        return self.header() + body + self.footer(overflow=overflow)


def arrow_table(fields: list[Field], columns: dict[str, list[Any]]) -> pa.Table:
    """An Arrow table of Python column lists, typed as the fields say."""
    arrays = []
    for f in fields:
        values = columns[f.name]
        arrays.append(pa.array(values, type=f.arrow_type))
    return pa.Table.from_arrays(arrays, names=[f.name for f in fields])
