"""The ML jobs on a union grid: five instruments of different coverage, one model grid."""

from __future__ import annotations

import numpy as np
import pytest
import sqlalchemy as sa

from ml.analysis import analyse
from ml.archive_reader import cache_for, grid_preparers, load_arrays, select_spectra
from ml.errors import MLError
from ml.grid_choice import UNION_MIN_COVERAGE
from ml.infer import infer
from ml.model_registry import get
from ml.report import write_report
from ml.train import AutoencoderConfig, LabelConfig
from ml.training_runs import train_autoencoder_run, train_label_run
from tests.ml.conftest import LABEL_SET
from vo_service.archive.ingest import Ingester, expand_paths
from vo_service.archive.readers import eso_phase3
from vo_service.archive.spectrum import Spectrum, SpectrumMeta

AE = AutoencoderConfig(latent_dim=6, epochs=2, channels=(8, 16, 32), hidden=64, profile="cpu")
LABELS = LabelConfig(epochs=3, members=1, channels=(8, 16, 32), hidden=64, profile="cpu")


@pytest.fixture(scope="module")
def union_models(database, settings, ml_archive):
    ae = train_autoencoder_run(database.engine, settings, model_id="union-ae", config=AE,
                               n_pixels=1024, wavelength_range="union", seed=3, progress=False)
    labels = train_label_run(database.engine, settings, label_set=LABEL_SET,
                             autoencoder_id="union-ae", model_id="union-labels",
                             config=LABELS, seed=3, progress=False)
    return ae.record, labels.record


def test_every_instrument_trains_and_infers_on_the_union_grid(database, settings,
                                                              union_models, tmp_path):
    ae, labels = union_models
    lo, hi = ae.grid.bounds()
    assert lo < 3800 and hi > 8900  # LAMOST's blue end to SDSS's red end
    assert ae.grid.min_coverage == UNION_MIN_COVERAGE and ae.grid.telluric_mask
    assert ae.grid.continuum_fit == "running-mean"
    assert ae.hyperparameters["grid_choice"]["range"] == "union"
    assert ae.training_size == 300  # UVES (4800-6800 A) covers ~38 % of the grid
    assert labels.training_size > 0
    for model_id in ("union-ae", "union-labels"):
        report = infer(database.engine, settings, model_id)
        assert report.written == 300 and not report.skipped
    with database.engine.connect() as conn:
        stored = conn.scalar(sa.text("SELECT count(*) FROM latentvo.labels "
                                     "WHERE model_id = 'union-labels'"))
        assert stored == 300
        everything = select_spectra(conn)
    # each spectrum's pixels beyond its own range carry no weight, the telluric bands none
    arrays = load_arrays(settings, ae.grid, everything)
    assert arrays.ok.all()
    wave = ae.grid.wavelength
    for i in range(len(everything)):
        beyond = (wave < everything.wave_min[i] - 1) | (wave > everything.wave_max[i] + 1)
        assert np.all(arrays.ivar[i][beyond] == 0)
        assert np.all(arrays.ivar[i][ae.grid.telluric_pixels()] == 0)
    narrow = np.flatnonzero(everything.wave_max - everything.wave_min < 2100)  # UVES
    assert len(narrow) and (arrays.ivar[narrow] > 0).mean() < 0.45
    analysis = analyse(database.engine, settings, "union-ae", label_set=LABEL_SET, sample=300,
                       map_points=300)
    assert analysis is not None
    page = write_report(database.engine, settings, ["union-ae", "union-labels"], tmp_path)
    assert page.is_file()


def test_ingest_prepares_new_spectra_and_infer_skips_those_covering_too_little(
        database, settings, union_models, tmp_path):
    infer(database.engine, settings, "union-ae")
    rng = np.random.default_rng(8)
    for i, (lo, hi) in enumerate([(3800.0, 6900.0), (4800.0, 6800.0), (3700.0, 9000.0)] * 2
                                 + [(4800.0, 4900.0)]):  # the last: 5 % of the union grid
        wave = np.exp(np.linspace(np.log(lo), np.log(hi), 6000))
        flux = 1 + 0.01 * rng.normal(size=len(wave))
        name = "snippet" if hi - lo < 200 else f"new-{i}"
        eso_phase3.write(Spectrum(wave, flux, np.full_like(wave, 1e4),
                                  SpectrumMeta(obs_id=name, ra=3.0 + i, dec=4.0)),
                         tmp_path / f"{name}.fits")
    report = Ingester(database.engine, settings, workers=1,
                      preparers=grid_preparers(database.engine, settings)).run(
        expand_paths([str(tmp_path)]))
    assert report.ingested == 7 and report.preprocessed == 6  # not the snippet
    grid = get(database.engine, "union-ae").grid
    cache = cache_for(settings, grid)
    with database.engine.connect() as conn:
        everything = select_spectra(conn)
    assert sum(sha in cache for sha in everything.file_sha256) == 306
    with pytest.raises(MLError, match=r"1 spectra do not cover the grid of model 'union-ae' "
                                      r"\(at least 25% of 3\d+\.\d-9\d+\.\d Angstrom"):
        infer(database.engine, settings, "union-ae")
    done = infer(database.engine, settings, "union-ae", skip_uncovered=True)
    assert done.written == 6 and list(done.skipped) == ["snippet"]
