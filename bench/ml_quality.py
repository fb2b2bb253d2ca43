"""Quality of the ML products on a synthetic archive, against the true labels and the noise limit.

Generates (or reuses) a synthetic archive, trains the autoencoder and the label model,
infers every spectrum and prints: label RMSE at S/N >= 50, the spread of standardised
residuals, domain-flag rates, mutual information latent vs PCA, and nearest-neighbour
label differences vs random pairs, each with its target and whether it is met. Then,
per S/N bin, each label's RMSE against its Cramer-Rao bound (``ml.crb`` on the
generator's own forward model, ``ml.synth.replay``), z-std, interval coverage and the
flagged-out fraction, with issue 18's goals (RMSE <= 1.5x the bound at S/N >= 80,
<= 1.3x at 20-40).

    python bench/ml_quality.py --n 20000                 # through the database
    python bench/ml_quality.py --n 20000 --no-db         # files -> arrays only (GPU box)
    python bench/ml_quality.py --n 2000 --no-db --profile both --json out.json

``--no-db`` needs no PostgreSQL: it reads the archive's files directly, so it runs on
a machine that only has the working tree and the virtual environment. The bound is
computed once per archive on ``--crb-sample`` judged spectra (default 1,000; 0: all) in
``--crb-workers`` processes, and compared with every profile's predictions.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ml import quality  # noqa: E402
from ml.analysis import analyse_arrays  # noqa: E402
from ml.archive_reader import LABEL_QUANTITIES  # noqa: E402
from ml.calibration import by_snr  # noqa: E402
from ml.device import pick_device  # noqa: E402
from ml.domain import DomainModel, domain_dims  # noqa: E402
from ml.grid_choice import MIN_PIXELS, RANGES, choose_pixels  # noqa: E402
from ml.grid_choice import grid_for as choice_grid_for  # noqa: E402
from ml.models.autoencoder import encode_arrays  # noqa: E402
from ml.preprocess import RESAMPLINGS  # noqa: E402
from ml.profiles import PROFILES, profile_configs, profile_range  # noqa: E402
from ml.sigma_calibration import SigmaCalibration  # noqa: E402
from ml.snr import spectrum_snr  # noqa: E402
from ml.spectra_cache import SpectraCache  # noqa: E402
from ml.synth import write_archive  # noqa: E402
from ml.synth.replay import PARAMETERS, STEPS, ArchiveReplay, archive_bounds  # noqa: E402
from ml.train import AutoencoderConfig, train_autoencoder, train_label_model  # noqa: E402
from vo_service.archive.spectrum import air_to_vacuum  # noqa: E402


def archive(out: Path, n: int, seed: int) -> Path:
    if not (out / "manifest.json").exists() or json.loads(
            (out / "manifest.json").read_text())["n_spectra"] != n:
        print(f"writing a synthetic archive of {n} spectra to {out}", flush=True)
        write_archive(out, n=n, seed=seed, progress=False)
    return out


def read_truth(out: Path) -> tuple[list[dict], dict[str, dict]]:
    with open(out / "truth.csv") as fh:
        truth = list(csv.DictReader(fh))
    with open(out / "reference_labels.csv") as fh:
        reference = {r["target_name"]: r for r in csv.DictReader(fh)}
    return truth, reference


def reference_arrays(truth: list[dict], reference: dict[str, dict]
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Reference labels and errors per truth row (NaN for stars without reference labels)."""
    labels = np.full((len(truth), len(LABEL_QUANTITIES)), np.nan)
    errors = np.full_like(labels, np.nan)
    for i, r in enumerate(truth):
        if r["target_name"] in reference:
            ref = reference[r["target_name"]]
            labels[i] = [float(ref[q]) for q in LABEL_QUANTITIES]
            errors[i] = [float(ref[f"{q}_err"]) for q in LABEL_QUANTITIES]
    return labels, errors


def scaled_reference(labels: np.ndarray, errors: np.ndarray, true: np.ndarray, scale: float
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Reference labels whose errors against the truth are ``scale`` times the files' (and
    their stated errors with them): a diagnostic of how much of the label model's error
    the reference labels' own noise causes (0: train on the true labels)."""
    return true + scale * (labels - true), scale * errors


def grid_for(out: Path, n_pixels: int, wavelength_range: str, continuum: str | None = None):
    """The grid ``train-ae`` would choose for the archive (``ml.grid_choice``): each
    spectrum's range and stated resolving power from the manifest; ``n_pixels`` 0 = auto."""
    manifest = json.loads((out / "manifest.json").read_text())
    lo, hi, power = [], [], []
    for inst in manifest["instruments"]:
        count = manifest["counts"]["instrument"].get(inst["name"], 0)
        wave = np.array([inst["wave_min"], inst["wave_max"]], float)
        if inst.get("frame", inst.get("spec_frame")) == "air":
            wave = air_to_vacuum(wave)
        lo += [wave[0]] * count
        hi += [wave[1]] * count
        power += [inst.get("resolving_power", np.nan)] * count
    lo_, hi_ = np.array(lo), np.array(hi)
    if not n_pixels:  # as ml.grid_choice.choose_grid: the range's bounds, then the pixels
        shape = choice_grid_for(lo_, hi_, MIN_PIXELS, wavelength_range)
        n_pixels = choose_pixels(*shape.bounds(), np.array(power, float)).pixels
    return choice_grid_for(lo_, hi_, n_pixels, wavelength_range, continuum)


