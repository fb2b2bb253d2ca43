"""ML training speed: both models on the synthetic archive, library level, no database.

    python bench/ml_training.py --n 20000 --device cuda --compare-cpu   # GPU + CPU ratio
    python bench/ml_training.py --n 2000 --device cpu --profile cpu     # 2-core baseline

Writes (or reuses) the synthetic archive of ``bench/ml_quality.py`` under
``bench/out/ml_quality/`` and its preprocessed cache, then times ``train_autoencoder``
and ``train_label_model`` (the label model on the spectra of stars with reference
labels, starting from the autoencoder's encoder as ``latentvo ml train-labels`` does).
Prints per model the seconds, the epochs run and kept (early stopping), training
throughput (spectra x epochs per second) and the validation figures; on CUDA also the
GPU utilisation sampled during training (pynvml where importable, else ``nvidia-smi``
polled in a thread) and the peak memory torch allocated, per model and for both. On
CUDA the label members are trained in one step (``ml.train.train_members_together``);
``--members-one-by-one`` trains them one after another as the CPU does, to compare;
``--no-cuda-graphs`` launches each step's kernels from Python instead of replaying the
step recorded as a CUDA graph (``ml.step_graph``, the default), to compare;
``--batch-scale K`` trains both models with K times their batch sizes and sqrt(K) times
their learning rates (the library's defaults keep the batches; see docs/ml.md);
``--float32`` turns bf16 autocast off on CUDA, to see what mixed precision gains when the
step is bound by kernel launches rather than arithmetic.
``--compare-cpu`` trains the same models on a subsample (``--cpu-n``) on the CPU with
``--cpu-threads`` torch threads in the same run and prints the throughput ratio and the
CPU time the full set would take for the epochs the device ran. ``--compare-pretrained``
instead trains the autoencoder once and the label model twice on it, from random
weights and from the encoder's, and prints the RMSE per S/N band against the true labels
of the stars without reference labels (in the training label range, as
``bench/ml_quality.py`` judges them).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.ml_quality import (  # noqa: E402
    archive,
    grid_for,
    read_truth,
    reference_arrays,
)
from ml import quality  # noqa: E402
from ml.archive_reader import LABEL_QUANTITIES  # noqa: E402
from ml.device import pick_device  # noqa: E402
from ml.profiles import profile_configs, profile_range  # noqa: E402
from ml.spectra_cache import SpectraCache  # noqa: E402
from ml.train import train_autoencoder, train_label_model  # noqa: E402


class GpuSampler:
    """Samples the GPU's utilisation (%) every ``interval`` seconds in a thread."""

    def __init__(self, device: torch.device, interval: float = 0.2):
        self.index = device.index or 0
        self.interval = interval
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._read = self._reader()

    def _reader(self):
        try:
            import pynvml  # type: ignore[import-not-found]

            pynvml.nvmlInit()
            handle = pynvml.nvmlDeviceGetHandleByIndex(self.index)
            return lambda: float(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu)
        except Exception:  # no NVML binding: ask nvidia-smi
            def smi() -> float:
                out = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu",
                                      "--format=csv,noheader,nounits", f"-i={self.index}"],
                                     capture_output=True, text=True, check=True).stdout
                return float(out.strip().splitlines()[0])
            return smi

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.samples.append(self._read())
            except (OSError, subprocess.CalledProcessError, ValueError):
                return

    def __enter__(self) -> GpuSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> str:
        return utilisation(self.samples)


def utilisation(samples: list[float]) -> str:
    """Mean, median and p90 of GPU utilisation samples (%)."""
    if not samples:
        return "GPU utilisation: no samples"
    s = np.array(samples)
    return (f"GPU utilisation mean {s.mean():.0f} %, median {np.median(s):.0f} %, "
            f"p90 {np.percentile(s, 90):.0f} % ({len(s)} samples)")


