"""The registry store: the dated VOResource records of this site, deleted ones kept.

:func:`sync` compares what the site describes now (:class:`ResourceDraft` objects)
with ``latentvo_ops.registry_records`` and dates every change, because OAI-PMH
harvesters ask "what changed since" and VOResource wants ``created``/``updated``:

* a new identifier gets ``created = updated = now``;
* a changed record (another fingerprint) gets ``updated = now`` and is rendered again
  with the ``created`` it already had;
* an unchanged record keeps its dates, so a harvester does not fetch it again;
* a record no longer described becomes ``deleted`` (``updated = now``, no XML) and
  stays for ever: the registry declares ``deletedRecord=persistent``; described again,
  it is active once more.

Several web workers sync at start-up together: a transaction-level advisory lock
serialises them, and the second finds nothing to change. Datestamps are UTC and
whole seconds, the granularity the OAI-PMH interface declares.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from lxml import etree

from schema.ops import registry_records
from vo_service.registry import regtap
from vo_service.registry.record import ACTIVE, DELETED, ResourceDraft, ResourceRecord

SYNC_LOCK_KEY = 0x6C766F_11  # advisory lock serialising registry syncs
_R = registry_records.c


@dataclass(frozen=True)
class SyncReport:
    """The identifiers one :func:`sync` added, changed, deleted and left unchanged."""

    added: list[str]
    changed: list[str]
    deleted: list[str]
    unchanged: list[str]

    def summary(self) -> str:
        """One line for the operator."""
        return (f"{len(self.added)} added, {len(self.changed)} changed, "
                f"{len(self.deleted)} deleted, {len(self.unchanged)} unchanged")


def datestamp(moment: dt.datetime) -> dt.datetime:
    """``moment`` in UTC, truncated to whole seconds (naive values are taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC).replace(microsecond=0)


def sync(conn: sa.Connection, drafts: list[ResourceDraft], now: dt.datetime) -> SyncReport:
    """Make the stored records those of ``drafts``, dated as the module says.

    Runs in the caller's transaction, which it locks against concurrent syncs.

    Raises
    ------
    ValueError
        When two drafts share an identifier.
    """
    now = datestamp(now)
    wanted = {draft.identifier: draft for draft in drafts}
    if len(wanted) != len(drafts):
        twice = sorted({d.identifier for d in drafts
                        if sum(e.identifier == d.identifier for e in drafts) > 1})
        raise ValueError(f"identifiers described twice: {', '.join(twice)}")
    conn.execute(sa.select(sa.func.pg_advisory_xact_lock(SYNC_LOCK_KEY)))
    stored = {row.identifier: row for row in conn.execute(
        sa.select(_R.identifier, _R.status, _R.created_at, _R.fingerprint))}
    report = SyncReport([], [], [], [])
    new_rows = []
    for identifier, draft in sorted(wanted.items()):
        row = stored.get(identifier)
        fingerprint = draft.fingerprint
        if row is None:
            new_rows.append(dict(
                identifier=identifier, resource_type=draft.resource_type, title=draft.title,
                status=ACTIVE, created_at=now, updated_at=now, fingerprint=fingerprint,
                xml=draft.render(now, now)))
            report.added.append(identifier)
        elif row.status == ACTIVE and row.fingerprint == fingerprint:
            report.unchanged.append(identifier)
        else:
            created = datestamp(row.created_at)
            conn.execute(registry_records.update().where(_R.identifier == identifier).values(
                resource_type=draft.resource_type, title=draft.title, status=ACTIVE,
                updated_at=now, fingerprint=fingerprint, xml=draft.render(created, now)))
            report.changed.append(identifier)
    if new_rows:
        conn.execute(registry_records.insert(), new_rows)
    gone = sorted(i for i, row in stored.items() if i not in wanted and row.status == ACTIVE)
    if gone:
        conn.execute(registry_records.update().where(_R.identifier.in_(gone)).values(
            status=DELETED, updated_at=now, xml=""))
    report.deleted.extend(gone)
    return report