def run_no_db(args, out: Path, truth: list[dict], reference: dict[str, dict]) -> dict:
    """Train and predict on arrays read straight from the archive's files."""
    grid = grid_for(out, args.pixels, args.wavelength_range, args.continuum)
    if args.continuum_window and grid.continuum_fit == "running-mean":
        grid = replace(grid, continuum_window_kms=args.continuum_window)
    if args.resampling:
        grid = replace(grid, resampling=args.resampling)
    cache = SpectraCache(out / ".cache", grid)
    t0 = time.monotonic()
    paths = {r["obs_id"]: out / r["path"] for r in truth}
    loaded = cache.load(list(paths), paths.__getitem__)
    phase(f"read + preprocessed {len(truth)} spectra ({len(loaded.errors)} failed)", t0)
    ok = loaded.ok
    flux, ivar, power = loaded.flux, loaded.ivar, loaded.resolving_power
    device = pick_device(args.device or None)
    names = np.array([r["target_name"] for r in truth])
    labels, errors = reference_arrays(truth, reference)
    if args.reference_error_scale != 1.0:
        true = np.array([[float(r[q]) for q in LABEL_QUANTITIES] for r in truth])
        labels, errors = scaled_reference(labels, errors, true, args.reference_error_scale)
    okrows = np.flatnonzero(ok)
    t0 = time.monotonic()
    ae = train_autoencoder(
        flux[okrows], ivar[okrows], args.ae_config,
        args.seed, device, velocity_step=grid.velocity_step, resolving_power=power[okrows],
        groups=names[okrows], labels=labels[okrows], label_errors=errors[okrows],
        quantities=list(LABEL_QUANTITIES) if args.guided else None)
    phase(f"autoencoder {ae.metrics}", t0)
    rows = np.flatnonzero(ok & np.isfinite(labels).all(axis=1))
    t0 = time.monotonic()
    lab = train_label_model(flux[rows], ivar[rows], labels[rows], errors[rows], names[rows],
                            list(LABEL_QUANTITIES),
                            args.label_config, args.seed, device, velocity_step=grid.velocity_step,
                            resolving_power=power[rows], template=ae.model.template,
                            encoder=ae.model)
    phase(f"label model {lab.metrics}", t0)
    print_histories(lab.history)
    t0 = time.monotonic()
    latent, _ = encode_arrays(ae.model.to(device), flux, ivar, power, device)
    pred, sigma = lab.predictor.predict(flux, ivar, power, device)
    box = (np.nanmin(labels[rows][lab.train_index], axis=0),
           np.nanmax(labels[rows][lab.train_index], axis=0))
    snr = spectrum_snr(flux, ivar)
    domain = DomainModel.fit(latent[rows][lab.train_index], latent[rows][lab.val_index],
                             domain_dims(ae.information, ae.config.informative_nats,
                                         ae.model.n_guided), box,
                             pred[okrows], np.isin(okrows, rows[lab.train_index]),
                             pred[rows][lab.val_index], lab.val_prediction[1],
                             snr[rows][lab.val_index])
    score = domain.score(latent)
    in_domain = domain.in_domain(score, pred, sigma, snr)
    by_rate = {}
    for rate in args.flag_rates:
        other = replace(domain, false_flag_rate=rate)
        other.distance_cut, other.coverage_cut = other.fit_cuts(
            latent[rows][lab.val_index], pred[rows][lab.val_index], lab.val_prediction[1],
            snr[rows][lab.val_index])
        by_rate[rate] = other.in_domain(score, pred, sigma, snr)
    phase(f"inference of {len(flux)} spectra + domain", t0)
    held_out = np.zeros(len(flux), bool)
    held_out[rows[lab.val_index]] = True
    ensemble_sigma = None
    if args.save_arrays:  # the ensemble's own errors, before calibration, for offline study
        fitted = lab.predictor.calibration
        lab.predictor.calibration = SigmaCalibration.identity(len(LABEL_QUANTITIES))
        ensemble_sigma = lab.predictor.predict(flux, ivar, power, device)[1]
        lab.predictor.calibration = fitted
    return {"ok": ok, "latent": latent, "pred": pred, "sigma": sigma, "in_domain": in_domain,
            "in_domain_by_rate": by_rate, "held_out": held_out, "snr": snr,
            "ensemble_sigma": ensemble_sigma, "labels": labels, "errors": errors,
            "ae": ae, "flux": flux, "ivar": ivar, "power": power, "grid": grid,
            "reference_star": np.isin(names, list(reference))}


