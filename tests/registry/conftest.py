"""Fixtures of the registry tests: an archive with spectra, models, a published
catalogue and data releases in each state (made by the release code), and the site's
drafts over it; the TAP tests' server with data, and STILTS."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests.releases.made import make_release, remove_releases
from tests.tap.conftest import (  # noqa: F401 - fixtures
    archive,
    fill_archive,
    publish_catalogue,
    stilts,
    tap_data,
    tap_env,
    tap_server,
)
from vo_service.releases import store

BASE = "https://vo.example.org/latentvo"
PUBLISHED, DRAFT, WITHDRAWN = "rtest_dr1", "rtest_dr2", "rtest_dr0"
FROZEN_SPECTRA = 100
"""The published release holds the first spectra only; the live archive has more."""


def _make_releases(database) -> None:
    """Three releases: one published (of the first spectra), one draft, one withdrawn."""
    with database.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM latentvo.spectra WHERE spectrum_id > :n"),
                     {"n": FROZEN_SPECTRA})
    for name, state in ((PUBLISHED, store.PUBLISHED), (DRAFT, store.DRAFT),
                        (WITHDRAWN, store.WITHDRAWN)):
        make_release(database, name, title=f"Test release {name}",
                     description="A frozen test release.", state=state,
                     doi="10.5072/latentvo.test" if state == store.PUBLISHED else None)


@pytest.fixture(scope="module")
def site(database, tmp_path_factory):
    """The archive of the TAP tests, the catalogue ``mlspec.spectra`` and three releases."""
    names = (PUBLISHED, DRAFT, WITHDRAWN)
    remove_releases(database, names)
    fill_archive(database.engine)
    publish_catalogue(database, tmp_path_factory.mktemp("catalogue"), n=500)
    try:
        _make_releases(database)
        fill_archive(database.engine)  # the live archive has every spectrum again
        yield database
    finally:
        remove_releases(database, names)


@pytest.fixture(scope="module")
def drafts(site):
    """The drafts of the site, by identifier."""
    from vo_service.registry.site import site_drafts

    with site.engine.connect() as conn:
        return {d.identifier: d for d in site_drafts(conn, site.settings, BASE)}
