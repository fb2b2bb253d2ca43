"""The declaration, its TAP_SCHEMA rendering and its metadata quality."""

import datetime as dt
import re

import pytest
import sqlalchemy as sa
from astropy import units as u
from astropy.io.votable.ucd import check_ucd

from schema import tap_schema
from schema.obscore import obscore
from schema.regtap import RR_SCHEMA
from schema.tables import (
    AUTOENCODER,
    LABEL_QUANTITIES,
    LABEL_REGRESSOR,
    LABEL_VALUES,
    MODEL_RANK,
    current_model_sql,
    labels,
    models,
    published_tables,
    spectra,
)
from schema.vo import HEALPIX_DEPTH, column_meta, table_meta

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
    if table.schema == RR_SCHEMA:  # RegTAP requires NULL UCDs and units for its columns
        assert meta.ucd is None and meta.unit is None
        return
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


def test_constants_come_from_the_declaration():
    assert LABEL_QUANTITIES == ("teff", "logg", "mh", "alpha_m")
    assert {type(q) for q in LABEL_QUANTITIES + LABEL_VALUES} == {str}  # artifacts store them
    assert set(LABEL_VALUES) == {c.name for c in labels.c} - {"spectrum_id", "model_id"}
    assert table_meta(obscore).position is table_meta(spectra).position
    assert table_meta(spectra).position.depth == HEALPIX_DEPTH
    with pytest.raises(ValueError, match="unknown model kind"):
        current_model_sql("label-regresor")


def test_current_model_is_newest_then_greatest_id(database, clean_archive):
    """latentvo.model_rank: one rule for "the current model" of each kind, which the
    SSA/DataLink SQL and the ObsCore view read (0003 and SSA had model_id DESC as tie
    break, DataLink ASC: the view settles it as DESC)."""
    day = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    entries = [("lab-a", LABEL_REGRESSOR, day), ("lab-b", LABEL_REGRESSOR, day),
               ("lab-old", LABEL_REGRESSOR, day - dt.timedelta(days=1)),
               ("ae-1", AUTOENCODER, day - dt.timedelta(days=2))]
    with database.engine.begin() as conn:
        conn.execute(models.insert(), [dict(
            model_id=model_id, kind=kind, created_at=created, architecture="{}",
            hyperparameters="{}", latent_dim=4 if kind == AUTOENCODER else None,
            wavelength_grid="{}", training_selection="test", training_checksum="0",
            code_version="test", random_seed=0, metrics="{}", artifact_path="none",
            artifact_sha256="0") for model_id, kind, created in entries])
        sid = conn.scalar(spectra.insert().returning(spectra.c.spectrum_id).values(
            obs_publisher_did="ivo://test/rank", obs_id="rank", obs_collection="test",
            s_ra=1.0, s_dec=2.0, healpix_index=0, em_min=4e-7, em_max=7e-7, em_xel=10,
            source_format="test", access_format="application/fits", access_estsize=1,
            file_sha256="rank", file_name="rank.fits", release="test"))
        conn.execute(labels.insert(), [dict(spectrum_id=sid, model_id=m, teff=5000.0 + i,
                                            in_domain=True)
                                       for i, m in enumerate(("lab-a", "lab-b", "lab-old"))])
    with database.reader_engine.connect() as conn:
        ranks = dict(conn.execute(sa.text(f"SELECT model_id, rank FROM {MODEL_RANK}")).all())
        current = {kind: conn.scalar(sa.text(f"SELECT {current_model_sql(kind)}"))
                   for kind in (LABEL_REGRESSOR, AUTOENCODER)}
        in_obscore = conn.execute(sa.text(
            "SELECT label_model_id, teff FROM ivoa.obscore WHERE spectrum_id = :s"),
            {"s": sid}).one()
    assert ranks == {"lab-b": 1, "lab-a": 2, "lab-old": 3, "ae-1": 1}
    assert current == {LABEL_REGRESSOR: "lab-b", AUTOENCODER: "ae-1"}
    assert tuple(in_obscore) == ("lab-b", 5001.0)