def run_db(args, out: Path, truth: list[dict], reference: dict[str, dict]) -> dict:
    """The production path: ingest, train, infer through PostgreSQL, then read back."""
    import sqlalchemy as sa

    from ml.archive_reader import load_arrays, select_spectra
    from ml.artifacts import load_autoencoder
    from ml.infer import infer
    from ml.model_registry import get
    from ml.training_runs import train_autoencoder_run, train_label_run
    from vo_service.archive.ingest import Ingester, expand_paths
    from vo_service.archive.reference_labels import attach
    from vo_service.config import load_settings
    from vo_service.db.database import Database

    os.environ.setdefault("LATENTVO_HOME", str(out / ".latentvo"))
    settings = load_settings()
    database = Database(settings)
    database.upgrade()
    engine = database.engine
    t0 = time.monotonic()
    print(Ingester(engine, settings).run(expand_paths([str(out)])).summary(),
          f"({time.monotonic() - t0:.0f} s)", flush=True)
    attach(engine, out / "reference_labels.csv", "bench-reference")
    tag = time.strftime("%Y%m%dT%H%M%S")
    ae = train_autoencoder_run(engine, settings, model_id=f"bench-ae-{tag}",
                               config=args.ae_config,
                               n_pixels=args.pixels or None,
                               wavelength_range=args.wavelength_range, seed=args.seed,
                               label_set="bench-reference" if args.guided else None,
                               device=args.device or None)
    print(ae.summary(), flush=True)
    lab = train_label_run(engine, settings, label_set="bench-reference",
                          autoencoder_id=ae.record.model_id, model_id=f"bench-labels-{tag}",
                          config=args.label_config,
                          seed=args.seed, device=args.device or None)
    print(lab.summary(), flush=True)
    for model_id in (ae.record.model_id, lab.record.model_id):
        print(infer(engine, settings, model_id, skip_uncovered=True,
                    device=args.device or None).summary(), flush=True)
    index = {r["obs_id"]: i for i, r in enumerate(truth)}
    n, q = len(truth), len(LABEL_QUANTITIES)
    result = {"ok": np.zeros(n, bool), "latent": np.zeros((n, args.latent_dim)),
              "pred": np.full((n, q), np.nan), "sigma": np.full((n, q), np.nan),
              "in_domain": np.zeros(n, bool)}
    with engine.connect() as conn:
        for obs_id, vec in conn.execute(sa.text(
                "SELECT s.obs_id, l.vec::real[] AS vec FROM latentvo.latent l "
                "JOIN latentvo.spectra s USING (spectrum_id) WHERE model_id = :m"),
                {"m": ae.record.model_id}):
            result["latent"][index[obs_id]] = np.asarray(vec)
        for row in conn.execute(sa.text(
                "SELECT s.obs_id, l.* FROM latentvo.labels l JOIN latentvo.spectra s "
                "USING (spectrum_id) WHERE model_id = :m"),
                {"m": lab.record.model_id}).mappings():
            i = index[row["obs_id"]]
            result["ok"][i] = True
            result["pred"][i] = [row[k] for k in LABEL_QUANTITIES]
            result["sigma"][i] = [row[f"{k}_err"] for k in LABEL_QUANTITIES]
            result["in_domain"][i] = row["in_domain"]
        selected = select_spectra(conn)
    record = get(engine, ae.record.model_id)
    model, information = load_autoencoder(settings.home, record)
    order = np.array([index[o] for o in selected.obs_id])
    loaded = load_arrays(settings, record.grid, selected)
    flux = np.zeros((n, record.grid.n_pixels), np.float32)
    ivar = np.zeros_like(flux)
    power = np.full(n, np.nan)
    flux[order], ivar[order], power[order] = loaded.flux, loaded.ivar, loaded.resolving_power
    ae_like = type("AE", (), {"model": model, "information": information,
                              "config": AutoencoderConfig(latent_dim=args.latent_dim)})
    names = [r["target_name"] for r in truth]
    return {**result, "ae": ae_like, "flux": flux, "ivar": ivar, "power": power,
            "grid": record.grid, "reference_star": np.isin(names, list(reference))}


def continuum_name(grid) -> str:
    """The grid's continuum for the report: "running-mean 8000 km/s" or "upper-envelope"."""
    if grid.continuum_fit == "running-mean":
        return f"running-mean {grid.continuum_window_kms:.0f} km/s"
    return grid.continuum_fit


