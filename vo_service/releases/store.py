"""The releases as stored in ``latentvo_ops.releases``, as plain values."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from schema.ops import releases
from vo_service.errors import OperatorError

DRAFT, PUBLISHED, WITHDRAWN = "draft", "published", "withdrawn"


@dataclass(frozen=True)
class Release:
    """One data release.

    ``manifest`` is what the release froze, as JSON::

        {"spectra": n, "labels": n, "latent": n,
         "models": [{"model_id", "kind", "artifact_sha256", "training_checksum",
                     "training_size", "training_selection", "code_version",
                     "reference_label_source", "base_model_id", "created_at"}],
         "label_sets": [{"name", "source_sha256", "n_rows"}],
         "catalogues": [{"schema", "table", "rows"}],
         "tables": [{"name", "rows", "sha256"}],
         "coverage": {"ra_min", ..., "em_min", "em_max", "t_min", "t_max"}}

    ``tables[].sha256`` is the SHA-256 of the table's rows in PostgreSQL's text form
    (``row::text``, timestamps in UTC), one per line, ordered by the primary key
    (:mod:`vo_service.releases.manifest`). A withdrawn release's manifest also has
    ``"withdrawn_reason"`` (the operator's ``--reason``, or null).
    """

    name: str  # also the ADQL schema of its tables (``dr1.spectra``)
    title: str
    description: str
    doi: str | None
    state: str  # DRAFT, PUBLISHED or WITHDRAWN
    created: datetime
    published: datetime | None
    withdrawn: datetime | None
    manifest: dict[str, Any]

    @property
    def public(self) -> bool:
        """Whether its data is served (published and not withdrawn)."""
        return self.state == PUBLISHED


def _release(row: sa.Row[Any]) -> Release:
    return Release(row.name, row.title, row.description, row.doi, row.state, row.created_at,
                   row.published_at, row.withdrawn_at, row.manifest)


def read_releases(conn: sa.Connection) -> list[Release]:
    """Every release, drafts and withdrawn ones included, oldest first."""
    rows = conn.execute(sa.select(releases).order_by(releases.c.created_at, releases.c.name))
    return [_release(row) for row in rows]


def read_release(conn: sa.Connection, name: str) -> Release | None:
    """The release called ``name``; None when there is none."""
    row = conn.execute(sa.select(releases).where(releases.c.name == name)).first()
    return _release(row) if row else None


class ReleaseError(OperatorError):
    """An operator mistake about a release: a bad or taken name, an unknown model, a
    change a release's state does not allow."""


def require_release(conn: sa.Connection, name: str, *, lock: bool = False) -> Release:
    """The release called ``name``; with ``lock`` its row stays locked until the
    transaction ends, so concurrent state changes take turns.

    Raises
    ------
    ReleaseError
        When there is no such release.
    """
    query = sa.select(releases).where(releases.c.name == name)
    row = conn.execute(query.with_for_update() if lock else query).first()
    if row is None:
        raise ReleaseError(f"there is no release {name!r} ('latentvo release list' lists them)")
    return _release(row)