def sync_site(engine: sa.Engine, drafts: Callable[[sa.Connection], list[ResourceDraft]],
              now: dt.datetime | None = None) -> SyncReport:
    """Sync the records ``drafts(conn)`` describes, in one transaction of ``engine``.

    ``drafts`` reads what it needs (published catalogues, releases) on the same
    connection, so the records and what they describe are one snapshot. The RegTAP
    tables (``rr``) are refilled from the stored records in the same transaction when
    a record changed (or they do not hold every active record), so that OAI-PMH and
    RegTAP never disagree.
    """
    with engine.begin() as conn:
        report = sync(conn, drafts(conn), now or dt.datetime.now(dt.UTC))
        if report.added or report.changed or report.deleted or not regtap.in_step(conn):
            regtap.fill(conn, read_records(conn))
        return report


# -- readers ---------------------------------------------------------------------------


def _record(row: sa.Row) -> ResourceRecord:  # type: ignore[type-arg]
    return ResourceRecord(row.identifier, row.resource_type, row.title, row.status,
                          datestamp(row.created_at), datestamp(row.updated_at), row.xml)


def _window(from_: dt.datetime | None, until: dt.datetime | None) -> list[sa.ColumnElement[bool]]:
    where = []
    if from_ is not None:
        where.append(_R.updated_at >= from_)
    if until is not None:
        where.append(_R.updated_at <= until)
    return where


def read_records(conn: sa.Connection, *, from_: dt.datetime | None = None,
                 until: dt.datetime | None = None,
                 after: tuple[dt.datetime, str] | None = None,
                 limit: int | None = None, with_xml: bool = True) -> list[ResourceRecord]:
    """Records with ``from_ <= updated <= until`` (both inclusive, None: open), deleted ones
    included, ordered by (updated, identifier), starting after the position ``after``.

    ``with_xml`` False leaves out the records' XML (headers only: ListIdentifiers).
    """
    columns = [_R.identifier, _R.resource_type, _R.title, _R.status, _R.created_at,
               _R.updated_at, _R.xml if with_xml else sa.literal("").label("xml")]
    query = sa.select(*columns).where(*_window(from_, until))
    if after is not None:
        query = query.where(sa.tuple_(_R.updated_at, _R.identifier) > sa.tuple_(
            sa.literal(after[0], sa.DateTime(timezone=True)), sa.literal(after[1])))
    query = query.order_by(_R.updated_at, _R.identifier).limit(limit)
    return [_record(row) for row in conn.execute(query)]


def count_records(conn: sa.Connection, *, from_: dt.datetime | None = None,
                  until: dt.datetime | None = None) -> int:
    """How many records :func:`read_records` returns for this window, all pages together."""
    return conn.execute(sa.select(sa.func.count()).select_from(registry_records)
                        .where(*_window(from_, until))).scalar_one()


def read_record(conn: sa.Connection, identifier: str) -> ResourceRecord | None:
    """The record of ``identifier`` (deleted ones too); None when it never existed."""
    row = conn.execute(sa.select(registry_records)
                       .where(_R.identifier == identifier)).first()
    return _record(row) if row else None


def read_registry_record(conn: sa.Connection) -> ResourceRecord | None:
    """The active ``vg:Registry`` record: this registry's own (Identify describes it)."""
    row = conn.execute(sa.select(registry_records).where(
        _R.resource_type == "vg:Registry", _R.status == ACTIVE).order_by(_R.identifier)).first()
    return _record(row) if row else None


def earliest_datestamp(conn: sa.Connection) -> dt.datetime | None:
    """The oldest datestamp of any record (None for an empty registry)."""
    value = conn.execute(sa.select(sa.func.min(_R.updated_at))).scalar_one()
    return datestamp(value) if value is not None else None


def recorded_base(conn: sa.Connection) -> str | None:
    """The public base URL of the last sync: the registry record's OAI-PMH access URL
    without its ``/oai`` (``latentvo registry sync`` reuses it when ``base_url`` is unset).
    """
    record = read_registry_record(conn)
    if record is None or not record.xml:
        return None
    root = etree.fromstring(record.xml.encode())
    xsi_type = "{http://www.w3.org/2001/XMLSchema-instance}type"
    for interface in root.iter("interface"):
        if interface.get(xsi_type, "").endswith(":OAIHTTP"):
            url = (interface.findtext("accessURL") or "").strip()
            if url.endswith("/oai"):
                return url[:-len("/oai")]
    return None