def print_histories(history: dict[str, list[float]]) -> None:
    """Each label member's training and validation NLL per epoch (where it stopped, why)."""
    for name in sorted(n for n in history if n.endswith("_val_nll")):
        member = name.removesuffix("_val_nll")
        rows = [("train", f"{member}_train_nll"), ("val", name),
                ("val, scale-free", f"{member}_val_scale_free_nll")]
        print(f"{member} NLL per epoch:", flush=True)
        for what, key in rows:
            if key in history:
                print(f"  {what:>15} " + " ".join(f"{v:.2f}" for v in history[key]),
                      flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=20000, help="spectra in the archive")
    parser.add_argument("--out", type=Path, default=Path("bench/out/ml_quality"))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-db", action="store_true", help="arrays only, no PostgreSQL")
    parser.add_argument("--pixels", type=int, default=0,
                        help="model grid pixels (0: chosen from the resolving power, as "
                        "train-ae does)")
    parser.add_argument("--wavelength-range", dest="range_mode", choices=RANGES,
                        help="common or union (default: the profile's, as train-ae)")
    parser.add_argument("--continuum", choices=("running-mean", "upper-envelope"),
                        help="--no-db: the grid's continuum (ml.preprocess.normalise; "
                        "default: the range's, ml.grid_choice.CONTINUUM_FITS)")
    parser.add_argument("--resampling", choices=tuple(RESAMPLINGS),
                        help="--no-db: how native pixels go onto the grid "
                        "(ml.preprocess.RESAMPLINGS; default: the grid's)")
    parser.add_argument("--continuum-window", type=float, default=0.0,
                        help="--no-db: the running mean's sigma in km/s (default: "
                        "ml.grid_choice.CONTINUUM_WINDOW_KMS)")
    parser.add_argument("--latent-dim", type=int, default=12)
    parser.add_argument("--no-guided", dest="guided", action="store_false",
                        help="plain VAE (no reference labels guiding latent dimensions)")
    parser.add_argument("--ae-epochs", type=int, default=60)
    parser.add_argument("--label-epochs", type=int, default=80)
    parser.add_argument("--profile", default="default", choices=(*PROFILES, "both"),
                        help="model sizes (ml.profiles); both: one run per profile")
    parser.add_argument("--members", type=int, default=0,
                        help="label members (default: the profile's)")
    parser.add_argument("--batch-size", type=int, default=128, help="autoencoder batch")
    parser.add_argument("--label-batch-size", type=int, default=64)
    parser.add_argument("--stop-on", choices=("nll", "scale-free"), default="",
                        help="label networks' early-stopping loss (default: LabelConfig's)")
    parser.add_argument("--weight-average-epochs", type=float, default=-1.0,
                        help="label networks' weight average, its time scale in epochs "
                        "(0: none; default: LabelConfig's)")
    parser.add_argument("--label-lr", type=float, default=0.0,
                        help="label networks' learning rate (default: the profile's)")
    parser.add_argument("--channels", type=lambda v: tuple(int(x) for x in v.split(",")),
                        default=(), help="convolution widths of both networks, one per "
                        "stride-2 layer, e.g. 16,32,32,64,64,64,64 (default: the profile's)")
    parser.add_argument("--coverage-dropout", type=float, default=-1.0,
                        help="label networks: share of training spectra seen through another "
                        "one's wavelength coverage (default: LabelConfig's)")
    parser.add_argument("--reference-error-scale", type=float, default=1.0,
                        help="--no-db diagnostic: train on reference labels whose errors "
                        "against the truth are this many times the files' (0: the true labels)")
    parser.add_argument("--noise-augment", type=float, default=-1.0,
                        help="label networks: share of training spectra seen with added noise "
                        "at a lower S/N (default: LabelConfig's)")
    parser.add_argument("--no-pretrained", dest="pretrained", action="store_false",
                        help="label networks start from random weights, not the encoder's")
    parser.add_argument("--mi-sample", type=int, default=5000)
    parser.add_argument("--crb-sample", type=int, default=1000,
                        help="judged spectra whose Cramer-Rao bound is computed (0: all)")
    parser.add_argument("--crb-workers", type=int, default=os.cpu_count() or 1,
                        help="processes computing the bound")
    parser.add_argument("--json", type=Path, help="write the per-S/N-bin results here")
    parser.add_argument("--flag-rates", type=lambda v: [float(x) for x in v.split(",") if x],
                        default=[], help="--no-db: also the domain flag with these held-out "
                        "false-flag rates (comma-separated, e.g. 0.01,0.005), same networks")
    parser.add_argument("--device", default="", help="cpu or cuda (default: cuda if present)")
    parser.add_argument("--no-cuda-graphs", dest="cuda_graphs", action="store_false",
                        help="launch each training step's kernels from Python instead of "
                        "replaying its CUDA graph (ml.step_graph, the default on CUDA)")
    parser.add_argument("--save-arrays", type=Path,
                        help="--no-db: write <dir>/<profile>.npz with every spectrum's "
                        "predictions, calibrated and ensemble errors, S/N, reference and true "
                        "labels, held-out and domain flags (to study the calibration offline)")
    args = parser.parse_args()
    if args.reference_error_scale != 1.0 and not args.no_db:
        parser.error("--reference-error-scale needs --no-db")
    if args.reference_error_scale < 0:
        parser.error("--reference-error-scale must be >= 0")
    if args.save_arrays and not args.no_db:
        parser.error("--save-arrays needs --no-db")
    if (args.continuum or args.continuum_window or args.resampling) and not args.no_db:
        parser.error("--continuum, --continuum-window and --resampling need --no-db "
                     "(train-ae records the range's grid)")
    started = time.monotonic()
    out = archive(args.out.resolve() / f"archive-{args.n}-{args.seed}", args.n, args.seed)
    phase("archive ready", started)
    truth, reference = read_truth(out)
    profiles = list(PROFILES) if args.profile == "both" else [args.profile]
    ranges = {p: args.range_mode or profile_range(p) for p in profiles}
    limit = noise_limit(args, out, truth, reference,
                        [grid_for(out, args.pixels, r) for r in set(ranges.values())])
    report: dict = {"n_spectra": args.n, "seed": args.seed, "pixels": args.pixels,
                    "mode": "no-db" if args.no_db else "database", "crb": limit.summary(),
                    "goals": {band_name(lo, hi): ratio for (lo, hi), ratio in RATIO_GOALS.items()},
                    "profiles": {}}
    for profile in profiles:
        args.wavelength_range = ranges[profile]
        args.ae_config, labels = profile_configs(profile, latent_dim=args.latent_dim,
                                                 epochs=args.ae_epochs,
                                                 batch_size=args.batch_size)
        args.ae_config = replace(args.ae_config, cuda_graphs=args.cuda_graphs,
                                 channels=args.channels or args.ae_config.channels)
        args.label_config = replace(labels, epochs=args.label_epochs,
                                    members=args.members or labels.members,
                                    batch_size=args.label_batch_size,
                                    learning_rate=args.label_lr or labels.learning_rate,
                                    stop_on=args.stop_on or labels.stop_on,
                                    weight_average_epochs=(
                                        labels.weight_average_epochs
                                        if args.weight_average_epochs < 0
                                        else args.weight_average_epochs),
                                    pretrained_trunk=args.pretrained,
                                    coverage_dropout=(labels.coverage_dropout
                                                      if args.coverage_dropout < 0
                                                      else args.coverage_dropout),
                                    noise_augment=(labels.noise_augment
                                                   if args.noise_augment < 0
                                                   else args.noise_augment),
                                    channels=args.channels or labels.channels,
                                    cuda_graphs=args.cuda_graphs)
        print(f"\nprofile {profile}: {args.ae_config}\n{args.label_config}", flush=True)
        t0 = time.monotonic()
        result = (run_no_db if args.no_db else run_db)(args, out, truth, reference)
        seconds = time.monotonic() - t0
        print(f"grid: {result['grid'].n_pixels} pixels, {grid_range(result['grid'])[0]:.0f}-"
              f"{grid_range(result['grid'])[1]:.0f} A ({args.wavelength_range}), continuum "
              f"{continuum_name(result['grid'])}", flush=True)
        quality_figures(args, truth, result, started)
        bins = limit.table(result)
        print_limit(profile, limit, bins)
        deciles = calibration_by_decile(truth, result)
        print_deciles(profile, deciles)
        for rate, in_domain in result.get("in_domain_by_rate", {}).items():
            flag_rate_line(rate, truth, {**result, "in_domain": in_domain})
        instruments = by_instrument(limit, truth, result)
        for key, what in (("rmse_over_crb", "RMSE / RMS(CRB)"),
                          ("rmse_over_crb_grid_range", "RMSE / RMS(CRB on the grid's range)"),
                          ("crb_grid_range_over_crb", "median CRB on the grid's range / CRB")):
            print(f"{what} by instrument, all S/N: " + "; ".join(
                f"{k} (n={v['n']}) " + " ".join(f"{q} {r:.2f}" for q, r in v[key].items())
                for k, v in instruments.items()))
        if args.save_arrays:
            save_arrays(args.save_arrays / f"{profile}.npz", truth, result)
        report["profiles"][profile] = {"seconds": round(seconds, 1), "bins": bins,
                                       "grid": {"pixels": result["grid"].n_pixels,
                                                "range": args.wavelength_range,
                                                "angstrom": grid_range(result["grid"])},
                                       "by_instrument": instruments,
                                       "by_snr_decile": deciles,
                                       "goals_met": goals_met(bins)}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"per-bin results written to {args.json}")


