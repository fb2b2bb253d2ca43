"""UWS 1.1 jobs for TAP /async: persistence, phases, workers, recovery, cleanup.

Every job is a row of ``latentvo_ops.uws_jobs`` (``schema/ops.py``); its inline
uploads and result file are files of its folder in the result store
(``$LATENTVO_HOME/tap-results/<job id>/``), removed with the job. Nothing about
a job lives only in memory, so any web process can answer for any job and a
restart loses nothing.

Every job has an owner (:mod:`vo_service.tap.owners`); the job list shows an
owner its own jobs, and the quotas of ``[uws]`` (:class:`UWSSettings`) bound the
unfinished jobs and stored bytes of each owner and of the whole service.

Phases::

    PENDING --RUN--> QUEUED --worker--> EXECUTING --> COMPLETED | ERROR
       \\                \\                   \\--ABORT--> ABORTED
        +-------ABORT-----+-------------------+

Workers are threads of the web processes (``TAPLimits.workers`` each). A
worker claims the oldest QUEUED job with ``SELECT ... FOR UPDATE SKIP
LOCKED`` (so several processes, on several hosts, never run one job twice),
marks it EXECUTING with its identity and keeps a heartbeat while it runs.

Recovery: when a process starts, and every few seconds after, jobs that are
EXECUTING for a worker that no longer exists (a dead process of this host,
or a heartbeat older than ``stale_after`` seconds) are put back to QUEUED and
run again - a TAP query can simply be repeated - until ``max_attempts``
executions were interrupted; then the job turns ERROR with that reason.
Expired jobs (past their destruction time) are deleted with their files.
"""

from __future__ import annotations

import builtins
import datetime as dt
import logging
import os
import secrets
import shutil
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import sqlalchemy as sa

from schema.ops import uws_jobs
from vo_service.config import TAPLimits, UWSSettings
from vo_service.dali import DALIError, Params, now_utc
from vo_service.db.backends import application_name, terminate_orphaned_backends
from vo_service.db.outage import is_outage
from vo_service.errors import one_line
from vo_service.obscore import access_url_setup
from vo_service.tap.owners import Owner, new_job_id
from vo_service.tap.runner import Execution, QueryFailed

if TYPE_CHECKING:
    from vo_service.tap.query import Running, TAPService

log = logging.getLogger("latentvo.uws")

FINAL = ("COMPLETED", "ERROR", "ABORTED", "ARCHIVED")
ACTIVE = ("QUEUED", "EXECUTING")
UNFINISHED = ("PENDING", "QUEUED", "EXECUTING", "HELD", "SUSPENDED")  # count in job quotas
QUOTA_LOCK = 0x55575351  # advisory lock serialising quota checks with the rows they admit
UPLOADS = "uploads"  # a job folder's subfolder of inline uploads
ORPHAN_AGE = 3600  # seconds before a job folder without a job is removed
# Parameters that control the job rather than the query.
CONTROL = {"PHASE", "DESTRUCTION", "EXECUTIONDURATION", "ACTION", "RUNID", "QUOTE", "OWNER"}


@dataclass
class Job:
    """One UWS job as stored: its phase, times, parameters, outcome and upload names.

    ``parameters`` holds the query's parameters (not the UWS control parameters),
    ``uploads`` the names of its inline uploads (files of the job's folder),
    ``owner_id`` the authenticated owner's name and ``owner_key`` whose job it is
    (``vo_service.tap.owners.Owner.key``).
    """

    job_id: str
    run_id: str | None
    owner_id: str | None
    owner_key: str | None
    phase: str
    creation_time: dt.datetime
    start_time: dt.datetime | None
    end_time: dt.datetime | None
    execution_duration: int
    destruction: dt.datetime
    parameters: dict[str, str]
    error_type: str | None
    error_message: str | None
    result_mime: str | None
    result_size: int | None
    result_rows: int | None
    overflow: bool | None
    uploads: list[str]
    upload_bytes: int = 0
    public_base_url: str | None = None  # its query's ivoa.obscore.access_url base

    @classmethod
    def from_row(cls, row: sa.Row[Any], uploads: list[str]) -> Job:
        """The job of a ``uws_jobs`` row and the names of its inline uploads."""
        return cls(**{k: row._mapping[k] for k in (
            "job_id", "run_id", "owner_id", "owner_key", "phase", "creation_time",
            "start_time", "end_time", "execution_duration", "destruction", "parameters",
            "error_type", "error_message", "result_mime", "result_size", "result_rows",
            "overflow", "upload_bytes", "public_base_url")},
            uploads=uploads)


