"""TAP limits: output rows, run times, retention, uploads, workers.

Each has a documented default (``docs/tap.md``) and an environment variable
``LATENTVO_TAP_<NAME>`` to override it, read when the service starts. The
same values are declared in ``/capabilities`` (TAPRegExt outputLimit,
executionDuration, retentionPeriod, uploadLimit), so clients see what is
enforced.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields


@dataclass(frozen=True)
class TAPLimits:
    maxrec_default: int = 20_000  # rows when the client sends no MAXREC
    maxrec_hard: int = 16_000_000  # larger MAXREC values are lowered to this
    sync_timeout: int = 300  # seconds a sync query may run
    async_duration_default: int = 3_600  # seconds (UWS executionDuration)
    async_duration_hard: int = 28_800
    retention_default: int = 172_800  # seconds from job creation to destruction
    retention_hard: int = 1_209_600
    upload_bytes: int = 64_000_000  # per request (all uploads together)
    upload_rows: int = 2_000_000  # per uploaded table
    upload_tables: int = 8  # per query
    upload_fetch_timeout: int = 60  # seconds to fetch one http(s) upload
    wait_cap: int = 30  # seconds a UWS WAIT may block
    workers: int = 2  # async worker threads per web process
    stale_after: int = 30  # seconds without heartbeat before a job is taken over
    max_attempts: int = 3  # executions of a job interrupted by restarts before ERROR


def load_limits(env: dict[str, str] | None = None) -> TAPLimits:
    env = os.environ if env is None else env
    values = {}
    for f in fields(TAPLimits):
        var = f"LATENTVO_TAP_{f.name.upper()}"
        if var in env and env[var].strip():
            try:
                values[f.name] = int(env[var])
            except ValueError:
                raise ValueError(f"{var} must be an integer, got {env[var]!r}") from None
    return TAPLimits(**values)