SNR_BINS = ((10.0, 20.0), (20.0, 40.0), (40.0, 80.0), (80.0, math.inf))
RATIO_GOALS = {(20.0, 40.0): 1.3, (80.0, math.inf): 1.5}
"""Issue 18: RMSE at most this many times the RMS Cramer-Rao bound, per S/N bin."""
GOAL_QUANTITIES = ("teff", "logg", "mh")


@dataclass
class NoiseLimit:
    """Cramer-Rao bounds of a random sample of the judged spectra (stars without reference
    labels, true labels inside the training range), computed once for every profile."""

    rows: np.ndarray  # truth rows of the sampled spectra
    of: int  # judged in-range spectra the sample was drawn from
    true: np.ndarray  # (n, quantities)
    snr: np.ndarray
    free: np.ndarray  # (n, quantities): labels, RV, flux scale and tilt jointly
    known: np.ndarray  # (n, quantities): labels and RV, continuum held at the truth
    within: dict[tuple[float, float], np.ndarray]  # free, only the pixels in a grid's range
    seconds: float

    def on_grid(self, grid) -> np.ndarray:
        """The bound of an estimator that sees only the file pixels inside ``grid``."""
        return self.within[grid_range(grid)]

    def summary(self) -> dict:
        return {"sample": len(self.rows), "of": self.of, "seconds": round(self.seconds, 1),
                "parameters": list(PARAMETERS), "steps": STEPS.tolist(),
                "nuisance": "rv, ln_scale, tilt1, tilt2 marginalised (jointly with all labels)",
                "infinite": int((~np.isfinite(self.free)).any(axis=1).sum())}

    def table(self, result: dict) -> list[dict]:
        """Per S/N bin and label: RMSE, bound, RMSE / RMS(bound), z-std, coverage, flags;
        also RMSE / RMS(bound on the model grid's range), which the goals do not use."""
        ok = result["ok"][self.rows]
        grid_bound = self.on_grid(result["grid"])
        pred, sigma = result["pred"][self.rows], result["sigma"][self.rows]
        flagged = ~result["in_domain"][self.rows]
        bins = []
        for lo, hi in SNR_BINS:
            sel = ok & (self.snr >= lo) & (self.snr < hi)
            row: dict = {"snr_min": lo, "snr_max": None if math.isinf(hi) else hi,
                         "n": int(sel.sum()),
                         "flagged_fraction": float(flagged[sel].mean()) if sel.any() else None,
                         "labels": {}}
            for j, q in enumerate(LABEL_QUANTITIES):
                if not sel.any() or not np.isfinite(pred[sel, j]).any():
                    continue
                resid = pred[sel, j] - self.true[sel, j]
                z = resid / sigma[sel, j]
                rmse = float(np.sqrt(np.nanmean(resid**2)))
                finite = np.isfinite(self.free[sel, j])
                rms_bound = float(np.sqrt(np.mean(self.free[sel, j][finite] ** 2)))
                goal = RATIO_GOALS.get((lo, hi)) if q in GOAL_QUANTITIES else None
                ratio = rmse / rms_bound
                on_grid = grid_bound[sel, j][np.isfinite(grid_bound[sel, j])]
                rms_grid = float(np.sqrt(np.mean(on_grid**2)))
                row["labels"][q] = {
                    "rmse": rmse, "crb_median": float(np.median(self.free[sel, j][finite])),
                    "crb_rms": rms_bound, "rmse_over_crb": ratio,
                    "crb_rms_grid_range": rms_grid, "rmse_over_crb_grid_range": rmse / rms_grid,
                    "crb_median_known_continuum": float(np.nanmedian(self.known[sel, j])),
                    "z_std": float(np.nanstd(z)),
                    "coverage_68": float(np.nanmean(np.abs(z) <= 1.0)),
                    "coverage_95": float(np.nanmean(np.abs(z) <= 1.959964)),
                    "infinite_crb": int((~finite).sum()),
                    "goal": goal, "met": None if goal is None else bool(ratio <= goal)}
            bins.append(row)
        return bins


