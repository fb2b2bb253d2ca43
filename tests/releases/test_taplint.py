"""STILTS taplint against a server with a published release: its frozen tables, their
TAP_SCHEMA rows and its ObsCore view pass as the live ones do (no errors)."""

from __future__ import annotations

import re
import subprocess

import httpx

from tests.conftest import run_cli, wait_until
from tests.releases.conftest import TAP
from tests.tap.test_taplint import ALLOWED_WARNINGS


def test_taplint_has_no_errors_with_a_release_published(stilts, release_server, latentvo_env):
    for verb in ("create", "publish"):
        args = ("--title", "Linted release") if verb == "create" else ()
        result = run_cli(latentvo_env, "release", verb, "dr5", *args)
        assert result.returncode == 0, result.stdout + result.stderr
    tap = TAP(release_server)
    assert wait_until(lambda: tap.answer("SELECT TOP 1 * FROM dr5.obscore").status_code == 200)
    assert "<name>dr5.spectra</name>" in httpx.get(release_server + "/tap/tables").text
    run = subprocess.run(
        [stilts, "taplint", f"tapurl={release_server}/tap", "report=EWF", "stages=-LOC",
         "maxtable=40"], capture_output=True, text=True, timeout=600)
    report = run.stdout + run.stderr
    lines = [ln for ln in report.splitlines() if re.match(r"^[EWF]-[A-Z]{3}-[A-Z0-9]{4}", ln)]
    errors = [ln for ln in lines if ln.startswith(("E-", "F-"))]
    assert not errors, "taplint errors:\n" + "\n".join(errors) + "\n\n" + report[-3000:]
    warnings = [ln for ln in lines if ln.startswith("W-") and ln[:10] not in ALLOWED_WARNINGS]
    assert not warnings, "unexpected taplint warnings:\n" + "\n".join(warnings)
    result = run_cli(latentvo_env, "release", "withdraw", "dr5")
    assert result.returncode == 0, result.stdout + result.stderr
