"""Resolution, case rules, metadata and the SQL forms of each function family."""

from __future__ import annotations

import pytest

from schema.latent_index import index_plan
from tests.adql.tables import metadata
from vo_service.adql import ADQLSemanticError, ADQLSyntaxError, Catalog, CatalogColumn, translate


def sql(q, catalog, **kw):
    return translate(q, catalog, **kw).sql


# ------------------------------------------------------------------ resolution


def test_unknown_column_names_candidates(catalog):
    with pytest.raises(ADQLSemanticError) as exc:
        translate("SELECT s_raa FROM latentvo.spectra", catalog)
    e = exc.value
    assert (e.line, e.column, e.token) == (1, 8, "s_raa")
    assert "did you mean s_ra" in e.message


def test_unknown_table_names_candidates(catalog):
    with pytest.raises(ADQLSemanticError) as exc:
        translate("SELECT * FROM latentvo.spectrum", catalog)
    assert "unknown table latentvo.spectrum" in exc.value.message
    assert "latentvo.spectra" in exc.value.message


def test_ambiguous_column_names_both_tables(catalog):
    with pytest.raises(ADQLSemanticError) as exc:
        translate("SELECT spectrum_id FROM latentvo.labels, latentvo.latent", catalog)
    assert "ambiguous" in exc.value.message
    assert "labels.spectrum_id" in exc.value.message and "latent.spectrum_id" in exc.value.message


def test_using_join_merges_column(catalog):
    t = translate("SELECT spectrum_id, teff FROM latentvo.labels JOIN latentvo.latent "
                  "USING (spectrum_id, model_id)", catalog)
    assert [c.name for c in t.columns] == ["spectrum_id", "teff"]


def test_unknown_qualifier(catalog):
    with pytest.raises(ADQLSemanticError, match="names no table"):
        translate("SELECT x.s_ra FROM latentvo.spectra AS s", catalog)


def test_case_rules(catalog):
    # regular identifiers fold case, delimited ones are exact
    translate("SELECT S_RA, Snr FROM LATENTVO.Spectra", catalog)
    translate('SELECT "s_ra" FROM "latentvo"."spectra"', catalog)
    with pytest.raises(ADQLSemanticError):
        translate('SELECT "S_RA" FROM latentvo.spectra', catalog)
    with pytest.raises(ADQLSemanticError):
        translate('SELECT s_ra FROM latentvo."Spectra"', catalog)


def test_alias_case_rules(catalog):
    translate("SELECT S.s_ra FROM latentvo.spectra AS s", catalog)
    with pytest.raises(ADQLSemanticError):
        translate('SELECT s.s_ra FROM latentvo.spectra AS "S"', catalog)


def test_reserved_words_need_quotes(catalog):
    with pytest.raises(ADQLSyntaxError, match="reserved"):
        translate("SELECT s_ra AS size FROM latentvo.spectra", catalog)
    t = translate('SELECT s_ra AS "size" FROM latentvo.spectra', catalog)
    assert t.columns[0].name == "size"


def test_uploads_and_delimited_names():
    base = Catalog()
    cat = base.copy()
    cat.add_upload("t1", [CatalogColumn.from_votable("Weird Name", "double", unit="deg"),
                          CatalogColumn.from_votable("RA", "double")], sql_name="upload_t1")
    t = translate('SELECT "Weird Name", ra FROM TAP_UPLOAD.T1', cat)
    assert '"upload_t1"' in t.sql and '"Weird Name"' in t.sql
    assert t.columns[0].meta.unit == "deg"
    with pytest.raises(ADQLSemanticError):
        translate("SELECT * FROM TAP_UPLOAD.t1", base)  # the shared catalog has no upload


def test_correlated_subquery_and_cte(catalog):
    t = translate("WITH good AS (SELECT spectrum_id, teff FROM latentvo.labels WHERE in_domain "
                  "= 1) SELECT s.obs_id FROM latentvo.spectra AS s WHERE EXISTS (SELECT 1 FROM "
                  "good AS g WHERE g.spectrum_id = s.spectrum_id AND g.teff > 5000)", catalog)
    assert t.sql.startswith("WITH")


def test_derived_table_duplicate_names_are_ambiguous(catalog):
    with pytest.raises(ADQLSemanticError, match="ambiguous"):
        translate("SELECT q.spectrum_id FROM (SELECT * FROM latentvo.labels JOIN "
                  "latentvo.latent ON labels.spectrum_id = latent.spectrum_id) AS q", catalog)