def grid_range(grid) -> tuple[float, float]:
    """The vacuum wavelengths a model grid spans (outer pixel edges)."""
    lo, hi = grid.bounds()
    return round(lo, 2), round(hi, 2)


def noise_limit(args, out: Path, truth: list[dict], reference: dict[str, dict],
                grids: list) -> NoiseLimit:
    """Sample the judged in-range spectra and compute their bounds (ml.synth.replay): of
    the whole file, and of the file's pixels inside each of ``grids``' ranges."""
    true = np.array([[float(r[q]) for q in LABEL_QUANTITIES] for r in truth])
    reference_star = np.array([r["target_name"] in reference for r in truth])
    inside, _ = quality.domain_truth(true, *quality.training_range(true[reference_star]))
    candidates = np.flatnonzero(~reference_star & inside)
    rng = np.random.default_rng([args.seed, 18])
    count = len(candidates) if args.crb_sample <= 0 else min(args.crb_sample, len(candidates))
    rows = np.sort(rng.choice(candidates, count, replace=False))
    t0 = time.monotonic()
    ranges = sorted({grid_range(g) for g in grids})
    bounds = archive_bounds(ArchiveReplay(out), [truth[i]["obs_id"] for i in rows],
                            workers=args.crb_workers, ranges=ranges)
    labels = [PARAMETERS.index(q) for q in LABEL_QUANTITIES]
    phase(f"Cramer-Rao bounds of {count} of {len(candidates)} judged in-range spectra "
          f"({args.crb_workers} processes)", t0)
    snr = np.array([float(truth[i]["snr"]) for i in rows])
    return NoiseLimit(rows, len(candidates), true[rows], snr, bounds.free[:, labels],
                      bounds.known[:, labels], {r: b[:, labels] for r, b in bounds.within.items()},
                      time.monotonic() - t0)


def print_limit(profile: str, limit: NoiseLimit, bins: list[dict]) -> None:
    """The per-bin table against the bound, and the goals met or not."""
    sampled = (f"a random sample of {len(limit.rows)} of the {limit.of}"
               if len(limit.rows) < limit.of else f"all {limit.of}")
    print(f"\n== noise limit, profile {profile}: Cramer-Rao bound of each label jointly with "
          f"RV, flux scale and continuum tilt, on {sampled} judged in-range spectra ==")
    print(f"{'S/N':<8s}{'label':<8s}{'n':>5s}{'RMSE':>10s}{'med CRB':>10s}{'(known cont.)':>14s}"
          f"{'RMSE/RMS(CRB)':>15s}{'(grid range)':>13s}{'z-std':>7s}{'cov68':>7s}{'cov95':>7s}"
          f"{'flagged':>9s}  goal")
    for row in bins:
        band = band_name(row["snr_min"], row["snr_max"] or math.inf)
        for q, v in row["labels"].items():
            goal = "" if v["goal"] is None else \
                f"<= {v['goal']:g} {'MET' if v['met'] else 'NOT MET'}"
            print(f"{band:<8s}{q:<8s}{row['n']:>5d}{v['rmse']:>10.4g}{v['crb_median']:>10.3g}"
                  f"{v['crb_median_known_continuum']:>14.3g}{v['rmse_over_crb']:>15.2f}"
                  f"{v['rmse_over_crb_grid_range']:>13.2f}{v['z_std']:>7.2f}{v['coverage_68']:>7.1%}{v['coverage_95']:>7.1%}"
                  f"{row['flagged_fraction']:>9.1%}  {goal}")
    print("(grid range): RMSE / RMS of the bound from only the file pixels inside the model "
          "grid's wavelength range, i.e. what an estimator on this grid could reach")
    met = goals_met(bins)
    print(f"noise-limit goals met: {sum(met.values())}/{len(met)}"
          + "".join(f"; {k} not met" for k, v in met.items() if not v))


Z_STD_GOAL = (0.9, 1.1)
COVERAGE_GOAL = {"coverage_68": 0.6827, "coverage_95": 0.9545}  # each within 3 points
FLAG_GOAL = 0.03


