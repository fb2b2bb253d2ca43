"""JSON: ``{"columns": [field metadata...], "data": [[row]...], "status": ...}``.

Cheap to offer and handy in notebooks; values go through Python objects, so it is
slower than the other writers (NaN becomes null).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from typing import Any

import pyarrow as pa

from vo_service.formats.fields import Field, coerce


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


class JSONWriter:
    """Writes a result as one JSON object: column metadata, rows, status."""

    def __init__(self, fields: list[Field]) -> None:
        self.fields = fields
        self._first = True

    def header(self) -> bytes:
        """The object's start: the columns' metadata and the opening of ``data``."""
        columns = [f.attributes() for f in self.fields]
        return ('{"columns": ' + json.dumps(columns) + ',\n"data": [\n').encode()

    def rows(self, batches: Iterable[pa.RecordBatch]) -> Iterator[bytes]:
        """The rows of each batch as JSON arrays (non-finite floats as null)."""
        for batch in batches:
            cols = [coerce(batch.column(j), f).to_pylist() for j, f in enumerate(self.fields)]
            lines = []
            for row in zip(*cols, strict=True):
                text = json.dumps([_clean(v) for v in row], allow_nan=False)
                lines.append(text if self._first else ",\n" + text)
                self._first = False
            if lines:
                yield "".join(lines).encode()

    def footer(self, *, overflow: bool = False, error: str | None = None) -> bytes:
        """The end of ``data`` and the status: OK, OVERFLOW or ERROR with its message."""
        status = "ERROR" if error else "OVERFLOW" if overflow else "OK"
        tail = {"status": status}
        if error:
            tail["message"] = error
        return ("\n],\n" + json.dumps(tail)[1:-1] + "}\n").encode()
