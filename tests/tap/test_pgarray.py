"""Arrays fetched as ``array_send`` bytes decode to what ADBC makes of the arrays.

The same cells are read twice from a real PostgreSQL through the reader
connection of the TAP runner: once as arrays (ADBC's own decoding into Arrow
lists) and once as ``array_send`` bytes decoded by ``vo_service.tap.pgarray``.
The cells cover NULL arrays, NULL elements, empty and ragged arrays, several
dimensions, NaN and infinities, and every element type the decoder accepts.
"""

from __future__ import annotations

import math

import pytest

from schema.vo import ColumnMeta
from vo_service.adql import CatalogColumn
from vo_service.tap import pgarray
from vo_service.tap.runner import QueryRunner

CELLS = {
    "real": ["'{1.5,-2.25,3e-38,0}'", "'{NaN,Infinity,-Infinity,-0}'", "NULL",
             "'{1,2,3,4}'"],
    "double precision": ["'{1.0000000001,2}'", "'{}'", "NULL", "'{3,4,5}'", "'{7}'"],
    "smallint": ["'{1,-2}'", "'{32767,-32768}'"],
    "integer": ["'{2147483647}'", "'{-1,0,1}'", "NULL"],
    "bigint": ["'{9007199254740993,-5}'", "'{}'"],
}
AWKWARD = {  # cells that take the row-by-row path
    "real": ["'{1,NULL,3}'", "'{4,5,6}'", "NULL"],
    "double precision": ["'{{1,2},{3,4}}'", "'{5}'"],
}


def _rows(runner: QueryRunner, sql: str) -> list:
    conn = runner.acquire()
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            table = cur.fetch_arrow_table()
        conn.rollback()
    finally:
        runner.release(conn)
    return table


def _same(a, b) -> bool:
    if a is None or b is None:
        return a is b
    return len(a) == len(b) and all(
        (x is None and y is None) or (x is not None and y is not None and (
            (math.isnan(x) and math.isnan(y)) or (x == y and math.copysign(1, x) ==
                                                  math.copysign(1, y))))
        for x, y in zip(a, b, strict=True))


def _values(sql_type: str, cells: list[str]) -> str:
    return " UNION ALL ".join(f"SELECT {i} AS i, {c}::{sql_type}[] AS a"
                              for i, c in enumerate(cells))


@pytest.mark.parametrize("cases", [CELLS, AWKWARD], ids=["vectorised", "row-by-row"])
def test_decoded_cells_equal_adbc_lists(database, cases):
    runner = QueryRunner(database)
    try:
        for sql_type, cells in cases.items():
            source = _values(sql_type, cells)
            plain = _rows(runner, f"SELECT a FROM ({source}) AS s ORDER BY i")
            sent = _rows(runner, f"SELECT array_send(a) AS a FROM ({source}) AS s ORDER BY i")
            decoded = pgarray.decode(sent.column("a")).to_pylist()
            expected = [None if v is None else _flatten(v) for v in
                        plain.column("a").to_pylist()]
            assert len(decoded) == len(cells)
            for cell, got, want in zip(cells, decoded, expected, strict=True):
                assert _same(got, want), (sql_type, cell, got, want)
    finally:
        runner.close()


def _flatten(value):
    if isinstance(value, list) and value and isinstance(value[0], list):
        return [x for part in value for x in _flatten(part)]
    return value


def test_only_numeric_array_columns_are_sent():
    columns = [CatalogColumn("v", "array", ColumnMeta("float", "16")),
               CatalogColumn("p", "point", ColumnMeta("double", "2", "point")),
               CatalogColumn("vec", "vector", ColumnMeta("float", "*")),
               CatalogColumn("name", "text", ColumnMeta("char", "*")),
               CatalogColumn("d", "array", ColumnMeta("double", "*"))]
    assert pgarray.sent_columns(columns) == [0, 4]
    sql = pgarray.wrap("SELECT 1", columns, [0, 4])
    assert sql.startswith('SELECT array_send(q."v") AS "v", q."p", q."vec", q."name", '
                          'array_send(q."d") AS "d" FROM (SELECT 1) AS q')


def test_pgvector_cells_decode_like_their_arrays(database):
    """pgvector's binary cells (as ADBC hands them over) against the same vectors as
    ``real[]``: equal and ragged dimensions, NULLs."""
    from vo_service.formats.fields import Field, coerce

    runner = QueryRunner(database)
    field = Field.of("v", ColumnMeta("float", "*"))
    try:
        for cells in (["'[1,2,3]'", "'[-0.5,1e-30,3]'", "'[4,5,6]'"],
                      ["'[1,2,3]'", "NULL", "'[7]'", "'[1.5,2.5,3.5,4.5,5.5]'", "NULL"]):
            source = " UNION ALL ".join(f"SELECT {i} AS i, {c}::vector AS v"
                                        for i, c in enumerate(cells))
            vectors = _rows(runner, f"SELECT v FROM ({source}) AS s ORDER BY i")
            arrays = _rows(runner, f"SELECT v::real[] AS v FROM ({source}) AS s ORDER BY i")
            got = coerce(vectors.column("v"), field).to_pylist()
            assert got == arrays.column("v").to_pylist(), cells
    finally:
        runner.close()
