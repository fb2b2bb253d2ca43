"""Valid ADQL 2.1 that other services' test queries use, run on the real database.

Each family parses, translates and returns the right rows from ``adql_test``
(through the read-only role): joins without ON/USING (NATURAL, as the ADQL 2.1
BNF gives them), ``--`` comments holding quotes, the IVOA ``ivo_`` UDFs, and
geometry constructors with computed arguments and coordinate systems. The
invalid forms (a geometry where a string is needed, a UDF called with the
wrong arguments) are rejected with the line and column of the culprit.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.adql.test_database import run
from vo_service.adql import ADQLError, ADQLSemanticError, features, parse, translate

P = "adql_test.points"


def column_of(query: str, text: str, occurrence: int = 1) -> int:
    """The 1-based column of the ``occurrence``-th ``text`` in a one-line query."""
    at = -1
    for _ in range(occurrence):
        at = query.index(text, at + 1)
    return at + 1


def assert_rejected_at(catalog, query: str, text: str, occurrence: int = 1,
                       message: str | None = None) -> ADQLError:
    with pytest.raises(ADQLError) as exc:
        translate(query, catalog)
    e = exc.value
    assert (e.line, e.column) == (1, column_of(query, text, occurrence)), e
    if message is not None:
        assert message in e.message
    return e


# ------------------------------------------------------------------ joins without ON/USING


def test_join_without_specification_is_natural():
    join = parse("SELECT * FROM t1 INNER JOIN t2").query.from_[0]
    assert join.natural and join.on is None and join.using is None
    left = parse("SELECT * FROM t1 LEFT OUTER JOIN t2").query.from_[0]
    assert left.natural and left.kind == "LEFT"


def test_join_without_specification_runs_on_common_columns(adql_db, catalog):
    # points and vectors share only "id": the join is on it
    rows = run(adql_db, catalog, f"SELECT id, model_id FROM {P} JOIN adql_test.vectors "
               "WHERE id <= 5")
    assert sorted(rows) == sorted((i, m) for i in range(1, 6) for m in ("m4", "m8"))
    rows = run(adql_db, catalog, f"SELECT a.id, b.model_id FROM {P} AS a INNER JOIN "
               "adql_test.vectors AS b WHERE a.id <= 5 AND b.model_id = 'm4'")
    assert sorted(rows) == [(i, "m4") for i in range(1, 6)]


def test_outer_join_without_specification(adql_db, catalog):
    p = adql_db.points
    rows = run(adql_db, catalog,
               f"SELECT a.id, b.mag FROM (SELECT id, n FROM {P} WHERE n = 3) AS a "
               f"LEFT OUTER JOIN (SELECT id, mag FROM {P} WHERE id < 3000) AS b")
    expected = p["id"][p["n"] == 3]
    assert sorted(r[0] for r in rows) == sorted(expected.tolist())
    for ident, mag in rows:
        if ident >= 3000:
            assert mag is None


def test_join_without_common_columns_pairs_every_row(adql_db, catalog):
    # SQL's NATURAL JOIN without common columns: a cross join, and an outer join
    # still keeps the rows of its preserved side when the other side is empty.
    a = f"(SELECT id AS x FROM {P} WHERE id <= 3) AS a"
    assert len(run(adql_db, catalog, f"SELECT x, y FROM {a} JOIN "
                   f"(SELECT id AS y FROM {P} WHERE id <= 2) AS b")) == 6
    rows = run(adql_db, catalog, f"SELECT x, y FROM {a} LEFT OUTER JOIN "
               f"(SELECT id AS y FROM {P} WHERE id < 0) AS b")
    assert sorted(rows) == [(1, None), (2, None), (3, None)]


def test_nested_parenthesised_joins(adql_db, catalog):
    a = f"(SELECT id, n FROM {P} WHERE id <= 10) AS a"
    b = f"(SELECT id, cat FROM {P} WHERE id <= 6) AS b"
    c = f"(SELECT id, mag FROM {P} WHERE id >= 4) AS c"
    left_deep = run(adql_db, catalog, f"SELECT id FROM ({a} JOIN {b}) JOIN {c}")
    right_deep = run(adql_db, catalog, f"SELECT id FROM {a} JOIN ({b} JOIN {c})")
    mixed = run(adql_db, catalog, f"SELECT a.id FROM ({a} JOIN {b} USING (id)) "
                f"LEFT OUTER JOIN {c} ON c.id = a.id")
    assert sorted(left_deep) == sorted(right_deep) == [(4,), (5,), (6,)]
    assert sorted(mixed) == [(i,) for i in range(1, 7)]


def test_natural_join_with_ambiguous_common_column_is_positioned(catalog):
    q = (f"SELECT * FROM {P} AS a JOIN {P} AS b ON a.id = b.id "
         "JOIN adql_test.vectors AS c")
    e = assert_rejected_at(catalog, q, "adql_test.points")
    assert "more than one column id" in e.message and "ON or USING" in e.message


# ------------------------------------------------------------------ comments


@pytest.mark.parametrize("query", [
    f"SELECT id FROM {P} WHERE id = 1 -- it's \"x\"",
    f"SELECT id FROM {P} WHERE id = 1 --it's",
    f"SELECT id -- the 'id' column\nFROM {P} -- \"points\"\nWHERE id = 1 -- o'hara\r\n",
    f"-- a 'quoted' header\nSELECT id FROM {P}\n-- between clauses: \"x\" 'y\nWHERE id = 1",
    f"SELECT id FROM {P} WHERE name <> 'a -- b' AND id = 1 -- 'c",
])
def test_comments_with_quotes(adql_db, catalog, query):
    assert run(adql_db, catalog, query) == [(1,)]


# ------------------------------------------------------------------ ivo_ UDFs


def test_ivo_udfs_are_declared():
    forms = {f.form.split("(")[0]: f for g in features.LANGUAGE_FEATURES for f in g.features
             if g.type.endswith("#features-udf")}
    for name in ("ivo_hasword", "ivo_nocasematch", "ivo_hashlist_has", "ivo_string_agg",
                 "ivo_interval_overlaps"):
        assert name in forms and forms[name].description


@pytest.mark.parametrize("condition, reference", [
    ("ivo_hasword(cat, 'EPS') = 1", lambda c: c == "delta eps"),
    ("ivo_hasword(cat, 'delt') = 1", lambda c: np.zeros(len(c), bool)),  # words, not prefixes
    ("ivo_hasword(name, 'OBJ') = 1", lambda c: np.ones(len(c), bool)),
    ("ivo_nocasematch(cat, 'gam%') = 1", lambda c: c == "Gamma"),
    ("ivo_nocasematch(cat, 'ALPHA') = 1", lambda c: c == "alpha"),
    ("ivo_hashlist_has('beta#GAMMA#x', cat) = 1", lambda c: np.isin(c, ["beta", "Gamma"])),
    ("ivo_hashlist_has('beta#GAMMA#x', cat) = 0", lambda c: ~np.isin(c, ["beta", "Gamma"])),
])
def test_ivo_string_udfs_match_reference(adql_db, catalog, condition, reference):
    p = adql_db.points
    got = {r[0] for r in run(adql_db, catalog, f"SELECT id FROM {P} WHERE {condition}")}
    assert got == set(p["id"][reference(p["cat"].astype(str))].tolist())


def test_ivo_interval_overlaps_closed_intervals(adql_db, catalog):
    p = adql_db.points
    got = {r[0] for r in run(adql_db, catalog, f"SELECT id FROM {P} WHERE "
                             "ivo_interval_overlaps(n, n + 2, 10, 12) = 1")}
    assert got == set(p["id"][(p["n"] >= 8) & (p["n"] <= 12)].tolist())
    rows = run(adql_db, catalog, f"SELECT ivo_interval_overlaps(1, 2, 2, 3), "
               f"ivo_interval_overlaps(1, 2, 2.5, 3), ivo_interval_overlaps(0.5, 0.5, 0, 1) "
               f"FROM {P} WHERE id = 1")
    assert rows == [(1, 0, 1)]


def test_ivo_string_agg_groups(adql_db, catalog):
    p = adql_db.points
    rows = run(adql_db, catalog, f"SELECT cat, ivo_string_agg(name, '|') FROM {P} "
               "WHERE id <= 50 GROUP BY cat")
    first = {k: set(v.split("|")) for k, v in rows}
    expected: dict[str, set[str]] = {}
    for cat, name in zip(p["cat"][:50], p["name"][:50], strict=True):
        expected.setdefault(str(cat), set()).add(str(name))
    assert first == expected
    rows = run(adql_db, catalog, f"SELECT ivo_string_agg(id, ',') FROM {P} WHERE id <= 3")
    assert sorted(rows[0][0].split(",")) == ["1", "2", "3"]


@pytest.mark.parametrize("query, culprit, message", [
    (f"SELECT ivo_hasword(name) FROM {P}", "ivo_hasword", "takes 2 argument(s)"),
    (f"SELECT id FROM {P} WHERE ivo_hasword(name, 'a', 'b') = 1", "ivo_hasword",
     "takes 2 argument(s)"),
    (f"SELECT ivo_string_agg(name) FROM {P}", "ivo_string_agg", "takes 2 argument(s)"),
    (f"SELECT ivo_interval_overlaps(1, 2, 3) FROM {P}", "ivo_interval_overlaps",
     "takes 4 argument(s)"),
    (f"SELECT ivo_hashlist_has(*) FROM {P}", "ivo_hashlist_has", "DISTINCT"),
    ("SELECT lvo_latent_component(vec) FROM adql_test.vectors", "lvo_latent_component",
     "takes 2 argument(s)"),
    (f"SELECT ivo_hasword(name, n) FROM {P}", "n)", "needs a string"),
    (f"SELECT ivo_nocasematch(flag, 'x') FROM {P}", "flag", "needs a string"),
    (f"SELECT ivo_interval_overlaps(1, 2, cat, 3) FROM {P}", "cat", "needs a number"),
    (f"SELECT ivo_hashlist_has(name, POINT(ra, dec)) FROM {P}", "POINT", "point"),
])
def test_udf_wrong_arguments_are_positioned(catalog, query, culprit, message):
    assert_rejected_at(catalog, query, culprit, message=message)


# ------------------------------------------------------------------ geometry constructors


def test_constructors_with_column_arguments(adql_db, catalog):
    p = adql_db.points
    rows = run(adql_db, catalog,
               f"SELECT id, POINT(ra, dec), CIRCLE(POINT(t.ra, t.dec), t.n), "
               f"CIRCLE('ICRS', POINT(ra, dec), 1), POINT(cat, ra, dec), "
               f"CIRCLE(cat || '', ra, dec, 0.5), BOX(ra, dec, 2, n), "
               f"BOX('ICRS', POINT(ra, dec), n, 1) FROM {P} AS t WHERE id <= 30 ORDER BY id")
    assert len(rows) == 30
    for ident, point, circle, icrs_circle, cs_point, cs_circle, box, point_box in rows:
        i = ident - 1
        ra, dec, n = float(p["ra"][i]), float(p["dec"][i]), float(p["n"][i])
        assert point == pytest.approx([ra, dec])
        assert circle == pytest.approx([ra, dec, n])
        assert icrs_circle == pytest.approx([ra, dec, 1.0])
        assert cs_point == pytest.approx([ra, dec])
        assert cs_circle == pytest.approx([ra, dec, 0.5])
        assert box == pytest.approx([ra - 1, dec - n / 2, ra + 1, dec - n / 2,
                                     ra + 1, dec + n / 2, ra - 1, dec + n / 2])
        assert point_box == pytest.approx([ra - n / 2, dec - 0.5, ra + n / 2, dec - 0.5,
                                           ra + n / 2, dec + 0.5, ra - n / 2, dec + 0.5])


def test_computed_coordinate_system_in_conditions(adql_db, catalog):
    plain = run(adql_db, catalog, f"SELECT id FROM {P} WHERE "
                "1 = CONTAINS(POINT(ra, dec), CIRCLE(10, 20, 0.2))")
    computed = run(adql_db, catalog, f"SELECT id FROM {P} WHERE "
                   "1 = CONTAINS(POINT(cat, ra, dec), CIRCLE(LOWER('ICRS'), 10, 20, 0.2))")
    assert plain and sorted(plain) == sorted(computed)


@pytest.mark.parametrize("query, culprit, message", [
    (f"SELECT POINT(name, dec) FROM {P}", "name", "numeric coordinates"),
    (f"SELECT POINT(ra, ra, dec) FROM {P}", "ra", "coordinate system"),
    (f"SELECT CIRCLE(POINT(ra, dec), cat) FROM {P}", "cat", "numeric coordinates"),
    (f"SELECT BOX(ra, dec, flag, 1) FROM {P}", "flag", "numeric coordinates"),
    (f"SELECT POLYGON(ra, dec, ra, cat, 1, 2) FROM {P}", "cat", "numeric coordinates"),
    (f"SELECT CIRCLE(ra, dec) FROM {P}", "CIRCLE", "CIRCLE([coordsys,] lon, lat, radius)"),
    (f"SELECT CIRCLE('GALACTIC', ra, dec, 1) FROM {P}", "'GALACTIC'", "not supported"),
    (f"SELECT id FROM {P} WHERE 1 = CONTAINS(POINT(ra, dec), BOX(ra, dec, 1, 1))",
     "CONTAINS", "constant vertices"),
])
def test_constructor_type_errors_are_positioned(catalog, query, culprit, message):
    assert_rejected_at(catalog, query, culprit, message=message)


# ------------------------------------------------------------------ geometries are no strings


@pytest.mark.parametrize("query, culprit", [
    (f"SELECT POINT(1, 2) || 'x' FROM {P}", "POINT"),
    (f"SELECT 'x' || CIRCLE(ra, dec, 1) FROM {P}", "CIRCLE"),
    (f"SELECT name || (cat || POLYGON(1, 2, 3, 4, 5, 6)) FROM {P}", "POLYGON"),
    (f"SELECT id FROM {P} WHERE name || POINT(ra, dec) = 'x'", "POINT"),
    ("SELECT vec || '!' FROM adql_test.vectors", "vec"),
    (f"SELECT ivo_string_agg(POINT(ra, dec), ',') FROM {P}", "POINT"),
    (f"SELECT ivo_hasword(CIRCLE(ra, dec, 1), 'x') FROM {P}", "CIRCLE"),
])
def test_geometry_in_string_context_is_rejected(catalog, query, culprit):
    e = assert_rejected_at(catalog, query, culprit)
    assert isinstance(e, ADQLSemanticError)


def test_strings_and_numbers_still_concatenate(adql_db, catalog):
    rows = run(adql_db, catalog, f"SELECT name || '/' || n || '/' || COORDSYS(POINT(ra, dec)) "
               f"FROM {P} WHERE id = 1")
    p = adql_db.points
    assert rows == [(f"{p['name'][0]}/{p['n'][0]}/ICRS",)]