# ------------------------------------------------------------------ metadata


def test_metadata_propagation(catalog):
    t = translate("SELECT s_ra, s_ra + 1 AS r1, 2 * s_dec AS d2, IN_UNIT(s_ra, 'arcsec') AS a, "
                  "DISTANCE(POINT(s_ra, s_dec), POINT(10, 20)) AS dist, COUNT(*) AS n, "
                  "POINT(s_ra, s_dec) AS p, CIRCLE(s_ra, s_dec, 1) AS c, "
                  "POLYGON(1, 2, 3, 4, 5, 6) AS poly, MAX(snr) AS m, snr / t_exptime AS rate "
                  "FROM latentvo.spectra GROUP BY s_ra, s_dec", catalog)
    cols = {c.name: c.meta for c in t.columns}
    assert cols["s_ra"].ucd == "pos.eq.ra;meta.main" and cols["s_ra"].description
    assert cols["r1"].unit == "deg" and cols["d2"].unit == "deg"
    assert cols["a"].unit == "arcsec"
    assert (cols["dist"].unit, cols["dist"].datatype) == ("deg", "double")
    assert cols["n"].datatype == "long"
    assert (cols["p"].datatype, cols["p"].arraysize, cols["p"].xtype) == ("double", "2", "point")
    assert (cols["c"].arraysize, cols["c"].xtype) == ("3", "circle")
    assert (cols["poly"].arraysize, cols["poly"].xtype) == ("*", "polygon")
    assert cols["m"].datatype == "float" and cols["m"].ucd == "stat.snr"
    assert cols["rate"].unit is None or cols["rate"].unit == "/s"
    ts = [c.meta for c in translate("SELECT ingested_at, vec FROM latentvo.spectra JOIN "
                                    "latentvo.latent USING (spectrum_id)", catalog).columns]
    assert (ts[0].datatype, ts[0].xtype) == ("char", "timestamp")
    assert (ts[1].datatype, ts[1].arraysize) == ("float", "*")


def test_output_names_unique(catalog):
    t = translate("SELECT a.spectrum_id, b.spectrum_id, COUNT(*), 1+1 FROM latentvo.labels AS a,"
                  " latentvo.latent AS b GROUP BY a.spectrum_id, b.spectrum_id", catalog)
    assert [c.name for c in t.columns] == ["spectrum_id", "spectrum_id_2", "count", "col4"]


# ------------------------------------------------------------------ translation


@pytest.mark.parametrize("adql, expected", [
    ("LOG(snr)", "ln("), ("LOG10(snr)", "log("), ("TRUNCATE(snr, 2)", "trunc(CAST("),
    ("ROUND(snr, 1)", "round(CAST("), ("MOD(snr, 3)", "mod(CAST("), ("RAND()", "random()"),
    ("RAND(42)", "setseed("), ("ATAN2(snr, 1)", "atan2("), ("CEILING(snr)", "ceil("),
    ("POWER(snr, 2)", "power("), ("PI()", "pi()"), ("SQRT(snr)", "sqrt("),
    ("em_xel & 255", "&"), ("em_xel | 0x10", "| 16"), ("em_xel ^ 3", "#"), ("~em_xel", "~"),
    ("LOWER(target_name)", "lower("), ("target_name || '!'", "||"),
    ("COALESCE(snr, 0)", "COALESCE("), ("NULLIF(em_xel, 0)", "NULLIF("),
    ("CASE WHEN snr > 10 THEN 'good' ELSE 'bad' END", "CASE WHEN"),
    ("CAST(em_xel AS DOUBLE PRECISION)", "AS DOUBLE PRECISION)"),
    ("CAST(target_name AS VARCHAR(10))", "VARCHAR(10)"),
    ("ivo_hasword(target_name, 'star')", "plainto_tsquery"),
    ("ivo_nocasematch(target_name, 'hd%')", "ILIKE"),
    ("ivo_interval_overlaps(em_min, em_max, 5e-7, 6e-7)", "<="),
    ("ivo_to_mjd(ingested_at)", "EXTRACT(EPOCH"),
])
def test_function_forms(catalog, adql, expected):
    assert expected in sql(f"SELECT {adql} AS x FROM latentvo.spectra", catalog)


def test_integer_division_stays_integer(catalog):
    t = translate("SELECT em_xel / 2 AS h, snr / 2 AS f FROM latentvo.spectra", catalog)
    assert [c.meta.datatype for c in t.columns] == ["int", "float"]


