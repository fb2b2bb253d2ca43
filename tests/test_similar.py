"""``/similar``: similarity by uploaded spectrum, against a real server and database.

A small autoencoder and label model are trained on the synthetic test archive (which
exports their ONNX graphs) and ``ml infer`` stores the archive's vectors and labels;
then a real ``latentvo serve`` answers uploads of the archive's own files, by ID, in
every format, with filters, and refuses every bad input with a DALI error document.
"""

from __future__ import annotations

import csv
import io

import httpx
import numpy as np
import psutil
import pytest
import sqlalchemy as sa
from astropy.io.votable import parse

from ml.infer import infer
from ml.train import AutoencoderConfig, LabelConfig
from ml.training_runs import train_autoencoder_run, train_label_run
from tests.conftest import start_server, stop_server
from tests.ml.conftest import LABEL_SET, ml_archive  # noqa: F401 - fixture
from vo_service.archive.store import FileStore

AE = AutoencoderConfig(latent_dim=8, epochs=3, channels=(8, 16, 32), hidden=64, profile="cpu")
LABELS = LabelConfig(epochs=3, members=2, channels=(8, 16, 32), hidden=64)
UPLOAD_LIMIT = 2_000_000


@pytest.fixture(scope="module")
def models(database, settings, ml_archive):  # noqa: F811 - fixture
    train_autoencoder_run(database.engine, settings, model_id="sim-ae", config=AE,
                          n_pixels=256, seed=4, progress=False)
    train_label_run(database.engine, settings, label_set=LABEL_SET, autoencoder_id="sim-ae",
                    model_id="sim-labels", config=LABELS, seed=4, progress=False)
    infer(database.engine, settings, "sim-labels")
    return "sim-ae", "sim-labels"


@pytest.fixture(scope="module")
def service(models, latentvo_env):
    env = {**latentvo_env, "LATENTVO_SIMILAR_UPLOAD_BYTES": str(UPLOAD_LIMIT)}
    proc, url = start_server(env)
    yield proc, url
    stop_server(proc)


@pytest.fixture(scope="module")
def url(service) -> str:
    return service[1]


@pytest.fixture(scope="module")
def archive(database, settings, models) -> list[dict]:
    """Spectra with their stored vector, labels and original file's bytes."""
    store = FileStore(settings.store_dir)
    with database.engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT s.spectrum_id, s.obs_publisher_did, s.file_sha256, v.vec::real[] AS vec, "
            "l.teff, l.in_domain FROM latentvo.spectra s "
            "JOIN latentvo.latent v ON v.spectrum_id = s.spectrum_id AND v.model_id = 'sim-ae' "
            "JOIN latentvo.labels l ON l.spectrum_id = s.spectrum_id "
            "AND l.model_id = 'sim-labels' ORDER BY s.spectrum_id LIMIT 5")).mappings().all()
    return [{**r, "file": store.path_for(r["file_sha256"]).read_bytes()} for r in rows]


def table_of(body: bytes):
    votable = parse(io.BytesIO(body))
    return votable, votable.get_first_table()


def upload(url: str, data: bytes, **params) -> httpx.Response:
    return httpx.post(f"{url}/similar", data=params, files={"UPLOAD": ("spec.fits", data)},
                      timeout=60)


def error_message(response: httpx.Response) -> str:
    votable = parse(io.BytesIO(response.content))
    infos = {i.name: i for i in votable.resources[0].infos}
    assert infos["QUERY_STATUS"].value == "ERROR"
    return str(infos["QUERY_STATUS"].content)


def test_an_uploaded_archive_file_lands_on_its_stored_vector(url, archive):
    for spectrum in archive[:3]:
        r = upload(url, spectrum["file"], K="5")
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("application/x-votable+xml")
        votable, table = table_of(r.content)
        rows = table.to_table(use_names_over_ids=True)
        assert rows["obs_publisher_did"][0] == spectrum["obs_publisher_did"]
        assert rows["distance"][0] < 1e-3
        assert list(rows["rank"]) == [1, 2, 3, 4, 5]
        assert np.all(np.diff(rows["distance"]) >= 0)
        params = {p.name: p.value for p in votable.resources[0].params}
        np.testing.assert_allclose(params["query_latent"], spectrum["vec"], atol=2e-4)
        assert params["query_teff"] == pytest.approx(spectrum["teff"], rel=1e-4)
        assert bool(params["query_in_domain"]) == spectrum["in_domain"]
        assert params["query_teff_err"] > 0 and params["query_snr"] > 0
        infos = {i.name: i.value for i in votable.resources[0].infos}
        assert (infos["MODEL"], infos["LABEL_MODEL"], infos["QUERY"]) == \
            ("sim-ae", "sim-labels", "upload")
        assert rows["access_url"][0].startswith(f"{url}/getdata?ID=")
        assert rows["datalink_url"][0].startswith(f"{url}/datalink/links?ID=")


