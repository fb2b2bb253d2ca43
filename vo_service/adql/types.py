"""ADQL value types, as far as translation and result metadata need them.

A type is a short string. The translator infers one for every expression so
that it can pick the right PostgreSQL form (integer vs float arithmetic,
boolean comparisons, geometry) and describe each result column with a
VOTable datatype, arraysize and DALI xtype.
"""

from __future__ import annotations

SMALLINT = "smallint"
INTEGER = "integer"
BIGINT = "bigint"
REAL = "real"
DOUBLE = "double"
TEXT = "text"
BOOLEAN = "boolean"
TIMESTAMP = "timestamp"
POINT = "point"
CIRCLE = "circle"
POLYGON = "polygon"
VECTOR = "vector"  # pgvector latent vector
ARRAY = "array"  # any other array (uploads): selectable, not computable
BYTES = "bytes"
NULL = "null"  # the NULL literal: fits anything

INTEGERS = (SMALLINT, INTEGER, BIGINT)
FLOATS = (REAL, DOUBLE)
NUMERICS = INTEGERS + FLOATS
GEOMETRIES = (POINT, CIRCLE, POLYGON)

# PostgreSQL spelling of the types the translator casts to.
SQL_NAMES = {
    SMALLINT: "SMALLINT", INTEGER: "INTEGER", BIGINT: "BIGINT", REAL: "REAL",
    DOUBLE: "DOUBLE PRECISION", TEXT: "TEXT", BOOLEAN: "BOOLEAN", TIMESTAMP: "TIMESTAMP",
}

_VOTABLE = {
    SMALLINT: ("short", None, None),
    INTEGER: ("int", None, None),
    BIGINT: ("long", None, None),
    REAL: ("float", None, None),
    DOUBLE: ("double", None, None),
    TEXT: ("char", "*", None),
    BOOLEAN: ("boolean", None, None),
    TIMESTAMP: ("char", "*", "timestamp"),
    POINT: ("double", "2", "point"),
    CIRCLE: ("double", "3", "circle"),
    POLYGON: ("double", "*", "polygon"),
    VECTOR: ("float", "*", None),
    ARRAY: ("double", "*", None),
    BYTES: ("unsignedByte", "*", None),
    NULL: ("char", "*", None),
}


def votable(type_: str) -> tuple[str, str | None, str | None]:
    """(datatype, arraysize, xtype) of a result column of this type."""
    return _VOTABLE[type_]


def from_votable(datatype: str, arraysize: str | None, xtype: str | None) -> str:
    """The type of a column described VOTable-style (published or uploaded)."""
    xtype = (xtype or "").lower()
    if xtype in ("point", "circle", "polygon"):
        return xtype
    if xtype in ("timestamp", "adql:timestamp"):
        return TIMESTAMP
    if datatype in ("char", "unicodeChar"):
        return TEXT
    if arraysize not in (None, "", "1"):
        return BYTES if datatype == "unsignedByte" else ARRAY
    return {
        "boolean": BOOLEAN, "short": SMALLINT, "int": INTEGER, "long": BIGINT,
        "float": REAL, "double": DOUBLE, "unsignedByte": SMALLINT, "bit": BOOLEAN,
    }.get(datatype, TEXT)


def numeric_result(a: str, b: str) -> str:
    """Type of a + b, a * b ... following PostgreSQL's promotion rules."""
    if a == NULL:
        return b if b in NUMERICS else DOUBLE
    if b == NULL:
        return a if a in NUMERICS else DOUBLE
    if a in FLOATS or b in FLOATS:
        return DOUBLE if DOUBLE in (a, b) else REAL
    order = {SMALLINT: 0, INTEGER: 1, BIGINT: 2}
    return max(a, b, key=order.__getitem__)


def common_type(types: list[str]) -> str:
    """The type of COALESCE/CASE/UNION over values of these types."""
    real = [t for t in types if t != NULL]
    if not real:
        return NULL
    if all(t in NUMERICS for t in real):
        result = real[0]
        for t in real[1:]:
            result = numeric_result(result, t)
        return result
    return real[0]
