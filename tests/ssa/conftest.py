"""Fixtures of the SSA/DataLink/ObsCore tests: a small real archive and a real server.

``ssa_archive`` writes a synthetic archive (``ml.synth``: real FITS and VOTable
files in all four formats), ingests it, and adds an autoencoder and a label
model with latent vectors and labels written directly (the ML jobs' shape),
plus the autoencoder's HNSW index. ``ssa_server`` runs ``latentvo serve`` in a
subprocess with ``LATENTVO_BASE_URL`` set to its own address, so every URL it
hands out is reachable.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from tests.conftest import start_server, stop_server

N_SPECTRA = 48
AE_MODEL = "ae-ssa-1"
LABEL_MODEL = "labels-ssa-1"
OLD_LABEL_MODEL = "labels-ssa-0"
LATENT_DIM = 8


def _seed_vocabulary() -> None:
    """pyvo's datalink vocabulary, offline (see shared/client-expectations.md)."""
    import pyvo
    from astropy.utils.data import import_file_to_cache

    import_file_to_cache(
        "http://www.ivoa.net/rdf/datalink/core",
        os.path.join(os.path.dirname(pyvo.__file__), "dal/tests/data/datalink/datalink.desise"))


def add_ml_products(engine: sa.Engine) -> None:
    from schema.latent_index import ensure_index
    from schema.tables import labels, latent, models

    with engine.begin() as conn:
        ids = list(conn.scalars(sa.text(
            "SELECT spectrum_id FROM latentvo.spectra ORDER BY spectrum_id")))
        rng = np.random.default_rng(3)
        for n, (model_id, kind, dim) in enumerate((
                (AE_MODEL, "autoencoder", LATENT_DIM),
                (OLD_LABEL_MODEL, "label-regressor", None),
                (LABEL_MODEL, "label-regressor", None))):
            conn.execute(models.insert().values(
                model_id=model_id, kind=kind, architecture="{}", hyperparameters="{}",
                latent_dim=dim, wavelength_grid="{}", training_selection="test",
                training_checksum="0" * 64, training_size=30, code_version="test",
                random_seed=1, metrics="{}", distance_metric="l2" if dim else None,
                artifact_path=f"models/{model_id}/model.pt", artifact_sha256="1" * 64,
                base_model_id=None if dim else AE_MODEL,
                created_at=sa.text(f"now() - interval '{3 - n} hours'")))
        vecs = rng.normal(0, 1, (len(ids), LATENT_DIM)).astype(np.float32)
        conn.execute(latent.insert(), [{"spectrum_id": s, "model_id": AE_MODEL, "vec": v}
                                       for s, v in zip(ids, vecs, strict=True)])
        for model_id, shift in ((OLD_LABEL_MODEL, 1000.0), (LABEL_MODEL, 0.0)):
            conn.execute(labels.insert(), [{
                "spectrum_id": s, "model_id": model_id, "teff": 4000.0 + 50 * k + shift,
                "teff_err": 80.0, "logg": 1.0 + 0.08 * k, "logg_err": 0.1,
                "mh": -2.0 + 0.05 * k, "mh_err": 0.05, "alpha_m": 0.1, "alpha_m_err": 0.02,
                "domain_score": 0.1 * k, "in_domain": k % 3 != 0}
                for k, s in enumerate(ids)])
        ensure_index(conn, AE_MODEL, LATENT_DIM, "l2")


@pytest.fixture(scope="session")
def ssa_files(tmp_path_factory) -> Path:
    from ml.synth import write_archive

    out = tmp_path_factory.mktemp("ssa-archive")
    write_archive(out, n=N_SPECTRA, seed=23, n_pixels=1500, progress=False, workers=2)
    return out


def load_archive(database, files: Path) -> None:
    from vo_service.archive.ingest import Ingester, expand_paths

    with database.engine.begin() as conn:
        conn.execute(sa.text(
            "TRUNCATE latentvo.spectra, latentvo.models, latentvo.latent, latentvo.labels, "
            "latentvo_ops.ingest_files CASCADE"))
    report = Ingester(database.engine, database.settings, workers=2).run(expand_paths([str(files)]))
    assert report.ingested == N_SPECTRA, report.summary()
    add_ml_products(database.engine)


@pytest.fixture(scope="session")
def ssa_loaded(database, ssa_files):
    load_archive(database, ssa_files)
    _seed_vocabulary()
    return database


@pytest.fixture
def ssa_archive(ssa_loaded):
    """The archive as loaded (reloaded when another test module truncated it)."""
    with ssa_loaded.engine.connect() as conn:
        n = conn.scalar(sa.text(
            "SELECT count(*) FROM latentvo.labels WHERE model_id = :m"), {"m": LABEL_MODEL})
    if n != N_SPECTRA:
        load_archive(ssa_loaded, ssa_loaded.settings.home / "unused")  # pragma: no cover
    return ssa_loaded


@pytest.fixture(scope="session")
def ssa_server(ssa_loaded, latentvo_env):
    """Base URL of the running service (no trailing slash)."""
    proc, url = start_server(latentvo_env)
    yield url
    stop_server(proc)


@pytest.fixture(scope="session")
def spectra_rows(ssa_loaded) -> list[dict]:
    with ssa_loaded.engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.text(
            "SELECT * FROM latentvo.spectra ORDER BY spectrum_id")).mappings()]