class JobRef(NamedTuple):
    """One entry of the job list: what ``uws:jobref`` shows of a job."""

    job_id: str
    phase: str
    run_id: str | None
    owner_id: str | None
    creation_time: dt.datetime


class ResultQuotaExceeded(Exception):
    """A job's result grew past what its owner and the service may still store."""


def _upload_file(name: str) -> str:
    """The file name of inline upload ``name``: its hex, so no name can leave the folder."""
    if not name or len(name) > 100:
        raise DALIError(f"inline upload names must have 1 to 100 characters, got {name[:100]!r}")
    return name.encode().hex()


class OwnerUsage(NamedTuple):
    """What one owner's jobs hold (``latentvo jobs usage``)."""

    owner: str  # the user's name, "anonymous <hash prefix>", or "(none)" for older jobs
    unfinished: int  # PENDING, QUEUED or EXECUTING jobs
    jobs: int
    stored_bytes: int  # inline uploads and results


def owner_label(owner_key: str | None, owner_id: str | None) -> str:
    """How operators see an owner: the user's name, else a prefix of the token's hash."""
    if owner_id:
        return owner_id
    if owner_key and owner_key.startswith("token:"):
        return f"anonymous {owner_key[6:18]}"
    return "(none)"


def _worker_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _log_failure(what: str, exc: Exception, then: str) -> None:
    """One line for a database outage (it may last, and repeats), a traceback otherwise."""
    if is_outage(exc):
        log.warning("%s: the database is unavailable (%s); %s", what,
                    one_line(getattr(exc, "orig", None) or exc), then)
    else:
        log.exception("%s failed; %s", what, then)