def save_arrays(path: Path, truth: list[dict], result: dict) -> None:
    """One profile's per-spectrum results (truth-row order) as an npz file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        path, true=np.array([[float(r[q]) for q in LABEL_QUANTITIES] for r in truth]),
        star=np.array([r["target_name"] for r in truth]), quantities=list(LABEL_QUANTITIES),
        true_snr=np.array([float(r["snr"]) for r in truth]),
        **{key: result[key] for key in ("ok", "pred", "sigma", "ensemble_sigma", "snr",
                                         "labels", "errors", "held_out", "in_domain",
                                         "reference_star")})
    print(f"per-spectrum arrays written to {path}", flush=True)


def calibration_by_decile(truth: list[dict], result: dict) -> list[dict]:
    """Issue 18 item 3 on the judged stars (no reference labels; true labels inside the
    training range): per S/N decile, z-std and 68 %/95 % coverage of each label against the
    truth, and the fraction flagged out of domain (``ml.calibration.by_snr``)."""
    true = np.array([[float(r[q]) for q in LABEL_QUANTITIES] for r in truth])
    snr = np.array([float(r["snr"]) for r in truth])
    judged = result["ok"] & ~result["reference_star"]
    inside, _ = quality.domain_truth(true, *quality.training_range(
        true[result["reference_star"]]))
    sel = judged & inside
    return by_snr(result["pred"][sel], result["sigma"][sel], true[sel],
                  np.zeros_like(true[sel]), snr[sel], list(LABEL_QUANTITIES),
                  ~result["in_domain"][sel])


def decile_goals(row: dict) -> dict[str, bool]:
    """Which of item 3's goals one S/N decile meets."""
    met = {"flag rate": row["flagged_fraction"] <= FLAG_GOAL}
    for q, v in row["labels"].items():
        met[f"{q} z-std"] = Z_STD_GOAL[0] <= v["z_std"] <= Z_STD_GOAL[1]
        for key, nominal in COVERAGE_GOAL.items():
            met[f"{q} {key}"] = abs(v[key] - nominal) <= 0.03
    return met


def print_deciles(profile: str, deciles: list[dict]) -> None:
    """z-std, coverage and flag rate per S/N decile, goals marked (* = not met)."""
    print(f"\n== calibration and domain flag per S/N decile, profile {profile}: judged "
          "in-range stars against their true labels (goals: z-std 0.9-1.1, coverage within "
          "3 points of 68.3 %/95.4 %, flagged <= 3 %; * = not met) ==")
    quantities = list(deciles[0]["labels"]) if deciles else []
    print(f"{'S/N':<12s}{'n':>6s}" + "".join(f"{q + ' z / c68 / c95':>26s}" for q in quantities)
          + f"{'flagged':>9s}")
    failed = 0
    for row in deciles:
        met = decile_goals(row)
        failed += sum(not v for v in met.values())

        def mark(key: str, met: dict[str, bool] = met) -> str:
            return " " if met[key] else "*"

        cells = "".join(
            f"{v['z_std']:>10.2f}{mark(q + ' z-std')}{v['coverage_68']:>6.1%}"
            f"{mark(q + ' coverage_68')}{v['coverage_95']:>6.1%}{mark(q + ' coverage_95')}"
            for q, v in row["labels"].items())
        print(f"{row['snr_min']:>5.0f}-{row['snr_max']:<6.0f}{row['n']:>6d}{cells}"
              f"{row['flagged_fraction']:>8.1%}{mark('flag rate')}")
    total = sum(len(decile_goals(r)) for r in deciles)
    print(f"item 3 goals met in {total - failed} of {total} (decile, figure) cells")


def flag_rate_line(rate: float, truth: list[dict], result: dict) -> None:
    """The domain flag refitted for another held-out false-flag rate: per S/N decile, the
    share of judged in-range stars flagged; and the share of out-of-range ones flagged."""
    true = np.array([[float(r[q]) for q in LABEL_QUANTITIES] for r in truth])
    judged = result["ok"] & ~result["reference_star"]
    inside, clearly_out = quality.domain_truth(true, *quality.training_range(
        true[result["reference_star"]]))
    flagged = ~result["in_domain"]
    rates = [row["flagged_fraction"] for row in calibration_by_decile(truth, result)]
    print(f"false-flag rate {rate:g}: in-range flagged per S/N decile "
          + " ".join(f"{r:.1%}" for r in rates)
          + f"; out of range flagged {flagged[judged & ~inside].mean():.1%}"
          f" (clearly out {flagged[judged & clearly_out].mean():.1%})")


def band_name(lo: float, hi: float) -> str:
    return f">={lo:g}" if math.isinf(hi) else f"{lo:g}-{hi:g}"


