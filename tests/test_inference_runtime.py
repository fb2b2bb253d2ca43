"""The web process's inference runtime (ONNX Runtime, numpy) against the torch path.

A small autoencoder and label model are trained on the synthetic test archive, which
registers them and exports their ONNX graphs; ``latentvo ml infer`` writes the
archive's vectors and labels with torch. The runtime must then give the same numbers
for the same files: latent vectors, RVs and rest-frame shifts, decoded spectra,
labels, errors and domain flags.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import sqlalchemy as sa
import torch

from ml.artifacts import load_autoencoder, load_label_model
from ml.domain import DomainModel
from ml.infer import infer
from ml.model_registry import get
from ml.onnx_export import MANIFEST, TOLERANCE
from ml.preprocess import preprocess
from ml.rv import to_rest_frame as torch_rest_frame
from ml.train import AutoencoderConfig, LabelConfig
from ml.training_runs import train_autoencoder_run, train_label_run
from tests.conftest import run_cli
from tests.ml.conftest import LABEL_SET, ml_archive  # noqa: F401 - fixture
from vo_service.archive.readers import read_spectrum
from vo_service.archive.store import FileStore
from vo_service.inference import rv as numpy_rv
from vo_service.inference.domain import DomainCheck
from vo_service.inference.runtime import InferenceUnavailable, load_runtime

AE = AutoencoderConfig(latent_dim=8, epochs=3, channels=(8, 16, 32), hidden=64, profile="cpu")
LABELS = LabelConfig(epochs=3, members=2, channels=(8, 16, 32), hidden=64)


@pytest.fixture(scope="module")
def exported(database, settings, ml_archive):  # noqa: F811 - fixture
    """Autoencoder ``rt-ae`` and label model ``rt-labels``, exported and inferred."""
    train_autoencoder_run(database.engine, settings, model_id="rt-ae", config=AE,
                          n_pixels=256, seed=3, progress=False)
    train_label_run(database.engine, settings, label_set=LABEL_SET, autoencoder_id="rt-ae",
                    model_id="rt-labels", config=LABELS, seed=3, progress=False)
    infer(database.engine, settings, "rt-labels")
    return get(database.engine, "rt-ae"), get(database.engine, "rt-labels")


def archive_files(database, settings, n: int = 12) -> list[tuple[int, object]]:
    """(spectrum_id, Spectrum read from the store) of ``n`` archive spectra."""
    store = FileStore(settings.store_dir)
    with database.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT spectrum_id, file_sha256 FROM latentvo.spectra "
                                    "ORDER BY spectrum_id LIMIT :n"), {"n": n}).all()
    return [(r.spectrum_id, read_spectrum(store.path_for(r.file_sha256))) for r in rows]


def test_export_is_checked_against_torch_and_recorded(settings, exported):
    for record, graphs in zip(exported, (("encoder", "decoder"), ("labels",)), strict=True):
        folder = (settings.home / record.artifact_path).parent
        manifest = json.loads((folder / MANIFEST).read_text())
        assert manifest["artifact_sha256"] == record.artifact_sha256
        assert set(manifest["check"]["max_abs_diff"]) == set(graphs)
        assert max(manifest["check"]["max_abs_diff"].values()) <= TOLERANCE
        for name in manifest["files"]:
            assert (folder / name).is_file()


def test_numpy_rest_frame_matches_torch_on_real_spectra(database, settings, exported):
    ae, _ = exported
    model, _ = load_autoencoder(settings.home, ae)
    rows = [preprocess(s, ae.grid) for _, s in archive_files(database, settings)]
    flux, ivar = np.stack([r[0] for r in rows]), np.stack([r[1] for r in rows])
    t_flux, t_ivar, t_rv = torch_rest_frame(torch.as_tensor(flux), torch.as_tensor(ivar),
                                            model.template, ae.grid.velocity_step)
    n_flux, n_ivar, n_rv = numpy_rv.to_rest_frame(flux, ivar, model.template.numpy(),
                                                  ae.grid.velocity_step)
    assert np.abs(n_rv - t_rv.numpy()).max() < 0.01 * ae.grid.velocity_step
    assert np.abs(n_rv).max() > 1.0  # the spectra do move
    assert np.abs(n_flux - t_flux.numpy()).max() < 1e-3
    assert np.array_equal(n_ivar > 0, t_ivar.numpy() > 0)


def test_encode_lands_on_the_stored_vectors(database, settings, exported):
    runtime = load_runtime(settings, database.engine, "rt-ae")
    assert runtime.latent_dim == 8 and runtime.grid == exported[0].grid
    assert runtime.label_model_id == "rt-labels"
    for spectrum_id, spectrum in archive_files(database, settings):
        with database.engine.connect() as conn:
            stored = conn.scalar(sa.text("SELECT vec::real[] FROM latentvo.latent WHERE "
                                         "model_id = 'rt-ae' AND spectrum_id = :s"),
                                 {"s": spectrum_id})
        encoded = runtime.encode(spectrum)
        assert encoded.latent.shape == (8,)
        np.testing.assert_allclose(encoded.latent, stored, atol=2e-4)
        assert encoded.snr > 0


def test_decode_matches_torch(database, settings, exported):
    ae, _ = exported
    model, _ = load_autoencoder(settings.home, ae)
    runtime = load_runtime(settings, database.engine, "rt-ae")
    rng = np.random.default_rng(0)
    latents = rng.normal(0, 1, (5, 8)).astype(np.float32)
    latents[:, -1] = rng.uniform(-0.3, 0.3, 5)  # RV coordinates: +-90 km/s at 300 km/s
    for power in (None, 4000.0):
        got = runtime.decode(latents, power)
        with torch.no_grad():
            want = model.decode(torch.as_tensor(latents),
                                model.condition(None if power is None else
                                                np.full(5, power), 5)).numpy() + 1.0
        assert got.shape == (5, ae.grid.n_pixels)
        np.testing.assert_allclose(got, want, atol=1e-4)


def test_predict_matches_the_stored_labels(database, settings, exported):
    runtime = load_runtime(settings, database.engine, "rt-labels")
    assert runtime.model_id == "rt-ae" and runtime.quantities
    for spectrum_id, spectrum in archive_files(database, settings):
        with database.engine.connect() as conn:
            row = conn.execute(sa.text("SELECT * FROM latentvo.labels WHERE "
                                       "model_id = 'rt-labels' AND spectrum_id = :s"),
                               {"s": spectrum_id}).mappings().one()
        labels, sigma, in_domain = runtime.predict(runtime.encode(spectrum))
        for q in runtime.quantities:
            assert labels[q] == pytest.approx(row[q], rel=1e-4, abs=1e-3)
            assert sigma[q] == pytest.approx(row[f"{q}_err"], rel=1e-3, abs=1e-4)
        assert in_domain == row["in_domain"]


def test_label_export_keeps_the_snr_dependent_states(settings, exported):
    """The calibration and the domain cuts travel as the JSON states both sides read, and
    the calibration does depend on S/N (so the stored-labels test exercises it)."""
    _, record = exported
    predictor, domain = load_label_model(settings.home, record)
    manifest = json.loads(((settings.home / record.artifact_path).parent / MANIFEST)
                          .read_text())
    assert manifest["calibration"] == json.loads(json.dumps(predictor.calibration.state()))
    assert len(manifest["calibration"]["log_scale"]) == 2
    assert manifest["domain"]["distance_cut"] == domain.distance_cut.state()
    assert manifest["domain"]["coverage_cut"] == domain.coverage_cut.state()


def _domain_state(state: dict) -> tuple[dict[str, np.ndarray], dict]:
    """A domain model's state split as the export splits it (arrays, JSON part)."""
    arrays = {f"domain_{k}": v.numpy() for k, v in state.items() if isinstance(v, torch.Tensor)}
    return arrays, {k: v for k, v in state.items() if not isinstance(v, torch.Tensor)}