class JobStore:
    """Database access for jobs (the owner engine: the reader may not see ops tables)."""

    def __init__(self, engine: sa.Engine, limits: TAPLimits, result_dir: Path,
                 quotas: UWSSettings | None = None) -> None:
        self.engine = engine
        self.limits = limits
        self.result_dir = result_dir
        self.quotas = quotas or UWSSettings()

    def job_dir(self, job_id: str) -> Path:
        """The folder of a job's files (inline uploads, result)."""
        return self.result_dir / job_id

    # -- quotas ---------------------------------------------------------------------

    def _reserve(self, conn: sa.Connection, owner_key: str | None, *, jobs: int,
                 stored: int) -> None:
        """Refuse (403) ``jobs`` more unfinished jobs or ``stored`` more bytes over a quota.

        Takes a transaction-level lock, so concurrent requests cannot both pass the
        check before either's rows are written.
        """
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(QUOTA_LOCK)))
        q = self.quotas
        mine = uws_jobs.c.owner_key == owner_key
        unfinished = uws_jobs.c.phase.in_(UNFINISHED)
        size = uws_jobs.c.upload_bytes + sa.func.coalesce(uws_jobs.c.result_size, 0)
        row = conn.execute(sa.select(
            sa.func.count().filter(mine, unfinished),
            sa.func.count().filter(unfinished),
            sa.func.coalesce(sa.func.sum(size).filter(mine), 0),
            sa.func.coalesce(sa.func.sum(size), 0))).one()
        owner_jobs, total_jobs, owner_bytes, total_bytes = (int(v) for v in row)
        advice = "delete jobs you no longer need (DELETE on the job URL) and try again"
        if jobs and owner_jobs + jobs > q.owner_jobs:
            raise DALIError(f"quota exceeded: you have {owner_jobs} unfinished jobs (PENDING, "
                            f"QUEUED or EXECUTING), at most {q.owner_jobs} are allowed; "
                            f"{advice}", 403)
        if jobs and total_jobs + jobs > q.total_jobs:
            raise DALIError(f"quota exceeded: the service holds {total_jobs} unfinished jobs, "
                            f"the most it accepts ({q.total_jobs}); try again later", 403)
        if stored and owner_bytes + stored > q.owner_bytes:
            raise DALIError(f"quota exceeded: your jobs store {owner_bytes:,} bytes of "
                            f"uploads and results, {stored:,} more would pass the limit of "
                            f"{q.owner_bytes:,}; {advice}", 403)
        if stored and total_bytes + stored > q.total_bytes:
            raise DALIError(f"quota exceeded: the service stores {total_bytes:,} bytes of "
                            f"job uploads and results, {stored:,} more would pass its limit "
                            f"of {q.total_bytes:,}; try again later", 403)

    def result_allowance(self, job: Job) -> int:
        """How many bytes ``job``'s result may take under its owner's and the global quota."""
        size = uws_jobs.c.upload_bytes + sa.func.coalesce(uws_jobs.c.result_size, 0)
        others = uws_jobs.c.job_id != job.job_id
        with self.engine.connect() as conn:
            owner_bytes, total_bytes = conn.execute(sa.select(
                sa.func.coalesce(sa.func.sum(size).filter(
                    uws_jobs.c.owner_key == job.owner_key, others), 0),
                sa.func.coalesce(sa.func.sum(size).filter(others), 0))).one()
        return max(0, min(self.quotas.owner_bytes - int(owner_bytes) - job.upload_bytes,
                          self.quotas.total_bytes - int(total_bytes) - job.upload_bytes))

    # -- inline uploads ---------------------------------------------------------------

    def _stage_uploads(self, job_id: str, files: dict[str, bytes]) -> dict[Path, Path]:
        """Write ``files`` next to their place in the job's folder; {staged: final path}.

        The caller moves them into place once the database accepted them (a quota
        may still refuse), or removes them.
        """
        folder = self.job_dir(job_id) / UPLOADS
        folder.mkdir(parents=True, exist_ok=True)
        staged: dict[Path, Path] = {}
        try:
            for name, content in files.items():
                final = folder / _upload_file(name)
                part = final.with_name(final.name + f".{secrets.token_hex(4)}.part")
                staged[part] = final
                part.write_bytes(content)
        except BaseException:
            _discard(staged)
            raise
        return staged

    def _upload_names(self, job_id: str) -> builtins.list[str]:
        folder = self.job_dir(job_id) / UPLOADS
        if not folder.is_dir():
            return []
        return sorted(bytes.fromhex(p.name).decode() for p in folder.iterdir()
                      if not p.name.endswith(".part"))

    # -- creation and reading -------------------------------------------------------

    def create(self, params: Params, owner: Owner, *,
               public_base_url: str | None = None) -> Job:
        """Store a new job of ``owner`` with the parameters and inline uploads of ``params``.

        Parameters
        ----------
        params
            The request's parameters: query parameters are kept, UWS control
            parameters (``PHASE``, ``RUNID``, ``EXECUTIONDURATION``, ``DESTRUCTION``)
            set the job's fields, multipart files become inline uploads.
        owner
            Whose job it is.
        public_base_url
            The public base URL of the creating request, for the query's
            ``ivoa.obscore.access_url``.

        Returns
        -------
        Job
            The stored job, PENDING or QUEUED.

        Raises
        ------
        DALIError
            400 for an invalid control parameter, 403 when a quota would be exceeded.
        """
        job_id = new_job_id()
        now = now_utc()
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)  # as documents show it
        duration = self.limits.async_duration_default
        destruction = now + dt.timedelta(seconds=self.limits.retention_default)
        query_params: dict[str, str] = {}
        for name, values in params.values.items():
            if name in CONTROL:
                continue
            query_params[name] = values[-1] if name != "UPLOAD" else ";".join(values)
        if "EXECUTIONDURATION" in params:
            duration = self._duration(params.single("EXECUTIONDURATION"))
        if "DESTRUCTION" in params:
            destruction = self._destruction(params.single("DESTRUCTION"), now)
        run_id = params.single("RUNID")
        phase = "PENDING"
        phase_param = params.single("PHASE")
        if phase_param is not None:
            wanted = phase_param.strip().upper()
            if wanted == "RUN":
                phase = "QUEUED"
            elif wanted != "PENDING":
                raise DALIError(f"PHASE={wanted} is not allowed when creating a job")
        upload_bytes = sum(len(content) for content in params.files.values())
        staged = self._stage_uploads(job_id, params.files) if params.files else {}
        try:
            with self.engine.begin() as conn:
                self._reserve(conn, owner.key, jobs=1, stored=upload_bytes)
                conn.execute(uws_jobs.insert().values(
                    job_id=job_id, run_id=run_id[:64] if run_id else None,
                    owner_id=owner.name, owner_key=owner.key, phase=phase,
                    creation_time=now, execution_duration=duration, destruction=destruction,
                    parameters=query_params, upload_bytes=upload_bytes,
                    public_base_url=public_base_url))
                _install(staged)
        except BaseException:
            shutil.rmtree(self.job_dir(job_id), ignore_errors=True)
            raise
        job = self.get(job_id)
        assert job is not None  # inserted just above
        return job

    def get(self, job_id: str) -> Job | None:
        """The job ``job_id``, or None when it does not exist (any more)."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(uws_jobs).where(uws_jobs.c.job_id == job_id)).first()
        if row is None:
            return None
        return Job.from_row(row, self._upload_names(job_id))

    def phase(self, job_id: str) -> str | None:
        """The phase of job ``job_id``, or None when it does not exist."""
        with self.engine.connect() as conn:
            return conn.scalar(sa.select(uws_jobs.c.phase).where(uws_jobs.c.job_id == job_id))

    def upload_path(self, job_id: str, name: str) -> Path | None:
        """The file of the inline upload ``name`` of a job, or None."""
        try:
            path = self.job_dir(job_id) / UPLOADS / _upload_file(name)
        except DALIError:
            return None
        return path if path.is_file() else None

    def uploads(self, job_id: str) -> dict[str, bytes]:
        """Every inline upload of a job, by name."""
        folder = self.job_dir(job_id) / UPLOADS
        return {name: (folder / _upload_file(name)).read_bytes()
                for name in self._upload_names(job_id)}

    def list(self, owner_key: str, phases: builtins.list[str], after: dt.datetime | None,
             last: int | None) -> builtins.list[JobRef]:
        """The jobs of one owner, with UWS 1.1's filters.

        Parameters
        ----------
        owner_key
            Whose jobs (``Owner.key``).
        phases
            Only jobs in these phases; when empty, every job except ARCHIVED ones.
        after
            Only jobs created after this instant.
        last
            Only the ``last`` most recently created jobs (newest first); otherwise
            all, oldest first.
        """
        query = sa.select(uws_jobs.c.job_id, uws_jobs.c.phase, uws_jobs.c.run_id,
                          uws_jobs.c.owner_id, uws_jobs.c.creation_time).where(
                          uws_jobs.c.owner_key == owner_key)
        if phases:
            query = query.where(uws_jobs.c.phase.in_(phases))
        else:
            query = query.where(uws_jobs.c.phase != "ARCHIVED")
        if after is not None:
            query = query.where(uws_jobs.c.creation_time > after)
        if last is not None:
            query = query.order_by(uws_jobs.c.creation_time.desc()).limit(last)
        else:
            query = query.order_by(uws_jobs.c.creation_time)
        with self.engine.connect() as conn:
            return [JobRef(*row) for row in conn.execute(query)]

    def usage(self) -> builtins.list[OwnerUsage]:
        """Jobs and stored bytes per owner, the largest first."""
        size = uws_jobs.c.upload_bytes + sa.func.coalesce(uws_jobs.c.result_size, 0)
        stored = sa.func.coalesce(sa.func.sum(size), 0)
        query = sa.select(
            uws_jobs.c.owner_key, sa.func.max(uws_jobs.c.owner_id),
            sa.func.count().filter(uws_jobs.c.phase.in_(UNFINISHED)), sa.func.count(),
            stored).group_by(uws_jobs.c.owner_key).order_by(stored.desc(),
                                                           uws_jobs.c.owner_key)
        with self.engine.connect() as conn:
            return [OwnerUsage(owner_label(key, name), int(unfinished), int(jobs), int(size))
                    for key, name, unfinished, jobs, size in conn.execute(query)]

    def jobs_of(self, owner: str) -> builtins.list[str]:
        """The ids of the jobs of the owner that :func:`owner_label` calls ``owner``."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(uws_jobs.c.job_id, uws_jobs.c.owner_key,
                                          uws_jobs.c.owner_id)).all()
        return [r.job_id for r in rows if owner_label(r.owner_key, r.owner_id) == owner]

    # -- changes by the client ------------------------------------------------------

    def _duration(self, text: str | None) -> int:
        try:
            value = int(str(text).strip())
        except (TypeError, ValueError):
            raise DALIError(f"EXECUTIONDURATION must be an integer number of seconds, got "
                            f"{text!r}") from None
        if value < 0:
            raise DALIError("EXECUTIONDURATION must not be negative")
        hard = self.limits.async_duration_hard
        return hard if value == 0 or value > hard else value

    def _destruction(self, text: str | None, created: dt.datetime) -> dt.datetime:
        from vo_service.dali import parse_instant

        value = parse_instant(text or "")
        latest = created + dt.timedelta(seconds=self.limits.retention_hard)
        return min(value, latest)

    @staticmethod
    def _pending_row(conn: sa.Connection, job_id: str) -> sa.Row[Any]:
        """The row of a PENDING job, locked for this transaction (404, 403 otherwise)."""
        row = conn.execute(sa.select(uws_jobs).where(
            uws_jobs.c.job_id == job_id).with_for_update()).first()
        if row is None:
            raise DALIError(f"no job {job_id}", 404)
        if row.phase != "PENDING":
            raise DALIError(f"job {job_id} is {row.phase}; its parameters can only be "
                            "changed while it is PENDING", 403)
        return row

    def set_parameters(self, job_id: str, params: Params) -> None:
        """Change a PENDING job's parameters (UWS control parameters included).

        Inline uploads replace those of the same name; the bytes they add count
        against the job owner's quota.

        Raises
        ------
        DALIError
            404 when there is no such job, 403 when it is no longer PENDING or a
            quota would be exceeded, 400 for an invalid value.
        """
        staged = self._stage_uploads(job_id, params.files) if params.files else {}
        try:
            with self.engine.begin() as conn:
                row = self._pending_row(conn, job_id)
                merged = dict(row.parameters)
                values: dict[str, object] = {}
                for name, vals in params.values.items():
                    if name == "RUNID":
                        values["run_id"] = vals[-1][:64]
                    elif name == "EXECUTIONDURATION":
                        values["execution_duration"] = self._duration(vals[-1])
                    elif name == "DESTRUCTION":
                        values["destruction"] = self._destruction(vals[-1], row.creation_time)
                    elif name not in CONTROL:
                        merged[name] = vals[-1] if name != "UPLOAD" else ";".join(
                            ([merged["UPLOAD"]] if "UPLOAD" in merged else []) + vals)
                added = sum(part.stat().st_size - (final.stat().st_size if final.exists()
                                                   else 0) for part, final in staged.items())
                if added > 0:
                    self._reserve(conn, row.owner_key, jobs=0, stored=added)
                conn.execute(uws_jobs.update().where(uws_jobs.c.job_id == job_id).values(
                    parameters=merged, upload_bytes=row.upload_bytes + added, **values))
                _install(staged)
        finally:
            _discard(staged)

    def set_execution_duration(self, job_id: str, text: str | None) -> None:
        """Set a PENDING job's EXECUTIONDURATION (0 or too long: the hard limit)."""
        duration = self._duration(text)
        with self.engine.begin() as conn:
            self._pending_row(conn, job_id)
            conn.execute(uws_jobs.update().where(uws_jobs.c.job_id == job_id).values(
                execution_duration=duration))

    def set_destruction(self, job_id: str, text: str | None) -> None:
        """Set a job's destruction time, at most the retention limit after its creation."""
        job = self.get(job_id)
        if job is None:
            raise DALIError(f"no job {job_id}", 404)
        with self.engine.begin() as conn:
            conn.execute(uws_jobs.update().where(uws_jobs.c.job_id == job_id).values(
                destruction=self._destruction(text, job.creation_time)))

    def run(self, job_id: str) -> str:
        """PENDING (or HELD) -> QUEUED; other phases are left as they are."""
        return self._transition(job_id, uws_jobs.c.phase.in_(("PENDING", "HELD")),
                                phase="QUEUED")

    def abort(self, job_id: str) -> str:
        """Any phase but a final one -> ABORTED; returns the job's phase after."""
        return self._transition(job_id, uws_jobs.c.phase.notin_(FINAL), phase="ABORTED",
                                end_time=sa.func.now(), error_type="fatal",
                                error_message="aborted at the client's request")

    def _transition(self, job_id: str, allowed: sa.ColumnElement[bool],
                    **values: object) -> str:
        """Apply ``values`` if the job's phase is ``allowed``; return its phase after."""
        with self.engine.begin() as conn:
            row = conn.execute(sa.update(uws_jobs).where(
                uws_jobs.c.job_id == job_id, allowed).values(**values).returning(
                uws_jobs.c.phase)).first()
            if row is not None:
                after: str = row.phase
                return after
            phase: str | None = conn.scalar(
                sa.select(uws_jobs.c.phase).where(uws_jobs.c.job_id == job_id))
        if phase is None:
            raise DALIError(f"no job {job_id}", 404)
        return phase

    def delete(self, job_id: str) -> bool:
        """Delete a job with its uploads and result files; False when there was none."""
        with self.engine.begin() as conn:
            deleted = conn.execute(uws_jobs.delete().where(uws_jobs.c.job_id == job_id)).rowcount
        shutil.rmtree(self.job_dir(job_id), ignore_errors=True)
        return bool(deleted)

    # -- workers --------------------------------------------------------------------

    def claim(self, worker: str) -> Job | None:
        """Take the oldest QUEUED job for ``worker`` (now EXECUTING), or None."""
        with self.engine.begin() as conn:
            job_id = conn.scalar(sa.select(uws_jobs.c.job_id).where(
                uws_jobs.c.phase == "QUEUED").order_by(uws_jobs.c.creation_time).limit(1)
                .with_for_update(skip_locked=True))
            if job_id is None:
                return None
            conn.execute(uws_jobs.update().where(uws_jobs.c.job_id == job_id).values(
                phase="EXECUTING", start_time=sa.func.now(), end_time=None, worker=worker,
                heartbeat=sa.func.now(), attempts=uws_jobs.c.attempts + 1,
                error_type=None, error_message=None))
        return self.get(job_id)

    def heartbeat(self, job_ids: builtins.list[str], worker: str) -> builtins.list[str]:
        """Refresh the heartbeat; returns the jobs that are no longer EXECUTING (aborted)."""
        if not job_ids:
            return []
        with self.engine.begin() as conn:
            conn.execute(uws_jobs.update().where(
                uws_jobs.c.job_id.in_(job_ids), uws_jobs.c.worker == worker,
                uws_jobs.c.phase == "EXECUTING").values(heartbeat=sa.func.now()))
            rows = conn.execute(sa.select(uws_jobs.c.job_id, uws_jobs.c.phase).where(
                uws_jobs.c.job_id.in_(job_ids)))
            still = {r.job_id for r in rows if r.phase == "EXECUTING"}
        return [j for j in job_ids if j not in still]

    def finish(self, job_id: str, worker: str, **values: object) -> bool:
        """Record the outcome if the job is still EXECUTING for this worker."""
        with self.engine.begin() as conn:
            updated = conn.execute(uws_jobs.update().where(
                uws_jobs.c.job_id == job_id, uws_jobs.c.phase == "EXECUTING",
                uws_jobs.c.worker == worker).values(end_time=sa.func.now(), **values)).rowcount
        return bool(updated)

    def recover(self, *, startup: bool = False) -> int:
        """Re-queue (or fail) jobs whose worker died; returns how many were touched."""
        host = socket.gethostname()
        stale = now_utc() - dt.timedelta(seconds=self.limits.stale_after)
        touched = 0
        with self.engine.begin() as conn:
            rows = conn.execute(sa.select(uws_jobs.c.job_id, uws_jobs.c.worker,
                                          uws_jobs.c.heartbeat, uws_jobs.c.attempts).where(
                uws_jobs.c.phase == "EXECUTING").with_for_update(skip_locked=True)).all()
            for row in rows:
                worker = row.worker or ""
                parts = worker.split(":")
                dead = row.heartbeat is None or row.heartbeat < stale
                if not dead and len(parts) == 3 and parts[0] == host:
                    dead = not _pid_alive(int(parts[1])) if parts[1].isdigit() else True
                if not dead:
                    continue
                touched += 1
                if row.attempts >= self.limits.max_attempts:
                    conn.execute(uws_jobs.update().where(uws_jobs.c.job_id == row.job_id).values(
                        phase="ERROR", end_time=sa.func.now(), error_type="transient",
                        error_message=f"the service stopped while executing this job "
                        f"{row.attempts} times; giving up (submit it again)"))
                else:
                    conn.execute(uws_jobs.update().where(uws_jobs.c.job_id == row.job_id).values(
                        phase="QUEUED", worker=None, heartbeat=None, start_time=None))
                    log.warning("job %s: its worker %s is gone; queued again", row.job_id,
                                worker)
        return touched

    def expire(self) -> int:
        """Delete jobs past their destruction time, with their files; returns how many.

        Also removes job folders that have no job (their process died between
        writing a new job's uploads and storing its row), once they are
        ``ORPHAN_AGE`` seconds old, so that no creation in progress loses its files.
        """
        with self.engine.begin() as conn:
            ids = list(conn.execute(uws_jobs.delete().where(
                uws_jobs.c.destruction < sa.func.now()).returning(uws_jobs.c.job_id)).scalars())
        for job_id in ids:
            shutil.rmtree(self.job_dir(job_id), ignore_errors=True)
        self._remove_orphans()
        return len(ids)

    def _remove_orphans(self) -> None:
        if not self.result_dir.is_dir():
            return
        cutoff = time.time() - ORPHAN_AGE
        old = {p.name: p for p in self.result_dir.iterdir()
               if p.is_dir() and p.stat().st_mtime < cutoff}
        if not old:
            return
        with self.engine.connect() as conn:
            known = set(conn.execute(sa.select(uws_jobs.c.job_id).where(
                uws_jobs.c.job_id.in_(list(old)))).scalars())
        for name in old.keys() - known:
            log.warning("removing %s: a job folder without a job", old[name])
            shutil.rmtree(old[name], ignore_errors=True)


