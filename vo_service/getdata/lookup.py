"""Spectra by publisher DID, as the download and DataLink endpoints need them.

Reads run as the read-only role. Rows are cached briefly (a spectrum's file is
content-addressed and never changes; the cache only saves the round trip),
so a burst of downloads of the same spectra costs one query each.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from dataclasses import dataclass

import sqlalchemy as sa

from schema.tables import spectra

COLUMNS = (spectra.c.spectrum_id, spectra.c.obs_publisher_did, spectra.c.obs_id,
           spectra.c.target_name, spectra.c.instrument_name, spectra.c.file_sha256,
           spectra.c.file_name, spectra.c.access_format, spectra.c.access_estsize,
           spectra.c.em_xel, spectra.c.ingested_at)


@dataclass(frozen=True)
class SpectrumRecord:
    """What the download and DataLink endpoints need of a spectrum (one ``spectra`` row)."""

    spectrum_id: int
    obs_publisher_did: str
    obs_id: str
    target_name: str | None
    instrument_name: str | None
    file_sha256: str
    file_name: str
    access_format: str
    access_estsize: int
    em_xel: int
    ingested_at: dt.datetime

    @property
    def title(self) -> str:
        """A human title: target (or observation id), instrument, observation id."""
        return " ".join(x for x in (self.target_name or self.obs_id, self.instrument_name,
                                    "spectrum", self.obs_id) if x)


class SpectrumLookup:
    """Spectra by publisher DID, read with ``engine``, cached for ``ttl`` seconds.

    Parameters
    ----------
    engine
        An engine of the read-only role.
    ttl
        Seconds a row (or the absence of one) is reused without asking the database.
    size
        Entries kept before the cache is emptied.
    """

    def __init__(self, engine: sa.Engine, ttl: float = 30.0, size: int = 20_000) -> None:
        self.engine = engine
        self.ttl = ttl
        self.size = size
        self._cache: dict[str, tuple[float, SpectrumRecord | None]] = {}
        self._lock = threading.Lock()

    def many(self, dids: list[str]) -> dict[str, SpectrumRecord]:
        """The known spectra among ``dids`` (unknown ones are absent)."""
        now = time.monotonic()
        found: dict[str, SpectrumRecord] = {}
        missing = []
        for did in dict.fromkeys(dids):
            hit = self._cache.get(did)
            if hit is not None and now - hit[0] < self.ttl:
                if hit[1] is not None:
                    found[did] = hit[1]
            else:
                missing.append(did)
        if missing:
            with self.engine.connect() as conn:
                rows = conn.execute(sa.select(*COLUMNS).where(
                    spectra.c.obs_publisher_did.in_(missing))).all()
            fetched = {r.obs_publisher_did: SpectrumRecord(*r) for r in rows}
            with self._lock:
                if len(self._cache) > self.size:
                    self._cache.clear()
                for did in missing:
                    self._cache[did] = (now, fetched.get(did))
            found.update(fetched)
        return found

    def cached(self, did: str) -> SpectrumRecord | None:
        """The record if it is cached and fresh (no database access), else None."""
        hit = self._cache.get(did)
        if hit is not None and time.monotonic() - hit[0] < self.ttl:
            return hit[1]
        return None

    def one(self, did: str) -> SpectrumRecord | None:
        """The spectrum with publisher DID ``did``, or None when there is none."""
        return self.many([did]).get(did)
