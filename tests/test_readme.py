"""The README's examples run verbatim against the demo and return rows.

A real ``latentvo demo`` (small: 200 spectra) serves on a free port from its own
LATENTVO_HOME; once its background build has trained the models and written their
products, every ```python and ```sql block of README.md runs against it, with only
the service's host and port rewritten. A statement that raises, or a query result,
table or file that comes back empty, fails the test.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, free_port, run_cli

README_URL = "http://127.0.0.1:8000"
N_SPECTRA = 200


def blocks(language: str) -> list[str]:
    """The README's fenced code blocks of ``language``, in order."""
    text = (REPO / "README.md").read_text()
    return re.findall(rf"^```{language}\n(.*?)^```", text, flags=re.S | re.M)


def wait_for_build(home: Path, proc: subprocess.Popen, timeout: float) -> dict:
    """The demo job's status record once it stopped running (fails the test on a timeout)."""
    path = home / "jobs" / "demo.json"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the demo exited while its build ran"
        if path.exists():
            status = json.loads(path.read_text())
            if status["state"] != "running":
                return status
        time.sleep(1)
    pytest.fail(f"the demo's build did not finish within {timeout:.0f} s")


@pytest.fixture(scope="module")
def demo_url(latentvo_env):
    """Base URL of a running ``latentvo demo`` whose build finished."""
    home = Path(tempfile.mkdtemp(prefix="latentvo-readme-"))  # see conftest.latentvo_home
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**latentvo_env, "LATENTVO_HOME": str(home)}
    env.pop("LATENTVO_DATABASE_URL", None)  # the demo's own database, as a new user's
    env.pop("LATENTVO_READER_DATABASE_URL", None)
    console = open(home / "console.txt", "w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "vo_service.cli", "demo", "--n", str(N_SPECTRA),
         "--port", str(port)], env=env, cwd=REPO, stdout=console, stderr=subprocess.STDOUT,
        start_new_session=True)
    try:
        status = wait_for_build(home, proc, timeout=600)
        assert status["state"] == "done", (status, (home / "jobs" / "demo.log").read_text())
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        console.close()
        run_cli(env, "db", "stop")
        shutil.rmtree(home, ignore_errors=True)


def rows_of(value) -> int | None:
    """How many rows a query result, table or FITS file holds; None for anything else."""
    import pyvo
    from astropy.io import fits
    from astropy.table import Table

    if isinstance(value, pyvo.dal.DALResults | Table):
        return len(value)
    if isinstance(value, fits.HDUList):
        return sum(len(hdu.data) for hdu in value if isinstance(hdu, fits.BinTableHDU))
    return None


def test_readme_has_examples():
    """Guard: the tests below would pass vacuously if the README lost its examples."""
    assert blocks("python") and blocks("sql")


def test_python_examples_return_rows(demo_url):
    for n, code in enumerate(blocks("python"), 1):
        code = code.replace(README_URL, demo_url)
        namespace: dict = {}
        checked = 0
        for statement in ast.parse(code).body:
            where = f"README python block {n}, line {statement.lineno}"
            if isinstance(statement, ast.Expr):
                value = eval(compile(ast.Expression(statement.value), where, "eval"), namespace)
                results = [value]
            else:
                exec(compile(ast.Module([statement], []), where, "exec"), namespace)
                targets = [t for s in ast.walk(statement) if isinstance(s, ast.Assign)
                           for t in s.targets if isinstance(t, ast.Name)]
                results = [namespace[t.id] for t in targets]
            for value in results:
                rows = rows_of(value)
                if rows is not None:
                    assert rows > 0, f"{where}: no rows"
                    checked += 1
        assert checked, f"README python block {n} returned no result to check"


def test_sql_examples_return_rows(demo_url):
    import pyvo

    tap = pyvo.dal.TAPService(demo_url + "/tap")
    for n, query in enumerate(blocks("sql"), 1):
        assert len(tap.run_sync(query)) > 0, f"README sql block {n}: no rows"


def test_what_the_examples_say_holds(demo_url):
    """The similar spectra leave the query spectrum out; getdataset() gives FITS."""
    code = blocks("python")[0].replace(README_URL, demo_url)
    namespace: dict = {}
    exec(compile(code, "README python block 1", "exec"), namespace)
    neighbours = list(namespace["similar"].to_table()["spectrum_id"])
    assert len(neighbours) == 10 and namespace["star"]["spectrum_id"] not in neighbours
    assert namespace["results"][0].getdataset().read(9) == b"SIMPLE  ="
