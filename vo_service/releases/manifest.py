"""A release's manifest: what it froze, with counts and checksums anyone can re-check.

Built inside the transaction that copies the release, from its frozen tables, so the
manifest describes exactly the rows the release serves. A table's checksum is the
SHA-256 of its rows in PostgreSQL's text form (``row::text``), one per line (``\\n``
after each), in primary-key order, read with fixed output settings (UTC timestamps in
ISO style, shortest exact floats) so that the same rows always give the same sum.
The rows are streamed, never held whole in memory.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from schema.ops import published_catalogues
from schema.tables import reference_label_sets

MODEL_FIELDS = ("model_id", "kind", "artifact_sha256", "training_checksum", "training_size",
                "training_selection", "code_version", "reference_label_source",
                "base_model_id", "created_at")
"""The provenance of a model that a manifest records."""

STREAM_ROWS = 10_000


def quote(name: str) -> str:
    """A PostgreSQL identifier, double-quoted."""
    return '"' + name.replace('"', '""') + '"'


def fix_text_output(conn: sa.Connection) -> None:
    """Make ``row::text`` the same in every session, for the rest of the transaction."""
    for setting, value in (("TimeZone", "UTC"), ("DateStyle", "ISO, YMD"),
                           ("extra_float_digits", "1"), ("IntervalStyle", "postgres")):
        conn.execute(sa.text(f"SET LOCAL {setting} = '{value}'"))


def table_checksum(conn: sa.Connection, table: sa.Table) -> tuple[int, str]:
    """Rows and SHA-256 (hex) of ``table`` as the module docstring defines them.

    Call :func:`fix_text_output` in the transaction first.
    """
    order = ", ".join(quote(c.name) for c in table.primary_key.columns)
    name = f"{quote(str(table.schema))}.{quote(table.name)}"
    query = sa.text(f"SELECT t::text FROM {name} AS t ORDER BY {order}").execution_options(
        stream_results=True, yield_per=STREAM_ROWS)
    digest = hashlib.sha256()
    rows = 0
    for (line,) in conn.execute(query):
        digest.update(line.encode())
        digest.update(b"\n")
        rows += 1
    return rows, digest.hexdigest()


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def build_manifest(conn: sa.Connection, frozen: dict[str, sa.Table]) -> dict[str, Any]:
    """The manifest of a release's frozen tables (``frozen``: live table name -> copy).

    See :class:`vo_service.releases.store.Release` for its keys.
    """
    fix_text_output(conn)
    tables = []
    counts: dict[str, int] = {}
    for live_name, table in frozen.items():
        rows, sha256 = table_checksum(conn, table)
        tables.append({"name": f"{table.schema}.{table.name}", "rows": rows, "sha256": sha256})
        counts[live_name] = rows
    models = frozen["models"]
    model_rows = conn.execute(sa.select(*(models.c[f] for f in MODEL_FIELDS))
                              .order_by(models.c.kind, models.c.model_id)).mappings()
    model_list = [{k: _plain(v) for k, v in row.items()} for row in model_rows]
    used_sets = {m["reference_label_source"] for m in model_list if m["reference_label_source"]}
    sets = conn.execute(sa.select(reference_label_sets.c.name, reference_label_sets.c.source_sha256,
                                  reference_label_sets.c.n_rows)
                        .where(reference_label_sets.c.name.in_(sorted(used_sets)))
                        .order_by(reference_label_sets.c.name)).mappings()
    catalogues = conn.execute(sa.select(published_catalogues.c.schema_name.label("schema"),
                                        published_catalogues.c.table_name.label("table"),
                                        published_catalogues.c.n_rows.label("rows"))
                              .order_by(published_catalogues.c.schema_name,
                                        published_catalogues.c.table_name)).mappings()
    s = frozen["spectra"].c
    coverage = conn.execute(sa.select(
        sa.func.min(s.s_ra).label("ra_min"), sa.func.max(s.s_ra).label("ra_max"),
        sa.func.min(s.s_dec).label("dec_min"), sa.func.max(s.s_dec).label("dec_max"),
        sa.func.min(s.em_min).label("em_min"), sa.func.max(s.em_max).label("em_max"),
        sa.func.min(s.t_min).label("t_min"), sa.func.max(s.t_max).label("t_max"))).mappings().one()
    return {
        "spectra": counts["spectra"], "labels": counts["labels"], "latent": counts["latent"],
        "models": model_list,
        "label_sets": [dict(row) for row in sets],
        "catalogues": [dict(row) for row in catalogues],
        "tables": tables,
        "coverage": dict(coverage),
    }


def verify(conn: sa.Connection, manifest: dict[str, Any],
           frozen: dict[str, sa.Table]) -> list[str]:
    """The frozen tables whose rows or checksum differ from ``manifest``'s, as messages."""
    fix_text_output(conn)
    recorded = {t["name"]: t for t in manifest["tables"]}
    problems = []
    for table in frozen.values():
        name = f"{table.schema}.{table.name}"
        rows, sha256 = table_checksum(conn, table)
        entry = recorded.get(name)
        if entry is None:
            problems.append(f"{name} is not in the manifest")
        elif (rows, sha256) != (entry["rows"], entry["sha256"]):
            problems.append(f"{name}: {rows:,} rows, SHA-256 {sha256}; the manifest says "
                            f"{entry['rows']:,} rows, {entry['sha256']}")
    return problems
