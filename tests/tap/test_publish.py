"""Publishing an existing catalogue: declaration file -> table, TAP_SCHEMA, VOSI, queries."""

from __future__ import annotations

import csv
import io
import subprocess
import sys

import httpx
import pytest
import sqlalchemy as sa

from schema.catalogue_declaration import Declaration, DeclarationError
from tests.conftest import REPO
from tests.tap.conftest import N_CATALOGUE


def test_published_catalogue_is_queryable_and_described(tap_server, archive):
    def sync(query, fmt="csv"):
        r = httpx.post(tap_server + "/sync", data={"LANG": "ADQL", "QUERY": query,
                                                   "RESPONSEFORMAT": fmt}, timeout=60)
        assert r.status_code == 200, r.text
        return [",".join(row) for row in csv.reader(io.StringIO(r.text))]

    assert sync("SELECT COUNT(*) AS n FROM mlspec.spectra")[1] == str(N_CATALOGUE)
    rows = sync("SELECT column_name, datatype, arraysize, unit, ucd FROM tap_schema.columns "
                "WHERE table_name = 'mlspec.spectra' ORDER BY column_index")
    assert rows[1].startswith("spec_id,long")
    assert any(r.startswith("latent,float,16") for r in rows)
    assert any(r.startswith("ra,double,,deg,pos.eq.ra;meta.main") for r in rows)
    schemas = sync("SELECT schema_name, description FROM tap_schema.schemas")
    assert any(r.startswith("mlspec,") and "DaCHS" in r for r in schemas)
    # a cone uses the HEALPix column added by the declaration's position
    ra, dec = map(float, sync("SELECT ra, dec FROM mlspec.spectra WHERE spec_id = 1")[1]
                  .split(","))
    cone = sync(f"SELECT spec_id FROM mlspec.spectra WHERE 1 = CONTAINS(POINT('ICRS', ra, dec), "
                f"CIRCLE('ICRS', {ra}, {dec}, 0.5))")
    assert "1" in cone[1:]
    vosi = httpx.get(tap_server + "/tables/mlspec.spectra").text
    assert "<name>latent</name>" in vosi and 'arraysize="16"' in vosi


def test_declaration_errors_name_the_problem(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[schema]\nname = "latentvo"\n[table]\nname = "x"\ndescription = "d"\n'
                   '[[column]]\nname = "a"\ntype = "int"\ndescription = "d"\n')
    with pytest.raises(DeclarationError, match="belongs to latentvo"):
        Declaration.from_file(bad)
    bad.write_text('[schema]\nname = "cat"\n[table]\nname = "x"\ndescription = "d"\n'
                   '[[column]]\nname = "a"\ntype = "complex"\ndescription = "d"\n')
    with pytest.raises(DeclarationError, match="unknown type"):
        Declaration.from_file(bad)
    decl = Declaration.from_file(REPO / "bench" / "mlspec.toml")
    table = decl.table()
    assert table.c.latent.info["vo"].arraysize == "16"
    assert table.c.healpix.info["vo"].ucd == "pos.healpix"
    assert Declaration.from_dict(decl.to_dict()) == decl


def test_publish_cli(latentvo_env, archive, database, tmp_path):
    csv_path = archive["catalogue_csv"]
    decl = (REPO / "bench" / "mlspec.toml").read_text().replace('name = "spectra"',
                                                                  'name = "spectra_copy"')
    (tmp_path / "copy.toml").write_text(decl)
    cli = [sys.executable, "-m", "vo_service.cli", "publish"]
    run = subprocess.run([*cli, "table", str(tmp_path / "copy.toml"), str(csv_path), "-q"],
                         env=latentvo_env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"{N_CATALOGUE:,} rows" in run.stdout + run.stderr
    again = subprocess.run([*cli, "table", str(tmp_path / "copy.toml"), str(csv_path), "-q"],
                           env=latentvo_env, cwd=REPO, capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 1 and "--replace" in again.stdout + again.stderr
    listing = subprocess.run([*cli, "list"], env=latentvo_env, cwd=REPO, capture_output=True,
                             text=True, timeout=120)
    assert "mlspec.spectra_copy" in listing.stdout + listing.stderr
    # a query still reading the table: the replace waits --lock-wait, then says why and
    # leaves the published table as it was
    with database.reader_engine.connect() as reader:
        reader.begin()
        assert reader.scalar(sa.text("SELECT count(*) FROM mlspec.spectra_copy")) == N_CATALOGUE
        blocked = subprocess.run([*cli, "table", str(tmp_path / "copy.toml"), str(csv_path),
                                  "-q", "--replace", "--lock-wait", "1"], env=latentvo_env,
                                 cwd=REPO, capture_output=True, text=True, timeout=300)
        assert blocked.returncode == 1
        assert "in use by running queries" in blocked.stdout + blocked.stderr
        reader.rollback()
    with database.engine.connect() as conn:
        assert conn.scalar(sa.text("SELECT count(*) FROM mlspec.spectra_copy")) == N_CATALOGUE
    drop = subprocess.run([*cli, "drop", "mlspec.spectra_copy"], env=latentvo_env, cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert drop.returncode == 0, drop.stdout + drop.stderr
