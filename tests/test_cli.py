"""The command line as an operator meets it: help, errors, exit codes."""

import os

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory

from schema import migrate
from tests.conftest import REPO, run_cli, scratch_database
from vo_service.config import load_settings
from vo_service.db.database import OWNER_ROLE, Database

COMMANDS = [[], ["db"], ["db", "start"], ["db", "stop"], ["db", "status"], ["db", "upgrade"],
            ["synth"], ["ingest"], ["labels"], ["labels", "attach"], ["labels", "list"],
            ["serve"], ["demo"], ["adql"], ["adql", "parse"], ["adql", "translate"], ["ml"],
            ["publish"], ["publish", "table"], ["publish", "list"], ["publish", "drop"],
            ["publish", "refresh"], ["jobs"], ["jobs", "usage"], ["jobs", "purge"],
            ["registry"], ["registry", "check"], ["registry", "show"]]

# Every subcommand that reads the configuration, with its required arguments
# ({tmp}: a scratch directory). None of them gets past the configuration or the
# database in the tests below, so nothing is written.
USING_SETTINGS = [
    ["db", "start"], ["db", "stop"], ["db", "status"], ["db", "upgrade"],
    ["ingest", "{tmp}"], ["labels", "attach", "{tmp}/labels.csv"], ["labels", "list"],
    ["serve", "--port", "9"], ["demo", "--no-train", "--no-serve"],
    ["ml", "train-ae"], ["ml", "train-labels", "--label-set", "s", "--autoencoder", "a"],
    ["ml", "infer", "m"], ["ml", "analyse", "m"], ["ml", "report", "m"], ["ml", "list"],
    ["ml", "forget", "m"],
    ["publish", "table", str(REPO / "bench" / "mlspec.toml"), "{tmp}/rows.csv"],
    ["publish", "list"], ["publish", "drop", "cat.table"], ["publish", "refresh"],
    ["jobs", "usage"], ["jobs", "purge", "--owner", "x"],
    ["registry", "check", "--base-url", "https://vo.example.org"],
    ["registry", "show", "ivo://latentvo.example/tap", "--base-url", "https://vo.example.org"],
    ["registry", "sync", "--base-url", "http://127.0.0.1:9"],
]
# Every subcommand with a required argument, called without it.
WITHOUT_ARGUMENT = [
    ["ingest"], ["labels", "attach"], ["synth"], ["ml", "train-labels"], ["ml", "infer"],
    ["ml", "analyse"], ["ml", "report"], ["ml", "forget"], ["publish", "table"],
    ["publish", "drop"], ["adql", "parse"], ["adql", "translate"], ["jobs", "purge"],
    ["registry", "show"],
]
UNREACHABLE = "postgresql://nobody@127.0.0.1:1/none"


def _ids(command: list[str]) -> str:
    return " ".join(a for a in command if not a.startswith(("{", "/", "-")))


