"""Training runs over the archive: select, load, train, save the artifact, register.

These are the jobs behind ``latentvo ml train-ae`` and ``latentvo ml train-labels``.
A run either registers a complete model (artifact + registry row with provenance and
metrics) or nothing.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import sqlalchemy as sa

from ml.archive_reader import (
    ArchiveSpectra,
    cache_root,
    labelled_spectra,
    load_arrays,
    select_spectra,
    training_checksum,
)
from ml.artifacts import autoencoder_payload, label_payload, load_autoencoder
from ml.calibration import by_snr, evaluation_halves
from ml.device import pick_device
from ml.domain import DomainModel, domain_dims
from ml.errors import MLError
from ml.grid_choice import check_range, choose_grid, describe
from ml.model_registry import (
    AUTOENCODER,
    LABEL_REGRESSOR,
    ModelRecord,
    code_version,
    default_model_id,
    ensure_new,
    get,
    register,
    save_artifact,
)
from ml.models.autoencoder import encode_arrays
from ml.onnx_export import export_model
from ml.preprocess import Grid
from ml.profiles import profile_range
from ml.snr import spectrum_snr
from ml.train import (
    AutoencoderConfig,
    LabelConfig,
    config_dict,
    train_autoencoder,
    train_label_model,
)
from schema.latent_index import index_plan
from vo_service.config import Settings
from vo_service.progress import progress_bar

POPULATION_SAMPLE = 20000  # archive spectra without labels kept for the coverage test


@dataclass
class RunReport:
    """Outcome of a training run: the registered model and the spectra left out, with why."""

    record: ModelRecord
    excluded: dict[str, str] = field(default_factory=dict)  # obs_id -> why not used

    def summary(self) -> str:
        """One line for the command line: the model and its headline validation figures."""
        m = self.record.metrics
        if self.record.kind == AUTOENCODER:
            figures = (f"{m['n_informative']} informative of {self.record.latent_dim} latent "
                       f"dimensions, validation chi2/pixel {m['val_chi2_per_pixel']:.2f}; "
                       + describe(self.record.grid,
                                  self.record.hyperparameters.get("grid_choice")))
        else:
            figures = ", ".join(f"{q} RMSE {m[f'val_rmse_{q}']:.3g} (mean-only "
                                f"{m[f'val_rmse_mean_baseline_{q}']:.3g})"
                                for q in self.record.hyperparameters["quantities"])
        return (f"model {self.record.model_id} ({self.record.kind}) trained on "
                f"{self.record.training_size} spectra: {figures}"
                + (f"; {len(self.excluded)} spectra excluded" if self.excluded else ""))


def _subsample(selected: ArchiveSpectra, limit: int | None, seed: int) -> ArchiveSpectra:
    """At most ``limit`` spectra, chosen by file checksum order (independent of ids)."""
    if limit is None or len(selected) <= limit:
        return selected
    rng = np.random.default_rng(seed)
    order = np.argsort(np.array(selected.file_sha256))
    return selected.subset(np.sort(rng.choice(order, limit, replace=False)))


def _load(settings: Settings, grid: Grid, selected: ArchiveSpectra, progress: bool,
          excluded: dict[str, str]) -> tuple[ArchiveSpectra, np.ndarray, np.ndarray,
                                             np.ndarray]:
    """The readable spectra covering the grid: (selection, flux, ivar, resolving power).

    Flux and ivar are memory-mapped files gathered from the cache's shards for this run
    (so the set is not also held in memory next to the training tensors); their folder
    is removed at once, the mappings keep the unlinked files until they are dropped.
    """
    scratch = cache_root(settings).parent / "training"
    scratch.mkdir(parents=True, exist_ok=True)
    covering = selected.covering(grid)
    for i in np.flatnonzero(~covering):
        excluded[selected.obs_id[i]] = "does not cover the model's wavelength grid"
    selected = selected.subset(np.flatnonzero(covering))
    with progress_bar("read spectra", len(selected), unit="spectra",
                      enabled=progress) as advance:
        with tempfile.TemporaryDirectory(prefix="run-", dir=scratch) as folder:
            loaded = load_arrays(settings, grid, selected, advance, into=Path(folder))
    for i in np.flatnonzero(~loaded.ok):
        excluded[selected.obs_id[i]] = loaded.errors.get(selected.file_sha256[i], "unreadable")
    if loaded.ok.all():
        return selected, loaded.flux, loaded.ivar, loaded.resolving_power
    keep = np.flatnonzero(loaded.ok)
    return (selected.subset(keep), loaded.flux[keep], loaded.ivar[keep],
            loaded.resolving_power[keep])


def _population(engine: sa.Engine, settings: Settings, grid: Grid, labelled: ArchiveSpectra,
                seed: int, progress: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(flux, ivar, R) of a seeded sample of the archive's spectra without reference labels:
    the neighbourhood the domain's coverage test compares predictions with."""
    with engine.connect() as conn:
        everything = select_spectra(conn)
    others = everything.subset(np.flatnonzero(~np.isin(everything.spectrum_id,
                                                         labelled.spectrum_id)))
    _, flux, ivar, power = _load(settings, grid, _subsample(others, POPULATION_SAMPLE, seed),
                                 progress, {})
    return flux, ivar, power


