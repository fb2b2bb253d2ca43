"""The work behind ``latentvo demo``: a synthetic archive, ingested, with every ML product.

``latentvo demo`` serves the archive as soon as the database is up and runs
:func:`build` in a background process (or in the foreground with ``--no-serve``),
which records each phase and its progress with
:mod:`vo_service.archive.background` so that the landing page can say what is
still running. Every phase is safe to repeat: the archive is written once,
ingest skips files it has, the models have fixed ids (:data:`AUTOENCODER_ID`,
:data:`LABEL_MODEL_ID`, which the README's examples use) and are trained only
when not yet registered, and inference writes only missing products. So a build
that was interrupted resumes where it stopped when the demo runs again.

Sized for ~2,000 spectra on two CPU cores in a few minutes; the models are real
(registered with provenance, their products queryable), just smaller and trained
for fewer epochs than production ones.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

from ml.analysis import analyse
from ml.archive_reader import grid_preparers
from ml.infer import infer
from ml.report import write_report
from ml.synth import write_archive
from ml.train import AutoencoderConfig, LabelConfig
from ml.training_runs import train_autoencoder_run, train_label_run
from schema.tables import models
from vo_service.archive.background import JobRecorder
from vo_service.archive.ingest import Ingester, expand_paths
from vo_service.archive.reference_labels import attach
from vo_service.config import Settings
from vo_service.db.database import Database
from vo_service.progress import progress_bar

LABEL_SET = "demo-reference"
AUTOENCODER_ID = "demo-ae"
LABEL_MODEL_ID = "demo-labels"
DEMO_AUTOENCODER = AutoencoderConfig(latent_dim=12, epochs=12, patience=4)
DEMO_LABELS = LabelConfig(epochs=25, members=2, patience=6)
# Short training, like the epochs above: the common range's 2.6x fewer pixels than the
# default profile's union keep the demo's ML minutes on two cores where the README says.
DEMO_RANGE = "common"


def archive_dir(settings: Settings) -> Path:
    """Where the demo writes its synthetic archive (once; later runs reuse it)."""
    return settings.home / "demo-archive"


def build(database: Database, settings: Settings, recorder: JobRecorder, *, n: int, seed: int,
          train: bool = True, progress: bool = True,
          say: Callable[[str], None] = print) -> None:
    """Write and ingest the synthetic archive, attach its reference labels, then (with
    ``train``) train the two demo models and write, analyse and report their products.

    Each finished phase is recorded with its summary and also passed to ``say``.
    """
    engine = database.engine

    def step(phase: str, work: Callable[[], str]) -> None:
        recorder.phase(phase)
        summary = work()
        recorder.finish_phase(summary)
        say(f"{phase}: {summary}")

    archive = archive_dir(settings)

    def synthesise() -> str:
        if (archive / "manifest.json").exists():
            return f"{archive} (written before)"
        summary = write_archive(archive, n=n, seed=seed, progress=progress)
        return f"{summary.n_spectra} spectra in {archive}"

    def ingest() -> str:
        files = expand_paths([str(archive)])
        with progress_bar("ingest", len(files), unit="files", enabled=progress) as advance:
            report = Ingester(engine, settings, preparers=grid_preparers(engine, settings)
                              ).run(files, progress=advance)
        return report.summary()

    def reference_labels() -> str:
        result = attach(engine, archive / "reference_labels.csv", LABEL_SET)
        return f"{result.n_objects} stars ({', '.join(result.quantities)})"

    step("synthetic archive", synthesise)
    step("ingest", ingest)
    step("reference labels", reference_labels)
    if not train:
        return
    step("train the autoencoder", lambda: _train(
        engine, AUTOENCODER_ID, lambda: train_autoencoder_run(
            engine, settings, model_id=AUTOENCODER_ID, config=DEMO_AUTOENCODER,
            wavelength_range=DEMO_RANGE, seed=seed, label_set=LABEL_SET,
            progress=progress).summary()))
    step("train the label model", lambda: _train(
        engine, LABEL_MODEL_ID, lambda: train_label_run(
            engine, settings, label_set=LABEL_SET, autoencoder_id=AUTOENCODER_ID,
            model_id=LABEL_MODEL_ID, config=DEMO_LABELS, seed=seed,
            progress=progress).summary()))
    # the label run stores the latent vectors it encodes; the autoencoder run then only
    # checks that none is missing and that the similarity index exists
    step("infer", lambda: "\n".join(
        infer(engine, settings, m, skip_uncovered=True).summary()
        for m in (LABEL_MODEL_ID, AUTOENCODER_ID)))

    def analysis() -> str:
        result = analyse(engine, settings, AUTOENCODER_ID, label_set=LABEL_SET, sample=2000,
                         seed=seed)
        return (f"{int(result.informative.sum())} of {len(result.informative)} latent "
                f"dimensions informative; 2-D map of {result.map_points} spectra "
                f"({result.map_seconds:.0f} s)")

    step("latent-space analysis", analysis)
    step("quality report", lambda: str(write_report(engine, settings,
                                                    [AUTOENCODER_ID, LABEL_MODEL_ID])))


def _train(engine: sa.Engine, model_id: str, run: Callable[[], str]) -> str:
    """Train ``model_id`` unless it is registered (a repeated demo keeps its models)."""
    with engine.connect() as conn:
        registered = conn.scalar(sa.select(models.c.created_at)
                                 .where(models.c.model_id == model_id))
    if registered is not None:
        return f"model {model_id} registered at {registered:%Y-%m-%d %H:%M:%S}, kept"
    return run()
