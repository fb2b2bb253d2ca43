"""The command line as an operator meets it: help, errors, exit codes."""

import os

import pytest

from tests.conftest import run_cli

COMMANDS = [[], ["db"], ["db", "start"], ["db", "stop"], ["db", "status"], ["db", "upgrade"],
            ["synth"], ["ingest"], ["labels"], ["labels", "attach"], ["labels", "list"],
            ["serve"], ["demo"], ["adql"], ["adql", "parse"], ["adql", "translate"], ["ml"]]


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


def test_bad_configuration_is_reported(latentvo_env, tmp_path):
    env = dict(latentvo_env, LATENTVO_CONFIG=str(tmp_path / "bad.toml"))
    (tmp_path / "bad.toml").write_text("release = \n")
    result = run_cli(env, "db", "status")
    assert result.returncode == 1
    assert "not valid TOML" in result.stderr
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