def test_top_offset_maxrec(catalog):
    q = "SELECT TOP 10 obs_id FROM latentvo.spectra ORDER BY obs_id OFFSET 5"
    assert sql(q, catalog).endswith("LIMIT 10 OFFSET 5")
    assert sql(q, catalog, maxrec=3).endswith("LIMIT 4 OFFSET 5")
    assert sql("SELECT obs_id FROM latentvo.spectra", catalog, maxrec=0).endswith("LIMIT 0")
    assert "LIMIT" not in sql("SELECT obs_id FROM latentvo.spectra", catalog)


def test_order_by_forms(catalog):
    s = sql("SELECT obs_id AS o, snr FROM latentvo.spectra ORDER BY 2 DESC, o, "
            "LOG10(snr + 1) ASC", catalog)
    assert 'ORDER BY 2 DESC, "o" ASC, log(' in s
    with pytest.raises(ADQLSemanticError):
        translate("SELECT obs_id FROM latentvo.spectra ORDER BY 3", catalog)


def test_set_operations(catalog):
    s = sql("SELECT spectrum_id FROM latentvo.labels UNION ALL SELECT TOP 3 spectrum_id FROM "
            "latentvo.latent ORDER BY 1", catalog)
    assert "UNION ALL" in s and "LIMIT 3" in s and s.endswith("ORDER BY 1 ASC")
    with pytest.raises(ADQLSemanticError, match="columns"):
        translate("SELECT spectrum_id, model_id FROM latentvo.labels EXCEPT SELECT spectrum_id "
                  "FROM latentvo.latent", catalog)


def test_boolean_literals_compare_with_booleans(catalog):
    for lit in ("1", "'True'", "TRUE", "'t'"):
        assert '"in_domain" = TRUE' in sql(
            f"SELECT COUNT(*) FROM latentvo.labels WHERE in_domain = {lit}", catalog)


def test_cone_uses_healpix_ranges(catalog):
    for cond in ("1 = CONTAINS(POINT('ICRS', s_ra, s_dec), CIRCLE('ICRS', 10, 20, 0.1))",
                 "CONTAINS(POINT(s_ra, s_dec), CIRCLE(10, 20, 0.1)) = 1",
                 "DISTANCE(POINT(s_ra, s_dec), POINT(10, 20)) < 0.1",
                 "0.1 >= DISTANCE(s_ra, s_dec, 10, 20)",
                 "1 = INTERSECTS(CIRCLE(10, 20, 0.1), POINT(s_ra, s_dec))",
                 "1 = CONTAINS(POINT(s_ra, s_dec), POLYGON(9, 19, 11, 19, 11, 21, 9, 21))",
                 "1 = CONTAINS(POINT(s_ra, s_dec), BOX(10, 20, 1, 1))"):
        s = sql(f"SELECT obs_id FROM latentvo.spectra WHERE {cond}", catalog)
        assert '"healpix_index" BETWEEN' in s, cond


def test_geometry_rejections(catalog):
    for q, msg in [
        ("SELECT POINT('GALACTIC', s_ra, s_dec) FROM latentvo.spectra", "not supported"),
        ("SELECT obs_id FROM latentvo.spectra WHERE POINT(s_ra, s_dec) = POINT(1, 2)",
         "cannot be compared"),
        ("SELECT REGION('Circle ICRS 1 2 3') FROM latentvo.spectra", "REGION"),
        ("SELECT obs_id FROM latentvo.spectra WHERE 1 = CONTAINS(POINT(s_ra, s_dec), "
         "POLYGON(s_ra, s_dec, 1, 2, 3, 4))", "constant vertices"),
    ]:
        with pytest.raises(ADQLSemanticError, match=msg):
            translate(q, catalog)


def index_branch(sql: str) -> str:
    """The index-served query of a guarded top-k (``latent.complete_top_k``)."""
    assert sql.startswith('SELECT * FROM (WITH "ann'), sql
    return sql.split(" AS MATERIALIZED (", 1)[1].split(') SELECT * FROM "ann', 1)[0]


