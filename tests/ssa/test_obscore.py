"""ivoa.obscore: the migrated view matches its declaration; access_url; TAP_SCHEMA."""

from __future__ import annotations

import httpx
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from schema.obscore import DATALINK_MIME, escape_id, obscore
from schema.vo import column_meta

MANDATORY = {"dataproduct_type", "calib_level", "obs_collection", "obs_id", "obs_publisher_did",
             "access_url", "access_format", "access_estsize", "target_name", "s_ra", "s_dec",
             "s_fov", "s_region", "s_resolution", "s_xel1", "s_xel2", "t_min", "t_max",
             "t_exptime", "t_resolution", "t_xel", "em_min", "em_max", "em_res_power", "em_xel",
             "o_ucd", "pol_states", "pol_xel", "facility_name", "instrument_name"}


def test_view_columns_follow_the_declaration(database):
    cols = sa.inspect(database.engine).get_columns("obscore", schema="ivoa")
    assert [c["name"] for c in cols] == [c.name for c in obscore.columns]
    for reflected, declared in zip(cols, obscore.columns, strict=True):
        pg = postgresql.dialect()
        assert reflected["type"].compile(dialect=pg) == declared.type.compile(dialect=pg), \
            declared.name
    assert MANDATORY <= {c.name for c in obscore.columns}
    for c in obscore.columns:
        if c.name in MANDATORY:
            assert column_meta(c).utype.startswith("obscore:") and column_meta(c).std


def test_access_url_and_reader(ssa_server, ssa_archive):
    """The reader sees the view; access_url starts with the transaction's base URL."""
    from vo_service.obscore import access_url_setup

    with ssa_archive.reader_engine.begin() as conn:
        bare = conn.scalar(sa.text("SELECT access_url FROM ivoa.obscore LIMIT 1"))
        conn.execute(sa.text(access_url_setup(ssa_server)))
        rows = conn.execute(sa.text(
            "SELECT obs_publisher_did, access_url, access_format, label_model_id, teff "
            "FROM ivoa.obscore ORDER BY obs_id")).all()
    assert bare.startswith("/datalink/links?ID=")  # no base set: the path alone
    assert rows
    for did, url, fmt, model, _teff in rows:
        assert url == f"{ssa_server}/datalink/links?ID={escape_id(did)}"
        assert fmt == DATALINK_MIME and model == "labels-ssa-1"
    r = httpx.get(rows[0].access_url)
    assert r.status_code == 200 and rows[0].obs_publisher_did.encode() in r.content


def test_access_url_quotes_the_base(database):
    """A base URL with a quote in it is a literal, not SQL."""
    from vo_service.obscore import access_url_setup

    base = "http://h'x/a;b"
    with database.reader_engine.begin() as conn:
        conn.execute(sa.text(access_url_setup(base)))
        assert conn.scalar(sa.text("SELECT current_setting('latentvo.public_base_url')")) == base


def test_escape_round_trips(ssa_server, ssa_archive):
    from urllib.parse import parse_qs, urlsplit

    for did in ("ivo://a/b?c", "ivo://a/b?x=1&y=2#z +%"):
        url = f"{ssa_server}/datalink/links?ID={escape_id(did)}"
        assert parse_qs(urlsplit(url).query)["ID"] == [did]
        with ssa_archive.engine.connect() as conn:
            sql = conn.scalar(sa.text(
                "SELECT replace(replace(replace(replace(replace(replace(replace(:d, '%', '%25'), "
                "' ', '%20'), '#', '%23'), '&', '%26'), '+', '%2B'), '?', '%3F'), '=', '%3D')"),
                {"d": did})
        assert sql == escape_id(did)


def test_tap_schema_describes_obscore(ssa_server, ssa_archive):
    import pyvo

    tap = pyvo.dal.TAPService(ssa_server + "/tap")
    res = tap.run_sync("SELECT column_name, utype, ucd, unit FROM tap_schema.columns "
                       "WHERE table_name = 'ivoa.obscore'")
    meta = {r["column_name"]: r for r in res}
    assert MANDATORY <= set(meta)
    assert meta["s_ra"]["utype"] == \
        "obscore:Char.SpatialAxis.Coverage.Location.Coord.Position2D.Value2.C1"
    assert meta["access_estsize"]["unit"] == "kbyte"
    t = tap.run_sync("SELECT table_type, utype FROM tap_schema.tables "
                     "WHERE table_name = 'ivoa.obscore'")
    assert t[0]["table_type"] == "view"
    assert t[0]["utype"] == "ivo://ivoa.net/std/ObsCore#table-1.1"
