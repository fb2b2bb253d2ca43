"""VOTable BINARY2 rows from Arrow record batches, encoded with numpy a chunk at a time.

BINARY2 (VOTable 1.3+) writes each row as ``ceil(ncols/8)`` null-flag bytes
(most significant bit of the first byte = first column, 1 = null) followed by
the cells: fixed-size values big-endian, variable-size ones (``char
arraysize="*"``, ``float arraysize="*"``) as a 4-byte big-endian item count and
the items. The stream is then base64-encoded inside ``<STREAM>``.

No Python code runs per value: every column becomes either a 2-D ``uint8``
array (n rows x fixed width) or a ``(counts, byte lengths, bytes)`` triple
taken straight from Arrow's offset and data buffers. Runs of fixed-width
columns between variable ones are glued together with numpy first; Arrow's
``binary_join_element_wise`` kernel then concatenates each row's segments in
C++ (several times faster than placing the bytes with numpy fancy indexing).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pybase64

from vo_service.formats.fields import Field, coerce

_BE = {
    "unsignedByte": ">u1", "short": ">i2", "int": ">i4", "long": ">i8",
    "float": ">f4", "double": ">f8",
}
_T, _F, _Q = 84, 70, 63  # 'T', 'F', '?'
_NOTHING = pa.scalar(b"", pa.large_binary())  # separator of the row join


@dataclass
class _Fixed:
    data: np.ndarray  # (n, width) uint8


@dataclass
class _Var:
    counts: np.ndarray  # (n,) items per row (written as the 4-byte prefix)
    nbytes: np.ndarray  # (n,) bytes per row after the prefix
    data: np.ndarray  # all rows' bytes, concatenated (uint8)


def _valid(array: pa.Array) -> np.ndarray:
    if array.null_count == 0:
        return np.ones(len(array), dtype=bool)
    return np.asarray(array.is_valid().to_numpy(zero_copy_only=False), dtype=bool)


def _scalar(array: pa.Array, field: Field, valid: np.ndarray) -> _Fixed:
    n = len(array)
    if field.meta.datatype in ("boolean", "bit"):
        values = np.asarray(array.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)
        out = np.where(valid, np.where(values, _T, _F), _Q).astype(np.uint8)
        return _Fixed(out.reshape(n, 1))
    if array.null_count:
        array = array.fill_null(np.nan if field.meta.datatype in ("float", "double") else 0)
    values = array.to_numpy(zero_copy_only=False)
    be = np.ascontiguousarray(values.astype(_BE[field.meta.datatype], copy=False))
    return _Fixed(be.view(np.uint8).reshape(n, be.dtype.itemsize))


def _offsets(array: pa.Array, kind: str) -> tuple[np.ndarray, list[pa.Buffer | None]]:
    """Offsets (n+1) and the data/values buffer of a string or list array."""
    bufs = array.buffers()
    dtype = np.int64 if kind == "large" else np.int32
    offsets = np.frombuffer(bufs[1], dtype=dtype)[array.offset:array.offset + len(array) + 1]
    return offsets.astype(np.int64), bufs


def _ascii(array: pa.Array) -> pa.Array:
    """VOTable ``char`` is ASCII: other characters become '?' in binary serialisations.

    (TABLEDATA keeps them as XML text; columns that need them are ``unicodeChar``.)
    """
    bufs = array.buffers()
    if bufs[2] is not None and (np.frombuffer(bufs[2], dtype=np.uint8) > 127).any():
        return pc.replace_substring_regex(array, "[^\\x00-\\x7f]", "?")
    return array


def _text(array: pa.Array, field: Field, valid: np.ndarray) -> _Fixed | _Var:
    n = len(array)
    size = field.meta.arraysize
    if field.meta.datatype == "unicodeChar" or (size and "*" not in size):
        return _text_slow(array, field)
    array = _ascii(array)
    if pa.types.is_large_string(array.type):
        offsets, bufs = _offsets(array, "large")
    else:
        offsets, bufs = _offsets(array, "small")
    lengths = np.diff(offsets)
    if bufs[2] is None or lengths.sum() == 0:
        data = np.zeros(0, np.uint8)
    else:
        data = np.frombuffer(bufs[2], dtype=np.uint8)[offsets[0]:offsets[-1]]
    if not valid.all():
        lengths = np.where(valid, lengths, 0)
        if (np.diff(offsets)[~valid] != 0).any():  # nulls that own bytes: rebuild
            return _text_slow(array, field)
    if field.meta.arraysize and field.meta.arraysize != "*":  # "n*": at most n characters
        limit = int(field.meta.arraysize.rstrip("*"))
        if (lengths > limit).any():
            return _text_slow(array, field)
    del n
    return _Var(lengths, lengths, data)


def _text_slow(array: pa.Array, field: Field) -> _Fixed | _Var:
    """Per-value path for fixed-width text and unicodeChar (UCS-2)."""
    values = array.to_pylist()
    wide = field.meta.datatype == "unicodeChar"
    encoded = [b"" if v is None else (v.encode("utf-16-be", "replace") if wide
                                      else v.encode("ascii", "replace")) for v in values]
    size = 2 if wide else 1
    fixed = field.meta.arraysize and "*" not in field.meta.arraysize
    limit = None
    if field.meta.arraysize and field.meta.arraysize != "*":
        limit = int(field.meta.arraysize.rstrip("*")) * size
        encoded = [e[:limit] for e in encoded]
    if fixed:
        assert limit is not None  # a fixed arraysize ("n", no star) set it
        buf = b"".join(e.ljust(limit, b"\0") for e in encoded)
        return _Fixed(np.frombuffer(buf, np.uint8).reshape(len(values), limit))
    nbytes = np.fromiter((len(e) for e in encoded), dtype=np.int64, count=len(encoded))
    return _Var(nbytes // size, nbytes, np.frombuffer(b"".join(encoded), np.uint8))


def _array(array: pa.Array, field: Field, valid: np.ndarray) -> _Fixed | _Var:
    n = len(array)
    be = np.dtype(_BE.get(field.meta.datatype, ">f8"))
    count = field.fixed_count
    if field.meta.datatype in ("boolean", "bit"):
        return _array_slow(array, field)
    offsets, bufs = _offsets(array, "large" if pa.types.is_large_list(array.type) else "small")
    lengths = np.diff(offsets)
    child = array.values if array.offset == 0 else array.flatten()
    if array.offset != 0:
        offsets = offsets - offsets[0]
    if child.null_count:
        child = child.fill_null(np.nan if be.kind == "f" else 0)
    fill = np.nan if be.kind == "f" else 0
    values = child.to_numpy(zero_copy_only=False)[offsets[0]:offsets[-1]]
    values = np.ascontiguousarray(values.astype(be, copy=False))
    if count is not None:
        if not valid.all() or (lengths != count).any():
            return _array_slow(array, field)
        return _Fixed(values.view(np.uint8).reshape(n, count * be.itemsize))
    del fill
    if not valid.all():
        lengths = np.where(valid, lengths, 0)
        if (np.diff(offsets)[~valid] != 0).any():
            return _array_slow(array, field)
    return _Var(lengths, lengths * be.itemsize, values.view(np.uint8))


def _array_slow(array: pa.Array, field: Field) -> _Fixed | _Var:
    """Per-row path: null rows of fixed arrays, ragged rows, boolean arrays."""
    is_bool = field.meta.datatype in ("boolean", "bit")
    be = np.dtype(">u1" if is_bool else _BE.get(field.meta.datatype, ">f8"))
    fill = np.nan if be.kind == "f" else 0
    count = field.fixed_count
    rows = []
    for value in array.to_pylist():
        if is_bool:
            items = np.array([_Q if v is None else (_T if v else _F) for v in (value or [])],
                             dtype=np.uint8)
        else:
            items = np.array([fill if v is None else v for v in (value or [])], dtype=be)
        if count is not None:
            padded = np.full(count, _Q if is_bool else fill, dtype=be)
            padded[:min(count, len(items))] = items[:count]
            items = padded
        rows.append(items)
    if count is not None:
        data = (np.stack(rows) if rows else np.zeros((0, count), be)).astype(be)
        return _Fixed(np.ascontiguousarray(data).view(np.uint8).reshape(len(rows), -1))
    counts = np.array([len(r) for r in rows], dtype=np.int64)
    data = np.concatenate(rows).astype(be).view(np.uint8) if rows else np.zeros(0, np.uint8)
    return _Var(counts, counts * be.itemsize, np.ascontiguousarray(data).view(np.uint8))


def encode_column(array: pa.Array, field: Field) -> tuple[_Fixed | _Var, np.ndarray]:
    """The cells of one column and its validity mask."""
    array = coerce(array, field)
    valid = _valid(array)
    if field.is_text:
        return _text(array, field, valid), valid
    if field.is_array:
        return _array(array, field, valid), valid
    return _scalar(array, field, valid), valid


ROWS_PER_PASS = 8192  # bounds the temporary index arrays of one assembly pass


def encode_batch(batch: pa.RecordBatch, fields: list[Field]) -> bytes:
    """The BINARY2 bytes of every row of ``batch`` (not yet base64-encoded)."""
    if batch.num_rows <= ROWS_PER_PASS:
        return _encode_rows(batch, fields)
    return b"".join(_encode_rows(batch.slice(start, ROWS_PER_PASS), fields)
                    for start in range(0, batch.num_rows, ROWS_PER_PASS))


def _encode_rows(batch: pa.RecordBatch, fields: list[Field]) -> bytes:
    n = batch.num_rows
    if n == 0:
        return b""
    pieces: list[_Fixed | _Var] = []
    valid = np.empty((n, len(fields)), dtype=bool)
    for j, field in enumerate(fields):
        piece, valid[:, j] = encode_column(batch.column(j), field)
        pieces.append(piece)
    flags = np.packbits(~valid, axis=1)  # MSB first, 1 = null, unused bits 0

    # Glue runs of fixed-width pieces; variable pieces split the row into segments.
    segments: list[_Fixed | _Var] = []
    run: list[np.ndarray] = [flags]
    for piece in pieces:
        if isinstance(piece, _Fixed):
            run.append(piece.data)
        else:
            counts = np.ascontiguousarray(piece.counts.astype(">u4")).view(np.uint8)
            run.append(counts.reshape(n, 4))
            segments.append(_Fixed(np.hstack(run)))
            segments.append(piece)
            run = []
    if run:
        segments.append(_Fixed(np.hstack(run) if len(run) > 1 else run[0]))
    variable = [s for s in segments if isinstance(s, _Var)]
    if not variable:
        return np.ascontiguousarray(segments[0].data).tobytes()

    # Arrow's element-wise binary join concatenates each row's segments in C++; the
    # joined array's value buffer is then the rows back to back.
    joined = pc.binary_join_element_wise(*(_binary(seg, n) for seg in segments), _NOTHING)
    offsets = np.frombuffer(joined.buffers()[1], dtype=np.int64)[:n + 1]
    return joined.buffers()[2][int(offsets[0]):int(offsets[-1])].to_pybytes()


def _binary(segment: _Fixed | _Var, n: int) -> pa.Array:
    """A segment as an Arrow ``large_binary`` array over the same bytes (no copy)."""
    if isinstance(segment, _Fixed):
        data = np.ascontiguousarray(segment.data)
        offsets = np.arange(n + 1, dtype=np.int64) * data.shape[1]
    else:
        data = segment.data
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(segment.nbytes, out=offsets[1:])
    return pa.Array.from_buffers(pa.large_binary(), n,
                                 [None, pa.py_buffer(offsets), pa.py_buffer(data)])


class Base64Stream:
    """base64 over a sequence of byte strings, without padding between them.

    pybase64 (SIMD) instead of the standard library's ``binascii``: on a
    100,000-row result binascii took ~20 ms of the server's CPU, pybase64 ~4 ms.
    """

    def __init__(self) -> None:
        self._rest = b""

    def feed(self, data: bytes) -> bytes:
        """The base64 lines of the complete 3-byte groups so far; the rest waits."""
        data = self._rest + data
        cut = len(data) - len(data) % 3
        self._rest = data[cut:]
        if not cut:
            return b""
        return pybase64.b64encode(memoryview(data)[:cut]) + b"\n"

    def close(self) -> bytes:
        """The base64 of the bytes left over (padded), ending the stream."""
        rest, self._rest = self._rest, b""
        return pybase64.b64encode(rest) + b"\n" if rest else b""
