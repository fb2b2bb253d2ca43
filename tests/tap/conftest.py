"""Fixtures of the TAP tests: demo-like data, a published catalogue, TAP servers.

``tap_data`` fills the archive tables with a small synthetic archive (spectra,
two models, latent vectors, labels, latent statistics) written directly with
SQL - the same shape the ingest and ML jobs produce - and publishes 3,000 rows
of a catalogue shaped like the DaCHS comparison kit's (``tests/catalogue_data.py``,
declared by ``bench/mlspec.toml``) as ``mlspec.spectra`` through
``vo_service.publish``. ``tap_server`` is a real ``latentvo serve`` process
with short limits (sync timeout, upload size) so the robustness tests run fast.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from tests import catalogue_data
from tests.conftest import REPO, start_server, stop_server

N_SPECTRA = 240
N_CATALOGUE = 3_000
AE_MODEL = "ae-test-1"
LABEL_MODEL = "labels-test-1"
LATENT_DIM = 8

TAP_ENV = {
    "LATENTVO_TAP_SYNC_TIMEOUT": "4",
    "LATENTVO_TAP_UPLOAD_BYTES": "3000000",
    "LATENTVO_TAP_STALE_AFTER": "6",
    "LATENTVO_TAP_WAIT_CAP": "10",
    "LATENTVO_TAP_WORKERS": "3",
}


def _healpix(ra, dec):
    import astropy.units as u
    import cdshealpix
    from astropy.coordinates import Latitude, Longitude

    return cdshealpix.nested.lonlat_to_healpix(Longitude(ra, u.deg), Latitude(dec, u.deg),
                                               29).astype(np.int64)


def fill_archive(engine: sa.Engine) -> None:
    """A small archive: spectra, an autoencoder and a label model with their products."""
    from schema.tables import (
        labels,
        latent,
        latent_dimensions,
        latent_mutual_information,
        models,
        spectra,
    )

    rng = np.random.default_rng(5)
    n = N_SPECTRA
    ra = rng.uniform(0, 360, n)
    dec = np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
    ra[:20] = 180.0 + rng.normal(0, 1, 20)  # some near the examples' cone centre
    dec[:20] = rng.normal(0, 1, 20)
    hpx = _healpix(ra, dec)
    teff = rng.normal(5500, 800, n)
    with engine.begin() as conn:
        conn.execute(sa.text(
            "TRUNCATE latentvo.spectra, latentvo.models, latentvo.latent, latentvo.labels, "
            "latentvo.latent_dimensions, latentvo.latent_mutual_information CASCADE"))
        conn.execute(spectra.insert(), [{
            "spectrum_id": i + 1, "obs_publisher_did": f"ivo://latentvo.test/spec?{i + 1}",
            "obs_id": f"obs-{i + 1}", "obs_collection": "latentvo-test",
            "target_name": f"STAR {i // 2}", "s_ra": float(ra[i]), "s_dec": float(dec[i]),
            "healpix_index": int(hpx[i]), "t_min": 58000.0 + i, "t_max": 58000.01 + i,
            "t_exptime": 900.0, "em_min": 3.8e-7, "em_max": 6.9e-7, "em_res_power": 1.15e5,
            "em_xel": 4000, "snr": float(rng.uniform(5, 150)), "instrument_name": "SYNTH",
            "facility_name": "Test telescope", "flux_unit": "adu", "spec_frame": "air",
            "source_format": "fits-1d-wcs", "access_format": "application/fits",
            "access_estsize": 64, "file_sha256": f"{i:064x}", "file_name": f"s{i}.fits",
            "release": "dr1"} for i in range(n)])
        for model_id, kind, dim in ((AE_MODEL, "autoencoder", LATENT_DIM),
                                    (LABEL_MODEL, "label-regressor", None)):
            conn.execute(models.insert().values(
                model_id=model_id, kind=kind, architecture="{}", hyperparameters="{}",
                latent_dim=dim, wavelength_grid="{}", training_selection="test",
                training_checksum="0" * 64, training_size=100, code_version="test",
                random_seed=1, metrics='{"rmse_teff": 80}',
                distance_metric="l2" if dim else None, artifact_path=f"models/{model_id}",
                artifact_sha256="1" * 64, base_model_id=AE_MODEL if not dim else None))
        vecs = rng.normal(0, 1, (n, LATENT_DIM)).astype(np.float32)
        vecs[:, 0] = (teff - 5500) / 800
        conn.execute(latent.insert(), [{"spectrum_id": i + 1, "model_id": AE_MODEL,
                                        "vec": vecs[i]} for i in range(n)])
        conn.execute(labels.insert(), [{
            "spectrum_id": i + 1, "model_id": LABEL_MODEL, "teff": float(teff[i]),
            "teff_err": float(rng.uniform(30, 200)), "logg": float(rng.uniform(1, 5)),
            "logg_err": 0.1, "mh": float(rng.normal(-0.3, 0.3)), "mh_err": 0.05,
            "alpha_m": 0.1, "alpha_m_err": 0.02, "domain_score": float(rng.uniform(0, 3)),
            "in_domain": bool(i % 5)} for i in range(n)])
        conn.execute(latent_dimensions.insert(), [{
            "model_id": AE_MODEL, "dim": d, "mean": 0.0, "stddev": 1.0,
            "information": 1.0 / (d + 1), "informative": d < 3} for d in range(LATENT_DIM)])
        conn.execute(latent_mutual_information.insert(), [{
            "model_id": AE_MODEL, "basis": b, "component": d, "quantity": q,
            "mutual_information": float(rng.uniform(0, 1))}
            for b in ("latent", "pca") for d in range(LATENT_DIM)
            for q in ("teff", "logg", "mh")])


def publish_catalogue(database, tmp_dir: Path, n: int = N_CATALOGUE) -> Path:
    """``mlspec.spectra`` from ``tests/catalogue_data.py``, published like an operator would."""
    from schema.catalogue_declaration import Declaration
    from vo_service.publish.loader import publish

    csv_path = catalogue_data.write_csv(catalogue_data.generate(n), tmp_dir / "mlspec.csv")
    declaration = Declaration.from_file(REPO / "bench" / "mlspec.toml")
    publish(database.engine, declaration, csv_path, reader_role=database.settings.reader_role,
            replace=True)
    return csv_path


@pytest.fixture(scope="session")
def tap_data(database, tmp_path_factory):
    fill_archive(database.engine)
    csv_path = publish_catalogue(database, tmp_path_factory.mktemp("catalogue"))
    return {"catalogue_csv": csv_path}


@pytest.fixture
def archive(tap_data, database):
    """Make sure the archive rows are there (other test modules truncate them)."""
    with database.engine.connect() as conn:
        n = conn.scalar(sa.text("SELECT count(*) FROM latentvo.labels"))
    if n != N_SPECTRA:
        fill_archive(database.engine)
    return tap_data


@pytest.fixture(scope="session")
def tap_env(latentvo_env) -> dict[str, str]:
    return {**latentvo_env, **TAP_ENV}


@pytest.fixture(scope="session")
def tap_server(tap_data, tap_env):
    """Base URL of a running server's TAP service (``.../tap``)."""
    proc, url = start_server(tap_env)
    yield url + "/tap"
    stop_server(proc)


@pytest.fixture(scope="session")
def stilts():
    path = "/usr/bin/stilts"
    if not Path(path).exists():
        if os.environ.get("CI"):  # CI installs it (scripts/test.sh): missing is a failure
            pytest.fail("STILTS is not installed (apt-get install stilts)")
        pytest.skip("STILTS is not installed (apt-get install stilts)")
    return path
