"""The registry store: how sync dates records, keeps deleted ones, and serialises syncs."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from tests.registry.oai_records import authority, collection, registry
from vo_service.registry.record import ACTIVE, DELETED
from vo_service.registry.store import (
    count_records,
    earliest_datestamp,
    read_record,
    read_records,
    recorded_base,
    sync,
    sync_site,
)
from vo_service.registry.sync import (
    SERVED_AT_ENV,
    served_at,
    startup_base,
    sync_base,
    sync_registry,
)

T0 = datetime(2026, 3, 1, 10, 0, 0, 250_000, tzinfo=UTC)  # microseconds are dropped
T1, T2, T3, T4 = (T0 + timedelta(hours=h) for h in (1, 2, 3, 4))


def whole(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)


@pytest.fixture
def store(database):
    """An empty registry store."""
    with database.engine.begin() as conn:
        conn.execute(sa.text("TRUNCATE latentvo_ops.registry_records"))
    return database.engine


def run(engine, drafts, now):
    with engine.begin() as conn:
        return sync(conn, drafts, now)


def record(engine, identifier):
    with engine.connect() as conn:
        return read_record(conn, identifier)


def test_sync_dates_new_changed_unchanged_deleted_and_returning_records(store):
    a, b = collection("a"), collection("b")
    report = run(store, [a, b], T0)
    assert (report.added, report.changed, report.deleted) == ([a.identifier, b.identifier], [], [])
    first = record(store, a.identifier)
    assert first.status == ACTIVE and first.created == first.updated == whole(T0)
    assert 'created="2026-03-01T10:00:00Z"' in first.xml

    # unchanged: the datestamp stays, so harvesters do not fetch it again
    report = run(store, [a, b], T1)
    assert report.unchanged == [a.identifier, b.identifier] and not report.changed
    assert record(store, a.identifier).updated == whole(T0)

    # changed: updated now, created kept, the XML rendered with both
    changed = collection("a", "A new description.")
    report = run(store, [changed, b], T2)
    assert report.changed == [a.identifier] and report.unchanged == [b.identifier]
    now_a = record(store, a.identifier)
    assert (now_a.created, now_a.updated) == (whole(T0), whole(T2))
    assert 'created="2026-03-01T10:00:00Z" updated="2026-03-01T12:00:00Z"' in now_a.xml
    assert "A new description." in now_a.xml

    # gone from the drafts: a deleted record, kept with its new datestamp and no XML
    report = run(store, [changed], T3)
    assert report.deleted == [b.identifier]
    gone = record(store, b.identifier)
    assert (gone.status, gone.deleted, gone.xml, gone.updated) == (DELETED, True, "", whole(T3))
    assert run(store, [changed], T4).deleted == []  # stays deleted, datestamp unchanged
    assert record(store, b.identifier).updated == whole(T3)

    # described again: active once more, with the created of its first life
    report = run(store, [changed, b], T4)
    assert report.changed == [b.identifier]
    back = record(store, b.identifier)
    assert (back.status, back.created, back.updated) == (ACTIVE, whole(T0), whole(T4))
    assert 'created="2026-03-01T10:00:00Z"' in back.xml


def test_readers_order_window_and_position(store):
    run(store, [authority(), collection("a"), collection("b")], T0)
    run(store, [authority(), collection("a"), collection("b", "changed"), collection("c")], T2)
    with store.connect() as conn:
        ordered = [(r.updated, r.identifier) for r in read_records(conn)]
        assert ordered == sorted(ordered) and len(ordered) == 4
        assert earliest_datestamp(conn) == whole(T0)
        # both bounds inclusive, to the second
        window = read_records(conn, from_=whole(T2), until=whole(T2))
        assert [r.identifier for r in window] == [collection("b").identifier,
                                                  collection("c").identifier]
        assert count_records(conn, from_=whole(T2), until=whole(T2)) == 2
        assert read_records(conn, until=whole(T1)) == read_records(conn, limit=2)
        after = read_records(conn, after=ordered[1], limit=10)
        assert [(r.updated, r.identifier) for r in after] == ordered[2:]
        headers = read_records(conn, with_xml=False)
        assert all(r.xml == "" for r in headers)
        assert read_record(conn, "ivo://latentvo.example/nothing") is None


def test_duplicate_identifiers_are_refused(store):
    with pytest.raises(ValueError, match="collection/a"):
        run(store, [collection("a"), collection("a", "twice")], T0)


def test_concurrent_syncs_are_serialised(store):
    """Two web workers starting together: the second waits, then finds nothing to do."""
    drafts = [authority(), collection("a")]
    reports = []
    with store.connect() as first:
        first.begin()
        reports.append(sync(first, drafts, T0))
        second = threading.Thread(target=lambda: reports.append(run(store, drafts, T1)))
        second.start()
        second.join(1.0)
        assert second.is_alive()  # blocked by the first sync's lock
        first.commit()
    second.join(30)
    assert len(reports[0].added) == 2
    assert reports[1].unchanged == sorted(d.identifier for d in drafts)
    assert not reports[1].added


def test_site_sync_and_the_recorded_base(store, settings, monkeypatch):
    from vo_service.registry import sync as registry_sync

    calls = []

    def site_drafts(conn, given_settings, base):
        calls.append((given_settings, base))
        conn.execute(sa.text("SELECT 1"))  # reads on the sync's own connection
        return [authority(), registry(base)]

    monkeypatch.setattr(registry_sync, "site_drafts", site_drafts)
    report = sync_registry(store, settings, "http://archive.example:8080/vo/")
    assert len(report.added) == 2 and calls == [(settings, "http://archive.example:8080/vo")]
    with store.connect() as conn:
        assert recorded_base(conn) == "http://archive.example:8080/vo"
    # latentvo registry sync without base_url reuses it
    assert sync_base(store, settings, None) == "http://archive.example:8080/vo"
    assert sync_base(store, settings, "http://other.example") == "http://other.example"
    assert sync_site(store, lambda conn: [authority(), registry(
        "http://archive.example:8080/vo")]).unchanged == sorted(r for r in report.added)


def test_the_base_a_web_worker_syncs_with(settings):
    """base_url when configured, else the address latentvo serve listens on."""
    assert served_at("127.0.0.1", 8000) == "http://127.0.0.1:8000"
    assert served_at("::1", 8000) == "http://[::1]:8000"
    assert served_at("0.0.0.0", 80).startswith("http://") and "0.0.0.0" not in served_at(
        "0.0.0.0", 80)
    served = {SERVED_AT_ENV: "http://127.0.0.1:8000"}
    assert startup_base(settings, served) == "http://127.0.0.1:8000"
    assert startup_base(settings, {}) is None
    configured = replace(settings, base_url="https://archive.example.org/vo")
    assert startup_base(configured, served) == "https://archive.example.org/vo"


def test_start_up_sync(store, database, monkeypatch, caplog):
    """What each web worker does at start-up with the site's builders; a failing one
    leaves the records as they were (the protocols are served all the same)."""
    from vo_service import app
    from vo_service.registry import sync as registry_sync

    monkeypatch.setenv(SERVED_AT_ENV, "http://127.0.0.1:8123")
    monkeypatch.setattr(registry_sync, "site_drafts",
                        lambda conn, settings, base: [authority(), registry(base)])
    app._sync_registry(database)
    with store.connect() as conn:
        assert recorded_base(conn) == "http://127.0.0.1:8123"
        before = read_records(conn)

    def broken(conn, settings, base):
        raise ValueError("a record that cannot be built")

    monkeypatch.setattr(registry_sync, "site_drafts", broken)
    app._sync_registry(database)
    assert "a record that cannot be built" in caplog.text
    with store.connect() as conn:
        assert read_records(conn) == before
