"""What a release holds, read from its manifest (:class:`~vo_service.releases.store.Release`)
for the pages and documents that describe it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from vo_service.releases.store import Release

COUNTED = (("spectra", "spectra"), ("labels", "label rows"), ("latent", "latent vectors"))
"""(manifest key, what it counts) of the manifest's row counts."""
_MJD_ZERO = datetime(1858, 11, 17, tzinfo=UTC)


@dataclass(frozen=True)
class FrozenTable:
    """One table of a release's schema, as the manifest lists it."""

    schema: str  # the release's name
    name: str
    rows: int | None
    sha256: str | None  # the manifest's checksum over the table's ordered rows

    @property
    def qualified(self) -> str:
        """The name ADQL queries use: ``dr1.spectra``."""
        return f"{self.schema}.{self.name}"


def frozen_tables(release: Release) -> list[FrozenTable]:
    """The release's tables, in the manifest's order."""
    return [FrozenTable(release.name, str(t["name"]).rpartition(".")[2], t.get("rows"),
                        t.get("sha256"))
            for t in release.manifest.get("tables", ())]


def counts(release: Release) -> list[tuple[str, int]]:
    """(what, how many) of the rows the release froze."""
    return [(label, int(release.manifest[key])) for key, label in COUNTED
            if release.manifest.get(key) is not None]


def models(release: Release) -> list[dict[str, Any]]:
    """The models the release froze, each with its provenance."""
    return list(release.manifest.get("models", ()))


def example_queries(release: Release) -> list[tuple[str, str]]:
    """(what it shows, ADQL) for each of the release's tables and its ObsCore view."""
    names = [t.name for t in frozen_tables(release)]
    queries = [(f"the first rows of {release.name}.{name}",
                f"SELECT TOP 10 * FROM {release.name}.{name}") for name in names]
    if {"spectra", "labels"} <= set(names):
        queries.append(("predicted labels with positions",
                        f"SELECT TOP 10 s.obs_id, s.s_ra, s.s_dec, l.model_id, l.teff, l.logg, "
                        f"l.mh, l.in_domain FROM {release.name}.spectra AS s "
                        f"JOIN {release.name}.labels AS l USING (spectrum_id)"))
    if "obscore" not in names:
        queries.append((f"the release's ObsCore view, {release.name}.obscore",
                        f"SELECT TOP 10 * FROM {release.name}.obscore"))
    return queries


def time_range(release: Release) -> tuple[datetime, datetime] | None:
    """The observation dates the release covers (its coverage's t_min..t_max, MJD)."""
    coverage = release.manifest.get("coverage") or {}
    t_min, t_max = coverage.get("t_min"), coverage.get("t_max")
    if t_min is None or t_max is None:
        return None
    return _MJD_ZERO + timedelta(days=float(t_min)), _MJD_ZERO + timedelta(days=float(t_max))


def issued(release: Release) -> datetime:
    """When the release was (or, for a draft, would be) issued: its publication date."""
    return release.published or release.created


def day(moment: datetime) -> str:
    """An ISO date (UTC) as citations show them."""
    return moment.astimezone(UTC).date().isoformat()


def instant(moment: datetime) -> str:
    """An ISO date and time (UTC, whole seconds, "Z")."""
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def withdrawal_reason(release: Release) -> str | None:
    """Why the release was withdrawn, as ``latentvo release withdraw --reason`` recorded
    it in the manifest (``withdrawn_reason``); None when no reason was given."""
    reason = release.manifest.get("withdrawn_reason")
    return str(reason) if reason else None


def artifact_paths(conn: sa.Connection, release: Release) -> dict[str, str]:
    """Model id -> its artifact's path relative to ``$LATENTVO_HOME``, from the release's
    frozen ``models`` table (the manifest has the checksums, the table the paths)."""
    frozen = sa.table("models", sa.column("model_id"), sa.column("artifact_path"),
                      schema=release.name)
    return {row.model_id: row.artifact_path for row in conn.execute(
        sa.select(frozen.c.model_id, frozen.c.artifact_path))}