def _one_error_line(result) -> str:
    """The single line a failed command wrote to stderr, checked for the error form."""
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "top")
def test_help_everywhere(latentvo_env, command):
    result = run_cli(latentvo_env, *command, "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage" in result.stdout


def test_db_status_and_upgrade(database, latentvo_env):
    result = run_cli(latentvo_env, "db", "upgrade")
    assert result.returncode == 0, result.stderr
    result = run_cli(latentvo_env, "db", "status")
    assert result.returncode == 0, result.stderr
    assert "up to date" in result.stderr


@pytest.mark.parametrize("args, message", [
    (["ingest", "/no/such/dir"], "no such file"),
    (["labels", "attach", "/no/such.csv"], "no such file"),
    (["synth", "--out", "/tmp/x", "--snr-min", "50", "--snr-max", "10"], "snr"),
])
def test_operator_errors_are_one_line_and_nonzero(database, latentvo_env, args, message):
    result = run_cli(latentvo_env, *args)
    assert result.returncode == 1
    assert message in result.stderr.lower()
    assert "Traceback" not in result.stderr


def test_adql_translate_needs_no_database_and_positions_errors(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "LATENTVO_HOME": str(tmp_path / "nowhere"),
           "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    ok = run_cli(env, "adql", "translate", "SELECT TOP 3 obs_id FROM latentvo.spectra")
    assert ok.returncode == 0, ok.stderr
    assert "LIMIT 3" in ok.stdout
    assert not (tmp_path / "nowhere").exists()  # no embedded database was started
    bad = run_cli(env, "adql", "translate", "SELECT obs_idd FROM latentvo.spectra")
    assert bad.returncode == 1
    assert "line 1" in bad.stderr and "obs_id" in bad.stderr  # position and a suggestion


@pytest.mark.parametrize("command", USING_SETTINGS, ids=_ids)
def test_malformed_configuration_is_one_line(latentvo_env, tmp_path, command):
    (tmp_path / "bad.toml").write_text("[tap]\nsync_timeout = \n")
    env = dict(latentvo_env, LATENTVO_CONFIG=str(tmp_path / "bad.toml"))
    line = _one_error_line(run_cli(env, *[a.format(tmp=tmp_path) for a in command]))
    assert "bad.toml: not valid TOML" in line


@pytest.mark.parametrize("command", USING_SETTINGS, ids=_ids)
def test_unreachable_database_is_one_line(latentvo_env, tmp_path, command):
    env = {k: v for k, v in latentvo_env.items() if k != "LATENTVO_READER_DATABASE_URL"}
    env["LATENTVO_DATABASE_URL"] = UNREACHABLE
    line = _one_error_line(run_cli(env, *[a.format(tmp=tmp_path) for a in command]))
    if command[:1] == ["db"] and command[1] in ("start", "stop"):
        assert "the database is external" in line or "external database is not ours" in line
    else:
        assert f"cannot reach the database ({UNREACHABLE})" in line


@pytest.mark.parametrize("command", WITHOUT_ARGUMENT, ids=_ids)
def test_missing_argument_is_a_usage_error(latentvo_env, command):
    result = run_cli(latentvo_env, *command)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Missing" in result.stderr and "Usage:" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_invalid_limit_names_its_variable(latentvo_env):
    env = dict(latentvo_env, LATENTVO_TAP_MAXREC_HARD="10")
    line = _one_error_line(run_cli(env, "serve", "--port", "9"))
    assert "[tap] maxrec_hard (10) must be at least maxrec_default (20000)" in line


def test_adql_needs_no_configuration(latentvo_env, tmp_path):
    (tmp_path / "bad.toml").write_text("release = \n")
    env = dict(latentvo_env, LATENTVO_CONFIG=str(tmp_path / "bad.toml"))
    ok = run_cli(env, "adql", "translate", "SELECT TOP 1 obs_id FROM latentvo.spectra")
    assert ok.returncode == 0, ok.stderr
    line = _one_error_line(run_cli(env, "adql", "parse", "SELECT FROM WHERE"))
    assert "ADQL syntax error at line 1" in line


# -- read-only commands change nothing -------------------------------------------------

READ_ONLY = [["ml", "list"], ["labels", "list"], ["publish", "list"], ["ml", "report", "m"],
             ["jobs", "usage"], ["registry", "check", "--base-url", "https://vo.example.org"]]


@pytest.fixture
def scratch(database, latentvo_env):
    """A new, empty database on the session's server, and the environment that uses it.

    Yields the environment (as an external database) and an owner engine on it.
    """
    name = f"scratch_{os.getpid()}"
    with scratch_database(database, name) as port:
        env = dict(latentvo_env,
                   LATENTVO_DATABASE_URL=database.embedded.url(OWNER_ROLE, port, name),
                   LATENTVO_READER_DATABASE_URL=database.embedded.url(
                       database.settings.reader_role, port, name))
        engine = Database(load_settings(env)).engine
        yield env, engine
        engine.dispose()


def _schemas(engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.scalars(sa.text("SELECT nspname FROM pg_namespace")))


@pytest.mark.parametrize("command", READ_ONLY, ids=_ids)
def test_read_only_command_on_a_new_database_asks_for_an_upgrade(scratch, command):
    env, engine = scratch
    before = _schemas(engine)
    line = _one_error_line(run_cli(env, *command))
    assert "has no latentvo schema yet" in line and "run 'latentvo db upgrade'" in line
    assert _schemas(engine) == before  # no migration started, not even its schema


def test_db_status_reports_a_missing_schema_and_a_write_job_migrates(scratch):
    env, engine = scratch
    status = run_cli(env, "db", "status")
    assert status.returncode == 0, status.stderr
    assert "schema revision: none (needs 'latentvo db upgrade'" in status.stderr
    assert "latentvo_ops" not in _schemas(engine)
    attach = run_cli(env, "labels", "attach", "/no/such.csv")  # a write job: migrates first
    assert "no such file" in _one_error_line(attach)
    assert Database(load_settings(env)).revision() == migrate.head_revision()


def test_read_only_commands_leave_schema_and_tap_schema_alone(scratch):
    env, engine = scratch
    Database(load_settings(env)).upgrade()
    sentinel = sa.text("SELECT count(*) FROM tap_schema.schemas WHERE schema_name = 'sentinel'")
    with engine.begin() as conn:  # a full upgrade rewrites TAP_SCHEMA and drops this row
        conn.execute(sa.text("INSERT INTO tap_schema.schemas (schema_name, description) "
                             "VALUES ('sentinel', 'removed by any TAP_SCHEMA refresh')"))
    for command in [*READ_ONLY[:3], ["db", "status"]]:
        result = run_cli(env, *command)
        assert result.returncode == 0, result.stderr
    with engine.connect() as conn:
        assert conn.scalar(sentinel) == 1

    head = migrate.head_revision()
    older = ScriptDirectory(str(migrate.MIGRATIONS)).get_revision(head).down_revision
    version = sa.text("SELECT version_num FROM latentvo_ops.alembic_version")
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE latentvo_ops.alembic_version SET version_num = :v"),
                     {"v": older})
    line = _one_error_line(run_cli(env, "ml", "list"))
    assert f"is at schema revision {older}" in line and "latentvo db upgrade" in line
    with engine.connect() as conn:
        assert (conn.scalar(version), conn.scalar(sentinel)) == (older, 1)

    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE latentvo_ops.alembic_version SET version_num = :v"),
                     {"v": head})
    assert run_cli(env, "db", "upgrade").returncode == 0
    with engine.connect() as conn:
        assert conn.scalar(sentinel) == 0  # the sentinel does notice a refresh
