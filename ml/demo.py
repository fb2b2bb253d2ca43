"""The ML part of ``latentvo demo``: small models trained quickly, then every product.

Sized for ~2,000 spectra on two CPU cores in about two minutes; the models are real
(registered with provenance, their products queryable), just smaller and trained
for fewer epochs than production ones.
"""

from __future__ import annotations

import time

from ml.analysis import analyse
from ml.infer import infer
from ml.model_registry import default_model_id
from ml.report import write_report
from ml.train import AutoencoderConfig, LabelConfig
from ml.training_runs import train_autoencoder_run, train_label_run
from vo_service.config import Settings
from vo_service.db.database import Database

DEMO_AUTOENCODER = AutoencoderConfig(latent_dim=12, epochs=12, patience=4)
DEMO_LABELS = LabelConfig(epochs=25, members=2, patience=6)


def run(database: Database, settings: Settings, label_set_name: str,
        progress: bool = True, seed: int = 0) -> str:
    """Train, infer, analyse and report; returns a summary including the report path."""
    started = time.monotonic()
    engine = database.engine
    ae = train_autoencoder_run(engine, settings, model_id=default_model_id("demo-ae"),
                               config=DEMO_AUTOENCODER, n_pixels=2048, seed=seed,
                               label_set=label_set_name, progress=progress)
    ae_id = ae.record.model_id
    labels = train_label_run(engine, settings, label_set=label_set_name, autoencoder_id=ae_id,
                             model_id=default_model_id("demo-labels"), config=DEMO_LABELS,
                             seed=seed, progress=progress)
    label_id = labels.record.model_id
    # the label run stores the latent vectors it encodes; the autoencoder run then only
    # checks that none is missing and that the similarity index exists
    inferred = [infer(engine, settings, m, skip_uncovered=True) for m in (label_id, ae_id)]
    analysis = analyse(engine, settings, ae_id, label_set=label_set_name, sample=2000,
                       seed=seed)
    page = write_report(engine, settings, [ae_id, label_id])
    lines = [ae.summary(), labels.summary(), *(r.summary() for r in inferred),
             f"latent analysis: {int(analysis.informative.sum())} of "
             f"{len(analysis.informative)} dimensions informative",
             f"report: {page}", f"ML demo took {time.monotonic() - started:.0f} s"]
    return "\n".join(lines)
