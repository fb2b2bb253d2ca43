"""Shared fixtures: a real PostgreSQL with pgvector for the whole test session.

By default the session starts its own embedded PostgreSQL in a temporary
LATENTVO_HOME; with LATENTVO_DATABASE_URL set (CI's second pass) the same
tests run against that external database instead.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from vo_service.config import load_settings
from vo_service.db.database import Database

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"


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


def run_cli(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``latentvo ARGS`` as a separate process, as an operator would."""
    return subprocess.run([sys.executable, "-m", "vo_service.cli", *args], env=env,
                          capture_output=True, text=True, timeout=timeout, cwd=REPO)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def server(database, latentvo_env):
    """A real ``latentvo serve`` process on a free port; yields its base URL."""
    port = free_port()
    env = dict(latentvo_env, LATENTVO_BASE_URL=f"http://127.0.0.1:{port}")
    proc = subprocess.Popen(
        [sys.executable, "-m", "vo_service.cli", "serve", "--port", str(port)],
        env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early:\n{proc.stdout.read()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            time.sleep(0.2)
    else:
        proc.kill()
        raise RuntimeError("server did not start within 60 s")
    yield url
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
