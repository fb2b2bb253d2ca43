"""Numeric array columns fetched in PostgreSQL's binary array form and decoded with numpy.

ADBC decodes ``real[]``/``double precision[]`` cells element by element into Arrow
lists: for the benchmark's 100,000 rows of ``real[16]`` that is 0.085 s of the
server's CPU, as much as encoding and base64 of the whole result together.
Selected as ``array_send(column)`` they arrive as opaque ``bytea`` (no decoding in
ADBC), and :func:`decode` turns each batch's cells into a list array with a
few numpy operations (a reshape when every cell has the same size, which
fixed-size arrays such as latent vectors always have).

``array_send`` writes: int32 ndim, int32 has-nulls flag, int32 element type OID,
(int32 size, int32 lower bound) per dimension, then per element an int32 byte
length (-1 for NULL) and the value, all big-endian. Cells with NULL elements
or more than one dimension are decoded row by row (flattened, as ADBC did).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import pyarrow as pa

from schema.vo import ColumnMeta
from vo_service.adql import types as T
from vo_service.adql.values import quote_ident

# element type OID -> big-endian numpy type
_ELEMENTS = {700: ">f4", 701: ">f8", 21: ">i2", 23: ">i4", 20: ">i8"}
_SENT_DATATYPES = ("float", "double", "short", "int", "long")


class ResultColumn(Protocol):
    """What this module reads of a result column (``vo_service.adql.OutputColumn``)."""

    @property
    def name(self) -> str: ...
    @property
    def type(self) -> str: ...  # the ADQL-level type (vo_service.adql.types)
    @property
    def meta(self) -> ColumnMeta: ...  # its VOTable datatype and arraysize decide


def sent_columns(columns: Sequence[ResultColumn]) -> list[int]:
    """Indexes of the result columns worth fetching with ``array_send``."""
    return [i for i, c in enumerate(columns)
            if c.type == T.ARRAY and c.meta.datatype in _SENT_DATATYPES and c.meta.arraysize]


def wrap(sql: str, columns: Sequence[ResultColumn], sent: list[int]) -> str:
    """``sql`` with the ``sent`` columns replaced by their ``array_send`` bytes.

    An outer projection over the query (its output names are unique): ORDER BY,
    DISTINCT and set operations inside still see the arrays themselves.
    """
    names = [quote_ident(c.name) for c in columns]
    items = [f"array_send(q.{n}) AS {n}" if i in sent else f"q.{n}"
             for i, n in enumerate(names)]
    return f"SELECT {', '.join(items)} FROM ({sql}) AS q"


def decode(array: pa.Array) -> pa.Array:
    """A binary column of ``array_send`` cells as an Arrow list array."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    n = len(array)
    if n == 0:  # (the offsets buffer of an empty array may be missing)
        return pa.array([], pa.list_(pa.float32()))
    valid = np.ones(n, bool) if array.null_count == 0 else \
        np.asarray(array.is_valid().to_numpy(zero_copy_only=False), bool)
    large = pa.types.is_large_binary(array.type)
    bufs = array.buffers()
    offsets = np.frombuffer(bufs[1], np.int64 if large else np.int32)[
        array.offset:array.offset + n + 1].astype(np.int64)
    data = np.frombuffer(bufs[2], np.uint8) if bufs[2] is not None else np.zeros(0, np.uint8)
    starts, lengths = offsets[:-1], np.diff(offsets)

    def word(at: int) -> np.ndarray:  # the int32 at byte ``at`` of each valid cell
        out = np.zeros(n, np.int64)
        rows = valid & (lengths >= at + 4)
        idx = starts[rows, None] + at + np.arange(4)
        out[rows] = data[idx].view(">i4").ravel() if rows.any() else []
        return out

    ndim, has_nulls, oid, size = word(0), word(4), word(8), word(12)
    oids = set(oid[valid & (ndim > 0)].tolist())
    if len(oids) > 1 or not oids <= set(_ELEMENTS) or ((ndim > 1) | (has_nulls != 0)).any():
        return _decode_rows(array)
    dtype = np.dtype(_ELEMENTS[oids.pop()] if oids else ">f4")
    counts = np.where(valid & (ndim == 1), size, 0)
    stride = 4 + dtype.itemsize
    if n and valid.all() and (counts == counts[0]).all() and (lengths == lengths[0]).all():
        cells = data[offsets[0]:offsets[-1]].reshape(n, lengths[0])
        values = cells[:, 20:].reshape(n, counts[0], stride)[:, :, 4:]
        values = np.ascontiguousarray(values).reshape(-1).view(dtype)
    else:
        first = np.repeat(starts + 20 + 4, counts)  # first value byte of each element
        within = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        at = first + within * stride
        values = data[at[:, None] + np.arange(dtype.itemsize)].reshape(-1).view(dtype)
    list_offsets = np.zeros(n + 1, np.int32)
    np.cumsum(counts, out=list_offsets[1:])
    return pa.ListArray.from_arrays(pa.array(list_offsets),
                                    pa.array(values.astype(dtype.newbyteorder("="))),
                                    mask=pa.array(~valid))


def _decode_rows(array: pa.Array) -> pa.Array:
    """Row by row: cells with NULL elements, several dimensions or mixed types."""
    rows: list[list[Any] | None] = []
    dtype: np.dtype[Any] | None = None
    for cell in array.to_pylist():
        if cell is None:
            rows.append(None)
            continue
        head = np.frombuffer(cell, ">i4", count=3)
        ndim, oid = int(head[0]), int(head[2])
        if ndim and oid not in _ELEMENTS:
            raise ValueError(f"array elements of type OID {oid} cannot be decoded")
        element = np.dtype(_ELEMENTS.get(oid, ">f4"))
        dtype = element if dtype is None else dtype
        pos = 12 + 8 * ndim
        values: list[Any] = []
        while pos < len(cell):
            length = int(np.frombuffer(cell, ">i4", count=1, offset=pos)[0])
            pos += 4
            if length < 0:
                values.append(None)
            else:
                values.append(np.frombuffer(cell, element, count=1, offset=pos)[0].item())
                pos += length
        rows.append(values)
    value_type = pa.from_numpy_dtype((np.dtype(">f4") if dtype is None else dtype)
                                     .newbyteorder("="))
    return pa.array(rows, pa.list_(value_type))