def test_by_id_is_the_same_search(url, archive):
    spectrum = archive[1]
    by_id = httpx.get(f"{url}/similar", params={"ID": spectrum["obs_publisher_did"], "K": 8})
    by_upload = upload(url, spectrum["file"], K="8")
    ids = table_of(by_id.content)[1].to_table(use_names_over_ids=True)
    ups = table_of(by_upload.content)[1].to_table(use_names_over_ids=True)
    assert ids["obs_publisher_did"][0] == spectrum["obs_publisher_did"]
    assert list(ids["obs_publisher_did"]) == list(ups["obs_publisher_did"])
    np.testing.assert_allclose(ids["distance"], ups["distance"], atol=1e-3)


def test_neighbours_match_an_exact_search(url, database, archive):
    spectrum = archive[2]
    r = httpx.get(f"{url}/similar", params={"ID": spectrum["obs_publisher_did"], "K": 10})
    got = list(table_of(r.content)[1].to_table(use_names_over_ids=True)["spectrum_id"])
    with database.engine.connect() as conn:
        want = list(conn.scalars(sa.text(
            "SELECT v.spectrum_id FROM latentvo.latent v, latentvo.latent q "
            "WHERE q.spectrum_id = :s AND q.model_id = 'sim-ae' AND v.model_id = 'sim-ae' "
            "ORDER BY v.vec <-> q.vec, v.spectrum_id LIMIT 10"), {"s": spectrum["spectrum_id"]}))
    assert len(set(got) & set(want)) >= 9


def test_label_filters(url, archive):
    spectrum = archive[0]
    r = upload(url, spectrum["file"], K="20", TEFF="4500 +Inf", IN_DOMAIN="true")
    assert r.status_code == 200, r.text
    rows = table_of(r.content)[1].to_table(use_names_over_ids=True)
    assert 0 < len(rows) <= 20
    assert np.all(rows["teff"] >= 4500) and np.all(rows["in_domain"])
    r = upload(url, spectrum["file"], K="20", LOGG="-Inf 3", MH="")
    rows = table_of(r.content)[1].to_table(use_names_over_ids=True)
    assert np.all(rows["logg"] <= 3)


def test_formats(url, archive):
    spectrum = archive[0]
    text = upload(url, spectrum["file"], K="4", RESPONSEFORMAT="csv")
    assert text.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(text.text)))
    assert len(rows) == 4 and rows[0]["obs_publisher_did"] == spectrum["obs_publisher_did"]
    doc = upload(url, spectrum["file"], K="4", RESPONSEFORMAT="json").json()
    assert doc["status"] == "OK" and len(doc["data"]) == 4
    assert doc["query"]["label_model"] == "sim-labels" and "teff" in doc["query"]["labels"]
    assert len(doc["query"]["latent"]) == 8
    td = upload(url, spectrum["file"], K="2", RESPONSEFORMAT="votable/td")
    assert b"<TABLEDATA>" in td.content


def test_a_k_beyond_the_index_is_answered_exactly(url, archive):
    r = upload(url, archive[0]["file"], K="600")
    votable, table = table_of(r.content)
    infos = {i.name: i.value for i in votable.resources[0].infos}
    assert infos["search"] == "exact"
    rows = table.to_table(use_names_over_ids=True)
    assert len(rows) == 300  # every spectrum of the archive, nearest first
    assert rows["obs_publisher_did"][0] == archive[0]["obs_publisher_did"]
    assert np.all(np.diff(rows["distance"]) >= 0)


@pytest.mark.parametrize(("params", "status", "message"), [
    ({"K": "0"}, 400, "K must be an integer from 1 to 1000"),
    ({"K": "1001"}, 400, "K must be an integer from 1 to 1000"),
    ({"K": "ten"}, 400, "K must be an integer"),
    ({"MODEL": "nope"}, 404, "no model nope"),
    ({"TEFF": "5000"}, 400, "TEFF must be an interval"),
    ({"LOGG": "4 2"}, 400, "LOGG must be an interval"),
    ({"MH": "NaN 1"}, 400, "MH must be an interval"),
    ({"IN_DOMAIN": "maybe"}, 400, "IN_DOMAIN must be true or false"),
    ({"RESPONSEFORMAT": "fits"}, 400, "votable, csv, tsv or json"),
    ({"ID": "ivo://nowhere/x"}, 400, "not both"),
])
def test_bad_parameters_get_dali_errors(url, archive, params, status, message):
    r = upload(url, archive[0]["file"], **params)
    assert r.status_code == status
    assert message in error_message(r)


