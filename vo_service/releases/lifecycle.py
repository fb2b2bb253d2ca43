"""A release's states after ``create``: publish, withdraw, delete a draft.

Each change is one transaction that also regenerates TAP_SCHEMA, so a query sees the
release either wholly served (readable by the reader role, listed with its
descriptions) or not at all. PostgreSQL's DDL and GRANTs are transactional, and
``DROP SCHEMA`` waits for the queries still reading the release's tables, which end
on the data they started with. Published releases are never changed: the only way on
is withdrawal, which drops the data but keeps the release's row (and so its name,
landing page tombstone and deleted registry record).

``after_commit`` runs once the change is committed: the command line re-syncs the
publishing registry there (``on_release_change``), which must not see the change
before other readers do, nor undo it when it fails.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa

from schema.catalogues import refresh_tap_schema
from schema.ops import releases
from vo_service.releases.manifest import quote
from vo_service.releases.store import (
    DRAFT,
    PUBLISHED,
    WITHDRAWN,
    Release,
    ReleaseError,
    read_release,
    require_release,
)

AfterCommit = Callable[[], None]
"""Called after a committed publish or withdrawal (the registry re-sync)."""

LOCK_WAIT_S = 60.0


def publish(engine: sa.Engine, name: str, *, reader_role: str,
            after_commit: AfterCommit | None = None) -> Release:
    """Serve the draft ``name``: grant it to the reader role, list it in TAP_SCHEMA.

    Raises
    ------
    ReleaseError
        When there is no such release or it is not a draft.
    """
    with engine.begin() as conn:
        release = require_release(conn, name, lock=True)
        if release.state != DRAFT:
            raise ReleaseError(f"release {name!r} is {release.state}: only drafts are published"
                               + (" (a published release cannot be changed)"
                                  if release.state == PUBLISHED else ""))
        conn.execute(sa.text(f"GRANT USAGE ON SCHEMA {quote(name)} TO {quote(reader_role)}"))
        conn.execute(sa.text(f"GRANT SELECT ON ALL TABLES IN SCHEMA {quote(name)} "
                             f"TO {quote(reader_role)}"))
        conn.execute(releases.update().where(releases.c.name == name).values(
            state=PUBLISHED, published_at=sa.func.now()))
        refresh_tap_schema(conn)
    if after_commit is not None:
        after_commit()
    return _reread(engine, name)


def withdraw(engine: sa.Engine, name: str, *, reason: str | None = None,
             lock_wait_s: float = LOCK_WAIT_S,
             after_commit: AfterCommit | None = None) -> Release:
    """Stop serving the published release ``name``: drop its data, keep its row.

    Raises
    ------
    ReleaseError
        When there is no such release, it is not published, or queries kept reading
        its tables for longer than ``lock_wait_s`` (then nothing has changed).
    """
    with engine.begin() as conn:
        release = require_release(conn, name, lock=True)
        if release.state == DRAFT:
            raise ReleaseError(f"release {name!r} is a draft, never published: delete it "
                               "with 'latentvo release delete'")
        if release.state == WITHDRAWN:
            raise ReleaseError(f"release {name!r} is withdrawn already")
        _drop_schema(conn, name, lock_wait_s)
        conn.execute(releases.update().where(releases.c.name == name).values(
            state=WITHDRAWN, withdrawn_at=sa.func.now(),
            manifest={**release.manifest, "withdrawn_reason": reason}))
        refresh_tap_schema(conn)
    if after_commit is not None:
        after_commit()
    return _reread(engine, name)


def delete(engine: sa.Engine, name: str, *, lock_wait_s: float = LOCK_WAIT_S) -> None:
    """Remove the draft ``name`` entirely (its tables and its row); the name is free again.

    Raises
    ------
    ReleaseError
        When there is no such release or it is not a draft.
    """
    with engine.begin() as conn:
        release = require_release(conn, name, lock=True)
        if release.state != DRAFT:
            raise ReleaseError(f"release {name!r} is {release.state}: only drafts are deleted"
                               + (" (withdraw it with 'latentvo release withdraw')"
                                  if release.state == PUBLISHED else ""))
        _drop_schema(conn, name, lock_wait_s)
        conn.execute(releases.delete().where(releases.c.name == name))


def _drop_schema(conn: sa.Connection, name: str, lock_wait_s: float) -> None:
    """DROP waits for every query reading the release; past ``lock_wait_s`` the operator
    is told so and the transaction (nothing changed yet) is abandoned."""
    conn.execute(sa.text(f"SET LOCAL lock_timeout = {max(1, int(lock_wait_s * 1000))}"))
    try:
        with conn.begin_nested():
            conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {quote(name)} CASCADE"))
    except sa.exc.OperationalError as exc:
        if getattr(exc.orig, "pgcode", None) != "55P03":  # lock_not_available
            raise
        raise ReleaseError(
            f"release {name!r} is in use by running queries (waited {lock_wait_s:g} s for "
            "them); nothing was changed: retry later, wait longer (--lock-wait) or abort "
            "the queries (pg_cancel_backend)") from None
    conn.execute(sa.text("SET LOCAL lock_timeout TO DEFAULT"))


def _reread(engine: sa.Engine, name: str) -> Release:
    with engine.connect() as conn:
        release = read_release(conn, name)
    assert release is not None  # releases are never deleted once published
    return release