def _guide(conn: sa.Connection, label_set: str, selected: ArchiveSpectra
           ) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Reference labels and errors (NaN where none) of the selected spectra."""
    labelled = labelled_spectra(conn, label_set)
    row = {sid: i for i, sid in enumerate(labelled.spectra.spectrum_id)}
    n, q = len(selected), len(labelled.quantities)
    labels, errors = np.full((n, q), np.nan), np.full((n, q), np.nan)
    for i, sid in enumerate(selected.spectrum_id):
        if sid in row:
            labels[i], errors[i] = labelled.labels[row[sid]], labelled.errors[row[sid]]
    return labelled.quantities, labels, errors


def train_autoencoder_run(engine: sa.Engine, settings: Settings, *, model_id: str | None = None,
                          config: AutoencoderConfig | None = None,
                          n_pixels: int | None = None, wavelength_range: str | None = None,
                          seed: int = 0, limit: int | None = None, metric: str = "l2",
                          label_set: str | None = None, device: str | None = None,
                          progress: bool = True) -> RunReport:
    """Train a VAE on the archive's spectra (all, or a seeded subsample of ``limit``);
    with ``label_set``, its first latent dimensions are guided by those reference labels.
    The grid has ``n_pixels`` pixels, or (None) as many as the training spectra's
    resolving power needs, over the ``wavelength_range`` ("common" or "union"; None: the
    profile's, ``ml.profiles.WAVELENGTH_RANGES``) (``ml.grid_choice``)."""
    config = config or AutoencoderConfig()
    wavelength_range = check_range(wavelength_range or profile_range(config.profile))
    model_id = ensure_new(engine, model_id or default_model_id("ae"))
    with engine.connect() as conn:
        everything = select_spectra(conn)
    if len(everything) == 0:
        raise MLError("the archive holds no spectra; ingest some first")
    training = _subsample(everything, limit, seed)
    with engine.connect() as conn:
        grid, grid_choice = choose_grid(conn, everything.wave_min, everything.wave_max,
                                        training.spectrum_id, training.wave_min,
                                        training.wave_max, n_pixels, wavelength_range)
    excluded: dict[str, str] = {}
    selected, flux, ivar, power = _load(settings, grid, training, progress, excluded)
    quantities, labels, errors = None, None, None
    if label_set:
        with engine.connect() as conn:
            quantities, labels, errors = _guide(conn, label_set, selected)
    with progress_bar("train autoencoder", config.epochs, unit="epochs",
                      enabled=progress) as advance:
        trained = train_autoencoder(flux, ivar, config, seed, pick_device(device),
                                    velocity_step=grid.velocity_step, resolving_power=power,
                                    groups=np.array(selected.target_name), labels=labels,
                                    label_errors=errors, quantities=quantities,
                                    progress=advance)
    relative, sha = save_artifact(settings.home, model_id, autoencoder_payload(trained))
    metrics = {**trained.metrics, "history": trained.history,
               "information_nats": [round(float(v), 4) for v in trained.information],
               "excluded": len(excluded)}
    selection = (f"all {len(everything)} spectra in latentvo.spectra" if limit is None else
                 f"{limit} of {len(everything)} spectra (seeded subsample by file checksum)")
    record = ModelRecord(
        model_id=model_id, kind=AUTOENCODER,
        architecture={**trained.model.architecture(),
                      "similarity_index": index_plan(config.latent_dim, metric).record()},
        hyperparameters={**config_dict(config), "grid_choice": grid_choice.record()},
        latent_dim=config.latent_dim, grid=grid,
        training_selection=f"{selection}, covering the grid and readable: {len(selected)}",
        training_checksum=training_checksum(selected.file_sha256, labels, errors),
        training_size=len(selected), reference_label_source=label_set, base_model_id=None,
        code_version=code_version(), random_seed=seed, metrics=metrics,
        distance_metric=metric, artifact_path=relative, artifact_sha256=sha)
    register(engine, settings.home, record)
    export_model(settings.home, record)  # the web process runs the ONNX graphs
    return RunReport(record, excluded)


def train_label_run(engine: sa.Engine, settings: Settings, *, label_set: str,
                    autoencoder_id: str, model_id: str | None = None,
                    config: LabelConfig | None = None, seed: int = 0,
                    device: str | None = None, progress: bool = True) -> RunReport:
    """Train the label ensemble on spectra with reference labels; fit its domain model."""
    config = config or LabelConfig()
    model_id = ensure_new(engine, model_id or default_model_id("labels"))
    ae_record = get(engine, autoencoder_id)
    autoencoder, information = load_autoencoder(settings.home, ae_record)
    holdout = ae_record.hyperparameters.get("guided_holdout") if autoencoder.n_guided else None
    split_seed = None
    if holdout is not None and ae_record.random_seed is not None:
        # hold out the stars whose labels the autoencoder's guided term never saw
        config = replace(config, val_fraction=float(holdout))
        split_seed = ae_record.random_seed
    with engine.connect() as conn:
        labelled = labelled_spectra(conn, label_set)
    if len(labelled.spectra) == 0:
        raise MLError(f"no spectrum in the archive matches the reference-label set "
                      f"{label_set!r}")
    excluded: dict[str, str] = {}
    index = {sid: i for i, sid in enumerate(labelled.spectra.spectrum_id)}
    selected, flux, ivar, power = _load(settings, ae_record.grid, labelled.spectra, progress,
                                        excluded)
    rows = np.array([index[sid] for sid in selected.spectrum_id], dtype=int)
    labels, errors = labelled.labels[rows], labelled.errors[rows]
    dev = pick_device(device)
    with progress_bar("train label model", config.epochs * config.members, unit="epochs",
                      enabled=progress) as advance:
        trained = train_label_model(flux, ivar, labels, errors, np.array(selected.target_name),
                                    labelled.quantities, config, seed, dev,
                                    velocity_step=ae_record.grid.velocity_step,
                                    resolving_power=power, template=autoencoder.template,
                                    encoder=autoencoder, progress=advance,
                                    split_seed=split_seed)
    latent, _ = encode_arrays(autoencoder.to(dev), flux, ivar, power, dev)
    dims = domain_dims(information, ae_record.hyperparameters["informative_nats"],
                       autoencoder.n_guided)
    train_labels = labels[trained.train_index]
    others = _population(engine, settings, ae_record.grid, selected, seed, progress)
    population_pred = np.concatenate([trained.predictor.predict(f, iv, p, dev)[0] for f, iv, p
                                      in ((flux, ivar, power), others)])
    population_trained = np.zeros(len(population_pred), bool)
    population_trained[trained.train_index] = True
    val_pred, val_sigma = trained.val_prediction
    val = trained.val_index
    val_snr = spectrum_snr(flux[val], ivar[val])
    domain = DomainModel.fit(latent[trained.train_index], latent[val], dims,
                             (np.nanmin(train_labels, axis=0), np.nanmax(train_labels, axis=0)),
                             population_pred, population_trained, val_pred, val_sigma, val_snr)
    # flags of held-out stars by cuts fitted on the other half, as the calibration figures
    flagged = domain.held_out_flags(latent[val], val_pred, val_sigma, val_snr,
                                    evaluation_halves(np.array(selected.target_name)[val], seed))
    relative, sha = save_artifact(settings.home, model_id, label_payload(trained, domain))
    median_snr = float(np.median(val_snr))
    metrics = {**trained.metrics, "history": trained.history,
               "by_snr": by_snr(val_pred, val_sigma, labels[val], errors[val], val_snr,
                                labelled.quantities, flagged),
               "domain_threshold": domain.threshold(median_snr), "domain_dims": dims.tolist(),
               "val_in_domain_fraction": float(1 - flagged.mean()),
               "domain_coverage_threshold": -domain.coverage_cut.threshold(median_snr),
               "domain": domain.describe(tuple(np.quantile(val_snr, [0.1, 0.5, 0.9]))),
               "domain_population": len(population_pred),
               "excluded": len(excluded)}
    hyper = {**config_dict(config), "quantities": labelled.quantities,
             "domain_k": domain.k, "domain_false_flag_rate": domain.false_flag_rate,
             "domain_coverage_k": domain.coverage_k, "domain_box_sigmas": domain.box_sigmas}
    record = ModelRecord(
        model_id=model_id, kind=LABEL_REGRESSOR,
        architecture=trained.predictor.ensemble.architecture(), hyperparameters=hyper,
        latent_dim=None, grid=ae_record.grid,
        training_selection=(f"spectra of reference-label set {label_set!r} covering the grid "
                            f"({len(selected)}); validation: {len(trained.val_index)} spectra "
                            "of held-out stars"),
        training_checksum=training_checksum(selected.file_sha256, labels, errors),
        training_size=len(selected), reference_label_source=label_set,
        base_model_id=autoencoder_id, code_version=code_version(), random_seed=seed,
        metrics=metrics, distance_metric=None, artifact_path=relative, artifact_sha256=sha)
    register(engine, settings.home, record)
    export_model(settings.home, record)  # the web process runs the ONNX graphs
    return RunReport(record, excluded)
