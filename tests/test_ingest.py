"""Spectrum ingest against the real database: formats, idempotence, bad files, crashes."""

from __future__ import annotations

import csv
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import psutil
import pytest
import sqlalchemy as sa
from astropy.io import fits

from ml.synth import write_archive, write_corrupt_examples
from tests.conftest import REPO, run_cli
from vo_service.archive.ingest import Ingester, IngestError, expand_paths
from vo_service.archive.readers import FORMATS, eso_phase3, read_spectrum
from vo_service.archive.spectrum import Spectrum, SpectrumMeta, air_to_vacuum
from vo_service.archive.store import FileStore


@pytest.fixture(scope="session")
def archive(tmp_path_factory):
    out = tmp_path_factory.mktemp("archive")
    write_archive(out, n=160, seed=11, progress=False)
    return out


@pytest.fixture(scope="session")
def corrupt_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("corrupt")
    write_corrupt_examples(out)
    return out


def spectrum_files(root):
    return expand_paths([str(root)])


def count(database, sql):
    with database.engine.connect() as conn:
        return conn.scalar(sa.text(sql))


def test_ingest_every_format_then_reingest_is_a_noop(clean_archive, settings, archive):
    files = spectrum_files(archive)
    report = Ingester(clean_archive.engine, settings).run(files)
    assert report.rejected == []
    n_rows = count(clean_archive, "SELECT count(*) FROM latentvo.spectra")
    assert report.ingested == len(files) == n_rows
    formats = {r for (r,) in clean_archive.engine.connect().execute(
        sa.text("SELECT DISTINCT source_format FROM latentvo.spectra"))}
    assert formats == set(FORMATS)

    # Metadata agrees with the generator's truth table.
    with open(archive / "truth.csv") as fh:
        truth = {row["obs_id"]: row for row in csv.DictReader(fh)}
    with clean_archive.engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT obs_id, s_ra, s_dec, em_min, em_max, em_xel, snr, obs_publisher_did, "
            "file_sha256, healpix_index FROM latentvo.spectra")).mappings().all()
    assert {r["obs_id"] for r in rows} == set(truth)
    store = FileStore(settings.store_dir)
    for r in rows:
        assert r["obs_publisher_did"] == f"{settings.authority}/spectra?{r['obs_id']}"
        assert 3e-7 < r["em_min"] < r["em_max"] < 2e-6  # metres
        assert store.path_for(r["file_sha256"]).is_file()
        assert r["healpix_index"] >= 0

    stored_before = sorted(p for p in settings.store_dir.rglob("*") if p.is_file())
    again = Ingester(clean_archive.engine, settings).run(files)
    assert (again.ingested, again.already_known, again.rejected) == (0, len(files), [])
    assert count(clean_archive, "SELECT count(*) FROM latentvo.spectra") == len(files)
    assert sorted(p for p in settings.store_dir.rglob("*") if p.is_file()) == stored_before


def test_bad_files_are_reported_and_recorded(clean_archive, settings, archive, corrupt_dir,
                                             tmp_path):
    mixed = tmp_path / "mixed"
    good = spectrum_files(archive)[:20]
    mixed.mkdir()
    for f in good:
        shutil.copy(f, mixed / f.name)
    for f in corrupt_dir.iterdir():
        shutil.copy(f, mixed / f.name)
    bad_names = {f.name for f in corrupt_dir.iterdir() if f.is_file()}
    report = Ingester(clean_archive.engine, settings).run(spectrum_files(mixed))
    assert report.ingested == len(good)
    rejected = {p.split("/")[-1]: reason for p, reason in report.rejected}
    assert set(rejected) == {n for n in bad_names if any(n.endswith(s) for s in
                                                         (".fits", ".fits.gz", ".xml", ".vot"))}
    assert all(reason for reason in rejected.values())
    assert count(clean_archive, "SELECT count(*) FROM latentvo_ops.ingest_files "
                 "WHERE status = 'rejected' AND reason <> ''") == len(rejected)
    # Rejections are remembered: a second run neither reads nor reports them again.
    again = Ingester(clean_archive.engine, settings).run(spectrum_files(mixed))
    assert again.ingested == 0 and again.rejected == []


def test_same_obs_id_from_a_different_file_is_rejected(clean_archive, settings, archive, tmp_path):
    original = spectrum_files(archive)[0]
    Ingester(clean_archive.engine, settings).run([original])
    spectrum = read_spectrum(original)
    spectrum.flux = spectrum.flux * 1.01
    altered = tmp_path / original.name
    FORMATS[spectrum.source_format].write(spectrum, altered)
    report = Ingester(clean_archive.engine, settings).run([altered])
    assert report.ingested == 0
    assert "already in the archive" in report.rejected[0][1]
    assert count(clean_archive, "SELECT count(*) FROM latentvo.spectra") == 1


def test_missing_input_is_an_operator_error(tmp_path):
    with pytest.raises(IngestError, match="no such file"):
        expand_paths([str(tmp_path / "nowhere")])


def test_globs_and_directories(archive):
    by_dir = spectrum_files(archive)
    by_glob = expand_paths([str(archive / "**" / "*")])
    assert by_dir and set(by_dir) <= set(by_glob)


