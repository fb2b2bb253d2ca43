"""Fixtures of the ML tests: a toy labelled data set and a small ingested archive."""

from __future__ import annotations

import numpy as np
import pytest
import sqlalchemy as sa

from ml.preprocess import Grid, normalise
from ml.synth import write_archive
from tests.ml import toy
from vo_service.archive.ingest import Ingester, expand_paths
from vo_service.archive.reference_labels import attach

TOY_GRID = Grid(5010.0, 5390.0, 512)
LABEL_SET = "ml-test-reference"


@pytest.fixture(scope="session")
def toy_data():
    """Preprocessed toy spectra: (flux, ivar, labels, snr) for 900 in-range stars."""
    rng = np.random.default_rng(7)
    labels = toy.draw_labels(900, rng)
    snr = rng.uniform(20, 120, len(labels))
    return (*toy_arrays(labels, snr, rng), labels, snr)


def toy_arrays(labels: np.ndarray, snr: np.ndarray, rng: np.random.Generator):
    """Toy spectra resampled on TOY_GRID and normalised like archive spectra."""
    from ml.preprocess import resample

    wave, flux, ivar = toy.render(labels, snr, rng, n_pixels=1200,
                                  rv=rng.normal(0, 15, len(labels)))
    out = [resample(toy.spectrum(wave, f, i, str(k)), TOY_GRID)
           for k, (f, i) in enumerate(zip(flux, ivar, strict=True))]
    return normalise(np.stack([o[0] for o in out]), np.stack([o[1] for o in out]), TOY_GRID)


@pytest.fixture(scope="module")
def ml_archive(database, settings, tmp_path_factory):
    """A 300-spectrum synthetic archive ingested into an otherwise empty database."""
    with database.engine.begin() as conn:
        conn.execute(sa.text(
            "TRUNCATE latentvo.spectra, latentvo.models, latentvo.latent, latentvo.labels, "
            "latentvo.latent_dimensions, latentvo.latent_mutual_information, "
            "latentvo_ops.ingest_files, latentvo_ops.reference_label_sets, "
            "latentvo_ops.reference_labels CASCADE"))
    out = tmp_path_factory.mktemp("ml-archive")
    write_archive(out, n=300, seed=21, progress=False, workers=2)
    report = Ingester(database.engine, settings, workers=2).run(expand_paths([str(out)]))
    assert report.ingested == 300
    attach(database.engine, out / "reference_labels.csv", LABEL_SET)
    return out
