"""Data of the citation tests: releases in every state, with frozen tables (a plain
module, not a conftest, so that it sits beside the release lifecycle's fixtures).

The releases are made the simple way, not with ``latentvo release create``: rows of
``latentvo_ops.releases`` with a realistic manifest, and for the published ones a schema
named like the release holding copies of the archive's tables (``CREATE TABLE ... AS``)
and model artifacts written under ``$LATENTVO_HOME`` whose SHA-256 the manifest records.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from tests.tap.conftest import fill_archive

PUBLISHED = "cit_pub"  # with a DOI
NO_DOI = "cit_nodoi"  # published, no DOI
WITHDRAWN = "cit_gone"
DRAFT = "cit_draft"
DOI = "10.5072/latentvo.cit-pub"
REASON = "a calibration error in the label model"
TABLES = ("spectra", "labels", "latent", "models")


@dataclass(frozen=True)
class Releases:
    """What the fixture made: the manifests by release, the artifacts by model id."""

    manifests: dict[str, dict]
    artifacts: dict[str, tuple[str, str]]  # model id -> (path under home, sha256)


def _freeze(conn: sa.Connection, name: str, home: Path) -> dict:
    """The frozen tables of ``name`` and its manifest (artifacts written under ``home``)."""
    conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {name} CASCADE"))
    conn.execute(sa.text(f"CREATE SCHEMA {name}"))
    for table in TABLES:
        conn.execute(sa.text(f"CREATE TABLE {name}.{table} AS SELECT * FROM latentvo.{table}"))
    conn.execute(sa.text(f"ALTER TABLE {name}.labels ADD PRIMARY KEY (model_id, spectrum_id)"))
    models = []
    for row in conn.execute(sa.text(f"SELECT * FROM {name}.models ORDER BY model_id")).mappings():
        path = f"models/{name}-{row['model_id']}/model.pt"
        payload = f"weights of {row['model_id']} in {name}".encode()
        (home / path).parent.mkdir(parents=True, exist_ok=True)
        (home / path).write_bytes(payload)
        sha = hashlib.sha256(payload).hexdigest()
        conn.execute(sa.text(f"UPDATE {name}.models SET artifact_path = :p, artifact_sha256 = :s "
                             "WHERE model_id = :m"), {"p": path, "s": sha, "m": row["model_id"]})
        models.append({"model_id": row["model_id"], "kind": row["kind"], "artifact_sha256": sha,
                       "training_checksum": row["training_checksum"],
                       "training_size": row["training_size"],
                       "training_selection": row["training_selection"],
                       "code_version": row["code_version"],
                       "reference_label_source": row["reference_label_source"],
                       "base_model_id": row["base_model_id"],
                       "created_at": row["created_at"].isoformat()})
    rows = {t: conn.scalar(sa.text(f"SELECT count(*) FROM {name}.{t}")) for t in TABLES}
    coverage = conn.execute(sa.text(
        f"SELECT min(s_ra) AS ra_min, max(s_ra) AS ra_max, min(s_dec) AS dec_min, "
        f"max(s_dec) AS dec_max, min(em_min) AS em_min, max(em_max) AS em_max, "
        f"min(t_min) AS t_min, max(t_max) AS t_max FROM {name}.spectra")).mappings().one()
    return {"spectra": rows["spectra"], "labels": rows["labels"], "latent": rows["latent"],
            "models": models,
            "label_sets": [{"name": "ref-test", "source_sha256": "ab" * 32, "n_rows": 100}],
            "catalogues": [{"schema": "mlspec", "table": "spectra", "rows": 3000}],
            "tables": [{"name": f"{name}.{t}", "rows": rows[t], "sha256": f"{i:02d}" * 32}
                       for i, t in enumerate(TABLES)],
            "coverage": dict(coverage)}


def _insert(conn: sa.Connection, name: str, title: str, state: str, manifest: dict,
            doi: str | None = None) -> None:
    conn.execute(sa.text(
        "INSERT INTO latentvo_ops.releases (name, title, description, doi, state, created_at, "
        "published_at, withdrawn_at, manifest) VALUES (:n, :t, :d, :doi, :s, "
        "now() - interval '3 days', CASE WHEN :s <> 'draft' THEN now() - interval '2 days' END, "
        "CASE WHEN :s = 'withdrawn' THEN now() - interval '1 day' END, CAST(:m AS jsonb))"),
        {"n": name, "t": title, "d": f"{title}: spectra & ML products (test release {name}).",
         "doi": doi, "s": state, "m": json.dumps(manifest)})


def _remove(conn: sa.Connection) -> None:
    names = (PUBLISHED, NO_DOI, WITHDRAWN, DRAFT)
    for name in names:
        conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {name} CASCADE"))
    conn.execute(sa.text("DELETE FROM latentvo_ops.releases WHERE name = ANY(:n)"),
                 {"n": list(names)})


def made_releases(database) -> Iterator[Releases]:
    """Published (with and without DOI), withdrawn and draft releases, removed after."""
    fill_archive(database.engine)
    home = database.settings.home
    with database.engine.begin() as conn:
        _remove(conn)
        manifests = {name: _freeze(conn, name, home) for name in (PUBLISHED, NO_DOI)}
        _insert(conn, PUBLISHED, "Test release <one>", "published", manifests[PUBLISHED], DOI)
        _insert(conn, NO_DOI, "Test release two", "published", manifests[NO_DOI])
        manifests[WITHDRAWN] = {**manifests[PUBLISHED], "withdrawn_reason": REASON}
        _insert(conn, WITHDRAWN, "Withdrawn test release", "withdrawn", manifests[WITHDRAWN])
        manifests[DRAFT] = manifests[PUBLISHED]
        _insert(conn, DRAFT, "Draft test release", "draft", manifests[DRAFT])
        artifacts = {row.model_id: (row.artifact_path, row.artifact_sha256) for row in
                     conn.execute(sa.text(f"SELECT * FROM {PUBLISHED}.models"))}
    yield Releases(manifests, artifacts)
    with database.engine.begin() as conn:
        _remove(conn)