def test_killed_ingest_then_rerun_ingests_each_file_once(clean_archive, latentvo_env, archive):
    files = spectrum_files(archive)
    cmd = [sys.executable, "-m", "vo_service.cli", "ingest", str(archive), "--quiet",
           "--chunk-size", "10"]
    proc = subprocess.Popen(cmd, env=latentvo_env, cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while count(clean_archive, "SELECT count(*) FROM latentvo.spectra") == 0:
        assert proc.poll() is None, "ingest finished before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    workers = psutil.Process(proc.pid).children(recursive=True)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    gone, alive = psutil.wait_procs(workers, timeout=30)
    assert not alive, "reader processes outlived the killed ingest"
    partial = count(clean_archive, "SELECT count(*) FROM latentvo.spectra")
    assert 0 < partial < len(files)
    result = run_cli(latentvo_env, "ingest", str(archive), "--quiet")
    assert result.returncode == 0, result.stderr
    assert count(clean_archive, "SELECT count(*) FROM latentvo.spectra") == len(files)
    distinct = count(clean_archive, "SELECT count(DISTINCT file_sha256) FROM latentvo.spectra")
    assert distinct == len(files)
    assert count(clean_archive, "SELECT count(*) FROM latentvo_ops.ingest_files") == len(files)


def test_concurrent_ingests_store_each_file_once(clean_archive, latentvo_env, archive):
    files = spectrum_files(archive)
    cmd = [sys.executable, "-m", "vo_service.cli", "ingest", str(archive), "--quiet",
           "--chunk-size", "20", "--workers", "1"]
    procs = [subprocess.Popen(cmd, env=latentvo_env, cwd=REPO, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    assert count(clean_archive, "SELECT count(*) FROM latentvo.spectra") == len(files)


def test_cli_reports_rejections(clean_archive, latentvo_env, corrupt_dir):
    result = run_cli(latentvo_env, "ingest", str(corrupt_dir), "--quiet")
    assert result.returncode == 0
    assert "rejected" in result.stderr
    assert "Traceback" not in result.stderr


def _vacuum_to_air(vacuum):
    """Air wavelengths whose air_to_vacuum gives ``vacuum`` (fixed-point iteration)."""
    air = np.array(vacuum, dtype=float)
    for _ in range(4):
        air = air * vacuum / air_to_vacuum(air)
    return air


@pytest.mark.parametrize("tucd, frame, note", [
    ("em.wl;obs.atmos", "air", None),
    ("em.wl", "vacuum", None),
    (None, "vacuum", "vacuum wavelengths assumed: the WAVE column has no TUCD"),
])
def test_eso_phase3_frame_follows_the_wave_column_tucd(tmp_path, tucd, frame, note):
    vacuum = np.linspace(5000.0, 6000.0, 400)
    wave = _vacuum_to_air(vacuum) if frame == "air" else vacuum
    meta = SpectrumMeta(obs_id="frame", ra=10.0, dec=-20.0, spec_frame=frame)
    path = tmp_path / "frame.fits"
    eso_phase3.write(Spectrum(wave, np.ones(400), np.full(400, 1e4), meta), path)
    with fits.open(path, mode="update") as hdul:
        assert hdul[1].columns[0].name == "WAVE"
        if tucd is None:
            del hdul[1].header["TUCD1"]
        else:
            hdul[1].header["TUCD1"] = tucd
    spectrum = read_spectrum(path)
    assert spectrum.meta.spec_frame == frame
    if note is None:
        assert spectrum.meta.spec_frame_note is None
    else:
        assert spectrum.meta.spec_frame_note.startswith(note)
    np.testing.assert_allclose(spectrum.vacuum_wavelength(), vacuum, rtol=1e-10)


def test_ingest_reports_and_records_an_assumed_wavelength_frame(clean_archive, settings,
                                                                tmp_path):
    """Three files of one star, air with its TUCD, vacuum with its TUCD and vacuum
    without one: the same published em_min/em_max, the right spec_frame, and the
    assumption made for the third reported and kept with its ingest outcome."""
    vacuum = np.linspace(5000.0, 6000.0, 400)
    cases = {"air": ("em.wl;obs.atmos", _vacuum_to_air(vacuum)),
             "vacuum": ("em.wl", vacuum), "untagged": (None, vacuum)}
    for name, (tucd, wave) in cases.items():
        meta = SpectrumMeta(obs_id=name, ra=10.0, dec=-20.0,
                            spec_frame="air" if name == "air" else "vacuum")
        eso_phase3.write(Spectrum(wave, np.ones(400), np.full(400, 1e4), meta),
                         tmp_path / f"{name}.fits")
        with fits.open(tmp_path / f"{name}.fits", mode="update") as hdul:
            if tucd is None:
                del hdul[1].header["TUCD1"]
    report = Ingester(clean_archive.engine, settings).run(spectrum_files(tmp_path))
    assert report.ingested == 3 and report.rejected == []
    assert [p.split("/")[-1] for p, _ in report.assumed] == ["untagged.fits"]
    assert "1 ingested with an assumed wavelength frame" in report.summary()
    with clean_archive.engine.connect() as conn:
        rows = {r.obs_id: r for r in conn.execute(sa.text(
            "SELECT s.obs_id, s.spec_frame, s.em_min, s.em_max, f.status, f.reason "
            "FROM latentvo.spectra s JOIN latentvo_ops.ingest_files f USING (spectrum_id)"))}
    assert {k: r.spec_frame for k, r in rows.items()} == {
        "air": "air", "vacuum": "vacuum", "untagged": "vacuum"}
    for r in rows.values():
        assert r.em_min == pytest.approx(5000e-10, rel=1e-9)
        assert r.em_max == pytest.approx(6000e-10, rel=1e-9)
        assert r.status == "ingested"
    assert rows["untagged"].reason.startswith("vacuum wavelengths assumed")
    assert rows["air"].reason is None and rows["vacuum"].reason is None
