"""Shared fixtures: a real PostgreSQL with pgvector for the whole test session.

By default the session starts its own embedded PostgreSQL in a temporary
LATENTVO_HOME; with LATENTVO_DATABASE_URL set (CI's second pass) the same
tests run against that external database instead.

A few tests need material that is not ours to ship and lives in ``../shared``
beside the checkout (the IVOA ADQL conformance suite, the DaCHS comparison kit).
They ask for it through the ``shared`` fixture, which marks them ``shared`` and
skips them, with a one-line reason, where the folder is absent: a plain clone
runs everything else. ``LATENTVO_TEST_SHARED`` moves the folder; set to a path it
must be there (a missing part fails the test), set empty it counts as absent
(.ci/run proves the plain-clone run with it).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
import sqlalchemy as sa

from vo_service.config import load_settings
from vo_service.db.database import OWNER_ROLE, Database

T = TypeVar("T")
REPO = Path(__file__).resolve().parent.parent
_SHARED_SETTING = os.environ.get("LATENTVO_TEST_SHARED")
SHARED: Path | None = (REPO.parent / "shared" if _SHARED_SETTING is None
                       else Path(_SHARED_SETTING) if _SHARED_SETTING else None)


def pytest_configure(config):
    config.addinivalue_line("markers", "shared: needs ../shared (set by the shared fixture)")


def pytest_collection_modifyitems(items):
    """Mark every test that uses the ``shared`` fixture, directly or through another one."""
    for item in items:
        if "shared" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.shared)


@pytest.fixture(scope="session")
def shared():
    """``need(relative, what)``: the path ``relative`` under ../shared, else skip (or fail).

    The test skips when the path is absent, and fails instead when LATENTVO_TEST_SHARED
    names the folder explicitly, so a run that was given ../shared cannot skip its tests.
    """
    def need(relative: str, what: str) -> Path:
        path = SHARED / relative if SHARED is not None else None
        if path is None or not path.exists():
            reason = f"needs {what} in ../shared/{relative} (not part of this repository)"
            if _SHARED_SETTING:
                pytest.fail(f"{reason}; LATENTVO_TEST_SHARED={_SHARED_SETTING}")
            pytest.skip(reason)
        return path
    return need


@pytest.fixture(scope="session")
def latentvo_home():
    """LATENTVO_HOME of the test session.

    Not under pytest's tmp_path: pytest resets its base folder to mode 0700 when
    another session starts, which would lock the embedded server's system user
    out of its data directory.
    """
    home = Path(tempfile.mkdtemp(prefix="latentvo-test-"))
    yield home
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def latentvo_env(latentvo_home) -> dict[str, str]:
    """Environment for subprocesses (CLI, server) that points at the test database."""
    home = latentvo_home
    env = {k: v for k, v in os.environ.items() if not k.startswith("LATENTVO_")}
    env["LATENTVO_HOME"] = str(home)
    for name in ("LATENTVO_DATABASE_URL", "LATENTVO_READER_DATABASE_URL"):
        if os.environ.get(name):
            env[name] = os.environ[name]
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


@pytest.fixture(scope="session")
def settings(latentvo_env):
    return load_settings(latentvo_env)


@pytest.fixture(scope="session")
def database(settings):
    db = Database(settings)
    db.upgrade()
    yield db
    db.dispose()
    if db.embedded is not None:
        db.embedded.stop()


@pytest.fixture
def clean_archive(database):
    """An archive with no spectra, models or ingest history (ML products cascade)."""
    with database.engine.begin() as conn:
        conn.execute(sa.text(
            "TRUNCATE latentvo.spectra, latentvo.models, latentvo.latent, latentvo.labels, "
            "latentvo.latent_dimensions, latentvo.latent_mutual_information, "
            "latentvo_ops.ingest_files, latentvo_ops.reference_label_sets, "
            "latentvo_ops.reference_labels CASCADE"))
    return database


@contextmanager
def scratch_database(database: Database, name: str) -> Iterator[int]:
    """A new, empty database ``name`` (owned by the owner role, with pgvector) on the
    session's embedded server, dropped afterwards; yields the server's port. Skips
    with an external database, whose superuser the tests do not have."""
    if database.embedded is None:
        pytest.skip("needs the embedded server's superuser to create a scratch database")
    port = database.embedded.status().port
    assert port is not None  # the session's server runs
    admin = sa.create_engine(database.embedded.superuser_url(port), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        conn.execute(sa.text(f'CREATE DATABASE {name} OWNER "{OWNER_ROLE}"'))
    extension = sa.create_engine(database.embedded.superuser_url(port, name))
    with extension.begin() as conn:
        conn.execute(sa.text("CREATE EXTENSION vector"))
    extension.dispose()
    try:
        yield port
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


def wait_until(check: Callable[[], T], seconds: float = 30) -> T:
    """``check()`` once it is truthy, or its last (falsy) result after ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.3)


def run_cli(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``latentvo ARGS`` as a separate process, as an operator would."""
    return subprocess.run([sys.executable, "-m", "vo_service.cli", *args], env=env,
                          capture_output=True, text=True, timeout=timeout, cwd=REPO)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(env: dict[str, str], port: int | None = None, *,
                 command: tuple[str, ...] = (sys.executable, "-m", "vo_service.cli"),
                 cwd: Path = REPO, set_base_url: bool = True) -> tuple[subprocess.Popen, str]:
    """Start ``latentvo serve`` on a free port.

    With ``set_base_url`` LATENTVO_BASE_URL is set to the server's own address;
    without it no base URL is configured and the service builds its URLs from each
    request. ``command`` is the ``latentvo`` to run (this checkout's by default) and
    ``cwd`` its working folder. Returns the process (in its own process group) and its
    base URL once it answers.
    """
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in env.items() if k != "LATENTVO_BASE_URL"}
    if set_base_url:
        env["LATENTVO_BASE_URL"] = url
    proc = subprocess.Popen(
        [*command, "serve", "--port", str(port)], env=env,
        cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early:\n{proc.stdout.read()}")
        try:
            if httpx.get(url + "/tap/availability", timeout=2).status_code == 200:
                # Keep reading the server's log: a full pipe (64 KB of access log)
                # would block the server.
                threading.Thread(target=_drain, args=(proc,), daemon=True).start()
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    stop_server(proc, kill=True)
    raise RuntimeError("server did not start within 60 s")


def _drain(proc: subprocess.Popen) -> None:
    for _ in proc.stdout:
        pass


def stop_server(proc: subprocess.Popen, *, kill: bool = False) -> None:
    """Stop a server from :func:`start_server` (SIGKILL with ``kill``, as a crash would)."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGKILL if kill else signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


@pytest.fixture(scope="session")
def server(database, latentvo_env):
    """A real ``latentvo serve`` process on a free port; yields its base URL."""
    proc, url = start_server(latentvo_env)
    yield url
    stop_server(proc)
