"""Output formats of query results: names, MIME types, aliases and writers.

One :class:`OutputFormat` per serialisation; :func:`resolve` maps a
RESPONSEFORMAT (or FORMAT) value, given as a MIME type or a short alias, to
it. The same table feeds TAPRegExt ``outputFormat`` elements in
``/capabilities``, so what is declared is exactly what is served.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

import pyarrow as pa

from vo_service.formats.fields import Field

TAPREGEXT = "ivo://ivoa.net/std/TAPRegExt"


class ResultWriter(Protocol):
    """What every format's writer offers: the document is ``header``, ``rows``, ``footer``.

    ``rows`` yields the bytes of the batches as they come; ``footer`` closes the
    document and reports an overflow, or an error that happened after the first byte.
    (The FITS writer yields its whole document from ``stream_all`` at the end instead,
    because the FITS header must state the row count.)
    """

    def header(self) -> bytes: ...

    def rows(self, batches: Iterable[pa.RecordBatch]) -> Iterator[bytes]: ...

    def footer(self, *, overflow: bool = False, error: str | None = None) -> bytes: ...


@dataclass(frozen=True)
class OutputFormat:
    """One serialisation of query results.

    Attributes
    ----------
    key
        The internal name (``votable-b2``, ``csv``, ...).
    mime
        The MIME type declared in ``/capabilities`` and sent by default.
    aliases
        Other RESPONSEFORMAT values that select it (short names, MIME variants).
    ivo_id
        The TAPRegExt standard identifier of the format, where there is one.
    extension
        The file name extension of a downloaded result.
    status_in_document
        Whether the document can state DALI's QUERY_STATUS (an overflow, a late error);
        CSV and TSV cannot, so TAP states it in an HTTP header (``docs/tap.md``).
    """

    key: str
    mime: str  # what we declare and send by default
    aliases: tuple[str, ...]
    ivo_id: str | None = None
    extension: str = ""
    status_in_document: bool = True

    def writer(self, fields: list[Field], spool_dir: str | None = None) -> ResultWriter:
        """A new writer of this format for a result with ``fields``.

        ``spool_dir`` is where the FITS writer spools rows until the result is complete.
        """
        if self.key == "votable-b2":
            from vo_service.formats.votable import VOTableWriter
            return VOTableWriter(fields, "BINARY2")
        if self.key == "votable-td":
            from vo_service.formats.votable import VOTableWriter
            return VOTableWriter(fields, "TABLEDATA")
        if self.key in ("csv", "tsv"):
            from vo_service.formats.text import DelimitedWriter
            return DelimitedWriter(fields, "," if self.key == "csv" else "\t")
        if self.key == "fits":
            from vo_service.formats.fits import FITSWriter
            return FITSWriter(fields, spool_dir)
        if self.key == "json":
            from vo_service.formats.jsonfmt import JSONWriter
            return JSONWriter(fields)
        raise KeyError(self.key)


FORMATS: tuple[OutputFormat, ...] = (
    OutputFormat("votable-b2", "application/x-votable+xml",
                 ("votable", "votable/b2", "votable/binary2", "vot",
                  "application/x-votable+xml;serialization=binary2",
                  "application/x-votable+xml; serialization=binary2", "text/xml",
                  "application/xml"),
                 f"{TAPREGEXT}#output-votable-binary2", "vot"),
    OutputFormat("votable-td", "application/x-votable+xml;serialization=TABLEDATA",
                 ("votable/td", "votabletd", "application/x-votable+xml;serialization=tabledata",
                  "application/x-votable+xml; serialization=tabledata"),
                 f"{TAPREGEXT}#output-votable-td", "vot"),
    OutputFormat("csv", "text/csv;header=present", ("csv", "text/csv"), None, "csv",
                 status_in_document=False),
    OutputFormat("tsv", "text/tab-separated-values", ("tsv", "text/tsv", "tab"), None, "tsv",
                 status_in_document=False),
    OutputFormat("fits", "application/fits", ("fits", "image/fits", "application/x-fits-bintable"),
                 None, "fits"),
    OutputFormat("json", "application/json", ("json", "text/json"), None, "json"),
)

DEFAULT = FORMATS[0]


class UnknownFormat(ValueError):
    """A RESPONSEFORMAT this service does not offer; the message lists those it does."""


def resolve(value: str | None) -> tuple[OutputFormat, str]:
    """The format a RESPONSEFORMAT value asks for, and the Content-Type to answer with.

    DALI: when the client named a MIME type, that MIME type is sent back.
    """
    if value is None or not value.strip():
        return DEFAULT, DEFAULT.mime
    wanted = value.strip()
    key = " ".join(wanted.lower().split())
    compact = key.replace(" ", "")
    for fmt in FORMATS:
        names = {fmt.mime.lower(), *(a.lower() for a in fmt.aliases)}
        if key in names or compact in {n.replace(" ", "") for n in names}:
            is_mime = "/" in wanted and not wanted.lower().startswith("votable/")
            if is_mime and wanted.lower() not in ("text/xml", "application/xml"):
                return fmt, wanted
            if is_mime:
                return fmt, wanted
            return fmt, fmt.mime
    known = ", ".join(sorted({a for f in FORMATS for a in f.aliases if "/" not in a}
                             | {f.mime for f in FORMATS}))
    raise UnknownFormat(f"unsupported RESPONSEFORMAT {value!r}; this service offers: {known}")
