"""Nothing in a query string reaches SQL except whitelisted constructs."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests.adql.safety import check_sql
from vo_service.adql import ADQLError, ADQLSemanticError, ADQLSyntaxError, translate

ATTACKS = [
    "SELECT obs_id FROM latentvo.spectra; DROP TABLE latentvo.spectra",
    "SELECT obs_id FROM latentvo.spectra;",
    "SELECT pg_sleep(10) FROM latentvo.spectra",
    "SELECT obs_id FROM latentvo.spectra WHERE pg_sleep(10) IS NULL",
    "SELECT CAST(obs_id AS regclass) FROM latentvo.spectra",
    "SELECT CAST(obs_id AS text) FROM latentvo.spectra",
    "SELECT obs_id::regclass FROM latentvo.spectra",
    "SELECT * FROM pg_catalog.pg_authid",
    "SELECT * FROM pg_user",
    "SELECT * FROM latentvo_ops.ingest_files",
    "SELECT * FROM information_schema.tables",
    "SELECT lo_import('/etc/passwd') FROM latentvo.spectra",
    "SELECT set_config('statement_timeout', '0', false) FROM latentvo.spectra",
    "SELECT current_setting('data_directory') FROM latentvo.spectra",
    "SELECT * FROM generate_series(1, 10)",
    "SELECT obs_id FROM latentvo.spectra /* ; DROP TABLE x */",
    "SELECT $$x$$ FROM latentvo.spectra",
    "SELECT E'\\x27' FROM latentvo.spectra",
    "SELECT obs_id FROM latentvo.spectra\uff1b DROP TABLE x",  # fullwidth semicolon
    "SELECT obs_id FROM latentvo.spectra WHERE obs_id = 'a' \u037e DROP TABLE x",  # Greek ;
    "\u0455ELECT obs_id FROM latentvo.spectra",  # Cyrillic s
    "SELECT obs_id FROM latentvo.spectra WHERE\u202e obs_id = 'x'",  # RTL override
    "SELECT obs_id FROM latentvo.spectra WHERE obs_id = 'x\x00'",
    "INSERT INTO latentvo.spectra VALUES (1)",
    "UPDATE latentvo.spectra SET obs_id = 'x'",
    "SELECT obs_id INTO evil FROM latentvo.spectra",
    "SELECT obs_id FROM latentvo.spectra FOR UPDATE",
    "COPY latentvo.spectra TO '/tmp/x'",
    "SELECT obs_id FROM latentvo.spectra UNION SELECT usename FROM pg_user",
    "SELECT * FROM latentvo.spectra AS s(a)",
    "SELECT obs_id FROM ONLY latentvo.spectra",
    "SELECT obs_id FROM latentvo.spectra WHERE obs_id ~ 'x'",
    "SELECT obs_id FROM latentvo.spectra LIMIT 1",
    "SELECT TOP 1 obs_id FROM latentvo.spectra WHERE CAST(obs_id AS oid) = 1",
]


@pytest.mark.parametrize("query", ATTACKS)
def test_attacks_are_rejected(catalog, query):
    with pytest.raises(ADQLError) as exc:
        translate(query, catalog)
    assert exc.value.line is not None or isinstance(exc.value, ADQLSemanticError)


SURVIVORS = [
    # what reaches SQL is re-quoted: these must translate to one harmless statement
    'SELECT obs_id AS "x"";DROP TABLE latentvo.spectra;--" FROM latentvo.spectra',
    "SELECT obs_id FROM latentvo.spectra WHERE obs_id = 'a''; DROP TABLE x; --'",
    "SELECT obs_id FROM latentvo.spectra WHERE obs_id = 'back\\slash\\' OR obs_id = '\\'",
    "SELECT obs_id FROM latentvo.spectra -- ; DROP TABLE latentvo.spectra\n WHERE snr > 1",
    "SELECT obs_id FROM latentvo.spectra WHERE obs_id LIKE '%'';--%'",
    "SELECT ivo_hasword(obs_id, ''');select pg_sleep(5);--') AS x FROM latentvo.spectra",
]


@pytest.mark.parametrize("query", SURVIVORS)
def test_quoting_keeps_one_statement(catalog, query):
    t = translate(query, catalog)
    check_sql(t.sql)


def test_no_sql_comments_survive(catalog):
    t = translate("SELECT obs_id -- hello */ ;\nFROM latentvo.spectra", catalog)
    assert "hello" not in t.sql


def test_only_whitelisted_cast_types():
    from vo_service.adql import parse

    for target in ("regclass", "oid", "text", "json", "bytea", "FLOAT", "NUMERIC", "vector"):
        with pytest.raises(ADQLSyntaxError):
            parse(f"SELECT CAST(x AS {target}) FROM t")


def test_survivors_execute_read_only(adql_db, catalog):
    """The quoted attacks run as plain reads, and a write is refused by the setup SQL."""
    engine = adql_db.database.reader_engine
    for query in SURVIVORS:
        t = translate(query, catalog, maxrec=10)
        with engine.begin() as conn:
            for stmt in t.setup_sql(timeout_ms=5000):
                conn.execute(sa.text(stmt))
            conn.execute(sa.text(t.sql.replace(":", r"\:"))).fetchall()
    with engine.connect() as conn, pytest.raises(sa.exc.DBAPIError):
        with conn.begin():
            for stmt in t.setup_sql(timeout_ms=5000):
                conn.execute(sa.text(stmt))
            conn.execute(sa.text("CREATE TEMP TABLE x (a int)"))


def test_statement_timeout_applies(adql_db, catalog):
    q = ("SELECT COUNT(*) FROM adql_test.points AS a, adql_test.points AS b, "
         "adql_test.points AS c WHERE a.mag + b.mag > c.mag")
    t = translate(q, catalog)
    with adql_db.database.reader_engine.connect() as conn, pytest.raises(
            sa.exc.OperationalError, match="statement timeout"):
        with conn.begin():
            for stmt in t.setup_sql(timeout_ms=200):
                conn.execute(sa.text(stmt))
            conn.execute(sa.text(t.sql)).fetchall()
