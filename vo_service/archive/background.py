"""Durable status of background archive jobs, as JSON files any process can read.

``latentvo demo`` serves the archive while a separate process builds it and trains
the demo's models; the landing page tells visitors what is still running, how far
it got, and why it stopped if it failed. The job writes its status to
``$LATENTVO_HOME/jobs/<name>.json`` (replaced atomically at every change, so a
reader never sees half a record) and its output to ``<name>.log`` beside it.

A file rather than a table: it needs no migration, no grant for the web service's
read-only role (which must not see operational tables), and it still tells what
happened when the database is down. It survives restarts, and a process that
died without a word (SIGKILL, power cut) is recognised because the record holds
its pid and the process's start time.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import fasteners
import psutil

from vo_service.errors import OperatorError
from vo_service.progress import observe_progress

RUNNING, DONE, FAILED = "running", "done", "failed"
_WRITE_INTERVAL_S = 0.5  # progress is written at most this often


class JobBusy(OperatorError):
    """Another process runs the same job."""


def jobs_dir(home: Path) -> Path:
    """Folder of the status records and logs of background jobs under ``LATENTVO_HOME``."""
    return home / "jobs"


def log_path(home: Path, name: str) -> Path:
    """Where job ``name`` writes its output (the demo command opens it for the job)."""
    return jobs_dir(home) / f"{name}.log"


@dataclass(frozen=True)
class Step:
    """A finished phase of a job: what it did and how long it took."""

    phase: str
    seconds: float
    summary: str


@dataclass(frozen=True)
class JobStatus:
    """One job's last written state.

    ``phase`` is what the job is doing (or did last); ``activity``, ``done``,
    ``total`` and ``unit`` the progress bar it shows meanwhile, if any; ``steps``
    the phases it finished; ``error`` the reason it failed.
    """

    name: str
    state: str
    phase: str
    pid: int
    host: str
    process_started: float
    started_at: float
    updated_at: float
    log: str
    activity: str = ""
    done: int | None = None
    total: int | None = None
    unit: str = ""
    steps: tuple[Step, ...] = field(default_factory=tuple)
    error: str | None = None

    @property
    def vanished(self) -> bool:
        """Whether the record says running but its process is gone (killed, host rebooted)."""
        if self.state != RUNNING or self.host != socket.gethostname():
            return False
        try:
            return abs(psutil.Process(self.pid).create_time() - self.process_started) > 1.0
        except psutil.Error:
            return True

    def describe(self) -> str:
        """One line for people: the state, the phase and its progress."""
        if self.state == DONE:
            return f"finished in {self.updated_at - self.started_at:.0f} s"
        if self.state == FAILED:
            return f"failed during {self.phase}: {self.error}"
        if self.vanished:
            return (f"stopped during {self.phase} without finishing "
                    f"(process {self.pid} no longer runs)")
        line = f"running: {self.phase}"
        if self.done is not None:
            count = f"{self.done:,}" + (f"/{self.total:,}" if self.total else "")
            line += f" ({self.activity} {count} {self.unit})".replace("  ", " ")
        return f"{line}, {time.time() - self.started_at:.0f} s so far"


def read_status(home: Path, name: str) -> JobStatus | None:
    """Job ``name``'s record, or None when it never ran here."""
    path = jobs_dir(home) / f"{name}.json"
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    data["steps"] = tuple(Step(**s) for s in data.get("steps", ()))
    return JobStatus(**data)


def read_statuses(home: Path) -> list[JobStatus]:
    """Every job recorded under ``home``, by name."""
    folder = jobs_dir(home)
    names = sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []
    return [s for s in (read_status(home, n) for n in names) if s is not None]


class JobRecorder:
    """Writes one job's status record as the job goes (see :func:`record_job`)."""

    def __init__(self, home: Path, status: JobStatus) -> None:
        self._path = jobs_dir(home) / f"{status.name}.json"
        self._phase_started = time.monotonic()
        self._written = 0.0
        self.status = status
        self._write()

    def phase(self, phase: str) -> None:
        """Start a new phase."""
        self._phase_started = time.monotonic()
        self._update(phase=phase, activity="", done=None, total=None, unit="")

    def progress(self, activity: str, done: int, total: int | None, unit: str) -> None:
        """Progress within the phase (written at most every 0.5 s, and at a bar's end);
        fed by every progress bar the job shows."""
        self.status = replace(self.status, activity=activity, done=done, total=total,
                              unit=unit)
        ended = total is not None and done >= total
        if time.monotonic() - self._written >= _WRITE_INTERVAL_S or ended:
            self._update()

    def finish_phase(self, summary: str) -> None:
        """Record the current phase as a finished step with its one-line summary."""
        step = Step(self.status.phase, round(time.monotonic() - self._phase_started, 1),
                    summary)
        self._update(steps=(*self.status.steps, step), activity="", done=None, total=None,
                     unit="")

    def fail(self, reason: str) -> None:
        """Record that the job stopped on an error, with the reason."""
        self._update(state=FAILED, error=reason)

    def succeed(self) -> None:
        """Record that the job finished."""
        self._update(state=DONE, phase="done", activity="", done=None, total=None, unit="")

    def _update(self, **changes) -> None:
        self.status = replace(self.status, **changes, updated_at=time.time())
        self._write()

    def _write(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(asdict(self.status), indent=1))
        os.replace(tmp, self._path)
        self._written = time.monotonic()


@contextmanager
def record_job(home: Path, name: str) -> Iterator[JobRecorder]:
    """Run the body as job ``name``: one at a time, its status recorded from start to end.

    Raises :class:`JobBusy` when another process holds the job. An exception in the
    body (an interrupt included) is recorded as the failure's reason and re-raised;
    every progress bar shown meanwhile also advances the record.
    """
    folder = jobs_dir(home)
    folder.mkdir(parents=True, exist_ok=True)
    lock = fasteners.InterProcessLock(str(folder / f"{name}.lock"))
    if not lock.acquire(blocking=False):
        running = read_status(home, name)
        raise JobBusy(f"the {name} job already runs"
                      + (f" (pid {running.pid})" if running else ""))
    try:
        now = time.time()
        me = psutil.Process()
        recorder = JobRecorder(home, JobStatus(
            name=name, state=RUNNING, phase="starting", pid=me.pid,
            host=socket.gethostname(), process_started=me.create_time(), started_at=now,
            updated_at=now, log=str(log_path(home, name))))
        try:
            with observe_progress(recorder.progress):
                yield recorder
        except BaseException as exc:
            reason = str(exc) or type(exc).__name__
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                reason = "interrupted (the demo was stopped); run it again to resume"
            recorder.fail(reason)
            raise
        recorder.succeed()
    finally:
        lock.release()
