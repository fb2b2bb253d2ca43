"""ML inference throughput: model-only (CPU and, where present, CUDA) and end to end.

    python bench/ml_throughput.py --no-db [--profile cpu] [--n 20000]   # models only
    python bench/ml_throughput.py [--profile cpu] [--n-db 2000]         # + database job

Model-only mode needs no database and no archive: it renders spectra with
``ml.synth.render_batch`` on the model grid and times the autoencoder encoder and the
label ensemble (untrained weights of the profile's size, ``ml.profiles``; speed does
not depend on the weights) for several batch sizes, on CPU and on CUDA when available, and prints
spectra/s with the CUDA/CPU ratio. Preprocessing (resample + continuum) is timed
alongside as the per-spectrum CPU baseline. The database mode also writes a small
synthetic archive, ingests it into a fresh embedded PostgreSQL in a temporary
LATENTVO_HOME, trains small models (which fills the preprocessed-spectra cache) and
times ``ml.infer.infer`` for an autoencoder and a label model, per phase (load from
the cache, model, COPY), printing encode + predict + write spectra/s and the latent
rows/s written to PostgreSQL against the issue's targets. Each repetition times both
orders: the autoencoder first (separate jobs, the baseline) and the label model first,
which stores the vectors it encodes so the autoencoder job finds nothing left (joint),
and prints their ratio. The archive has twice
``--n-db`` spectra: half is ingested before training (training fills the cache), and
each repetition infers it after deleting the products of the one before
(``ml.infer.forget``); then the other half arrives, its ingest (timed against the first
half's) preprocesses it for the models' grid, and inference of just those new spectra
is timed; a last run empties the preprocessed cache, so it reads and preprocesses files.

The host's load average is printed before and after each part: with 2 torch threads on a
2-core host that other processes keep busy, the networks run 3-10x slower than on the
quiet host (OpenMP threads spin at their barriers while the other one waits for a core),
so a figure taken under load says nothing about the code. Compare old and new code back
to back, and read the load average beside them.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ml.models.autoencoder import SpectrumAutoencoder, encode_means  # noqa: E402
from ml.models.label_cnn import LabelCNN, LabelEnsemble, predict_arrays  # noqa: E402
from ml.preprocess import Grid, normalise  # noqa: E402
from ml.profiles import profile_configs  # noqa: E402
from ml.synth import render_batch  # noqa: E402


def spectra_on_grid(grid: Grid, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = {"teff": rng.uniform(4000, 7000, n), "logg": rng.uniform(1, 5, n),
              "mh": rng.uniform(-1.5, 0.4, n), "alpha_m": rng.uniform(0, 0.4, n),
              "rv": rng.normal(0, 30, n)}
    out = render_batch(labels, grid.wavelength, 3000.0, snr=rng.uniform(20, 150, n), rng=rng)
    flux, ivar = out[0], out[1]
    return flux.astype(np.float32), ivar.astype(np.float32)


def load_average() -> str:
    """The host's 1-, 5- and 15-minute load averages (2 cores: above ~0.5, the timings
    are the neighbours' as much as the code's)."""
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def timed(func, repeat: int = 3) -> float:
    func()  # warm-up (CUDA kernels, allocator)
    best = np.inf
    for _ in range(repeat):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        func()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best


def model_only(args) -> None:
    grid = Grid(4805.0, 6797.0, args.pixels)
    raw_flux, raw_ivar = spectra_on_grid(grid, args.n, 0)
    start = time.perf_counter()
    flux, ivar = normalise(raw_flux, raw_ivar, grid)
    prep = args.n / (time.perf_counter() - start)
    print(f"grid {args.pixels} pixels, {args.n} spectra; continuum normalisation "
          f"{prep:,.0f} spectra/s (CPU, numpy)")
    ae_config, label_config = profile_configs(args.profile)
    channels = tuple(args.channels or ae_config.channels)
    members = args.members or label_config.members
    ae = SpectrumAutoencoder(args.pixels, args.latent_dim, channels=channels)
    labels = LabelEnsemble([LabelCNN(args.pixels, 4, channels=channels)
                            for _ in range(members)])
    print(f"profile {args.profile}: convolution channels {channels}, {members} label members")
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available()
                                       else [])
    rates: dict[tuple[str, str, int], float] = {}
    for device in devices:
        n = args.n if device.type == "cuda" else min(args.n, args.cpu_n)
        for batch in args.batch_sizes:
            t = timed(lambda d=device, b=batch, k=n: encode_means(ae.to(d), flux[:k],
                                                                  ivar[:k], None, d, b))
            rates[("encode", device.type, batch)] = n / t
            t = timed(lambda d=device, b=batch, k=n: predict_arrays(labels.to(d), flux[:k],
                                                                    ivar[:k], None, d, b))
            rates[("labels", device.type, batch)] = n / t
    print(f"{'model':<8}{'device':<8}{'batch':>7}{'spectra/s':>14}{'vs CPU':>9}")
    for (model, dev, batch), rate in rates.items():
        base = rates[(model, "cpu", batch)]
        print(f"{model:<8}{dev:<8}{batch:>7}{rate:>14,.0f}{rate / base:>8.1f}x")
    for batch in args.batch_sizes:  # the three steps run one after the other per chunk
        chain = 1 / (1 / prep + 1 / rates[("encode", "cpu", batch)]
                     + 1 / rates[("labels", "cpu", batch)])
        print(f"CPU pipeline, normalise + encode + labels, batch {batch}: {chain:,.0f} "
              f"spectra/s ({torch.get_num_threads()} threads)")


def end_to_end(args) -> None:
    import shutil

    from ml.archive_reader import grid_preparers
    from ml.infer import forget, infer
    from ml.synth import write_archive
    from ml.training_runs import train_autoencoder_run, train_label_run
    from vo_service.archive.ingest import Ingester, expand_paths
    from vo_service.archive.reference_labels import attach
    from vo_service.config import load_settings
    from vo_service.db.database import Database

    ae_config, label_config = profile_configs(args.profile, latent_dim=args.latent_dim,
                                              epochs=2)
    with tempfile.TemporaryDirectory(prefix="latentvo-bench-ml-") as tmp:
        home = Path(tmp)
        # as root the embedded PostgreSQL runs as another user, which must traverse the
        # folder above LATENTVO_HOME (mkdtemp makes it private)
        home.chmod(0o755)
        write_archive(home / "archive", n=2 * args.n_db, seed=3, progress=False)
        files = expand_paths([str(home / "archive")])
        old, new = files[::2], files[1::2]  # the archive at training time; spectra to come
        settings = load_settings({"LATENTVO_HOME": str(home / "home")})
        database = Database(settings)
        database.upgrade()
        try:
            engine = database.engine
            tick = time.perf_counter()
            Ingester(engine, settings).run(old)
            ingest_plain = len(old) / (time.perf_counter() - tick)
            attach(engine, home / "archive" / "reference_labels.csv", "ref")
            train_autoencoder_run(engine, settings, model_id="ae", progress=False,
                                  config=ae_config, n_pixels=args.pixels)
            train_label_run(engine, settings, label_set="ref", autoencoder_id="ae",
                            model_id="labels", progress=False,
                            config=replace(label_config, epochs=2,
                                           members=args.members or label_config.members))
            print(f"\nprofile {args.profile} ({args.members or label_config.members} label "
                  f"members), both models, {args.n_db} spectra per run, CPU "
                  f"({torch.get_num_threads()} torch threads), {load_average()}")
            print(f"{'run':<22}{'jobs':<10}{'e2e/s':>8}{'busy/s':>8}{'latent rows/s':>15}"
                  f"{'label rows/s':>14}{'all rows/s':>12}  (targets 2,000 and 20,000)")

            def run(name: str, joint: bool = True, limit: int | None = None) -> float:
                """Both models over the pending spectra; returns spectra/s end to end.

                joint: the label model first, storing the vectors it encodes, then the
                autoencoder (which finds nothing left); separate: the autoencoder first,
                then the label model reading its stored vectors (the baseline).
                """
                order = ("labels", "ae") if joint else ("ae", "labels")
                reports = {m: infer(engine, settings, m, limit=limit) for m in order}
                ae, lab = reports["ae"], reports["labels"]
                n = lab.written
                busy = sum(r.phases["model"] + r.phases["write"] for r in reports.values())
                total = sum(r.seconds for r in reports.values())
                rows = ae.written + lab.written + lab.vectors_written
                writing = sum(r.phases["write"] for r in reports.values())
                per_table = ("-", "-") if joint else (f"{ae.rate('write'):,.0f}",
                                                      f"{lab.rate('write'):,.0f}")
                print(f"{name:<22}{'joint' if joint else 'separate':<10}{n / total:>8,.0f}"
                      f"{n / busy:>8,.0f}{per_table[0]:>15}{per_table[1]:>14}"
                      f"{rows / writing:>12,.0f}")
                for model_id in order:
                    print(f"    {reports[model_id].summary()}")
                return n / total

            def forget_all() -> None:
                for model_id in ("labels", "ae"):
                    forget(engine, model_id)

            for rep in range(args.repeat):
                rates = []
                for joint in (False, True):
                    forget_all()
                    rates.append(run(f"cache -> rows #{rep + 1}", joint))
                print(f"    joint / separate, end to end: {rates[1] / rates[0]:.2f}x")
            # New files after training: ingest preprocesses them for the models' grids,
            # so their inference reads the cache, not the files.
            tick = time.perf_counter()
            ingested = Ingester(engine, settings,
                                preparers=grid_preparers(engine, settings)).run(new)
            ingest_prepared = len(new) / (time.perf_counter() - tick)
            run("new: ingested -> rows")
            forget_all()
            shutil.rmtree(settings.home / "cache", ignore_errors=True)
            # separate jobs: a limited autoencoder run after a joint one would pick the
            # other half
            run("files -> rows", joint=False, limit=args.n_db)  # reads the files
            print("e2e: both infer jobs' wall time (preflight, load, model, COPY, index); "
                  "busy: their model + COPY phases only; all rows/s: rows of both tables "
                  "over the COPY phases (a joint run writes both tables in one phase)")
            print(f"ingest of the new files with preprocessing for the models' grid: "
                  f"{ingest_prepared:,.0f} files/s ({ingested.preprocessed} preprocessed), "
                  f"plain ingest of as many before training: {ingest_plain:,.0f} files/s "
                  f"(ratio {ingest_prepared / ingest_plain:.2f}); {load_average()}")
        finally:
            database.dispose()
            database.embedded.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--no-db", action="store_true", help="model-only throughput")
    parser.add_argument("--n", type=int, default=20000, help="spectra for model-only timing")
    parser.add_argument("--cpu-n", type=int, default=4000, help="at most this many on CPU")
    parser.add_argument("--n-db", type=int, default=2000,
                        help="spectra per inference run (the archive has twice as many)")
    parser.add_argument("--pixels", type=int, default=4096)
    parser.add_argument("--latent-dim", type=int, default=12)
    parser.add_argument("--profile", default="default", help="model sizes (ml.profiles)")
    parser.add_argument("--members", type=int, default=0,
                        help="label members (default: the profile's)")
    parser.add_argument("--channels", type=int, nargs="+", default=None,
                        help="convolution widths (model-only mode; default: the profile's)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 256, 4096])
    parser.add_argument("--repeat", type=int, default=2,
                        help="end-to-end repetitions from the preprocessed cache")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, CUDA: "
          f"{torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none'}, "
          f"CPU threads {torch.get_num_threads()}, {load_average()}")
    model_only(args)
    if not args.no_db:
        end_to_end(args)


if __name__ == "__main__":
    main()
