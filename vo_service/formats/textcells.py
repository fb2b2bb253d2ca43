"""Cell text of whole Arrow columns, for the text serialisations (TABLEDATA, CSV, TSV).

Each function maps an Arrow array to an Arrow string array of cell texts in
one vectorised pass (Arrow compute kernels, no Python per value), and
:func:`join_rows` glues columns and rows together the same way; the bytes of
a batch are then the data buffer of the joined array.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from vo_service.formats.fields import Field, coerce


def _float_text(strings: pa.Array) -> pa.Array:
    """Arrow prints nan/inf; VOTable and DALI want NaN and +Inf/-Inf."""
    strings = pc.replace_substring(strings, "nan", "NaN")
    strings = pc.replace_substring(strings, "inf", "+Inf")
    return pc.replace_substring(strings, "-+Inf", "-Inf")


def cell_text(array: pa.Array, field: Field, *, true: str = "T", false: str = "F") -> pa.Array:
    """Plain text of every cell (nulls stay null)."""
    array = coerce(array, field)
    typ = array.type
    if pa.types.is_string(typ):
        return array
    if pa.types.is_boolean(typ):
        return pc.if_else(array, true, false)
    if pa.types.is_list(typ):
        values = pc.cast(array, pa.list_(pa.string()))
        text = pc.binary_join(values, " ")
        if pa.types.is_floating(typ.value_type):
            text = _float_text(text)
        return text
    text = pc.cast(array, pa.string())
    if pa.types.is_floating(typ):
        text = _float_text(text)
    return text


def xml_escape(strings: pa.Array) -> pa.Array:
    """XML text of every string (``&``, ``<``, ``>`` escaped; characters XML forbids: ``?``)."""
    strings = pc.replace_substring(strings, "&", "&amp;")
    strings = pc.replace_substring(strings, "<", "&lt;")
    strings = pc.replace_substring(strings, ">", "&gt;")
    # Characters XML 1.0 cannot carry at all.
    return pc.replace_substring_regex(strings, "[\x00-\x08\x0b\x0c\x0e-\x1f]", "?")


def join_rows(cells: list[pa.Array], *, prefix: str, separator: str, suffix: str) -> bytes:
    """``prefix + c1 + separator + c2 ... + suffix`` for every row, concatenated."""
    if not cells:
        return b""
    filled = [pc.fill_null(c, "") for c in cells]
    rows = pc.binary_join_element_wise(*filled, separator)
    if prefix or suffix:
        rows = pc.binary_join_element_wise(pa.scalar(prefix), rows, pa.scalar(suffix), "")
    if isinstance(rows, pa.ChunkedArray):
        rows = rows.combine_chunks()
    bufs = rows.buffers()
    if bufs[2] is None:
        return b""
    offsets = pa.Array.from_buffers(pa.int32(), len(rows) + 1, [None, bufs[1]],
                                    offset=rows.offset)
    start, end = offsets[0].as_py(), offsets[len(rows)].as_py()
    return bufs[2].to_pybytes()[start:end] if start else bufs[2].to_pybytes()[:end]