def _install(staged: dict[Path, Path]) -> None:
    """Move staged upload files into place."""
    for part, final in staged.items():
        os.replace(part, final)


def _discard(staged: dict[Path, Path]) -> None:
    """Remove staged upload files that were not moved into place."""
    for part in staged:
        part.unlink(missing_ok=True)


class JobManager:
    """The worker threads of one web process, plus recovery and cleanup."""

    def __init__(self, store: JobStore, tap: TAPService) -> None:
        self.store = store
        self.tap = tap
        self.limits = store.limits
        self.worker = _worker_identity()
        self._wake = threading.Condition()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._running: dict[str, Execution] = {}  # job id -> its query, for ABORT
        self._lock = threading.Lock()
        self.running = False

    def start(self) -> None:
        """End the database sessions of dead predecessors on this host (a killed server's
        queries run on otherwise), recover and expire jobs, then start the workers and the
        housekeeping thread."""
        database = self.tap.database
        try:
            terminate_orphaned_backends([database.engine, database.reader_engine])
        except Exception:  # noqa: BLE001 - recover the jobs all the same
            log.exception("ending the sessions of dead servers failed")
        try:
            self.store.recover(startup=True)
            self.store.expire()
        except Exception:  # noqa: BLE001 - never keep the web service from starting
            log.exception("UWS recovery at startup failed")
        for i in range(self.limits.workers):
            t = threading.Thread(target=self._work, name=f"uws-worker-{i}", daemon=True)
            t.start()
            self._threads.append(t)
        t = threading.Thread(target=self._housekeeping, name="uws-housekeeping", daemon=True)
        t.start()
        self._threads.append(t)
        self.running = True

    def stop(self) -> None:
        """Cancel the running queries and stop the threads (at shutdown)."""
        self._stop.set()
        with self._wake:
            self._wake.notify_all()
        with self._lock:
            for execution in self._running.values():
                execution.cancel()
        for t in self._threads:
            t.join(timeout=5)
        self.running = False

    def wake(self) -> None:
        """Tell an idle worker that a job was queued."""
        with self._wake:
            self._wake.notify()

    def cancel(self, job_id: str) -> None:
        """Cancel the query of job ``job_id`` if it runs in this process."""
        with self._lock:
            execution = self._running.get(job_id)
        if execution is not None:
            execution.cancel()

    # -- threads --------------------------------------------------------------------

    def _work(self) -> None:
        pause = 1.0
        while not self._stop.is_set():
            try:
                job = self.store.claim(self.worker)
                if job is not None:
                    self._execute(job)
                pause = 1.0
            except Exception as exc:  # noqa: BLE001 - database outage: back off, keep going
                _log_failure("UWS worker", exc, f"retrying in {pause:.0f} s")
                job = None
                self._stop.wait(pause)
                pause = min(pause * 2, 30.0)
                continue
            if job is None:
                with self._wake:
                    self._wake.wait(timeout=1.0)

    def _housekeeping(self) -> None:
        last_expire = 0.0
        while not self._stop.wait(2.0):
            try:
                with self._lock:
                    ids = list(self._running)
                for job_id in self.store.heartbeat(ids, self.worker):
                    self.cancel(job_id)  # aborted (or deleted) through another process
                if self.store.recover():
                    self.wake()
                if time.monotonic() - last_expire > 60:
                    self.store.expire()
                    last_expire = time.monotonic()
            except Exception as exc:  # noqa: BLE001
                _log_failure("UWS housekeeping", exc, "retrying in 2 s")

    def _execute(self, job: Job) -> None:
        from vo_service.tap.query import validate

        target_dir = self.store.result_dir / job.job_id
        running: Running | None = None
        try:
            params = Params(list(job.parameters.items()),
                            self.store.uploads(job.job_id) if job.uploads else {})
            request = validate(params, self.limits)
            prepared = self.tap.prepare(request, params)
            if job.public_base_url:
                prepared.setup.append(access_url_setup(job.public_base_url))
            # tags the backend with the job (pg_stat_activity); undone by the rollback
            prepared.setup.append(f"SET application_name = '{application_name(job.job_id)}'")
            duration = job.execution_duration or self.limits.async_duration_hard

            def register(execution: Execution) -> None:
                # before the query is sent: ABORT, DELETE and the heartbeat must reach
                # a job whose first batch takes long (an aggregate over a large join)
                with self._lock:
                    self._running[job.job_id] = execution
                if self.store.phase(job.job_id) != "EXECUTING":  # aborted meanwhile
                    execution.cancel()

            running = self.tap.start(prepared, duration, register)
            writer = request.format.writer(prepared.fields, str(self.store.result_dir))
            if hasattr(writer, "infos"):
                writer.infos = self.tap.infos(prepared)
            target_dir.mkdir(parents=True, exist_ok=True)
            partial = target_dir / "result.part"
            size = 0
            allowance = self.store.result_allowance(job)
            with open(partial, "wb") as out:
                for chunk in running.body(writer):
                    size += len(chunk)
                    if size > allowance:
                        raise ResultQuotaExceeded(
                            f"the result exceeds the storage quota: only {allowance:,} more "
                            "bytes of results and uploads may be stored for this job's owner "
                            "and the service; select fewer rows or columns (TOP, MAXREC) or "
                            "delete finished jobs")
                    out.write(chunk)
            if running.error:
                raise QueryFailed(running.error)
            os.replace(partial, target_dir / "result")
            self.store.finish(job.job_id, self.worker, phase="COMPLETED",
                              result_mime=request.content_type, result_size=size,
                              result_rows=running.rows, overflow=running.overflow)
        except DALIError as exc:
            self._fail(job, exc.message, "fatal")
        except ResultQuotaExceeded as exc:
            self._fail(job, str(exc), "fatal")
        except QueryFailed as exc:
            if exc.cancelled and self.store.phase(job.job_id) == "ABORTED":
                pass  # the abort already recorded the outcome
            elif self._stop.is_set() and exc.cancelled:
                pass  # shutting down: another process (or the restart) will run it again
            else:
                self._fail(job, exc.message, "transient" if exc.timeout else "fatal")
        except Exception as exc:  # noqa: BLE001 - report, never kill the worker
            log.exception("job %s failed", job.job_id)
            self._fail(job, f"internal error: {type(exc).__name__}: {exc}", "transient")
        finally:
            with self._lock:
                self._running.pop(job.job_id, None)
            if running is not None:
                running.close()
            partial = target_dir / "result.part"
            if partial.exists():
                partial.unlink()

    def _fail(self, job: Job, message: str, kind: str) -> None:
        self.store.finish(job.job_id, self.worker, phase="ERROR", error_type=kind,
                          error_message=message)
