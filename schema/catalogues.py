"""Which catalogues are published, as SQLAlchemy tables, and TAP_SCHEMA over all tables.

The declarations of published catalogues are stored in
``latentvo_ops.published_catalogues`` (written by :mod:`vo_service.publish.loader`);
:func:`catalogue_tables` rebuilds their ``Table`` objects from there, and
:func:`all_published_tables` adds them to the tables of ``schema.tables``. Every
rendering of "what this service publishes" (TAP_SCHEMA, VOSI, the ADQL
catalog) goes through :func:`all_published_tables`, which also adds the tables of
the published data releases (``latentvo_ops.releases``, declared by :mod:`schema.releases`).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import sqlalchemy as sa

from schema import tap_schema
from schema.catalogue_declaration import Declaration
from schema.ops import published_catalogues, releases
from schema.releases import release_tables, schema_description
from schema.tables import published_tables


def catalogue_declarations(conn: sa.Connection) -> list[Declaration]:
    """The declarations of the published catalogues, by schema and table name.

    Raises
    ------
    DeclarationError
        When a stored declaration no longer passes :meth:`Declaration.from_dict`.
    """
    rows = conn.execute(sa.select(published_catalogues.c.declaration).order_by(
        published_catalogues.c.schema_name, published_catalogues.c.table_name)).scalars()
    return [Declaration.from_dict(row, origin="published_catalogues") for row in rows]


def catalogue_tables(conn: sa.Connection) -> list[sa.Table]:
    """The published catalogues' tables, rebuilt from their declarations on one ``MetaData``."""
    metadata = sa.MetaData()
    return [d.table(metadata) for d in catalogue_declarations(conn)]


def _published_releases(conn: sa.Connection) -> list[sa.Row[Any]]:
    """Name, title and creation time of the published (served) releases."""
    return list(conn.execute(
        sa.select(releases.c.name, releases.c.title, releases.c.created_at)
        .where(releases.c.state == "published").order_by(releases.c.name)))


def published_release_tables(conn: sa.Connection) -> list[sa.Table]:
    """The frozen tables and ObsCore views of the published data releases."""
    return [t for row in _published_releases(conn) for t in release_tables(row.name)]


def all_published_tables(conn: sa.Connection) -> list[sa.Table]:
    """Every table TAP publishes: the declared ones, the catalogues and the published
    releases' tables, in listing order.

    The order (``table_index``, then schema and name) is the one TAP_SCHEMA and VOSI show.
    """
    tables = published_tables() + catalogue_tables(conn) + published_release_tables(conn)
    return sorted(tables, key=lambda t: (t.info["vo"].table_index, t.schema, t.name))


TAP_SCHEMA_LOCK = 0x1A7E5C4E  # advisory lock: one TAP_SCHEMA regeneration at a time


def refresh_tap_schema(conn: sa.Connection) -> None:
    """Regenerate TAP_SCHEMA for the declared tables *and* the published catalogues.

    Runs in the caller's transaction; web processes starting together take turns.
    """
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": TAP_SCHEMA_LOCK})
    tap_schema.refresh(conn, all_published_tables(conn), extra_schema_descriptions(conn))


def catalogue_schema_descriptions(conn: sa.Connection) -> dict[str, str]:
    """Descriptions of the schemas that only published catalogues use."""
    return {d.schema: d.schema_description for d in catalogue_declarations(conn)
            if d.schema_description}


def extra_schema_descriptions(conn: sa.Connection) -> dict[str, str]:
    """Descriptions of the schemas of published catalogues and published releases."""
    described = {row.name: schema_description(row.name, row.title, row.created_at)
                 for row in _published_releases(conn)}
    return {**catalogue_schema_descriptions(conn), **described}


def schema_descriptions(conn: sa.Connection) -> dict[str, str]:
    """Every published schema's description: the declared ones, then the others'."""
    return {**extra_schema_descriptions(conn), **tap_schema.SCHEMA_DESCRIPTIONS}


class PublishedTables:
    """A cached view of :func:`all_published_tables` for the web service.

    The catalogue and release registries are re-read when they changed (checked at
    most every ``check_every`` seconds), so a ``latentvo publish`` or ``latentvo release
    publish``/``withdraw`` shows up without a restart.
    """

    def __init__(self, engine: sa.Engine, check_every: float = 2.0) -> None:
        self.engine = engine
        self.check_every = check_every
        self._lock = threading.Lock()
        self._checked = 0.0
        self._signature: tuple[Any, ...] | None = None
        self._tables: list[sa.Table] = []
        self._descriptions: dict[str, str] = {}
        self.version = 0

    def _current_signature(self, conn: sa.Connection) -> tuple[Any, ...]:
        catalogues = conn.execute(sa.select(
            sa.func.count(), sa.func.max(published_catalogues.c.published_at))).one()
        served = conn.execute(sa.select(releases.c.name).where(
            releases.c.state == "published").order_by(releases.c.name)).scalars()
        return (*catalogues, tuple(served))

    def tables(self) -> list[sa.Table]:
        """The published tables, re-read when the catalogue registry has changed.

        Thread-safe; between checks (``check_every`` seconds) the cached list is
        returned without touching the database. :attr:`version` grows whenever the
        list is re-read and differs, so callers can rebuild what they derive from it.
        """
        now = time.monotonic()
        if now - self._checked < self.check_every and self._signature is not None:
            return self._tables
        with self._lock:
            if now - self._checked < self.check_every and self._signature is not None:
                return self._tables
            with self.engine.connect() as conn:
                signature = self._current_signature(conn)
                if signature != self._signature:
                    self._tables = all_published_tables(conn)
                    self._descriptions = schema_descriptions(conn)
                    self._signature = signature
                    self.version += 1
            self._checked = time.monotonic()
        return self._tables

    def descriptions(self) -> dict[str, str]:
        """Schema descriptions as of the last :meth:`tables` (call that first)."""
        return self._descriptions