def by_instrument(limit: NoiseLimit, truth: list[dict], result: dict) -> dict[str, dict]:
    """RMSE / RMS(bound) per instrument (all S/N): where the models fall furthest short;
    against the whole file's bound and the grid range's, and the median ratio of the two
    bounds (the information the grid's range leaves out)."""
    names = np.array([truth[i]["instrument"] for i in limit.rows])
    ok = result["ok"][limit.rows]
    resid = result["pred"][limit.rows] - limit.true
    on_grid = limit.on_grid(result["grid"])

    def ratio(sel: np.ndarray, j: int, bound: np.ndarray) -> float:
        return float(np.sqrt(np.nanmean(resid[sel, j] ** 2) / np.nanmean(
            np.where(np.isfinite(bound[sel, j]), bound[sel, j], np.nan) ** 2)))

    out = {}
    for name in sorted(set(names)):
        sel = ok & (names == name)
        out[name] = {"n": int(sel.sum()), "rmse_over_crb_grid_range": {
            q: ratio(sel, j, on_grid) for j, q in enumerate(LABEL_QUANTITIES)
            if q in GOAL_QUANTITIES}, "crb_grid_range_over_crb": {
            q: float(np.nanmedian(on_grid[sel, j] / limit.free[sel, j]))
            for j, q in enumerate(LABEL_QUANTITIES) if q in GOAL_QUANTITIES}, "rmse_over_crb": {
            q: ratio(sel, j, limit.free)
            for j, q in enumerate(LABEL_QUANTITIES) if q in GOAL_QUANTITIES}}
    return out


def goals_met(bins: list[dict]) -> dict[str, bool]:
    """{"teff S/N >=80": met, ...} for every label and bin with a goal."""
    return {f"{q} S/N {band_name(row['snr_min'], row['snr_max'] or math.inf)}": v["met"]
            for row in bins for q, v in row["labels"].items() if v["goal"] is not None}


def quality_figures(args, truth: list[dict], result: dict, started: float) -> None:
    """The script's standing quality figures: accuracy, calibration, domain flag, MI,
    neighbours, RMSE per S/N band."""
    t0 = time.monotonic()
    ok = result["ok"]
    true = np.array([[float(r[q]) for q in LABEL_QUANTITIES] for r in truth])
    snr = np.array([float(r["snr"]) for r in truth])
    # Judge labels on stars without reference labels: never seen by the label model.
    judged = ok & ~result["reference_star"]
    inside, clearly_out = quality.domain_truth(
        true[judged], *quality.training_range(true[result["reference_star"]]))
    figures = quality.label_figures(list(LABEL_QUANTITIES), result["pred"][judged],
                                    result["sigma"][judged], true[judged], snr[judged],
                                    inside, clearly_out, result["in_domain"][judged])
    rng = np.random.default_rng(args.seed)
    sample = rng.choice(np.flatnonzero(ok), min(args.mi_sample, ok.sum()), replace=False)
    values = {q: np.array([float(truth[i][q]) for i in sample])
              for q in (*LABEL_QUANTITIES, "rv")}
    ae = result["ae"]
    analysis = analyse_arrays(ae.model, result["flux"][sample], result["ivar"][sample],
                              result["power"][sample], values, ae.config.informative_nats,
                              args.seed)
    figures += quality.mi_figures(analysis.mi_latent,
                                  np.maximum(analysis.mi_pca, analysis.mi_pca_rest),
                                  analysis.quantities)
    figures += quality.neighbour_figures(result["latent"][ok], {
        "teff": true[ok, 0], "mh": true[ok, 2]}, args.seed)
    phase("analysis", t0)
    print(f"\n== ml quality: {args.n} spectra ({int(ok.sum())} predicted, {int(judged.sum())} "
          f"of stars without reference labels judged), {result['grid'].n_pixels} pixels, "
          f"{'no-db' if args.no_db else 'database'} mode, "
          f"{int(analysis.informative.sum())}/{len(analysis.informative)} informative "
          f"latent dimensions, {time.monotonic() - started:.0f} s ==")
    flagged_in = result["in_domain"][judged]
    print(f"in-range spectra: {int(inside.sum())}, clearly out of range: "
          f"{int(clearly_out.sum())}; of all {int((~inside).sum())} with a label outside the "
          f"range (margin included) {np.mean(~flagged_in[~inside]):.1%} are flagged out")
    for figure in figures:
        print(figure.line())
    print("MI per latent dimension (nats):", "  ".join(
        f"{q}: " + " ".join(f"{v:.2f}" for v in analysis.mi_latent[:, j])
        for j, q in enumerate(analysis.quantities)))
    print("max MI PCA observed / rest frame:", ", ".join(
        f"{q} {analysis.mi_pca[:, j].max():.2f}/{analysis.mi_pca_rest[:, j].max():.2f}"
        for j, q in enumerate(analysis.quantities)))
    extra_rmse(true[judged], result["pred"][judged], snr[judged], inside)
    met = sum(f.met for f in figures)
    print(f"{met}/{len(figures)} targets met")


def extra_rmse(true: np.ndarray, pred: np.ndarray, snr: np.ndarray, inside: np.ndarray) -> None:
    """RMSE by S/N band, in range and over all stars (metal-poor and hot ones included)."""
    for name, sel in (("in range", inside), ("all stars", np.ones_like(inside))):
        for lo, hi in ((10, 20), (20, 50), (50, 100), (100, 201)):
            band = sel & (snr >= lo) & (snr < hi)
            rmse = np.sqrt(np.mean((pred[band] - true[band]) ** 2, axis=0))
            print(f"RMSE {name:<9s} S/N {lo:>3d}-{hi:<3d} (n={int(band.sum()):>5d}): " + ", ".join(
                f"{q} {v:.3g}" for q, v in zip(LABEL_QUANTITIES, rmse, strict=True)))


def phase(what: str, since: float) -> None:
    print(f"[{time.monotonic() - since:6.1f} s] {what}", flush=True)


if __name__ == "__main__":
    main()
