"""`latentvo demo`: serving at once while a background job builds the archive, the landing
page's account of that job (progress, success, failure with its reason and log), and the
whole build in the foreground with ``--no-serve``."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from html import escape
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from tests.conftest import REPO, free_port, run_cli


class Demo:
    """A ``latentvo demo`` serving on a free port from its own LATENTVO_HOME."""

    def __init__(self, env: dict[str, str], home: Path, *args: str) -> None:
        self.home = home
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**env, "LATENTVO_HOME": str(home)}
        self.env.pop("LATENTVO_DATABASE_URL", None)  # the demo's own embedded database
        self.env.pop("LATENTVO_READER_DATABASE_URL", None)
        self.console_path = home / "console.txt"
        self._console = open(self.console_path, "w")
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "vo_service.cli", "demo", "--port", str(self.port), *args],
            env=self.env, cwd=REPO, stdout=self._console, stderr=subprocess.STDOUT,
            start_new_session=True)

    def first_page(self, timeout: float = 120) -> tuple[float, str]:
        """Seconds from the command to the landing page's first 200, and that page."""
        while time.monotonic() - self.started < timeout:
            assert self.proc.poll() is None, self.console()
            try:
                page = httpx.get(self.url + "/", timeout=5)
                if page.status_code == 200:
                    return time.monotonic() - self.started, page.text
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        pytest.fail(f"no page within {timeout} s:\n{self.console()}")

    def status(self, timeout: float = 300) -> dict:
        """The build's status record once it no longer runs."""
        path = self.home / "jobs" / "demo.json"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if path.exists() and (status := json.loads(path.read_text()))["state"] != "running":
                return status
            time.sleep(0.5)
        pytest.fail(f"the build did not end within {timeout} s")

    def console(self) -> str:
        return self.console_path.read_text()

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._console.close()
        run_cli(self.env, "db", "stop")


@pytest.fixture
def demo_home():
    home = Path(tempfile.mkdtemp(prefix="latentvo-demo-"))  # see conftest.latentvo_home
    yield home
    shutil.rmtree(home, ignore_errors=True)


def spectra_count(page: str) -> int:
    return int(re.search(r"<th>spectra</th><td>([\d,]+)</td>", page)[1].replace(",", ""))


def test_demo_serves_before_the_archive_is_built(latentvo_env, demo_home):
    demo = Demo(latentvo_env, demo_home, "--n", "400", "--no-train")
    try:
        seconds, page = demo.first_page()
        # the service answers while the build runs: not all spectra are in yet
        assert spectra_count(page) < 400, page
        status = demo.status()
        assert status["state"] == "done", status
        assert [s["phase"] for s in status["steps"]] == [
            "synthetic archive", "ingest", "reference labels"]
        page = httpx.get(demo.url + "/").text
        assert spectra_count(page) == 400 and "finished in" in page
        assert '<meta http-equiv="refresh"' not in page  # stops reloading once done
        # what landed is in TAP at once, from the server that started before it
        tap = httpx.get(demo.url + "/tap/sync", params={
            "LANG": "ADQL", "FORMAT": "csv",
            "QUERY": "SELECT COUNT(*) AS n FROM latentvo.spectra"})
        assert tap.text.split() == ["n", "400"]
        deadline = time.monotonic() + 30  # the console's line comes from a watcher thread
        while "demo build finished" not in demo.console() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert "demo build finished" in demo.console()
        print(f"first 200 after {seconds:.1f} s")
    finally:
        demo.stop()


def test_a_failed_build_says_why_and_where_its_log_is(latentvo_env, demo_home):
    """A broken reference-label table stops the build: page and console give the reason."""
    archive = demo_home / "demo-archive"
    archive.mkdir()
    (archive / "manifest.json").write_text("{}")  # an archive written before, but broken:
    (archive / "reference_labels.csv").write_text("target_name;teff\nstar-1;hot\n")
    demo = Demo(latentvo_env, demo_home)
    try:
        demo.first_page()
        status = demo.status(timeout=120)
        assert status["state"] == "failed" and status["phase"] == "reference labels"
        log = str(demo_home / "jobs" / "demo.log")
        page = httpx.get(demo.url + "/").text
        assert "failed during reference labels: " in page and escape(status["error"]) in page
        assert log in page
        deadline = time.monotonic() + 30
        while "demo build failed" not in demo.console() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert f"log: {log}" in demo.console()
        assert status["error"] in Path(log).read_text()  # the job's own error line
    finally:
        demo.stop()


def test_demo_builds_a_complete_archive(latentvo_env, demo_home):
    """``--no-serve``: the same build in the foreground, products for the README's ids."""
    env = dict(latentvo_env, LATENTVO_HOME=str(demo_home))
    env.pop("LATENTVO_DATABASE_URL", None)
    env.pop("LATENTVO_READER_DATABASE_URL", None)
    result = run_cli(env, "demo", "--n", "150", "--no-serve", timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stderr
    assert "ingest: 150 file(s) examined: 150 ingested" in out
    report = next(line.split("quality report: ", 1)[1].strip() for line in out.splitlines()
                  if "quality report: " in line)
    assert report.endswith(".html")
    from vo_service.config import load_settings
    from vo_service.db.database import Database
    database = Database(load_settings(env))
    try:
        with database.reader_engine.connect() as conn:
            n_spectra = conn.scalar(sa.text("SELECT count(*) FROM latentvo.spectra"))
            models = set(conn.scalars(sa.text("SELECT model_id FROM latentvo.models")))
            n_latent = conn.scalar(sa.text("SELECT count(*) FROM latentvo.latent"))
            n_labels = conn.scalar(sa.text("SELECT count(*) FROM latentvo.labels"))
        assert n_spectra == 150 and models == {"demo-ae", "demo-labels"}
        assert n_latent > 0 and n_labels > 0
        # Running it again trains nothing and changes nothing in the archive.
        again = run_cli(env, "demo", "--n", "150", "--no-serve")
        assert again.returncode == 0, again.stderr[-2000:]
        assert "0 ingested, 150 already in the archive" in again.stderr
        assert "model demo-ae registered at" in again.stderr
        assert "0 spectra written" in again.stderr
        status = json.loads((demo_home / "jobs" / "demo.json").read_text())
        assert status["state"] == "done" and len(status["steps"]) == 8
    finally:
        database.dispose()
        database.embedded.stop()
