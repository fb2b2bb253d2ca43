"""`latentvo demo` end to end on a small archive (README's first command, without serving)."""

import shutil
import tempfile
from pathlib import Path

import sqlalchemy as sa

from tests.conftest import run_cli


def test_demo_builds_a_complete_archive(latentvo_env):
    home = Path(tempfile.mkdtemp(prefix="latentvo-demo-"))  # see conftest.latentvo_home
    env = dict(latentvo_env, LATENTVO_HOME=str(home))
    result = run_cli(env, "demo", "--n", "150", "--no-serve", timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stderr
    assert "ingest: 150 file(s) examined: 150 ingested" in out
    report = next(line.split("report: ", 1)[1].strip() for line in out.splitlines()
                  if "report: " in line)
    assert report.endswith(".html")
    # The products are in the database, visible to the read-only role.
    from vo_service.config import load_settings
    from vo_service.db.database import Database
    database = Database(load_settings(env))
    try:
        with database.reader_engine.connect() as conn:
            n_spectra = conn.scalar(sa.text("SELECT count(*) FROM latentvo.spectra"))
            n_latent = conn.scalar(sa.text("SELECT count(*) FROM latentvo.latent"))
            n_labels = conn.scalar(sa.text("SELECT count(*) FROM latentvo.labels"))
            n_models = conn.scalar(sa.text("SELECT count(*) FROM latentvo.models"))
        assert n_spectra == 150 and n_models == 2
        assert n_latent > 0 and n_labels > 0
        # Running it again changes nothing in the archive.
        again = run_cli(env, "demo", "--n", "150", "--no-serve", "--no-train")
        assert again.returncode == 0, again.stderr[-2000:]
        assert "0 ingested, 150 already in the archive" in again.stderr
    finally:
        database.dispose()
        database.embedded.stop()
        shutil.rmtree(home, ignore_errors=True)
