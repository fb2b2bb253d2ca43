"""Data of the citation tests: releases in every state, made by the real release code
(a plain module, not a conftest, so that it sits beside the release lifecycle's fixtures).

Over the archive of the TAP tests, whose models get artifact files and a reference-label
set first (:func:`tests.releases.made.trained_models`), four releases are created with
``freeze.create``: two published (with and without a DOI), one published then withdrawn
with a reason, one left a draft. Their manifests are the ones the release code wrote.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from schema.releases import FROZEN_TABLES
from tests.releases.made import make_release, remove_releases, trained_models
from tests.tap.conftest import fill_archive
from vo_service.releases import store

PUBLISHED = "cit_pub"  # with a DOI
NO_DOI = "cit_nodoi"  # published, no DOI
WITHDRAWN = "cit_gone"
DRAFT = "cit_draft"
DOI = "10.5072/latentvo.cit-pub"
REASON = "a calibration error in the label model"
TABLES = tuple(t.name for t in FROZEN_TABLES)
"""The frozen tables every release has, as :mod:`schema.releases` declares them."""
NAMES = (PUBLISHED, NO_DOI, WITHDRAWN, DRAFT)


@dataclass(frozen=True)
class Releases:
    """What the fixture made: the manifests by release, the artifacts by model id."""

    manifests: dict[str, dict]
    artifacts: dict[str, tuple[str, str]]  # model id -> (path under home, sha256)


def _description(title: str, name: str) -> str:
    return f"{title}: spectra & ML products (test release {name})."


def made_releases(database) -> Iterator[Releases]:
    """Published (with and without DOI), withdrawn and draft releases, removed after."""
    remove_releases(database, NAMES)
    fill_archive(database.engine)
    with trained_models(database) as artifacts:
        try:
            made = {}
            for name, title, state, doi in (
                    (PUBLISHED, "Test release <one>", store.PUBLISHED, DOI),
                    (NO_DOI, "Test release two", store.PUBLISHED, None),
                    (WITHDRAWN, "Withdrawn test release", store.WITHDRAWN, None),
                    (DRAFT, "Draft test release", store.DRAFT, None)):
                made[name] = make_release(database, name, title=title, doi=doi, state=state,
                                          description=_description(title, name),
                                          reason=REASON if state == store.WITHDRAWN else None)
            yield Releases({name: r.manifest for name, r in made.items()}, artifacts)
        finally:
            remove_releases(database, NAMES)
