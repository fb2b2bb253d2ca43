"""mypy over the whole package, with the configuration in pyproject.toml.

Running the type checker as a test puts it in the one test command that
developers and CI already run, so a type error fails the build like any other.
"""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
@pytest.mark.timeout(600)  # a cold run takes about a minute on 2 cores
def test_mypy_passes() -> None:
    """mypy, configured by pyproject.toml ([tool.mypy]), reports no error.

    The cache stays in the checkout's .mypy_cache/, so a rerun checks only what changed.
    """
    result = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, f"mypy failed:\n{result.stdout}{result.stderr}"
