"""A release's tables declared from the live ones: names, descriptions, sky positions."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from schema.releases import (
    RELEASE_TABLE_INDEX,
    name_problem,
    obscore_view_sql,
    release_tables,
    schema_description,
)
from schema.tables import published_tables
from schema.vo import table_meta
from vo_service.adql import Catalog, translate


@pytest.mark.parametrize("name", ["dr1", "dr2_fixed", "r" + "x" * 62])
def test_good_names(name):
    assert name_problem(name) is None


@pytest.mark.parametrize("name, why", [
    ("DR1", "lower-case"), ("1dr", "lower-case"), ("dr-1", "lower-case"), ("", "lower-case"),
    ("r" + "x" * 63, "lower-case"), ("latentvo", "schema of the service"),
    ("tap_upload", "schema of the service"), ("rr", "schema of the service"),
    ("pg_dr1", "PostgreSQL"), ("information_schema", "schema of the service"),
    ("select", "ADQL reserved word"), ("distance", "ADQL reserved word"),
])
def test_bad_names(name, why):
    assert why in name_problem(name)


def test_release_tables_describe_the_release_and_keep_the_positions():
    tables = {t.name: t for t in release_tables("dr1")}
    assert set(tables) == {"spectra", "models", "latent", "labels", "latent_dimensions",
                           "latent_mutual_information", "obscore"}
    live = {t.name: t for t in published_tables() if t.schema in ("latentvo", "ivoa")}
    for name, table in tables.items():
        assert table.schema == "dr1"
        meta, live_meta = table_meta(table), table_meta(live[name])
        assert meta.description.startswith("Data release dr1: ")
        assert meta.table_index == RELEASE_TABLE_INDEX + live_meta.table_index
        assert meta.position == live_meta.position
        assert [c.name for c in table.columns] == [c.name for c in live[name].columns]
        assert live_meta.description in meta.description  # the live one is left alone
    latent = tables["latent"]
    assert {fk.target_fullname for fk in latent.foreign_keys} == {
        "dr1.spectra.spectrum_id", "dr1.models.model_id"}


def test_a_cone_on_a_release_uses_its_healpix_index():
    catalog = Catalog.from_tables(release_tables("dr1"))
    for table in ("spectra", "obscore"):
        t = translate(f"SELECT obs_id FROM dr1.{table} WHERE 1 = CONTAINS(POINT('ICRS', s_ra, "
                      "s_dec), CIRCLE('ICRS', 10, 20, 0.5))", catalog)
        assert '"healpix_index" BETWEEN' in t.sql and '"dr1"."' in t.sql, t.sql


def test_the_view_names_the_release_and_refuses_a_bad_name():
    sql = obscore_view_sql("dr1")
    assert "'dr1'::text AS obs_collection" in sql and "FROM dr1.spectra AS s" in sql
    with pytest.raises(ValueError):
        obscore_view_sql("dr1; DROP SCHEMA latentvo")
    described = schema_description("dr1", "First", datetime(2026, 12, 7, tzinfo=UTC))
    assert described.startswith("Data release dr1: First.") and "2026-12-07" in described
