"""The declaration, its TAP_SCHEMA rendering and its metadata quality."""

import re

import pytest
import sqlalchemy as sa
from astropy import units as u
from astropy.io.votable.ucd import check_ucd

from schema import tap_schema
from schema.tables import published_tables
from schema.vo import column_meta, table_meta

PUBLISHED = published_tables()
COLUMNS = [(t, c) for t in PUBLISHED for c in t.columns]
IDS = [f"{t.schema}.{t.name}.{c.name}" for t, c in COLUMNS]
# UCD families whose numeric quantities carry a physical dimension.
DIMENSIONAL = re.compile(r"^(pos\.eq|em\.wl|time\.(start|end|duration|epoch)|phys\.temperature|"
                         r"phys\.gravity|spect\.dopplerVeloc|phys\.size)")
NUMERIC = {"short", "int", "long", "float", "double"}


def test_expected_tables_are_published():
    names = {f"{t.schema}.{t.name}" for t in PUBLISHED}
    assert {"latentvo.spectra", "latentvo.labels", "latentvo.latent", "latentvo.models",
            "latentvo.latent_dimensions", "latentvo.latent_mutual_information",
            "tap_schema.schemas", "tap_schema.tables", "tap_schema.columns",
            "tap_schema.keys", "tap_schema.key_columns"} <= names
    assert not any(t.schema == "latentvo_ops" for t in PUBLISHED)


@pytest.mark.parametrize("table, column", COLUMNS, ids=IDS)
def test_column_metadata_complete(table, column):
    meta = column_meta(column)
    assert meta.description and len(meta.description) > 10
    assert meta.ucd, "every published column needs a UCD"
    assert check_ucd(meta.ucd, check_controlled_vocabulary=True), meta.ucd
    if meta.unit is not None:
        # VOUnit allows functions of units, e.g. log(cm.s**-2); astropy parses the inside.
        inner = re.fullmatch(r"(?:log|ln|exp)\((.+)\)", meta.unit)
        u.Unit(inner.group(1) if inner else meta.unit, format="vounit")  # raises if invalid
    if meta.datatype in NUMERIC and DIMENSIONAL.match(meta.ucd) and "stat.error" not in meta.ucd:
        assert meta.unit, f"{column.name} ({meta.ucd}) is dimensional and needs a unit"


def test_table_metadata_complete():
    for table in PUBLISHED:
        assert table_meta(table).description


def test_vector_column_is_a_float_array():
    latent = next(t for t in PUBLISHED if t.name == "latent")
    meta = column_meta(latent.c.vec)
    assert (meta.datatype, meta.arraysize) == ("float", "*")


def test_tap_schema_rows_follow_the_declaration():
    rows = tap_schema.tap_schema_rows(PUBLISHED)
    columns = rows[tap_schema.columns]
    assert len(columns) == len(COLUMNS)
    for (table, column), row in zip(COLUMNS, columns, strict=True):
        meta = column_meta(column)
        assert row["table_name"] == f"{table.schema}.{table.name}"
        assert row["column_name"] == tap_schema.adql_name(column.name)
        assert (row["datatype"], row["arraysize"], row["xtype"]) == (
            meta.datatype, meta.arraysize, meta.xtype)
        assert (row["unit"], row["ucd"], row["utype"], row["description"]) == (
            meta.unit, meta.ucd, meta.utype, meta.description)
        assert (row["indexed"], row["principal"], row["std"]) == (
            int(meta.indexed), int(meta.principal), int(meta.std))
        assert row["column_index"] == list(table.columns).index(column)
    # TAP_SCHEMA describes itself and the foreign keys between its tables.
    key_ids = {r["key_id"] for r in rows[tap_schema.keys]}
    assert "tap_schema.columns.table_name" in key_ids
    assert "latentvo.labels.spectrum_id" in key_ids


def test_tap_schema_in_database_matches_declaration(database):
    with database.reader_engine.connect() as conn:
        stored = conn.execute(sa.text(
            'SELECT table_name, column_name, datatype, arraysize, xtype, "size", unit, ucd, '
            "utype, description, indexed, principal, std, column_index FROM tap_schema.columns "
            "ORDER BY table_name, column_index")).mappings().all()
    # Other tests may publish catalogues into the same database: compare the declared ones.
    declared = {f"{t.schema}.{t.name}" for t in PUBLISHED}
    stored = [row for row in stored if row["table_name"] in declared]
    expected = sorted(tap_schema.tap_schema_rows(PUBLISHED)[tap_schema.columns],
                      key=lambda r: (r["table_name"], r["column_index"]))
    assert len(stored) == len(expected)
    for got, want in zip(stored, expected, strict=True):
        want = dict(want, size=want.pop("size_"))
        assert dict(got) == want


def test_size_is_integer_part_of_1d_arraysize():
    assert tap_schema._size("16") == 16
    assert tap_schema._size("64*") == 64
    assert tap_schema._size("*") is None
    assert tap_schema._size("2x3") is None
    assert tap_schema._size(None) is None
