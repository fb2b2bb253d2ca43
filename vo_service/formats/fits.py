"""FITS binary table output, streamed through a spool file.

A FITS header must state the number of rows (NAXIS2) and the heap size
(PCOUNT) before the first row, and a streamed query result only knows them
at its end. Counting first would run the query twice (or need a second
consistent snapshot); holding the rows in memory breaks the flat-memory rule.
So the rows are *spooled*: fixed-width row bytes go to one temporary file,
variable-length data (strings, ``arraysize="*"`` arrays, as ``P``
descriptors) to a second one (the heap); when the result ends, the header is
written and both files are streamed out. Memory stays flat; the first byte
leaves only after the query has finished (the price of FITS).

The cells are encoded by the BINARY2 encoder (both formats are big-endian),
with FITS conventions for nulls: NaN for floats, ``TNULLn`` for integers,
0 for booleans, empty strings and arrays for variable columns.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator

import numpy as np
import pyarrow as pa
from astropy.io import fits

from vo_service.formats import binary2
from vo_service.formats.fields import Field

_CODES = {"boolean": "L", "bit": "L", "unsignedByte": "B", "short": "I", "int": "J",
          "long": "K", "float": "E", "double": "D", "char": "A", "unicodeChar": "A"}
_TNULL = {"short": -(2**15), "int": -(2**31), "long": -(2**63)}
_BLOCK = 2880
_COPY_CHUNK = 1 << 20


class FITSWriter:
    """Writes a result as a FITS file: a primary HDU and one binary table (``RESULT``).

    ``rows`` only spools; the bytes come from :meth:`stream_all` once the result is
    complete (see the module's notes).

    Parameters
    ----------
    fields
        The result's columns.
    spool_dir
        Where the two spool files are created (the system's temporary folder if None).
    """

    def __init__(self, fields: list[Field], spool_dir: str | None = None) -> None:
        self.fields = fields
        self._rows = tempfile.TemporaryFile(dir=spool_dir)
        self._heap = tempfile.TemporaryFile(dir=spool_dir)
        self._nrows = 0
        self._heap_size = 0
        self._max = [0] * len(fields)  # longest variable cell per column (TFORM P...(max))
        self._variable = [(f.is_text and "*" in (f.meta.arraysize or "*"))
                          or (f.is_array and f.fixed_count is None) for f in fields]
        self._width: int | None = None
        self._widths: list[int] | None = None

    def header(self) -> bytes:
        """Nothing: the header is written at the end (:meth:`stream_all`)."""
        return b""  # written at the end, when NAXIS2 and PCOUNT are known

    def rows(self, batches: Iterable[pa.RecordBatch]) -> Iterator[bytes]:
        """Spool every batch; yields nothing."""
        for batch in batches:
            self._spool(batch)
        return iter(())

    def _spool(self, batch: pa.RecordBatch) -> None:
        n = batch.num_rows
        if not n:
            return
        columns = []
        for j, field in enumerate(self.fields):
            piece, valid = binary2.encode_column(batch.column(j), field)
            if isinstance(piece, binary2._Var):
                heap_start = np.zeros(n, dtype=np.int64)
                np.cumsum(piece.nbytes[:-1], out=heap_start[1:])
                heap_start += self._heap_size
                count = piece.nbytes if field.is_text else piece.counts
                self._max[j] = max(self._max[j], int(count.max(initial=0)))
                desc = np.empty((n, 2), dtype=">i4")
                desc[:, 0] = count
                desc[:, 1] = heap_start
                total = int(piece.nbytes.sum())
                self._heap.write(piece.data[:total].tobytes())
                self._heap_size += total
                columns.append(desc.view(np.uint8).reshape(n, 8))
                continue
            data = piece.data
            if field.meta.datatype in ("boolean", "bit"):
                data = np.where(data == 63, 0, data).astype(np.uint8)
            elif field.meta.datatype in _TNULL and not valid.all() and not field.is_array:
                fixed = data.copy().view(_BE[field.meta.datatype]).reshape(n)
                fixed[~valid] = _TNULL[field.meta.datatype]
                data = fixed.view(np.uint8).reshape(n, -1)
            columns.append(data)
        block = np.hstack(columns) if len(columns) > 1 else columns[0]
        self._widths = [c.shape[1] for c in columns]
        self._width = block.shape[1]
        self._rows.write(np.ascontiguousarray(block).tobytes())
        self._nrows += n

    def _row_width(self) -> int:
        width = 0
        for j, field in enumerate(self.fields):
            if self._variable[j]:
                width += 8
            else:
                size = {"L": 1, "B": 1, "I": 2, "J": 4, "K": 8, "E": 4, "D": 8, "A": 1}[
                    _CODES.get(field.meta.datatype, "A")]
                count = field.fixed_count or 1
                if field.meta.datatype == "unicodeChar":
                    size = 2
                width += size * count
        return width

    def _table_header(self) -> bytes:
        header = fits.Header()
        header["XTENSION"] = "BINTABLE"
        header["BITPIX"] = 8
        header["NAXIS"] = 2
        header["NAXIS1"] = self._final_width()
        header["NAXIS2"] = self._nrows
        header["PCOUNT"] = self._heap_size
        header["GCOUNT"] = 1
        header["TFIELDS"] = len(self.fields)
        for i, field in enumerate(self.fields, start=1):
            code = _CODES.get(field.meta.datatype, "A")
            if self._fixed_text(i - 1):
                tform = f"{max(self._max[i - 1], 1)}A"
            elif self._variable[i - 1]:
                tform = f"P{code}({self._max[i - 1]})"
            elif field.is_text or field.is_array:
                count = field.fixed_count or 1
                tform = f"{count * (2 if field.meta.datatype == 'unicodeChar' else 1)}{code}"
            else:
                tform = code
            header[f"TTYPE{i}"] = field.name
            header[f"TFORM{i}"] = tform
            if field.meta.unit:
                header[f"TUNIT{i}"] = field.meta.unit
            if field.meta.datatype in _TNULL and not field.is_array:
                header[f"TNULL{i}"] = _TNULL[field.meta.datatype]
            if field.is_array and field.meta.arraysize and "x" in field.meta.arraysize \
                    and "*" not in field.meta.arraysize:
                header[f"TDIM{i}"] = "(" + ",".join(field.meta.arraysize.split("x")) + ")"
            if field.meta.ucd:
                header[f"TUCD{i}"] = field.meta.ucd
        header["EXTNAME"] = "RESULT"
        return header.tostring().encode("ascii")

    def footer(self, *, overflow: bool = False, error: str | None = None) -> bytes:
        """Nothing: the document is assembled by :meth:`stream_all`."""
        # Assembled by ``stream_all``; footer() itself adds nothing.
        return b""

    def _fixed_text(self, j: int) -> bool:
        """Variable-length ``char`` columns are written as fixed-width ``nA`` at the end.

        (Readers such as astropy turn ``PA`` columns into character arrays; the widest
        value is known once the result is complete.) Their bytes stay in the heap,
        unreferenced, which FITS allows.
        """
        return self._variable[j] and self.fields[j].meta.datatype == "char"

    def _final_width(self) -> int:
        if self._widths is None:
            return self._row_width()
        return sum(max(self._max[j], 1) if self._fixed_text(j) else w
                   for j, w in enumerate(self._widths))

    def _rows_out(self) -> Iterator[bytes]:
        """The spooled rows, with variable text cells turned into fixed-width ones."""
        self._rows.seek(0)
        texts = [j for j in range(len(self.fields)) if self._fixed_text(j)]
        if not texts or self._widths is None or self._width is None:  # (set together)
            while chunk := self._rows.read(_COPY_CHUNK):
                yield chunk
            return
        self._heap.flush()
        heap = (np.memmap(self._heap, dtype=np.uint8, mode="r") if self._heap_size
                else np.zeros(0, np.uint8))
        width = self._width
        starts = np.concatenate([[0], np.cumsum(self._widths)])
        rows_per_chunk = max(1, _COPY_CHUNK // width)
        while data := self._rows.read(rows_per_chunk * width):
            block = np.frombuffer(data, dtype=np.uint8).reshape(-1, width)
            n = block.shape[0]
            parts = []
            for j in range(len(self.fields)):
                cell = block[:, starts[j]:starts[j + 1]]
                if j not in texts:
                    parts.append(cell)
                    continue
                desc = np.ascontiguousarray(cell).view(">i4").reshape(n, 2).astype(np.int64)
                counts, offsets = desc[:, 0], desc[:, 1]
                size = max(self._max[j], 1)
                out = np.zeros((n, size), dtype=np.uint8)
                total = int(counts.sum())
                if total:
                    row_of = np.repeat(np.arange(n), counts)
                    within = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
                    out[row_of, within] = heap[np.repeat(offsets, counts) + within]
                parts.append(out)
            yield np.hstack(parts).tobytes()

    def stream_all(self, *, overflow: bool = False) -> Iterator[bytes]:
        """Primary HDU, table header, spooled rows, heap, padding; closes the spools."""
        try:
            primary = fits.Header()
            primary["SIMPLE"] = True
            primary["BITPIX"] = 8
            primary["NAXIS"] = 0
            primary["EXTEND"] = True
            if overflow:
                primary["COMMENT"] = "QUERY_STATUS=OVERFLOW: result truncated at MAXREC rows"
            yield primary.tostring().encode("ascii")
            yield self._table_header()
            size = 0
            for chunk in self._rows_out():
                size += len(chunk)
                yield chunk
            self._heap.seek(0)
            while chunk := self._heap.read(_COPY_CHUNK):
                size += len(chunk)
                yield chunk
            if size % _BLOCK:
                yield b"\0" * (_BLOCK - size % _BLOCK)
        finally:
            self.close()

    def close(self) -> None:
        """Close (and so delete) the spool files."""
        self._rows.close()
        self._heap.close()


_BE = {"short": ">i2", "int": ">i4", "long": ">i8"}