def test_latent_top_k_uses_model_index(catalog):
    t = translate("SELECT TOP 10 id, lvo_latent_distance(vec, (SELECT vec FROM "
                  "adql_test.vectors WHERE id = 5 AND model_id = 'm8')) AS d FROM "
                  "adql_test.vectors WHERE model_id = 'm8' ORDER BY d", catalog)
    assert 'CAST("t1"."vec" AS vector(8)) <->' in t.sql
    ann = index_branch(t.sql)
    assert "ORDER BY (CAST(" in ann and ann.endswith("ASC LIMIT 10")
    assert "AS vector(8))) + 0) ASC LIMIT 10) AS" in t.sql  # the exact fallback
    assert t.session_settings == {"hnsw.ef_search": "40", "hnsw.iterative_scan": "strict_order"}
    t = translate("SELECT TOP 500 id, lvo_latent_similarity(vec, '[1,0,0,0]') AS s FROM "
                  "adql_test.vectors WHERE model_id = 'm4' ORDER BY s DESC", catalog)
    assert index_branch(t.sql).endswith("AS vector(4))) ASC LIMIT 500")
    assert t.session_settings["hnsw.ef_search"] == "1000"


@pytest.mark.parametrize("query", [
    "SELECT TOP 501 id FROM adql_test.vectors WHERE model_id = 'm8' ORDER BY {d}",
    "SELECT id FROM adql_test.vectors WHERE model_id = 'm8' ORDER BY {d}",
    "SELECT TOP 10 id FROM adql_test.vectors WHERE model_id = 'm8' AND id > 3 ORDER BY {d}",
    "SELECT TOP 10 id FROM adql_test.vectors WHERE model_id = 'm8' ORDER BY {d} OFFSET 2",
    "SELECT TOP 10 id FROM adql_test.vectors WHERE model_id = 'm8' ORDER BY {d}, id",
    "SELECT DISTINCT TOP 10 id FROM adql_test.vectors WHERE model_id = 'm8' ORDER BY {d}",
    "SELECT TOP 10 v.id FROM adql_test.vectors AS v JOIN adql_test.points AS p "
    "ON p.id = v.id WHERE v.model_id = 'm8' ORDER BY {d}",
])
def test_latent_orderings_the_index_cannot_complete_are_exact(catalog, query):
    """Without TOP, above the index's TOP, with other conditions, joins, OFFSET or more
    keys, an index scan could come back short: the key is one no index serves."""
    t = translate(query.format(d="lvo_latent_distance(vec, '[1,2,3,4,5,6,7,8]')"), catalog,
                  maxrec=20_000)
    assert "MATERIALIZED" not in t.sql and t.session_settings == {}
    assert "AS vector(8))) + 0) ASC" in t.sql
    # no model condition: still correct, no index form
    t = translate("SELECT TOP 3 id FROM adql_test.vectors ORDER BY "
                  "lvo_latent_distance(vec, '[1,2,3,4]')", catalog)
    assert "vector(" not in t.sql.replace("AS vector)", "")


def test_latent_expression_follows_the_index_plan():
    """The distance is built by the model's IndexPlan: halfvec above 2,000 dimensions,
    the index's metric only (another metric stays uncast and gets no search settings)."""
    wide = Catalog.from_tables(list(metadata.sorted_tables),
                               latent_index=lambda model_id: index_plan(2048, "cosine"))
    t = translate("SELECT TOP 20 id, lvo_latent_similarity(vec, '[1,0]') AS s FROM "
                  "adql_test.vectors WHERE model_id = 'w' ORDER BY s DESC", wide)
    order = index_branch(t.sql).split(" ORDER BY ")[1]
    assert order == ('(CAST("t1"."vec" AS halfvec(2048)) <=> '
                     "CAST(CAST('[1,0]' AS vector) AS halfvec(2048))) ASC LIMIT 20")
    assert t.session_settings == index_plan(2048, "cosine").session_settings(20)
    t = translate("SELECT TOP 20 id FROM adql_test.vectors WHERE model_id = 'w' "
                  "ORDER BY lvo_latent_distance(vec, '[1,0]')", wide)
    assert "halfvec" not in t.sql and t.session_settings == {}


def test_udf_must_exist(catalog):
    with pytest.raises(ADQLSemanticError, match="unknown function"):
        translate("SELECT my_func(snr) FROM latentvo.spectra", catalog)


def test_cli(tmp_path):
    from typer.testing import CliRunner

    from vo_service.adql.cli import QueryError, adql_app

    runner = CliRunner()
    ok = runner.invoke(adql_app, ["translate", "SELECT TOP 1 obs_id FROM latentvo.spectra"])
    assert ok.exit_code == 0 and "LIMIT 1" in ok.output
    bad = runner.invoke(adql_app, ["parse", "SELECT FROM WHERE"])
    assert isinstance(bad.exception, QueryError) and "line 1" in str(bad.exception)
    assert runner.invoke(adql_app, ["parse", "SELECT a FROM b"]).exit_code == 0
