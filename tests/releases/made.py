"""Data releases made by the service's own code, for tests that need releases in a given
state (a plain module, not a conftest: the registry tests use it too).

A release is made as ``latentvo release create``/``publish``/``withdraw`` make it
(:func:`vo_service.releases.freeze.create`, :mod:`vo_service.releases.lifecycle`), so
its schema holds every table that :mod:`schema.releases` declares and a published one
is served (TAP_SCHEMA, VOSI, ADQL) exactly as an operator's would be. No registry
re-sync is run on publish or withdrawal; the records that servers started meanwhile
synced for the test releases are removed with the releases.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from schema.ops import registry_records, releases
from schema.tables import models, reference_label_sets
from tests.tap.conftest import LABEL_MODEL
from vo_service.registry import regtap
from vo_service.registry.identifiers import Identifiers
from vo_service.registry.store import read_records
from vo_service.releases import freeze, lifecycle
from vo_service.releases.store import DRAFT, PUBLISHED, WITHDRAWN, Release, read_release

LABEL_SET = "ref-test"
"""The reference-label set that :func:`trained_models` says the label model learnt from."""


def make_release(database, name: str, *, title: str, description: str = "",
                 doi: str | None = None, state: str = PUBLISHED,
                 reason: str | None = None) -> Release:
    """Create the release ``name`` from the archive as it is now and take it to ``state``
    (withdrawn ones are published first, as only published releases are withdrawn)."""
    engine = database.engine
    freeze.create(engine, name, title=title, description=description, doi=doi)
    if state in (PUBLISHED, WITHDRAWN):
        lifecycle.publish(engine, name, reader_role=database.settings.reader_role)
    if state == WITHDRAWN:
        lifecycle.withdraw(engine, name, reason=reason)
    with engine.connect() as conn:
        release = read_release(conn, name)
    assert release is not None and release.state == state
    return release


def remove_releases(database, names: Collection[str]) -> None:
    """Remove the releases ``names`` whatever their state, and their registry records.

    Published ones are withdrawn and drafts deleted by the lifecycle (schema dropped,
    TAP_SCHEMA regenerated); the rows that remain (withdrawn releases keep theirs for
    good) are then deleted, and the RegTAP tables refilled without their records. A
    schema without a release (an interrupted run) is dropped too.
    """
    engine = database.engine
    with engine.connect() as conn:
        found = {name: read_release(conn, name) for name in names}
    for name, release in found.items():
        if release is not None and release.state == PUBLISHED:
            lifecycle.withdraw(engine, name)
        elif release is not None and release.state == DRAFT:
            lifecycle.delete(engine, name)
    identifiers = Identifiers(database.settings.authority)
    with engine.begin() as conn:
        for name, release in found.items():
            if release is None:
                conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        conn.execute(releases.delete().where(releases.c.name.in_(list(names))))
        gone = conn.execute(registry_records.delete().where(registry_records.c.identifier.in_(
            [identifiers.release(name) for name in names])))
        if gone.rowcount:
            regtap.fill(conn, read_records(conn))


@contextmanager
def trained_models(database) -> Iterator[dict[str, tuple[str, str]]]:
    """The archive's models with the provenance training gives them: an artifact file
    under ``$LATENTVO_HOME`` at ``models/<id>/model.pt`` whose SHA-256 the models row
    records, and a reference-label set (:data:`LABEL_SET`) for the label model.

    Yields model id -> (artifact path relative to the home, SHA-256). The rows, the
    files and the label set are put back as they were afterwards.
    """
    home = database.settings.home
    with database.engine.begin() as conn:
        before = conn.execute(sa.select(models.c.model_id, models.c.artifact_path,
                                        models.c.artifact_sha256,
                                        models.c.reference_label_source)).all()
        artifacts = {}
        for row in before:
            path = f"models/{row.model_id}/model.pt"
            payload = f"the weights of {row.model_id}".encode()
            (home / path).parent.mkdir(parents=True, exist_ok=True)
            (home / path).write_bytes(payload)
            artifacts[row.model_id] = (path, hashlib.sha256(payload).hexdigest())
            conn.execute(models.update().where(models.c.model_id == row.model_id).values(
                artifact_path=path, artifact_sha256=artifacts[row.model_id][1]))
        conn.execute(reference_label_sets.delete().where(reference_label_sets.c.name == LABEL_SET))
        conn.execute(reference_label_sets.insert().values(
            name=LABEL_SET, source_path="reference/ref-test.csv", source_sha256="ab" * 32,
            key_column="obs_id", n_rows=100))
        conn.execute(models.update().where(models.c.model_id == LABEL_MODEL).values(
            reference_label_source=LABEL_SET))
    try:
        yield artifacts
    finally:
        with database.engine.begin() as conn:
            for row in before:
                conn.execute(models.update().where(models.c.model_id == row.model_id).values(
                    artifact_path=row.artifact_path, artifact_sha256=row.artifact_sha256,
                    reference_label_source=row.reference_label_source))
            conn.execute(reference_label_sets.delete().where(
                reference_label_sets.c.name == LABEL_SET))
        for path, _ in artifacts.values():
            (home / path).unlink(missing_ok=True)
            (home / path).parent.rmdir()