def load(args) -> dict:
    """The synthetic archive's preprocessed arrays, labels and star names."""
    out = archive(args.out.resolve() / f"archive-{args.n}-{args.seed}", args.n, args.seed)
    truth, reference = read_truth(out)
    grid = grid_for(out, args.pixels, args.wavelength_range or profile_range(args.profile))
    print(f"grid: {grid.n_pixels} pixels, {grid.start:.0f}-{grid.stop:.0f} A", flush=True)
    paths = {r["obs_id"]: out / r["path"] for r in truth}
    t0 = time.monotonic()
    loaded = SpectraCache(out / ".cache", grid).load(list(paths), paths.__getitem__)
    print(f"[{time.monotonic() - t0:6.1f} s] read {len(truth)} spectra from the archive's "
          f"cache ({len(loaded.errors)} failed)", flush=True)
    labels, errors = reference_arrays(truth, reference)
    ok = np.flatnonzero(loaded.ok)
    names = np.array([r["target_name"] for r in truth])
    return {"flux": loaded.flux[ok], "ivar": loaded.ivar[ok],
            "power": loaded.resolving_power[ok], "labels": labels[ok], "errors": errors[ok],
            "names": names[ok], "grid": grid,
            "true": np.array([[float(r[q]) for q in LABEL_QUANTITIES] for r in truth])[ok],
            "snr": np.array([float(r["snr"]) for r in truth])[ok],
            "reference_star": np.isin(names, list(reference))[ok]}


def subsample(data: dict, n: int, seed: int) -> dict:
    if n >= len(data["flux"]):
        return data
    rows = np.sort(np.random.default_rng(seed).choice(len(data["flux"]), n, replace=False))
    return {k: (v if k == "grid" else v[rows]) for k, v in data.items()}


def train_both(args, data: dict, device: torch.device) -> list[dict]:
    """Train the autoencoder, then the label model; one result dict per model."""
    step = data["grid"].velocity_step
    results = []
    sampler = GpuSampler(device) if device.type == "cuda" else None
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.monotonic()
    if sampler:
        sampler.__enter__()
    ae = train_autoencoder(data["flux"], data["ivar"], args.ae_config, args.seed, device,
                           velocity_step=step, resolving_power=data["power"],
                           groups=data["names"], labels=data["labels"],
                           label_errors=data["errors"], quantities=list(LABEL_QUANTITIES))
    results.append(report("autoencoder", time.monotonic() - t0, len(ae.train_index),
                          ae.metrics, sampler, device))
    rows = np.flatnonzero(np.isfinite(data["labels"]).all(axis=1))
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.monotonic()
    if sampler:
        sampler.samples = []
    lab = train_label_model(data["flux"][rows], data["ivar"][rows], data["labels"][rows],
                            data["errors"][rows], data["names"][rows], list(LABEL_QUANTITIES),
                            args.label_config, args.seed, device, velocity_step=step,
                            resolving_power=data["power"][rows], template=ae.model.template,
                            encoder=ae.model,
                            train_together=False if args.members_one_by_one else None)
    results.append(report("label model", time.monotonic() - t0, len(lab.train_index),
                          lab.metrics, sampler, device))
    if sampler:
        sampler.__exit__()
        print(f"both models on {device}: {sum(r['seconds'] for r in results):.1f} s; "
              f"{utilisation([x for r in results for x in r['gpu_samples']])}", flush=True)
    return results


