"""``latentvo ml``: train, infer, analyse and report on the archive's ML models.

Every command is a thin layer over one module; operator mistakes raise
:class:`ml.errors.MLError` (an :class:`~vo_service.errors.OperatorError`), which
``latentvo``'s entry point turns into a one-line message and exit status 1.
Reports and listings only read the database; the jobs that write it apply
pending migrations first (:func:`~vo_service.db.database.open_database`). Each
command opens the database before it imports its ML modules (torch alone takes
seconds), so a configuration or database mistake is reported at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ml.errors import MLError
from vo_service.progress import console

ml_app = typer.Typer(help="Machine-learning jobs: autoencoders, label models, inference, "
                     "latent-space analysis, reports.", no_args_is_help=True,
                     context_settings={"help_option_names": ["-h", "--help"]})

Seed = Annotated[int, typer.Option(help="Random seed (same seed and data, same model)")]
Device = Annotated[str, typer.Option(help="Torch device (cpu, cuda); default: cuda if present")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars")]


@ml_app.command("train-ae")
def train_ae(
    model_id: Annotated[str, typer.Option(help="Model id (default: ae-<timestamp>)")] = "",
    latent_dim: Annotated[int, typer.Option(
        min=2, help="Latent dimensions (learned ones + the RV coordinate)")] = 12,
    epochs: Annotated[int, typer.Option(min=1, help="Maximum epochs")] = 30,
    pixels: Annotated[int, typer.Option(
        min=0, help="Pixels of the model grid (0: 2 per resolution element at the 90th "
                    "percentile of the files' resolving power, at most 16,384)")] = 0,
    wavelength_range: Annotated[str, typer.Option(
        help="Grid range: common (what almost every spectrum covers) or union (all the "
             "spectra's ranges, uncovered pixels masked); default: the profile's (default: "
             "union, cpu: common)")] = "",
    label_set: Annotated[str, typer.Option(
        help="Reference-label set guiding the first latent dimensions (default: none)")] = "",
    limit: Annotated[int, typer.Option(min=0, help="Train on a subsample (0: all)")] = 0,
    metric: Annotated[str, typer.Option(help="Similarity metric: l2 or cosine")] = "l2",
    profile: Annotated[str, typer.Option(
        help="Model sizes: default, or cpu (narrower, for CPU inference)")] = "default",
    seed: Seed = 0, device: Device = "", quiet: Quiet = False,
) -> None:
    """Train a variational autoencoder of rest-frame spectra and register it."""
    from vo_service.db.database import open_database

    if metric not in ("l2", "cosine"):
        raise MLError(f"--metric must be l2 or cosine, got {metric!r}")
    database = open_database("write")
    from ml.profiles import profile_configs
    from ml.training_runs import train_autoencoder_run
    settings = database.settings
    report = train_autoencoder_run(
        database.engine, settings, model_id=model_id or None,
        config=profile_configs(profile, latent_dim=latent_dim, epochs=epochs)[0],
        n_pixels=pixels or None, wavelength_range=wavelength_range or None,
        seed=seed, limit=limit or None, metric=metric, label_set=label_set or None,
        device=device or None, progress=not quiet)
    console.print(report.summary())


@ml_app.command("train-labels")
def train_labels(
    label_set: Annotated[str, typer.Option(help="Reference-label set to train on")],
    autoencoder: Annotated[str, typer.Option(help="Autoencoder for grid and domain score")],
    model_id: Annotated[str, typer.Option(help="Model id (default: labels-<timestamp>)")] = "",
    epochs: Annotated[int, typer.Option(min=1, help="Maximum epochs per member")] = 40,
    members: Annotated[int, typer.Option(
        min=0, help="Ensemble members (0: the profile's)")] = 0,
    profile: Annotated[str, typer.Option(
        help="Model sizes: default, or cpu (narrower, for CPU inference)")] = "default",
    seed: Seed = 0, device: Device = "", quiet: Quiet = False,
    pretrained: Annotated[bool, typer.Option(
        help="Start the networks from the autoencoder's encoder (trained on every "
             "spectrum) where the sizes match")] = True,
) -> None:
    """Train a label model (CNN ensemble with uncertainties) and register it."""
    from dataclasses import replace

    from vo_service.db.database import open_database

    database = open_database("write")
    from ml.profiles import profile_configs
    from ml.training_runs import train_label_run

    labels = profile_configs(profile)[1]
    settings = database.settings
    report = train_label_run(
        database.engine, settings, label_set=label_set, autoencoder_id=autoencoder,
        model_id=model_id or None,
        config=replace(labels, epochs=epochs, members=members or labels.members,
                       pretrained_trunk=pretrained),
        seed=seed, device=device or None, progress=not quiet)
    console.print(report.summary())


@ml_app.command("infer")
def infer_command(
    model_ids: Annotated[list[str], typer.Argument(
        help="Models to run; label models run first, since they also store the latent "
             "vectors of their autoencoder")],
    skip_uncovered: Annotated[bool, typer.Option(
        help="Leave out spectra that do not cover the model's grid")] = False,
    limit: Annotated[int, typer.Option(min=0, help="At most this many spectra (0: all)")] = 0,
    chunk_size: Annotated[int, typer.Option(min=1, help="Spectra per transaction")] = 2048,
    device: Device = "", quiet: Quiet = False,
) -> None:
    """Write latent vectors / labels for every spectrum that lacks them (resumable)."""
    from vo_service.db.database import open_database
    from vo_service.progress import progress_bar

    database = open_database("write")
    from ml.infer import infer
    from ml.model_registry import AUTOENCODER, get
    settings = database.settings
    # stable: the given order within label models and within autoencoders
    model_ids = sorted(model_ids, key=lambda m: get(database.engine, m).kind == AUTOENCODER)
    for model_id in model_ids:
        with progress_bar(f"infer {model_id}", None, unit="spectra",
                          enabled=not quiet) as advance:
            report = infer(database.engine, settings, model_id, chunk_size=chunk_size,
                           skip_uncovered=skip_uncovered, limit=limit or None,
                           device=device or None, progress=advance)
        for obs_id, reason in list(report.skipped.items())[:20]:
            console.print(f"[yellow]skipped[/yellow] {obs_id}: {reason}")
        console.print(report.summary())
    from vo_service.registry.sync import resync_after_change

    # the ML products' record (and the TAP tableset's counts) follow the new products
    console.print(resync_after_change(database.engine, database.settings), highlight=False)


@ml_app.command("analyse")
def analyse_command(
    model_id: Annotated[str, typer.Argument(help="Autoencoder to analyse")],
    label_set: Annotated[str, typer.Option(help="Reference labels for the mutual "
                                           "information (default: RV only)")] = "",
    sample: Annotated[int, typer.Option(min=50, help="Spectra in the MI sample")] = 5000,
    seed: Seed = 0,
    map_points: Annotated[int, typer.Option(
        min=0, help="Spectra on the explorer's 2-D map (t-SNE; 0: no map)")] = 10_000,
) -> None:
    """Informative dimensions and mutual information (latent vs PCA) of an autoencoder."""
    from vo_service.db.database import open_database

    database = open_database("write")
    from ml.analysis import analyse
    settings = database.settings
    result = analyse(database.engine, settings, model_id, label_set=label_set or None,
                     sample=sample, map_points=map_points, seed=seed)
    console.print(f"{int(result.informative.sum())} of {len(result.informative)} dimensions "
                  f"informative; best MI latent/PCA (nats): " + ", ".join(
                      f"{q} {result.mi_latent[:, j].max():.2f}/{result.mi_pca[:, j].max():.2f}"
                      for j, q in enumerate(result.quantities)))
    if result.map_points:
        console.print(f"2-D map: {result.map_points} spectra in {result.map_seconds:.1f} s")


@ml_app.command("report")
def report_command(
    model_ids: Annotated[list[str], typer.Argument(help="Models to report on")],
    out: Annotated[Path | None, typer.Option(help="Output directory")] = None,
) -> None:
    """Write the HTML quality report (with PNG figures) of one or more models."""
    from vo_service.db.database import open_database

    database = open_database("read")
    from ml.report import write_report
    settings = database.settings
    console.print(f"report: {write_report(database.engine, settings, model_ids, out)}")


@ml_app.command("list")
def list_command() -> None:
    """List the registered models."""
    from vo_service.db.database import open_database

    database = open_database("read")
    from ml.model_registry import list_models
    records = list_models(database.engine)
    if not records:
        console.print("no models registered")
    for r in records:
        extra = (f"latent_dim {r.latent_dim}, {r.distance_metric}" if r.latent_dim else
                 f"labels from {r.reference_label_source}, autoencoder {r.base_model_id}")
        console.print(f"{r.model_id}: {r.kind}, {extra}, {r.training_size} training spectra, "
                      f"created {r.created_at:%Y-%m-%d %H:%M}")


@ml_app.command("forget")
def forget_command(
    model_id: Annotated[str, typer.Argument(help="Model whose products to delete")],
) -> None:
    """Delete a model's latent vectors or labels and its similarity index (keeps the model)."""
    from vo_service.db.database import open_database

    database = open_database("write")
    from ml.infer import forget
    console.print(f"deleted {forget(database.engine, model_id)} rows of model {model_id}")


@ml_app.command("export-onnx")
def export_onnx_command(
    model_ids: Annotated[list[str], typer.Argument(help="Models to export (autoencoders or "
                                                   "label models)")],
) -> None:
    """Export models' networks as ONNX graphs for the web service (similarity by upload,
    the explorer); registration does this already, models registered earlier need it."""
    from vo_service.db.database import open_database

    database = open_database("read")
    from ml.model_registry import get
    from ml.onnx_export import export_model
    for model_id in model_ids:
        manifest = export_model(database.settings.home, get(database.engine, model_id))
        worst = max(manifest["check"]["max_abs_diff"].values())
        console.print(f"model {model_id}: exported {', '.join(sorted(manifest['files']))} "
                      f"(largest difference from torch {worst:.2g})")
