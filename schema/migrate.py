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
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from schema.tables import OPS_SCHEMA, metadata

MIGRATIONS = Path(__file__).parent / "migrations"
MANAGED_SCHEMAS = {"latentvo", OPS_SCHEMA, "tap_schema", "ivoa", "rr"}


def include_object(obj: sa.schema.SchemaItem, name: str | None, type_: str, reflected: bool,
                   compare_to: sa.schema.SchemaItem | None) -> bool:
    """Limit Alembic to our own schemas' tables; skip views and the per-model indexes.

    Alembic's ``include_object`` hook, used both by the migration environment and
    by :func:`differences`, so migrations and the declaration check look at the
    same objects: views are written by hand, and the per-model HNSW indexes
    (``latent_hnsw_*``) are created at run time by :mod:`schema.latent_index`.

    Parameters
    ----------
    obj
        The declared (or, when ``reflected``, the database's) object.
    name
        Its name.
    type_
        Alembic's kind of object: ``"table"``, ``"index"``, ``"column"``...
    reflected
        Whether ``obj`` was read from the database rather than declared.
    compare_to
        The object it is compared with, if any (unused).

    Returns
    -------
    bool
        Whether Alembic should compare (and migrate) the object.
    """
    if type_ == "table" and isinstance(obj, sa.Table):  # Alembic passes a Table here
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
    """The newest revision under ``schema/migrations/versions``: what :func:`upgrade` reaches.

    Raises
    ------
    RuntimeError
        When the package holds no revision (a broken install).
    """
    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    if head is None:
        raise RuntimeError(f"no migration revisions under {MIGRATIONS}")
    return head


def current_revision(engine: sa.Engine) -> str | None:
    """The revision the database is at; None for a database never migrated."""
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


def downgrade(engine: sa.Engine, revision: str) -> None:
    """Take the database back to ``revision`` (one transaction): rolling a release back."""
    with engine.begin() as conn:
        command.downgrade(_config(conn), revision)


def differences(engine: sa.Engine) -> list[Any]:
    """What the declaration has that the database lacks (and vice versa).

    Returns
    -------
    list
        Alembic's autogenerate diffs (tuples such as ``("add_table", Table)``, or
        lists of them for column changes); empty when the database matches.
    """
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={
            "include_schemas": True, "include_object": include_object, "compare_type": True,
            "version_table_schema": OPS_SCHEMA,
        })
        diffs: list[Any] = compare_metadata(ctx, metadata)  # Alembic types it Any
        return diffs
