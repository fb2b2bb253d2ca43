"""Keeping the stored records in step with the site: at web start-up and on demand.

The records name the site's public URLs, so a sync needs the public base URL:
``base_url`` when configured, else where ``latentvo serve`` listens (it passes its
address to the web workers in ``LATENTVO_SERVED_AT``). ``latentvo registry sync``
run later without ``base_url`` reuses the base of the last sync, which the
registry's own record keeps as its OAI-PMH access URL.

The drafts come from the VOResource builders of the site
(:func:`vo_service.registry.site.site_drafts`).
"""

from __future__ import annotations

import socket
from collections.abc import Mapping

import sqlalchemy as sa

from vo_service.config import Settings
from vo_service.registry.site import site_drafts
from vo_service.registry.store import SyncReport, recorded_base, sync_site

SERVED_AT_ENV = "LATENTVO_SERVED_AT"


def served_at(host: str, port: int) -> str:
    """The base URL of a server listening on ``host``:``port`` (a wildcard address
    stands for this machine's name)."""
    if host in ("", "0.0.0.0", "::"):
        host = socket.getfqdn()
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def startup_base(settings: Settings, environ: Mapping[str, str]) -> str | None:
    """The base URL the web workers sync with: ``base_url``, else the serve address."""
    return settings.base_url or environ.get(SERVED_AT_ENV) or None


def sync_base(engine: sa.Engine, settings: Settings, given: str | None) -> str | None:
    """The base URL ``latentvo registry sync`` uses: the one given, ``base_url``, else
    the base of the last sync (None when there never was one)."""
    if given or settings.base_url:
        return given or settings.base_url
    with engine.connect() as conn:
        return recorded_base(conn)


def sync_registry(engine: sa.Engine, settings: Settings, base: str) -> SyncReport:
    """Sync the records the site describes under ``base`` (one transaction)."""
    return sync_site(engine, lambda conn: site_drafts(conn, settings, base.rstrip("/")))


def resync_after_change(engine: sa.Engine, settings: Settings) -> str:
    """Re-sync the records after an operator changed what the site holds or publishes
    (spectra ingested, products inferred, a release published or withdrawn, a catalogue
    published or dropped); says what it did.

    Without ``base_url`` and without an earlier sync there is no base to write the
    records with: nothing is synced, and the message says how the records will follow
    (the next start of ``latentvo serve``, or ``latentvo registry sync --base-url``).
    The change itself is committed already, so a sync that fails is reported in the
    message, not raised: the operator re-runs ``latentvo registry sync``.
    """
    try:
        base = sync_base(engine, settings, None)
        if base is None:
            return ("registry records not re-synced: no base URL yet (set base_url, or run "
                    "'latentvo registry sync --base-url URL'); 'latentvo serve' syncs at "
                    "start-up")
        return f"registry records under {base}: {sync_registry(engine, settings, base).summary()}"
    except Exception as exc:  # noqa: BLE001 - the committed change stands; say what to re-run
        reason = " ".join(str(exc).split())[:300]
        return (f"registry records not re-synced ({type(exc).__name__}: {reason}); run "
                "'latentvo registry sync'")
