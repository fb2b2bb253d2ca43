"""STILTS tapquery, sync and async, against the running service."""

from __future__ import annotations

import subprocess

import pytest
from astropy.table import Table


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_tapquery(stilts, tap_server, archive, tmp_path, mode):
    out = tmp_path / f"{mode}.vot"
    run = subprocess.run(
        [stilts, "tapquery", f"tapurl={tap_server}",
         f"sync={'true' if mode == 'sync' else 'false'}",
         "adql=SELECT TOP 25 spec_id, target_name, teff_pred, latent FROM mlspec.spectra "
         "ORDER BY spec_id", "ofmt=votable", f"out={out}",
         *(["poll=200"] if mode == "async" else [])],
        capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr[-2000:]
    table = Table.read(out, format="votable")
    assert len(table) == 25
    assert list(table["spec_id"][:3]) == [1, 2, 3]
    assert table["latent"].shape == (25, 16)


def test_tapquery_upload(stilts, tap_server, archive, tmp_path):
    ids = tmp_path / "ids.csv"
    ids.write_text("sid\n3\n5\n8\n")
    out = tmp_path / "joined.csv"
    run = subprocess.run(
        [stilts, "tapquery", f"tapurl={tap_server}", "nupload=1", f"upload1={ids}",
         "ufmt1=csv", "upname1=ids", "adql=SELECT s.spec_id, s.target_name FROM "
         "TAP_UPLOAD.ids AS u JOIN mlspec.spectra AS s ON s.spec_id = u.sid ORDER BY s.spec_id",
         "ofmt=csv", f"out={out}"], capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr[-2000:]
    assert [line.split(",")[0] for line in out.read_text().splitlines()[1:]] == ["3", "5", "8"]