def report(name: str, seconds: float, n_train: int, metrics: dict,
           sampler: GpuSampler | None, device: torch.device) -> dict:
    epochs = metrics["epochs_run"]
    total_epochs = int(np.sum(epochs))
    rate = n_train * total_epochs / seconds
    figures = ", ".join(f"{k} {v:.4g}" for k, v in metrics.items()
                        if k.startswith(("val_rmse_", "val_chi2", "val_z_std"))
                        and "baseline" not in k)
    members = (f", members trained {metrics['members_trained']}"
               if "members_trained" in metrics else "")
    print(f"{name} on {metrics['device']}: {seconds:.1f} s, {n_train} training spectra, "
          f"epochs run {epochs}, best epoch {metrics['best_epoch']}{members}, "
          f"{rate:,.0f} spectra x epochs / s; {figures}", flush=True)
    if sampler:
        print(f"  {sampler.summary()}; peak torch memory "
              f"{torch.cuda.max_memory_allocated(device) / 2**30:.2f} GiB", flush=True)
    return {"name": name, "seconds": seconds, "rate": rate, "epochs": total_epochs,
            "n_train": n_train, "gpu_samples": list(sampler.samples) if sampler else []}


def compare_pretrained(args, data: dict, device: torch.device) -> None:
    """One autoencoder, the label model from random weights and from its encoder."""
    step = data["grid"].velocity_step
    ae = train_autoencoder(data["flux"], data["ivar"], args.ae_config, args.seed, device,
                           velocity_step=step, resolving_power=data["power"],
                           groups=data["names"], labels=data["labels"],
                           label_errors=data["errors"], quantities=list(LABEL_QUANTITIES))
    print(f"autoencoder: {ae.metrics['train_seconds']} s, epochs run {ae.metrics['epochs_run']}",
          flush=True)
    rows = np.flatnonzero(np.isfinite(data["labels"]).all(axis=1))
    judged = ~data["reference_star"]
    inside, _ = quality.domain_truth(data["true"][judged],
                                     *quality.training_range(data["true"][~judged]))
    true, snr = data["true"][judged], data["snr"][judged]
    for pretrained in (False, True):
        config = replace(args.label_config, pretrained_trunk=pretrained)
        lab = train_label_model(data["flux"][rows], data["ivar"][rows], data["labels"][rows],
                                data["errors"][rows], data["names"][rows],
                                list(LABEL_QUANTITIES), config, args.seed, device,
                                velocity_step=step, resolving_power=data["power"][rows],
                                template=ae.model.template, encoder=ae.model)
        pred, sigma = lab.predictor.predict(data["flux"][judged], data["ivar"][judged],
                                            data["power"][judged], device)
        print(f"label model, {'from the encoder' if pretrained else 'random start'}: "
              f"{lab.metrics['train_seconds']} s, epochs run {lab.metrics['epochs_run']}, "
              f"best {lab.metrics['best_epoch']}", flush=True)
        for lo, hi in ((10, 20), (20, 50), (50, 100), (100, 201), (10, 201)):
            band = inside & (snr >= lo) & (snr < hi)
            rmse = np.sqrt(np.mean((pred[band] - true[band]) ** 2, axis=0))
            z = np.std((pred[band] - true[band]) / sigma[band], axis=0)
            print(f"  S/N {lo:>3d}-{hi:<3d} (n={int(band.sum()):>5d}) RMSE "
                  + ", ".join(f"{q} {v:.4g}" for q, v in zip(LABEL_QUANTITIES, rmse,
                                                             strict=True))
                  + " | z-std " + " ".join(f"{v:.2f}" for v in z), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=20000, help="spectra in the archive")
    parser.add_argument("--out", type=Path, default=Path("bench/out/ml_quality"))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--pixels", type=int, default=0,
                        help="model grid pixels (0: chosen from the resolving power, as "
                        "train-ae does)")
    parser.add_argument("--wavelength-range", choices=("common", "union"),
                        help="the grid's range (default: the profile's, as train-ae)")
    parser.add_argument("--latent-dim", type=int, default=12)
    parser.add_argument("--ae-epochs", type=int, default=60)
    parser.add_argument("--label-epochs", type=int, default=80)
    parser.add_argument("--profile", default="default", help="model sizes (ml.profiles)")
    parser.add_argument("--members", type=int, default=0,
                        help="label members (default: the profile's)")
    parser.add_argument("--device", default="", help="cpu or cuda (default: cuda if present)")
    parser.add_argument("--compare-cpu", action="store_true",
                        help="also train on the CPU on --cpu-n spectra and print the ratio")
    parser.add_argument("--cpu-n", type=int, default=2000)
    parser.add_argument("--cpu-threads", type=int, default=2)
    parser.add_argument("--batch-scale", type=int, default=1,
                        help="both models' batch sizes times this, learning rates times its "
                             "square root (to test larger batches; the defaults use 1)")
    parser.add_argument("--float32", action="store_true",
                        help="no bf16 autocast on CUDA (mixed_precision off), to compare")
    parser.add_argument("--no-cuda-graphs", dest="cuda_graphs", action="store_false",
                        help="on CUDA, launch each training step's kernels from Python "
                             "instead of replaying the step's recorded CUDA graph "
                             "(ml.step_graph, the default), to compare")
    parser.add_argument("--members-one-by-one", action="store_true",
                        help="train the label members one after another on CUDA too (the "
                             "CPU's way; by default CUDA trains them in one step)")
    parser.add_argument("--compare-pretrained", action="store_true",
                        help="label model from random weights and from the encoder: RMSE "
                             "per S/N band")
    args = parser.parse_args()
    args.ae_config, labels = profile_configs(args.profile, latent_dim=args.latent_dim,
                                             epochs=args.ae_epochs)
    args.label_config = replace(labels, epochs=args.label_epochs,
                                members=args.members or labels.members)
    if args.float32:
        args.ae_config, args.label_config = (replace(c, mixed_precision=False)
                                             for c in (args.ae_config, args.label_config))
    if not args.cuda_graphs:
        args.ae_config, args.label_config = (replace(c, cuda_graphs=False)
                                             for c in (args.ae_config, args.label_config))
    if args.batch_scale != 1:
        args.ae_config, args.label_config = (
            replace(c, batch_size=c.batch_size * args.batch_scale,
                    learning_rate=c.learning_rate * args.batch_scale ** 0.5)
            for c in (args.ae_config, args.label_config))
        print(f"batches x{args.batch_scale}: autoencoder {args.ae_config.batch_size} "
              f"(lr {args.ae_config.learning_rate:.3g}), label model "
              f"{args.label_config.batch_size} (lr {args.label_config.learning_rate:.3g})")
    device = pick_device(args.device or None)
    data = load(args)
    print(f"== training {len(data['flux'])} spectra x {data['flux'].shape[1]} pixels on {device}, "
          f"profile {args.profile} ==", flush=True)
    if args.compare_pretrained:
        compare_pretrained(args, data, device)
        return
    results = train_both(args, data, device)
    if not args.compare_cpu:
        return
    torch.set_num_threads(args.cpu_threads)
    small = subsample(data, args.cpu_n, args.seed)
    print(f"== CPU baseline: {len(small['flux'])} spectra, {args.cpu_threads} torch threads ==",
          flush=True)
    baseline = train_both(args, small, torch.device("cpu"))
    for fast, slow in zip(results, baseline, strict=True):
        full_cpu = fast["n_train"] * fast["epochs"] / slow["rate"]
        print(f"{fast['name']}: {fast['rate'] / slow['rate']:.1f}x the CPU's spectra x "
              f"epochs / s; the same {fast['epochs']} epochs on {fast['n_train']} spectra "
              f"would take ~{full_cpu:,.0f} s on the CPU against {fast['seconds']:.0f} s")
    total_cpu = sum(f["n_train"] * f["epochs"] / s["rate"]
                    for f, s in zip(results, baseline, strict=True))
    total = sum(f["seconds"] for f in results)
    print(f"both models: {total:.0f} s on {device} against ~{total_cpu:,.0f} s on "
          f"{args.cpu_threads} CPU threads: {total_cpu / total:.1f}x")


if __name__ == "__main__":
    main()