def test_bad_uploads_get_the_ingest_errors(url, archive):
    r = upload(url, b"SIMPLE  = nonsense, not a spectrum at all")
    assert r.status_code == 400
    assert "UPLOAD is not a spectrum this service reads" in error_message(r)
    r = upload(url, b"<?xml version='1.0'?><nothing/>")
    assert "neither a FITS file nor a VOTable" in error_message(r)
    r = upload(url, b"x" * (UPLOAD_LIMIT + 1))
    assert r.status_code == 413
    assert f"{UPLOAD_LIMIT:,} bytes" in error_message(r)
    r = httpx.post(f"{url}/similar", data={"K": "3"})
    assert r.status_code == 400 and "either UPLOAD" in error_message(r)
    r = httpx.get(f"{url}/similar", params={"ID": "ivo://nowhere/x"})
    assert r.status_code == 404 and "no spectrum with ID" in error_message(r)
    two = httpx.post(f"{url}/similar", files=[("UPLOAD", ("a", archive[0]["file"])),
                                              ("OTHER", ("b", archive[0]["file"]))])
    assert two.status_code == 413


def test_a_spectrum_off_the_model_grid_is_refused(url):
    """A readable spectrum that does not cover the grid: the preprocessing's message."""
    from vo_service.archive.readers.spectrum_votable import dumps
    from vo_service.archive.spectrum import Spectrum, SpectrumMeta

    wave = np.linspace(4000.0, 4100.0, 500)
    narrow = Spectrum(wave, np.ones_like(wave), np.full_like(wave, 100.0),
                      SpectrumMeta(obs_id="narrow", ra=1.0, dec=2.0))
    r = upload(url, dumps(narrow))
    assert r.status_code == 400
    message = error_message(r)
    assert "cannot be encoded by model sim-ae" in message and "Angstrom" in message


def test_pyvo_through_the_datalink_descriptor(url, archive):
    from pyvo.dal.adhoc import DatalinkResults

    spectrum = archive[3]
    links = DatalinkResults.from_result_url(
        f"{url}/datalink/links?ID={spectrum['obs_publisher_did']}")
    row = next(r for r in links if r["service_def"] == "similar-search")
    result = row.process(K=6)
    table = parse(io.BytesIO(result.read())).get_first_table().to_table(
        use_names_over_ids=True)
    assert len(table) == 6 and table["obs_publisher_did"][0] == spectrum["obs_publisher_did"]
    descriptor = links.get_adhocservice_by_id("similar-search")
    assert {p.name: p.value for p in descriptor.params}["accessURL"] == f"{url}/similar"
    names = {p.name for p in descriptor.groups[0].entries}
    assert {"ID", "K", "MODEL", "TEFF", "LOGG", "MH", "IN_DOMAIN"} <= names


def test_requests_post_of_a_file(url, archive):
    """The plain way (requests, as in the README): a multipart POST."""
    import requests

    spectrum = archive[4]
    r = requests.post(f"{url}/similar", data={"K": 3, "RESPONSEFORMAT": "json"},
                      files={"UPLOAD": spectrum["file"]}, timeout=60)
    assert r.ok and r.json()["data"][0][1] == spectrum["obs_publisher_did"]


def test_capabilities_declare_the_interface(url):
    r = httpx.get(f"{url}/similar/capabilities")
    assert r.status_code == 200
    assert b'standardID="ivo://latentvo.example/std/similar"' in r.content
    assert b"<name>UPLOAD</name>" in r.content and b"ParamHTTP" in r.content


def test_the_server_process_never_loads_torch(service, url, archive):
    upload(url, archive[0]["file"], K="3")
    proc = psutil.Process(service[0].pid)
    maps = ""
    for p in [proc, *proc.children(recursive=True)]:
        with open(f"/proc/{p.pid}/maps") as fh:
            maps += fh.read()
    assert "onnxruntime" in maps  # the networks ran in this process
    assert "libtorch" not in maps and "/torch/" not in maps
    assert "/sklearn/" not in maps and "/scipy/" not in maps
