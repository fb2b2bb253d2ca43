"""``latentvo release create``: copy what a release contains into its own schema.

One transaction, at REPEATABLE READ so that every copy reads the same snapshot: an
ingest or inference committing meanwhile is either wholly in the release or not at
all. The frozen tables (:mod:`schema.releases`) get the spectra that exist now, the
chosen models and only those models' products, then the live tables' indexes and the
release's ObsCore view; :mod:`vo_service.releases.manifest` then sums them up. The
release starts as a draft: its schema exists, but the reader role has no access to it
and TAP_SCHEMA does not list it until ``latentvo release publish``.

The live ``spectra.release`` column says which release a spectrum was ingested for
(the ``release`` setting); in the frozen copy it is the release's own name, for every
spectrum it holds.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import sqlalchemy as sa

from schema.ops import releases
from schema.releases import FROZEN_TABLES, frozen_tables, name_problem, obscore_view_sql
from schema.releases import schema_description as describe_schema
from schema.tables import MODEL_RANK, models, spectra
from vo_service.releases.manifest import build_manifest, quote
from vo_service.releases.store import Release, ReleaseError, read_release

DOI_PATTERN = re.compile(r"^10\.\d{4,9}/\S+$")


def check_new_name(conn: sa.Connection, name: str) -> None:
    """Refuse a name that is malformed, reserved, an existing schema or a release's.

    Names of withdrawn releases stay taken: their identifiers and landing pages remain.
    """
    problem = name_problem(name)
    if problem:
        raise ReleaseError(f"bad release name {name!r}: {problem}")
    existing = read_release(conn, name)
    if existing is not None:
        change = {"draft": "delete the draft first ('latentvo release delete') to make it anew",
                  "published": "a published release cannot be re-created or changed",
                  "withdrawn": "the names of withdrawn releases are never reused"}[existing.state]
        raise ReleaseError(f"release {name!r} exists ({existing.state}): {change}")
    if conn.scalar(sa.text("SELECT 1 FROM pg_namespace WHERE nspname = :n"), {"n": name}):
        raise ReleaseError(f"bad release name {name!r}: a schema of that name exists already")


def chosen_models(conn: sa.Connection, model_ids: Sequence[str] | None) -> list[str]:
    """The named models, checked; by default the current model of each kind."""
    if not model_ids:
        return list(conn.execute(sa.text(
            f"SELECT model_id FROM {MODEL_RANK} WHERE rank = 1 ORDER BY kind")).scalars())
    wanted = sorted(set(model_ids))
    known = set(conn.execute(sa.select(models.c.model_id).where(
        models.c.model_id.in_(wanted))).scalars())
    unknown = [m for m in wanted if m not in known]
    if unknown:
        raise ReleaseError(f"unknown model {', '.join(map(repr, unknown))} "
                           "('latentvo ml list' lists the models)")
    return wanted


def _copy_rows(conn: sa.Connection, live: sa.Table, frozen: sa.Table, name: str,
               model_ids: list[str]) -> None:
    columns = [c.name for c in live.columns]
    selected = [f":release AS {quote(c)}" if live is spectra and c == "release"
                else quote(c) for c in columns]
    where = "" if "model_id" not in live.c else "WHERE model_id = ANY(:ids)"
    order = ", ".join(quote(c.name) for c in live.primary_key.columns)
    conn.execute(sa.text(
        f"INSERT INTO {quote(name)}.{quote(frozen.name)} ({', '.join(map(quote, columns))}) "
        f"SELECT {', '.join(selected)} FROM {quote(str(live.schema))}.{quote(live.name)} "
        f"{where} ORDER BY {order}"), {"release": name, "ids": model_ids})


def create(engine: sa.Engine, name: str, *, title: str, description: str = "",
           doi: str | None = None, model_ids: Sequence[str] | None = None) -> Release:
    """Freeze the archive's current state as the draft release ``name``.

    Parameters
    ----------
    model_ids
        The models whose products the release holds; None or empty: the current
        model of each kind (rank 1 of ``latentvo.model_rank``).

    Raises
    ------
    ReleaseError
        For a bad or taken name, an empty title, a malformed DOI, an unknown model, or
        an archive without spectra.
    """
    if not title.strip():
        raise ReleaseError("a release needs a title (--title)")
    if doi is not None and not DOI_PATTERN.match(doi):
        raise ReleaseError(f"{doi!r} is not a DOI (10.<registrant>/<suffix>, no 'doi:' or URL)")
    with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn, \
            conn.begin():
        check_new_name(conn, name)
        chosen = chosen_models(conn, model_ids)
        if not conn.scalar(sa.select(sa.exists(sa.select(spectra.c.spectrum_id)))):
            raise ReleaseError("the archive has no spectra: nothing to release "
                               "('latentvo ingest' first)")
        try:
            with conn.begin_nested():
                conn.execute(sa.text(f"CREATE SCHEMA {quote(name)}"))
        except (sa.exc.ProgrammingError, sa.exc.IntegrityError) as exc:
            # duplicate_schema, or the catalogue's unique index when a concurrent create
            # of the same name committed while this one waited for it
            if getattr(exc.orig, "pgcode", None) not in ("42P06", "23505"):
                raise
            raise ReleaseError(f"bad release name {name!r}: a schema of that name was "
                               "created meanwhile") from None
        frozen = frozen_tables(name)
        for live in FROZEN_TABLES:  # foreign keys afterwards: checked once, not per row
            conn.execute(sa.schema.CreateTable(frozen[live.name],
                                               include_foreign_key_constraints=[]))
            _copy_rows(conn, live, frozen[live.name], name, chosen)
        for table in frozen.values():
            for index in table.indexes:
                index.create(conn)
            for constraint in table.foreign_key_constraints:
                conn.execute(sa.schema.AddConstraint(constraint))
        conn.execute(sa.text(obscore_view_sql(name)))
        manifest = build_manifest(conn, frozen)
        created = conn.execute(sa.insert(releases).values(
            name=name, title=title.strip(), description=description.strip(), doi=doi,
            state="draft", manifest=manifest).returning(releases.c.created_at)).scalar_one()
        comment = _literal(describe_schema(name, title.strip(), created))
        conn.execute(sa.text(f"COMMENT ON SCHEMA {quote(name)} IS {comment}"))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in frozen.values():  # the visibility map: index-only scans for counts
            conn.execute(sa.text(f"VACUUM (ANALYZE) {quote(name)}.{quote(table.name)}"))
    with engine.connect() as conn:
        release = read_release(conn, name)
    assert release is not None  # committed above
    return release


def _literal(text: str) -> str:
    """A SQL string literal for ``sa.text`` (COMMENT takes no parameters; colons escaped
    so that none reads as a bind parameter)."""
    return "'" + text.replace("'", "''").replace(":", "\\:") + "'"
