"""Property-based fuzzing: random and mutated queries never crash or escape the whitelist.

Every input either raises an :class:`ADQLError` with a position (or none for
an empty/early-ending query) or translates to SQL that passes
:func:`tests.adql.safety.check_sql`. Bounded to a few seconds per property.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schema.tables import published_tables
from tests.adql.safety import check_sql
from tests.adql.tables import latent_index
from vo_service.adql import ADQLError, Catalog, translate

CATALOG = Catalog.from_tables(published_tables(), latent_index=latent_index)

SEEDS = [
    "SELECT TOP 10 obs_id, s_ra, s_dec FROM latentvo.spectra WHERE snr > 10 ORDER BY snr DESC",
    "SELECT s.obs_id, l.teff FROM latentvo.spectra AS s JOIN latentvo.labels AS l ON "
    "s.spectrum_id = l.spectrum_id WHERE l.in_domain = 1 AND l.teff BETWEEN 5000 AND 6000",
    "SELECT COUNT(*) AS n, FLOOR(teff / 250) * 250 AS b FROM latentvo.labels GROUP BY "
    "FLOOR(teff / 250) * 250 HAVING COUNT(*) > 2 ORDER BY b",
    "SELECT obs_id FROM latentvo.spectra WHERE 1 = CONTAINS(POINT('ICRS', s_ra, s_dec), "
    "CIRCLE('ICRS', 10.5, -20.25, 0.1)) OR target_name LIKE 'HD%'",
    "WITH t AS (SELECT spectrum_id, teff FROM latentvo.labels) SELECT * FROM t WHERE teff IN "
    "(SELECT teff FROM latentvo.labels WHERE mh < -1) UNION SELECT spectrum_id, teff FROM t",
    "SELECT TOP 5 spectrum_id, lvo_latent_distance(vec, (SELECT vec FROM latentvo.latent WHERE "
    "spectrum_id = 1 AND model_id = 'ae')) AS d FROM latentvo.latent WHERE model_id = 'ae' "
    "ORDER BY d",
    "SELECT CASE WHEN snr > 5 THEN 'a' ELSE 'b' END AS c, COALESCE(t_min, 0) AS t, "
    "CAST(em_xel AS REAL) AS x, em_xel & 0xFF AS y, ~em_xel, 'it''s' || obs_id FROM "
    "latentvo.spectra WHERE NOT (snr IS NULL) OFFSET 3",
    "SELECT AREA(POLYGON(10, 10, 20, 10, 15, 20)), DISTANCE(POINT(s_ra, s_dec), POINT(1, 2)), "
    "ivo_hasword(target_name, 'x') FROM latentvo.spectra WHERE "
    "1 = INTERSECTS(CIRCLE(s_ra, s_dec, 1), BOX(10, 10, 2, 2))",
]

FRAGMENTS = [
    " ", "(", ")", ",", ".", "*", "'", '"', ";", "--", "\n", "/*", "*/", "||", "|", "&", "^",
    "~", "=", "<>", "!=", "<", ">=", "+", "-", "/", "0x1F", "1e5", ".5", "NULL", "TRUE",
    "SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "LIKE", "ILIKE", "BETWEEN", "IS",
    "JOIN", "USING", "ON", "NATURAL", "LEFT", "UNION", "WITH", "AS", "TOP 3", "OFFSET 2",
    "ORDER BY 1", "GROUP BY", "HAVING", "CAST(", "AS INTEGER)", "CASE WHEN", "THEN", "END",
    "pg_sleep(1)", "DROP TABLE x", "regclass", "$$", "E'", "\\", "\x00", "\u037e", "\uff1b",
    "latentvo.spectra", "s_ra", "snr", "POINT(", "CIRCLE(", "CONTAINS(", "COUNT(*)",
    "lvo_latent_similarity(", "EXISTS (SELECT 1 FROM latentvo.labels)",
]


def _run(query: str) -> None:
    try:
        t = translate(query, CATALOG, maxrec=100)
    except ADQLError as exc:
        assert isinstance(exc.message, str) and exc.message
        return
    check_sql(t.sql)
    assert t.columns


@st.composite
def mutated(draw):
    text = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(1, 4))):
        pos = draw(st.integers(0, len(text)))
        op = draw(st.sampled_from(["insert", "delete", "replace"]))
        frag = draw(st.sampled_from(FRAGMENTS) | st.text(max_size=3))
        if op == "insert":
            text = text[:pos] + frag + text[pos:]
        elif op == "delete":
            text = text[:pos] + text[pos + draw(st.integers(1, 12)):]
        else:
            text = text[:pos] + frag + text[pos + len(frag):]
    return text


FUZZ = settings(max_examples=600, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(query=mutated())
def test_mutated_queries(query):
    _run(query)


@FUZZ
@given(query=st.lists(st.sampled_from(FRAGMENTS), min_size=1, max_size=25).map(" ".join))
def test_random_token_soup(query):
    _run(query)


@settings(max_examples=300, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(query=st.text(max_size=80))
def test_random_text(query):
    _run(query)


def test_deep_nesting_is_an_error_not_a_crash():
    _run("SELECT " + "(" * 3000 + "1" + ")" * 3000 + " FROM latentvo.spectra")
    _run("SELECT 1 FROM latentvo.spectra WHERE " + " AND ".join(["snr > 1"] * 2000))
