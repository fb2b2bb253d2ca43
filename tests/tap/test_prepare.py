"""Preparing a TAP query: translations are reused, never across what changes them.

Issue 16's per-query overhead: parsing and translating were most of a small
query's time in the service, so :class:`TAPService` keeps recent translations
(``TranslationCache``). These tests run the real service object on the test
database: a repeated query is translated once, and a different MAXREC, a new
catalogue version, an upload or an expired entry each get their own translation.
"""

from __future__ import annotations

import time

from schema.catalogues import PublishedTables
from vo_service.config import TAPLimits
from vo_service.dali import Params
from vo_service.tap.query import TAPService, Translated, TranslationCache, validate

QUERY = "SELECT TOP 3 spectrum_id FROM latentvo.spectra ORDER BY spectrum_id"


def params(query: str = QUERY, **extra: str) -> Params:
    return Params([("REQUEST", "doQuery"), ("LANG", "ADQL"), ("QUERY", query),
                   *extra.items()])


def prepare(tap: TAPService, p: Params):
    return tap.prepare(validate(p, tap.limits), p)


def test_a_repeated_query_is_translated_once(database, tmp_path):
    tap = TAPService(database, PublishedTables(database.engine), TAPLimits(), tmp_path)
    first, again = prepare(tap, params()), prepare(tap, params())
    assert again.translation is first.translation and again.sql == first.sql
    assert again.fields == first.fields and again.fields is not first.fields
    other = prepare(tap, params(MAXREC="2"))  # MAXREC is in the SQL: its own entry
    assert other.translation is not first.translation
    assert other.sql.endswith("LIMIT 3") and first.sql.endswith("LIMIT 3")
    assert prepare(tap, params(MAXREC="1")).sql.endswith("LIMIT 2")


def test_a_new_catalogue_version_translates_again(database, tmp_path):
    """The published tables' version is part of the key: after a publish (which grows
    ``PublishedTables.version``) no translation made against the old tables is used."""
    published = PublishedTables(database.engine)
    tap = TAPService(database, published, TAPLimits(), tmp_path)
    before = prepare(tap, params())
    published.version += 1  # what re-reading a changed catalogue registry does
    after = prepare(tap, params())
    assert after.translation is not before.translation
    assert prepare(tap, params()).translation is after.translation


def test_queries_with_uploads_are_translated_each_time(database, tmp_path):
    tap = TAPService(database, PublishedTables(database.engine), TAPLimits(), tmp_path)
    votable = (b'<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3"><RESOURCE>'
               b'<TABLE><FIELD name="x" datatype="int"/><DATA><TABLEDATA><TR><TD>1</TD></TR>'
               b"</TABLEDATA></DATA></TABLE></RESOURCE></VOTABLE>")
    query = "SELECT x FROM TAP_UPLOAD.t"
    p = Params([("REQUEST", "doQuery"), ("LANG", "ADQL"), ("QUERY", query),
                ("UPLOAD", "t,param:t"), ("t", votable.decode())])
    one, two = prepare(tap, p), prepare(tap, p)
    assert one.translation is not two.translation


def test_long_queries_are_not_kept(database, tmp_path):
    """The cache's memory stays bounded whatever clients send."""
    tap = TAPService(database, PublishedTables(database.engine), TAPLimits(), tmp_path)
    long_query = QUERY + " " * tap.translations.max_query
    assert prepare(tap, params(long_query)).translation is not \
        prepare(tap, params(long_query)).translation


def test_cache_drops_the_least_recently_used_and_stale_entries():
    cache = TranslationCache(size=2, ttl_s=0.2)
    entry = Translated(translation=None, sql="x", fields=(), sent=())  # type: ignore[arg-type]
    cache.put(("a", 1, 0), entry)
    cache.put(("b", 1, 0), entry)
    assert cache.get(("a", 1, 0)) is entry  # a is now the most recent
    cache.put(("c", 1, 0), entry)
    assert cache.get(("b", 1, 0)) is None and cache.get(("a", 1, 0)) is entry
    time.sleep(0.3)
    assert cache.get(("a", 1, 0)) is None and cache.get(("c", 1, 0)) is None