@pytest.mark.parametrize("old", [False, True], ids=["snr-cuts", "fixed-thresholds"])
def test_numpy_domain_decides_as_the_domain_model(database, settings, exported, old):
    """Over the whole archive, and for a state of the older fixed-threshold form too, the
    web side's flag equals ``DomainModel.in_domain`` for the same inputs and S/N."""
    _, record = exported
    predictor, fitted = load_label_model(settings.home, record)
    with database.engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT l.*, v.vec::real[] AS vec FROM latentvo.labels AS l JOIN latentvo.latent "
            "AS v USING (spectrum_id) WHERE l.model_id = 'rt-labels' AND v.model_id = 'rt-ae' "
            "ORDER BY spectrum_id")).mappings().all()
    latent = np.array([r["vec"] for r in rows], float)
    pred = np.array([[r[q] for q in predictor.quantities] for r in rows])
    sigma = np.array([[r[f"{q}_err"] for q in predictor.quantities] for r in rows])
    snr = np.random.default_rng(1).uniform(3, 300, len(rows))
    state = fitted.state()
    if old:
        del state["distance_cut"], state["coverage_cut"]
        state["threshold"] = float(np.quantile(fitted.score(latent), 0.8))
        state["coverage_threshold"] = float(np.quantile(fitted.coverage(pred), 0.2))
    domain = DomainModel.from_state(state)
    check = DomainCheck(*_domain_state(state))
    np.testing.assert_allclose(check.score(latent), domain.score(latent), rtol=1e-5)
    want = domain.in_domain(domain.score(latent), pred, sigma, snr)
    assert 0 < want.sum() < len(want)  # both answers occur
    assert np.array_equal(check.in_domain(domain.score(latent), pred, sigma, snr), want)


def test_an_export_of_the_older_format_is_refused_with_the_command(database, settings,
                                                                    exported):
    _, record = exported
    path = (settings.home / record.artifact_path).parent / MANIFEST
    original = path.read_text()
    path.write_text(json.dumps({**json.loads(original), "format": 1}))
    try:
        with pytest.raises(InferenceUnavailable,
                           match="older version.*latentvo ml export-onnx rt-labels"):
            load_runtime(settings, database.engine, "rt-labels")
    finally:
        path.write_text(original)


def test_models_without_export_are_refused_with_the_command(database, settings, exported,
                                                           latentvo_env):
    ae, _ = exported
    folder = (settings.home / ae.artifact_path).parent
    (folder / MANIFEST).rename(folder / "moved.json")
    try:
        with pytest.raises(InferenceUnavailable, match="latentvo ml export-onnx rt-ae"):
            load_runtime(settings, database.engine, "rt-ae")
        done = run_cli(latentvo_env, "ml", "export-onnx", "rt-ae")
        assert done.returncode == 0
        assert "exported decoder.onnx, encoder.onnx" in done.stdout + done.stderr
        assert load_runtime(settings, database.engine, "rt-ae").latent_dim == 8
    finally:
        (folder / "moved.json").unlink()
    with pytest.raises(InferenceUnavailable, match="no model nope"):
        load_runtime(settings, database.engine, "nope")
    missing = run_cli(latentvo_env, "ml", "export-onnx", "nope")
    assert missing.returncode == 1 and "no model 'nope'" in missing.stderr + missing.stdout
