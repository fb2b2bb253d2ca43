"""CSV (RFC 4180, header line) and TSV (header line, no TABs inside values).

CSV: text columns are always quoted (doubling inner quotes), so an empty
string (``""``) and NULL (nothing) stay distinguishable; numbers are bare;
arrays are space-separated numbers. TSV replaces TAB and newline characters
inside values by spaces, as TAP asks.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import pyarrow as pa
import pyarrow.compute as pc

from vo_service.formats.fields import Field
from vo_service.formats.textcells import cell_text, join_rows


class DelimitedWriter:
    """Writes a result as CSV (``separator=","``) or TSV (``"\\t"``) with a header line."""

    def __init__(self, fields: list[Field], separator: str) -> None:
        self.fields = fields
        self.separator = separator

    def _quote(self, text: pa.Array) -> pa.Array:
        if self.separator == ",":
            quoted = pc.replace_substring(text, '"', '""')
            return pc.binary_join_element_wise(pa.scalar('"'), quoted, pa.scalar('"'), "")
        return pc.replace_substring_regex(text, "[\t\r\n]", " ")

    def header(self) -> bytes:
        """The line of column names."""
        names = [f.name for f in self.fields]
        if self.separator == ",":
            names = [f'"{n}"' if any(c in n for c in ',"\n ') else n for n in names]
        else:
            names = [n.replace("\t", " ") for n in names]
        return (self.separator.join(names) + "\r\n" if self.separator == "," else
                self.separator.join(names) + "\n").encode()

    def rows(self, batches: Iterable[pa.RecordBatch]) -> Iterator[bytes]:
        """The lines of each batch."""
        eol = "\r\n" if self.separator == "," else "\n"
        for batch in batches:
            if not batch.num_rows:
                continue
            cells = []
            for j, field in enumerate(self.fields):
                text = cell_text(batch.column(j), field, true="true", false="false")
                cells.append(self._quote(text) if field.is_text else text)
            if cells:
                yield join_rows(cells, prefix="", separator=self.separator, suffix=eol)
            else:
                yield eol.encode() * batch.num_rows

    def footer(self, *, overflow: bool = False, error: str | None = None) -> bytes:
        """A ``# ERROR:`` line when the result failed after the header, else nothing."""
        # CSV/TSV cannot carry a status; a failure after the header ends the body with
        # a line saying so (the HTTP status was already sent).
        if error:
            return f"# ERROR: {error}\n".encode()
        return b""
