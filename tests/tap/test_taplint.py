"""STILTS taplint against a running server with demo-like data: no errors allowed.

Warnings are allowed only where taplint itself is limited (listed below with
the reason); any other warning fails the test too.
"""

from __future__ import annotations

import re
import subprocess

# taplint warnings that are limitations of taplint 3.4, not of the service:
ALLOWED_WARNINGS = {
    # ADQL 2.1 defines #features-adql-conditional (COALESCE), which taplint 3.4 reports as an
    # unknown standard key (E-CAP-KEYX); the group is therefore declared under latentvo's own
    # feature type, which taplint mentions as a custom feature type.
    "W-CAP-CULF",
    # taplint's ADQL parser cannot read UDF forms with array arguments (REAL[]), so it does
    # not know lvo_latent_distance when it validates the examples that use it; the service
    # runs them (tests/tap/test_pyvo.py::test_examples).
    "W-EXA-EXVL",
}


def test_taplint_has_no_errors(stilts, tap_server, archive):
    run = subprocess.run(
        [stilts, "taplint", f"tapurl={tap_server}", "report=EWF", "stages=-LOC",
         "maxtable=20"],
        capture_output=True, text=True, timeout=600)
    report = run.stdout + run.stderr
    lines = [ln for ln in report.splitlines() if re.match(r"^[EWF]-[A-Z]{3}-[A-Z0-9]{4}", ln)]
    errors = [ln for ln in lines if ln.startswith(("E-", "F-"))]
    assert not errors, "taplint errors:\n" + "\n".join(errors) + "\n\n" + report[-3000:]
    warnings = [ln for ln in lines if ln.startswith("W-") and ln[:10] not in ALLOWED_WARNINGS]
    assert not warnings, "unexpected taplint warnings:\n" + "\n".join(warnings)
    assert "Totals: Errors: 0" in report
