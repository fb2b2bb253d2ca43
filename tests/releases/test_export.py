"""``latentvo release export``: a release as an RO-Crate folder whose files match the
checksums the crate lists, checked against the release's manifest."""

from __future__ import annotations

import hashlib

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import run_cli
from tests.releases.citation_data import DOI, NO_DOI, PUBLISHED, TABLES, WITHDRAWN, made_releases
from vo_service.releases.export import ExportError, export_release
from vo_service.releases.publisher import publisher_of
from vo_service.urls import PublicURLs

BASE = "https://data.example.org/latentvo"


@pytest.fixture(scope="module")
def releases(database):
    """Releases in every state (``citation_data``), removed after the module."""
    yield from made_releases(database)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def export(database, name, folder):
    return export_release(database, name, folder, publisher_of(database.settings),
                          PublicURLs(BASE))


def test_export_writes_every_file_with_its_checksum(database, releases, tmp_path):
    from rocrate.rocrate import ROCrate

    folder = tmp_path / "package"
    exported = export(database, PUBLISHED, folder)
    crate = ROCrate(folder)
    assert crate.root_dataset["identifier"] == f"https://doi.org/{DOI}"
    assert crate.root_dataset["url"] == f"{BASE}/releases/{PUBLISHED}"
    listed = {e.id: e for e in crate.data_entities}
    on_disk = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    assert set(listed) == on_disk - {"ro-crate-metadata.json"}
    assert set(listed) == ({f"tables/{t}.parquet" for t in TABLES} | {"datacite.xml",
                           "citation.bib"} | {path for path, _ in releases.artifacts.values()})
    for path, entity in listed.items():
        data = (folder / path).read_bytes()
        assert entity["sha256"] == sha256(data), path
        assert int(entity["contentSize"]) == len(data), path
    # the artifacts are the release's, byte for byte
    for path, sha in releases.artifacts.values():
        assert listed[path]["sha256"] == sha
    # the tables hold the release's rows; pgvector columns became float lists
    manifest = releases.manifests[PUBLISHED]
    for table in manifest["tables"]:
        schema, _, name = table["name"].partition(".")
        read = pq.read_table(folder / f"tables/{name}.parquet")
        assert schema == PUBLISHED
        assert read.num_rows == table["rows"] > 0
    latent = pq.read_table(folder / "tables/latent.parquet")
    assert latent.schema.field("vec").type == pa.list_(pa.float32())
    keys = pq.read_table(folder / "tables/labels.parquet").select(["model_id", "spectrum_id"])
    assert keys.to_pylist() == sorted(keys.to_pylist(), key=lambda r: (r["model_id"],
                                                                        r["spectrum_id"]))
    assert listed["tables/spectra.parquet"]["url"].startswith(f"{BASE}/tap/sync?")
    assert exported.size == sum(int(e["contentSize"]) for e in listed.values())


def test_exporting_twice_writes_the_same_files(database, releases, tmp_path):
    """Rows in primary-key order (where the table has one): an archive can re-export a
    release and compare checksums."""
    first = export(database, PUBLISHED, tmp_path / "one")
    second = export(database, PUBLISHED, tmp_path / "two")
    assert {p.path: p.sha256 for p in first.parts} == {p.path: p.sha256 for p in second.parts}


def test_a_changed_artifact_stops_the_export(database, releases, tmp_path):
    path, _ = next(iter(releases.artifacts.values()))
    artifact = database.settings.home / path
    original = artifact.read_bytes()
    artifact.write_bytes(original + b"tampered")
    folder = tmp_path / "package"
    try:
        with pytest.raises(ExportError, match="manifest says"):
            export(database, NO_DOI, folder)
    finally:
        artifact.write_bytes(original)
    assert list(folder.iterdir()) == []  # nothing half-written is left


def test_refusals(database, releases, tmp_path):
    with pytest.raises(ExportError, match="withdrawn"):
        export(database, WITHDRAWN, tmp_path / "a")
    with pytest.raises(ExportError, match="no release"):
        export(database, "no_such_release", tmp_path / "b")
    used = tmp_path / "used"
    used.mkdir()
    (used / "keep.txt").write_text("mine")
    with pytest.raises(ExportError, match="not an empty folder"):
        export(database, PUBLISHED, used)
    assert (used / "keep.txt").read_text() == "mine"


def test_the_command(releases, latentvo_env, tmp_path):
    env = {k: v for k, v in latentvo_env.items() if k != "LATENTVO_BASE_URL"}

    def run(*args):
        return run_cli(env, "release", "export", *args)

    done = run(PUBLISHED, str(tmp_path / "ok"), "--base-url", BASE, "--quiet")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"exported release {PUBLISHED}" in done.stdout + done.stderr
    assert (tmp_path / "ok" / "ro-crate-metadata.json").is_file()
    no_base = run(PUBLISHED, str(tmp_path / "no-base"))
    said = (no_base.stdout + no_base.stderr).strip()
    assert no_base.returncode == 1 and "--base-url" in said and len(said.splitlines()) == 1
