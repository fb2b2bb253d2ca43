"""Result columns as the output writers see them, and Arrow data coerced to them.

A :class:`Field` is a result column as a VOTable FIELD (and TAP_SCHEMA)
describes it: a name and the column's :class:`schema.vo.ColumnMeta`. Fields are
made in one place, :meth:`Field.of` (or :meth:`Field.from_column` for a declared
column), from metadata that comes from the schema declaration (directly, or
through the ADQL translation), so the writers never restate metadata.

Query results arrive as Arrow record batches (``vo_service.tap.runner``).
:func:`coerce` turns each column into the canonical Arrow type of its field
(``float`` -> float32, ``char`` -> string, arrays -> lists ...), so that every
writer deals with a handful of Arrow types only.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from schema.vo import ColumnMeta, column_meta

SCALAR_TYPES: dict[str, pa.DataType] = {
    "boolean": pa.bool_(),
    "bit": pa.bool_(),
    "unsignedByte": pa.uint8(),
    "short": pa.int16(),
    "int": pa.int32(),
    "long": pa.int64(),
    "float": pa.float32(),
    "double": pa.float64(),
    "char": pa.string(),
    "unicodeChar": pa.string(),
}

TEXT_DATATYPES = ("char", "unicodeChar")


FIELD_ATTRIBUTES = ("datatype", "arraysize", "xtype", "unit", "ucd", "utype", "description")
"""The :class:`ColumnMeta` attributes a VOTable FIELD (or a JSON column) shows."""


@dataclass(frozen=True)
class Field:
    """A named result column and its metadata, as the output writers read them."""

    name: str
    meta: ColumnMeta

    @classmethod
    def of(cls, name: str, meta: ColumnMeta) -> Field:
        """The field of a column called ``name`` described by ``meta``.

        The one conversion from column metadata to a writer's field: empty strings
        become None, ``bit`` columns (astropy's uploads) are served as ``boolean``,
        and a scalar text column becomes a variable-length string (``char`` ``*``).
        """
        clean = {key: (getattr(meta, key) or None) for key in FIELD_ATTRIBUTES}
        datatype = clean["datatype"] or "char"
        if datatype == "bit":
            datatype = "boolean"
        arraysize = clean["arraysize"]
        if datatype in TEXT_DATATYPES and arraysize in (None, "1"):
            arraysize = "*"
        changes: dict[str, Any] = {**clean, "datatype": datatype, "arraysize": arraysize}
        return cls(name, replace(meta, **changes))

    @classmethod
    def from_column(cls, column: sa.Column, name: str | None = None, **changes) -> Field:
        """The field of a declared column (``info["vo"]``), optionally renamed or with
        some metadata replaced (e.g. SSA's utype)."""
        return cls.of(name or column.name, replace(column_meta(column), **changes))

    def attributes(self) -> dict[str, str]:
        """Name and the FIELD attributes that are set, in VOTable's order."""
        shown = {key: getattr(self.meta, key) for key in FIELD_ATTRIBUTES}
        return {"name": self.name, **{k: v for k, v in shown.items() if v is not None}}

    @property
    def is_text(self) -> bool:
        return self.meta.datatype in TEXT_DATATYPES

    @property
    def is_array(self) -> bool:
        """A non-text column with an arraysize (latent vectors, points...)."""
        return not self.is_text and self.meta.arraysize is not None

    @property
    def fixed_count(self) -> int | None:
        """Number of elements of a fixed-size array ("16", "3x4"), None if variable."""
        arraysize = self.meta.arraysize
        if arraysize is None or "*" in arraysize:
            return None
        return int(np.prod([int(p) for p in arraysize.split("x")]))

    @property
    def arrow_type(self) -> pa.DataType:
        scalar = SCALAR_TYPES.get(self.meta.datatype, pa.string())
        return pa.list_(scalar) if self.is_array else scalar


def _storage(array: pa.Array) -> pa.Array:
    return array.storage if isinstance(array.type, pa.BaseExtensionType) else array


def _pgvector(array: pa.Array) -> pa.Array:
    """Decode pgvector's binary form (int16 dim, int16 unused, dim float32 BE) to lists.

    With numpy over the whole column: a reshape when every vector has the same
    dimension (a model's latent vectors do), index arithmetic otherwise.
    """
    n = len(array)
    if n == 0:  # (the offsets buffer of an empty array may be missing)
        return pa.array([], pa.list_(pa.float32()))
    valid = np.ones(n, bool) if array.null_count == 0 else \
        np.asarray(array.is_valid().to_numpy(zero_copy_only=False), bool)
    bufs = array.buffers()
    wide = pa.types.is_large_binary(array.type)
    offsets = np.frombuffer(bufs[1], np.int64 if wide else np.int32)[
        array.offset:array.offset + n + 1].astype(np.int64)
    data = np.frombuffer(bufs[2], np.uint8) if bufs[2] is not None else np.zeros(0, np.uint8)
    lengths = np.diff(offsets)
    nbytes = np.where(valid, lengths - 4, 0)
    if n and valid.all() and (lengths == lengths[0]).all():
        values = data[offsets[0]:offsets[-1]].reshape(n, lengths[0])[:, 4:]
    else:
        starts = np.repeat(offsets[:-1] + 4 - (np.cumsum(nbytes) - nbytes), nbytes)
        values = data[np.arange(nbytes.sum()) + starts]
    values = np.ascontiguousarray(values).reshape(-1).view(">f4").astype(np.float32)
    list_offsets = np.zeros(n + 1, np.int32)
    np.cumsum(nbytes // 4, out=list_offsets[1:])
    return pa.ListArray.from_arrays(pa.array(list_offsets), pa.array(values),
                                    mask=pa.array(~valid))


def _timestamp_text(array: pa.Array) -> pa.Array:
    if pa.types.is_date(array.type):
        return pc.strftime(array, format="%Y-%m-%d")
    unit = array.type.unit
    if unit in ("us", "ns", "ms"):
        # %S prints fractional seconds for sub-second units; DALI allows them.
        text = pc.strftime(array, format="%Y-%m-%dT%H:%M:%S")
        return pc.replace_substring_regex(text, r"\.?0+$", "")
    return pc.strftime(array, format="%Y-%m-%dT%H:%M:%S")


def coerce(array: pa.Array, field: Field) -> pa.Array:
    """``array`` converted to ``field.arrow_type`` (or a close relative for arrays)."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    typ = array.type
    if isinstance(typ, pa.BaseExtensionType):
        name = getattr(typ, "type_name", "")
        array = _storage(array)
        if name == "vector":
            array = _pgvector(array)
        typ = array.type
    target = field.arrow_type
    if typ == target:
        return array
    if field.is_text:
        if pa.types.is_timestamp(typ) or pa.types.is_date(typ):
            return _timestamp_text(array)
        if pa.types.is_binary(typ) or pa.types.is_large_binary(typ):
            return pc.cast(array, pa.string(), safe=False)
        if pa.types.is_list(typ) or pa.types.is_fixed_size_list(typ):
            return pc.binary_join(pc.cast(array, pa.list_(pa.string())), " ")
        return pc.cast(array, pa.string())
    if field.is_array:
        if pa.types.is_fixed_size_list(typ) or pa.types.is_large_list(typ):
            array = pc.cast(array, pa.list_(typ.value_type))
            typ = array.type
        if pa.types.is_list(typ):
            if typ.value_type != target.value_type:
                array = pc.cast(array, target)
            return array
        return pc.cast(array, target)
    if pa.types.is_string(typ) and pa.types.is_integer(target):
        return pc.cast(pc.cast(array, pa.float64()), target, safe=False)
    if pa.types.is_floating(typ) and pa.types.is_integer(target):
        return pc.cast(array, target, safe=False)
    return pc.cast(array, target, safe=False)
