"""Versioned migrations (Alembic), driven from code rather than an alembic.ini.

The revisions under ``schema/migrations/versions`` are written from the
declaration in ``schema.tables``: :func:`differences` lists what a migrated
database lacks (Alembic's autogenerate comparison), and the revision adds it;
views, which Alembic does not compare, are written by hand. Each is reviewed;
``tests/test_database.py`` fails if the declaration and the migrated database
ever differ. Upgrading an up-to-date database is a no-op.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from schema.tables import OPS_SCHEMA, metadata

MIGRATIONS = Path(__file__).parent / "migrations"
MANAGED_SCHEMAS = {"latentvo", OPS_SCHEMA, "tap_schema", "ivoa"}


def include_object(obj, name, type_, reflected, compare_to) -> bool:
    """Limit Alembic to our own schemas' tables; skip views and the per-model indexes."""
    if type_ == "table":
        vo = obj.info.get("vo") if not reflected else None
        if getattr(vo, "table_type", None) == "view":
            return False  # views are written by hand in their revision
        return obj.schema in MANAGED_SCHEMAS
    if type_ == "index" and name and name.startswith("latent_hnsw_"):
        return False
    return True


def _config(connection: sa.Connection) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    return ScriptDirectory(str(MIGRATIONS)).get_current_head()


def current_revision(engine: sa.Engine) -> str | None:
    with engine.connect() as conn:
        has_table = sa.inspect(conn).has_table("alembic_version", schema=OPS_SCHEMA)
        if not has_table:
            return None
        return MigrationContext.configure(
            conn, opts={"version_table_schema": OPS_SCHEMA}
        ).get_current_revision()


def upgrade(engine: sa.Engine) -> None:
    """Bring the database to the head revision (one transaction)."""
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {OPS_SCHEMA}"))
        command.upgrade(_config(conn), "head")


def differences(engine: sa.Engine) -> list:
    """What the declaration has that the database lacks (and vice versa)."""
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={
            "include_schemas": True, "include_object": include_object, "compare_type": True,
            "version_table_schema": OPS_SCHEMA,
        })
        return compare_metadata(ctx, metadata)
