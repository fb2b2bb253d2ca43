"""A VOResource record before and after the registry store dates it.

VOResource requires ``created`` and ``updated`` on every resource, and OAI-PMH
harvests by the date a record last changed. A :class:`ResourceDraft` is what the
configuration and the database describe now, rendered for any pair of dates; the
store compares its :attr:`~ResourceDraft.fingerprint` with the stored record's to
decide whether the record changed, and keeps a :class:`ResourceRecord` per
identifier, a deleted one included, for ever.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

ACTIVE = "active"
DELETED = "deleted"
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class ResourceDraft:
    """One resource of this site as it is described now, not yet dated."""

    identifier: str  # ivo://authority/path
    resource_type: str  # its xsi:type, e.g. "vs:CatalogService"
    title: str
    render: Callable[[datetime, datetime], str]
    """(created, updated) -> the ``ri:Resource`` element, namespaces declared on it."""

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the record rendered with fixed dates: equal when nothing else changed."""
        return hashlib.sha256(self.render(_EPOCH, _EPOCH).encode()).hexdigest()


@dataclass(frozen=True)
class ResourceRecord:
    """A record of the publishing registry, as OAI-PMH and RegTAP serve it."""

    identifier: str
    resource_type: str
    title: str
    status: str  # ACTIVE or DELETED
    created: datetime  # UTC, whole seconds
    updated: datetime  # UTC, whole seconds: the OAI-PMH datestamp
    xml: str  # the ri:Resource element; "" for a deleted record

    @property
    def deleted(self) -> bool:
        """Whether the resource was withdrawn (OAI-PMH ``status="deleted"`` header)."""
        return self.status == DELETED
