"""Database access: where the database is, its two roles, and their engines.

Two roles matter:

* the **owner** (embedded: ``latentvo``; external: the user of
  ``LATENTVO_DATABASE_URL``) creates and writes every table;
* the **reader** (``reader_role``, default ``latentvo_reader``) runs user
  queries. It may read the published schemas only (``latentvo``, ``ivoa``,
  ``tap_schema`` and published catalogues), never ``latentvo_ops``.

With an external database and no ``LATENTVO_READER_DATABASE_URL``, reader
sessions connect as the owner and switch with ``SET ROLE``; that requires the
owner to be a member of the reader role (``latentvo db upgrade`` sets that up
when it may create roles).

Command-line jobs open the database with :func:`open_database`, which says
how much of the schema they may change: a read-only command never migrates or
rewrites TAP_SCHEMA, it only says when the schema needs ``latentvo db
upgrade``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from schema import migrate
from schema.catalogues import refresh_tap_schema
from schema.tables import OPS_SCHEMA, PUBLISHED_SCHEMA, published_tables
from vo_service.config import Settings, load_settings
from vo_service.db.backends import application_name
from vo_service.db.embedded import EmbeddedPostgres
from vo_service.errors import OperatorError, one_line

OWNER_ROLE = "latentvo"
DATABASE_NAME = "latentvo"
EXTENSIONS = ("vector", "pg_stat_statements")
UPGRADE_LOCK_KEY = 0x6C766F_00  # advisory lock serialising schema upgrades


class DatabaseError(OperatorError):
    """The database cannot be reached or prepared; the message says why."""


@dataclass
class Database:
    """The project's PostgreSQL database as the settings describe it.

    One object per process holds the engines of both roles; properties are computed on
    first use, so building a ``Database`` neither connects nor starts a server.

    Parameters
    ----------
    settings
        Where the database is: ``database_url`` for an external server, otherwise the
        embedded server under ``settings.pgdata``.
    """

    settings: Settings

    # -- locations ------------------------------------------------------------

    @cached_property
    def embedded(self) -> EmbeddedPostgres | None:
        """The embedded server, or None when the settings name an external database."""
        return EmbeddedPostgres(self.settings.pgdata) if self.settings.embedded else None

    def _embedded_port(self, embedded: EmbeddedPostgres) -> int:
        status = embedded.start(self.settings.embedded_port)  # no-op when running
        assert status.port is not None  # start() returns the status of a running server
        self._bootstrap_embedded(embedded, status.port)
        return status.port

    @cached_property
    def owner_url(self) -> str:
        """URL of the owner role, which creates and writes every table.

        With the embedded server, reading it starts the server (and creates the roles and
        the database on first use).
        """
        if self.embedded is None:
            url = self.settings.database_url
            assert url is not None  # Settings.embedded is "no database_url"
            return _psycopg2(url)
        port = self._embedded_port(self.embedded)
        return self.embedded.url(OWNER_ROLE, port, DATABASE_NAME)

    @cached_property
    def reader_url(self) -> str | None:
        """URL of a direct reader login, or None when reader sessions use SET ROLE."""
        if self.settings.reader_database_url:
            return _psycopg2(self.settings.reader_database_url)
        if self.embedded is not None:
            role = self.settings.reader_role
            return make_url(self.owner_url).set(
                username=role, password=self.embedded.password(role)) \
                .render_as_string(hide_password=False)
        return None

    @property
    def location(self) -> str:
        """Where the database is, for messages: its URL without password, or its directory."""
        if self.settings.database_url:
            return make_url(self.settings.database_url).render_as_string(hide_password=True)
        return f"embedded, data directory {self.settings.pgdata}"

    # -- engines --------------------------------------------------------------

    @cached_property
    def engine(self) -> sa.Engine:
        """Engine of the owner role (jobs, migrations)."""
        return _engine(self.owner_url)

    @cached_property
    def reader_engine(self) -> sa.Engine:
        """Engine whose sessions run as the read-only role.

        Its pool has room for every query slot (SSA, DataLink) on top of SQLAlchemy's
        default 15, so that cheap requests (VOSI, pages) find a connection while every
        slot is busy.
        """
        overflow = 10 + self.settings.web.query_slots
        if self.reader_url:
            return _engine(self.reader_url, max_overflow=overflow)
        engine = _engine(self.owner_url, max_overflow=overflow)
        role = self.settings.reader_role

        @sa.event.listens_for(engine, "connect")
        def _switch_role(dbapi_conn, _record):  # pragma: no cover - external path only
            with dbapi_conn.cursor() as cur:
                cur.execute(f'SET ROLE "{role}"')
            dbapi_conn.commit()

        return engine

    def dispose(self) -> None:
        """Close the pooled connections of the engines built so far."""
        for name in ("engine", "reader_engine"):
            if name in self.__dict__:
                self.__dict__[name].dispose()

    # -- preparation ----------------------------------------------------------

    @contextmanager
    def _reachable(self) -> Iterator[None]:
        """Report a database that does not answer as a :class:`DatabaseError`."""
        try:
            yield
        except sa.exc.OperationalError as exc:
            raise DatabaseError(f"cannot reach the database ({self.location}): "
                                f"{one_line(exc.orig or exc)}") from exc

    def revision(self) -> str | None:
        """The schema revision of the database; None before its first upgrade.

        Raises
        ------
        DatabaseError
            When the database cannot be reached.
        """
        with self._reachable():
            return migrate.current_revision(self.engine)

    def upgrade(self) -> str:
        """Apply migrations, grants and TAP_SCHEMA; idempotent. Returns the revision.

        Concurrent upgrades (several processes starting at once) are serialised by
        a session-level advisory lock: PostgreSQL's catalogue updates behind GRANT
        fail rather than wait when two sessions change the same privileges.

        Raises
        ------
        DatabaseError
            When the database cannot be reached or refuses a step of the upgrade.
        """
        try:
            with self._reachable(), self.engine.connect() as lock:
                lock.execute(sa.select(sa.func.pg_advisory_lock(UPGRADE_LOCK_KEY)))
                try:
                    migrate.upgrade(self.engine)
                    with self.engine.begin() as conn:
                        self._grant_reader(conn)
                        refresh_tap_schema(conn)  # declared tables and published catalogues
                finally:
                    lock.execute(sa.select(sa.func.pg_advisory_unlock(UPGRADE_LOCK_KEY)))
                    lock.commit()
        except sa.exc.ProgrammingError as exc:
            raise DatabaseError(f"database upgrade failed: {one_line(exc.orig)}") from exc
        revision = self.revision()
        assert revision is not None  # the migrations above recorded one
        return revision

    def ensure_ready(self) -> None:
        """Upgrade only when the schema is behind: cheap enough for every CLI job."""
        if self.revision() != migrate.head_revision():
            self.upgrade()

    def require_current(self) -> None:
        """Check that the schema is at this code's revision, changing nothing.

        Raises
        ------
        DatabaseError
            When the database cannot be reached, or its schema is missing or at
            another revision (the message says to run ``latentvo db upgrade``).
        """
        current, head = self.revision(), migrate.head_revision()
        if current != head:
            state = "has no latentvo schema yet" if current is None else \
                f"is at schema revision {current}"
            raise DatabaseError(f"the database {state}, this latentvo needs revision {head}: "
                                "run 'latentvo db upgrade'")

    def _grant_reader(self, conn: sa.Connection) -> None:
        role = self.settings.reader_role
        exists = conn.scalar(sa.text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role})
        if not exists:
            try:
                with conn.begin_nested():
                    conn.execute(sa.text(f'CREATE ROLE "{role}" NOLOGIN'))
            except sa.exc.ProgrammingError as exc:
                raise DatabaseError(
                    f"the read-only role {role!r} does not exist and the owner may not create "
                    f"it; create it (CREATE ROLE {role} LOGIN PASSWORD ...) and rerun"
                ) from exc
        member = conn.scalar(sa.text("SELECT pg_has_role(current_user, :r, 'MEMBER')"),
                             {"r": role})
        if self.reader_url is None and not member:
            try:
                with conn.begin_nested():
                    conn.execute(sa.text(f'GRANT "{role}" TO CURRENT_USER'))
            except sa.exc.ProgrammingError as exc:
                raise DatabaseError(
                    f"reader sessions switch to {role!r} with SET ROLE, but the owner is not a "
                    f"member of it; GRANT {role} TO <owner>, or set "
                    "LATENTVO_READER_DATABASE_URL") from exc
        # Every published table is schema-qualified (Table.schema is None only for
        # tables on the search path).
        published_schemas = sorted({t.schema for t in published_tables() if t.schema})
        for schema in published_schemas:
            conn.execute(sa.text(f'GRANT USAGE ON SCHEMA "{schema}" TO "{role}"'))
            conn.execute(sa.text(f'GRANT SELECT ON ALL TABLES IN SCHEMA "{schema}" TO "{role}"'))
        conn.execute(sa.text(f'REVOKE ALL ON SCHEMA "{OPS_SCHEMA}" FROM "{role}"'))
        conn.execute(sa.text(f'REVOKE ALL ON ALL TABLES IN SCHEMA "{OPS_SCHEMA}" FROM "{role}"'))
        conn.execute(sa.text(f'REVOKE CREATE ON SCHEMA public FROM "{role}"'))
        # TAP uploads become temporary tables of the reader's session.
        database = conn.scalar(sa.text("SELECT current_database()"))
        conn.execute(sa.text(f'GRANT TEMPORARY ON DATABASE "{database}" TO "{role}"'))

    def _bootstrap_embedded(self, embedded: EmbeddedPostgres, port: int) -> None:
        """Create the roles (with their generated passwords), the database and the
        extensions (as superuser); give roles made before passwords were generated theirs.
        """
        su = _engine(embedded.superuser_url(port), isolation_level="AUTOCOMMIT")
        reader = self.settings.reader_role
        try:
            with self._reachable(), su.connect() as conn:
                for role in (OWNER_ROLE, reader):
                    # token_urlsafe passwords need no quoting; DDL takes no parameters
                    password = f"PASSWORD '{embedded.password(role)}'"
                    has_password = conn.scalar(sa.text(
                        "SELECT rolpassword IS NOT NULL FROM pg_authid WHERE rolname=:r"),
                        {"r": role})
                    if has_password is None:
                        conn.execute(sa.text(f'CREATE ROLE "{role}" LOGIN {password}'))
                    elif not has_password:  # made before passwords were generated
                        conn.execute(sa.text(f'ALTER ROLE "{role}" LOGIN {password}'))
                if not conn.scalar(sa.text("SELECT 1 FROM pg_database WHERE datname=:d"),
                                   {"d": DATABASE_NAME}):
                    conn.execute(sa.text(f'CREATE DATABASE "{DATABASE_NAME}" OWNER "{OWNER_ROLE}"'))
            su.dispose()
            su = _engine(embedded.superuser_url(port, DATABASE_NAME),
                         isolation_level="AUTOCOMMIT")
            with su.connect() as conn:
                for ext in EXTENSIONS:
                    conn.execute(sa.text(f"CREATE EXTENSION IF NOT EXISTS {ext}"))
                conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{PUBLISHED_SCHEMA}" '
                                     f'AUTHORIZATION "{OWNER_ROLE}"'))
        finally:
            su.dispose()


Access = Literal["read", "write", "upgrade"]


def open_database(access: Access, settings: Settings | None = None) -> Database:
    """The database of a command-line job, prepared as far as the job may change it.

    Parameters
    ----------
    access
        ``"read"``: the job only reads; the schema must be current already, and
        nothing (migrations, grants, TAP_SCHEMA) is changed. ``"write"``: the job
        writes rows; pending migrations are applied first, the rest is left as it
        is. ``"upgrade"``: the full :meth:`Database.upgrade` (``latentvo db
        upgrade``, ``serve``, ``demo``).
    settings
        The settings to use (default: :func:`~vo_service.config.load_settings`).

    Raises
    ------
    ConfigError
        When the configuration is malformed.
    DatabaseError
        When the database cannot be reached, or a read-only job finds its schema
        missing or behind.
    """
    database = Database(settings or load_settings())
    if access == "read":
        database.require_current()
    elif access == "write":
        database.ensure_ready()
    else:
        database.upgrade()
    return database


def _psycopg2(url: str) -> str:
    """Accept plain ``postgresql://`` URLs and use the psycopg2 driver."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg2")
    return parsed.render_as_string(hide_password=False)


def _engine(url: str, **kw) -> sa.Engine:
    # A fixed search_path: the owner role is named like the ``latentvo`` schema, and
    # "$user" in the default path would make reflection (migrations) see it unqualified.
    # pool_pre_ping replaces connections a database restart broke.
    engine = sa.create_engine(url, pool_pre_ping=True,
                              connect_args={"options": "-c search_path=public"}, **kw)

    @sa.event.listens_for(engine, "do_connect")
    def _name_session(_dialect, _record, _cargs, cparams):
        cparams["application_name"] = application_name()  # at connect time: forks differ

    return engine
