"""Fixtures of the registry tests: an archive with spectra, models, a published
catalogue and data releases in each state, and the site's drafts over it; the TAP
tests' server with data, and STILTS."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from tests.tap.conftest import (  # noqa: F401 - fixtures
    archive,
    fill_archive,
    publish_catalogue,
    stilts,
    tap_data,
    tap_env,
    tap_server,
)

BASE = "https://vo.example.org/latentvo"
PUBLISHED, DRAFT, WITHDRAWN = "rtest_dr1", "rtest_dr2", "rtest_dr0"
MANIFEST = {"spectra": 240, "labels": 240, "latent": 240,
            "models": [{"model_id": "ae-test-1"}, {"model_id": "labels-test-1"}],
            "coverage": {"em_min": 3.8e-7, "em_max": 6.9e-7, "t_min": 58000.0,
                         "t_max": 58239.01}}


def _release_rows(conn: sa.Connection) -> None:
    """Three releases: one published (with frozen spectra), one draft, one withdrawn."""
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    for name, state in ((PUBLISHED, "published"), (DRAFT, "draft"), (WITHDRAWN, "withdrawn")):
        conn.execute(sa.text(
            "INSERT INTO latentvo_ops.releases (name, title, description, doi, state, "
            "created_at, published_at, withdrawn_at, manifest) VALUES (:n, :t, :d, :doi, :s, "
            ":c, :p, :w, CAST(:m AS jsonb))"),
            {"n": name, "t": f"Test release {name}", "d": "A frozen test release.",
             "doi": "10.5072/latentvo.test" if state == "published" else None, "s": state,
             "c": when, "p": when if state != "draft" else None,
             "w": when if state == "withdrawn" else None, "m": json.dumps(MANIFEST)})
    conn.execute(sa.text(f"CREATE SCHEMA {PUBLISHED}"))
    conn.execute(sa.text(f"CREATE TABLE {PUBLISHED}.spectra AS "
                         "SELECT * FROM latentvo.spectra WHERE spectrum_id <= 100"))


def _drop_releases(conn: sa.Connection) -> None:
    conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {PUBLISHED} CASCADE"))
    conn.execute(sa.text("DELETE FROM latentvo_ops.releases WHERE name IN (:a, :b, :c)"),
                 {"a": PUBLISHED, "b": DRAFT, "c": WITHDRAWN})


@pytest.fixture(scope="module")
def site(database, tmp_path_factory):
    """The archive of the TAP tests, the catalogue ``mlspec.spectra`` and three releases."""
    fill_archive(database.engine)
    publish_catalogue(database, tmp_path_factory.mktemp("catalogue"), n=500)
    with database.engine.begin() as conn:
        _drop_releases(conn)
        _release_rows(conn)
    yield database
    with database.engine.begin() as conn:
        _drop_releases(conn)


@pytest.fixture(scope="module")
def drafts(site):
    """The drafts of the site, by identifier."""
    from vo_service.registry.site import site_drafts

    with site.engine.connect() as conn:
        return {d.identifier: d for d in site_drafts(conn, site.settings, BASE)}
