"""Similarity by uploaded spectrum: end-to-end latency, recall and slider cost at scale.

    python bench/similarity.py [--n 1000000] [--dims 12,128] [--queries 100]
                               [--repeat 100] [--spectra 300] [--home DIR]

What it does, in a fresh LATENTVO_HOME (embedded PostgreSQL) unless --home is given:

1. writes and ingests ``--spectra`` synthetic spectra, trains per dimension in
   ``--dims`` a small autoencoder (``cpu`` profile, its ONNX export included) and a
   label model, and runs ``ml infer`` (real vectors, labels and domain flags);
2. fills the archive up to ``--n`` spectra per model: spectra rows cloned in SQL,
   latent vectors drawn between the real ones (a random point on the segment between
   two real vectors plus Gaussian noise of 0.1 of the per-dimension spread; labels
   interpolated alike, the domain flag of the nearer one),
   loaded by COPY; then the model's HNSW index is built (``schema.latent_index``)
   and the tables analysed;
3. starts ``latentvo serve`` and measures, per dimension:
   (a) p50/p95 of similarity by upload end to end over HTTP (multipart POST of an
       archive file: upload, read, preprocess, encode with ONNX Runtime, search,
       VOTable; K=10) against the same search by ID (GET, stored vector);
   (b) recall@10 of the index search (``vo_service.similar.search.neighbours``, as
       served) against an exact scan, without and with a label filter (TEFF 4500-6500
       and IN_DOMAIN=true), for ``--queries`` query points;
   (c) p50/p95 server time of a slider step: ``runtime.decode`` of a latent vector
       moved along one dimension plus its 10 nearest archive spectra;
4. and, for the first dimension, where the network should run (``docs/explorer.md``):
   the start-up and per-spectrum encode cost in a fresh process with torch (import,
   artifact load, ``encode_means``) and with the ONNX runtime (import, sessions,
   ``encode_arrays``), their resident memory, and the round trip of one spectrum's
   arrays to a worker process through a pipe.

Targets (issue 19): (a) p50 <= 150 ms, (b) recall@10 >= 0.95, (c) p50 <= 50 ms.
Figures are printed; nothing is asserted.
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.serving import service_home, wait_until_up  # noqa: E402

CHUNK = 100_000  # rows per COPY
FILTER = {"teff": (4500.0, 6500.0)}






def _percentiles(seconds: list[float]) -> str:
    ms = np.array(seconds) * 1000
    return f"p50 {np.percentile(ms, 50):.1f} ms, p95 {np.percentile(ms, 95):.1f} ms"


def _archive(database, settings, n_spectra: int) -> Path:
    from ml.synth import write_archive
    from vo_service.archive.ingest import Ingester, expand_paths
    from vo_service.archive.reference_labels import attach

    out = settings.home / "bench-archive"
    start = time.perf_counter()
    write_archive(out, n=n_spectra, seed=19, progress=False, workers=2)
    Ingester(database.engine, settings, workers=2).run(expand_paths([str(out)]))
    attach(database.engine, out / "reference_labels.csv", "bench-labels")
    print(f"{n_spectra} synthetic spectra written and ingested in "
          f"{time.perf_counter() - start:.0f} s")
    return out


def _train(database, settings, dim: int, epochs: int) -> tuple[str, str]:
    from ml.infer import infer
    from ml.profiles import profile_configs
    from ml.train import LabelConfig
    from ml.training_runs import train_autoencoder_run, train_label_run

    ae_id, label_id = f"bench-ae-{dim}", f"bench-labels-{dim}"
    start = time.perf_counter()
    ae_config, _ = profile_configs("cpu", latent_dim=dim, epochs=epochs)
    train_autoencoder_run(database.engine, settings, model_id=ae_id, config=ae_config,
                          seed=1, progress=False)
    train_label_run(database.engine, settings, label_set="bench-labels", autoencoder_id=ae_id,
                    model_id=label_id, config=LabelConfig(epochs=epochs, members=1,
                                                          channels=ae_config.channels),
                    seed=1, progress=False)
    infer(database.engine, settings, label_id)
    print(f"dim {dim}: autoencoder {ae_id} and label model {label_id} trained, exported and "
          f"inferred in {time.perf_counter() - start:.0f} s")
    return ae_id, label_id


def _fill(database, ae_id: str, label_id: str, dim: int, n: int, rng) -> None:
    """Clone spectra rows in SQL and COPY vectors and labels up to ``n`` per model."""
    import sqlalchemy as sa

    from schema.latent_index import drop_index, ensure_index
    from schema.tables import LABEL_QUANTITIES
    from vo_service.db.copy import copy_text

    engine = database.engine
    with engine.connect() as conn:
        real = conn.execute(sa.text(
            "SELECT v.vec::real[] AS vec, l.* FROM latentvo.latent v JOIN latentvo.labels l "
            "USING (spectrum_id) WHERE v.model_id = :ae AND l.model_id = :lm"),
            {"ae": ae_id, "lm": label_id}).mappings().all()
    vectors = np.array([r["vec"] for r in real], np.float32)
    labels = np.array([[r[q] for q in LABEL_QUANTITIES] for r in real])
    errors = np.array([[r[f"{q}_err"] for q in LABEL_QUANTITIES] for r in real])
    missing = n - len(real)
    if missing <= 0:
        return
    start = time.perf_counter()
    with engine.begin() as conn:
        drop_index(conn, ae_id)
        first = conn.scalar(sa.text("SELECT coalesce(max(spectrum_id), 0) FROM "
                                    "latentvo.spectra"))
        conn.execute(sa.text(
            "INSERT INTO latentvo.spectra (obs_publisher_did, obs_id, obs_collection, "
            "target_name, s_ra, s_dec, healpix_index, em_min, em_max, em_res_power, em_xel, "
            "snr, instrument_name, source_format, access_format, access_estsize, file_sha256, "
            "file_name, release, ingested_at) "
            "SELECT replace(t.obs_publisher_did, t.obs_id, :p || g), :p || g, t.obs_collection, "
            "'bench ' || g, t.s_ra, t.s_dec, t.healpix_index, t.em_min, t.em_max, "
            "t.em_res_power, t.em_xel, t.snr, t.instrument_name, t.source_format, "
            "t.access_format, t.access_estsize, md5(:p || g) || md5(g::text), "
            "'bench-' || g, t.release, now() FROM (SELECT * FROM latentvo.spectra "
            "ORDER BY spectrum_id LIMIT 1) AS t, generate_series(1, :n) AS g"),
            {"p": f"BENCH{dim}-", "n": missing})
        ids = np.array(conn.scalars(sa.text(
            "SELECT spectrum_id FROM latentvo.spectra WHERE spectrum_id > :f AND obs_id "
            "LIKE :p ORDER BY spectrum_id"), {"f": first, "p": f"BENCH{dim}-%"}).all())
    spread = vectors.std(axis=0) * 0.1
    in_domain = np.array([r["in_domain"] for r in real])
    for at in range(0, missing, CHUNK):
        part = ids[at:at + CHUNK]
        # a point between two real spectra (a continuum, like a large archive, rather
        # than clumps around the few real ones), plus noise; its labels likewise
        a, b = rng.integers(0, len(real), (2, len(part)))
        w = rng.uniform(0, 1, (len(part), 1)).astype(np.float32)
        vecs = w * vectors[a] + (1 - w) * vectors[b] \
            + rng.normal(0, 1, (len(part), dim)).astype(np.float32) * spread
        lab = w * labels[a] + (1 - w) * labels[b]
        source = np.where(w[:, 0] >= 0.5, a, b)
        inside = in_domain[source]
        latent_buf = io.StringIO("".join(
            f"{sid}\t{ae_id}\t[{','.join(f'{x:.7g}' for x in v)}]\n"
            for sid, v in zip(part.tolist(), vecs.tolist(), strict=True)))
        label_buf = io.StringIO("".join(
            f"{sid}\t{label_id}\t" + "\t".join(f"{lab[i, j]:.6g}\t{errors[source[i], j]:.4g}"
                                               for j in range(len(LABEL_QUANTITIES)))
            + f"\t1.0\t{'t' if inside[i] else 'f'}\n" for i, sid in enumerate(part.tolist())))
        with engine.begin() as conn:
            copy_text(conn, "latentvo.latent", ["spectrum_id", "model_id", "vec"], latent_buf)
            copy_text(conn, "latentvo.labels",
                      ["spectrum_id", "model_id",
                       *[c for q in LABEL_QUANTITIES for c in (q, f"{q}_err")],
                       "domain_score", "in_domain"], label_buf)
    loaded = time.perf_counter() - start
    start = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(sa.text("SET maintenance_work_mem = '2GB'"))
        conn.execute(sa.text("SET max_parallel_maintenance_workers = 2"))
        ensure_index(conn, ae_id, dim, "l2")
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(sa.text(
            "ANALYZE latentvo.spectra, latentvo.latent, latentvo.labels"))
    print(f"dim {dim}: {missing:,} spectra, vectors and labels loaded in {loaded:.0f} s; "
          f"HNSW index built in {time.perf_counter() - start:.0f} s")


def _http(base: str, files: list[bytes], dids: list[str], repeat: int, ae_id: str) -> None:
    import httpx

    with httpx.Client(timeout=120) as client:
        def upload(i: int) -> float:
            t = time.perf_counter()
            r = client.post(f"{base}/similar", data={"K": "10", "MODEL": ae_id},
                            files={"UPLOAD": ("spectrum.fits", files[i % len(files)])})
            assert r.status_code == 200, r.text[:500]
            return time.perf_counter() - t

        def by_id(i: int) -> float:
            t = time.perf_counter()
            r = client.get(f"{base}/similar", params={"ID": dids[i % len(dids)], "K": "10",
                                                      "MODEL": ae_id})
            assert r.status_code == 200, r.text[:500]
            return time.perf_counter() - t

        for i in range(5):  # warm-up: runtime load, connections, caches
            upload(i), by_id(i)
        uploads = [upload(i) for i in range(repeat)]
        ids = [by_id(i) for i in range(repeat)]
    sizes = sorted(len(f) for f in files)
    print(f"  (a) upload end to end (files of {sizes[0] // 1000}-{sizes[-1] // 1000} kB): "
          f"{_percentiles(uploads)}; by ID: {_percentiles(ids)} "
          f"-> {'OK' if np.percentile(uploads, 50) <= 0.150 else 'MISSED'} (p50 <= 150 ms)")


def _recall(database, ae_id: str, label_id: str, dim: int, queries: int, rng) -> None:
    import sqlalchemy as sa

    from vo_service.similar.request import SimilarRequest
    from vo_service.similar.search import neighbours, top_k_filtered_sql, vector_text

    with database.reader_engine.connect() as conn:
        points = np.array(conn.scalars(sa.text(
            "SELECT vec::real[] FROM latentvo.latent TABLESAMPLE SYSTEM (1) "
            "WHERE model_id = :m LIMIT :q"), {"m": ae_id, "q": queries}).all(), np.float32)
    for name, request in (
            ("no filter", SimilarRequest(None, "x", ae_id, 10)),
            ("TEFF 4500-6500 and IN_DOMAIN", SimilarRequest(None, "x", ae_id, 10, FILTER,
                                                           True))):
        recalls, fallbacks, times = [], 0, []
        for point in points:
            with database.reader_engine.connect() as conn:
                t = time.perf_counter()
                rows, exact = neighbours(conn, ae_id, label_id, "l2", dim, point, request)
                times.append(time.perf_counter() - t)
                fallbacks += exact
                conn.rollback()
                sql, args = top_k_filtered_sql(dim, "l2", request, exact=True)
                want = set(conn.scalars(sa.text(f"SELECT spectrum_id FROM ({sql}) AS nn"), {
                    "query": vector_text(point), "model_id": ae_id, "k": 10,
                    "label_model": label_id, **args}).all())
            got = {r.spectrum_id for r in rows}
            recalls.append(len(got & want) / max(1, len(want)))
        mean = float(np.mean(recalls))
        print(f"  (b) recall@10, {name}: {mean:.3f} (min {min(recalls):.2f}; {fallbacks} of "
              f"{len(points)} answered by the exact fallback; search {_percentiles(times)}) "
              f"-> {'OK' if mean >= 0.95 else 'MISSED'} (>= 0.95)")


def _slider(database, settings, ae_id: str, label_id: str, dim: int, repeat: int, rng) -> None:
    import sqlalchemy as sa

    from vo_service.inference.runtime import load_runtime
    from vo_service.similar.request import SimilarRequest
    from vo_service.similar.search import neighbours

    runtime = load_runtime(settings, database.reader_engine, ae_id)
    with database.reader_engine.connect() as conn:
        base = np.array(conn.scalars(sa.text(
            "SELECT vec::real[] FROM latentvo.latent WHERE model_id = :m LIMIT 20"),
            {"m": ae_id}).all(), np.float32)
    request = SimilarRequest(None, "x", ae_id, 10)
    times = []
    for i in range(repeat + 5):
        moved = base[i % len(base)].copy()
        moved[i % (dim - 1)] += rng.uniform(-1, 1)
        t = time.perf_counter()
        flux = runtime.decode(moved[None])
        with database.reader_engine.connect() as conn:
            rows, _ = neighbours(conn, ae_id, label_id, "l2", dim, moved, request)
        if i >= 5:
            times.append(time.perf_counter() - t)
        assert flux.shape == (1, runtime.grid.n_pixels) and len(rows) == 10
    print(f"  (c) slider decode + 10 neighbours (server time, in process): "
          f"{_percentiles(times)} -> "
          f"{'OK' if np.percentile(times, 50) <= 0.050 else 'MISSED'} (p50 <= 50 ms)")


TORCH_PROCESS = """
import json, pickle, sys, time
t = time.perf_counter()
import torch
imported = time.perf_counter() - t
torch.set_num_threads(1)
import numpy as np, psutil
from ml.artifacts import load_autoencoder
from ml.models.autoencoder import encode_means
home, record, flux, ivar = pickle.load(open(sys.argv[1], "rb"))
t = time.perf_counter()
model, _ = load_autoencoder(home, record)
loaded = time.perf_counter() - t
times = []
for _ in range(60):
    t = time.perf_counter()
    encode_means(model, flux[None], ivar[None], None, torch.device("cpu"))
    times.append(time.perf_counter() - t)
print(json.dumps({"import": imported, "load": loaded, "encode": float(np.median(times[10:])),
                  "rss": psutil.Process().memory_info().rss}))
"""
ONNX_PROCESS = """
import json, pickle, sys, time
from types import SimpleNamespace
t = time.perf_counter()
import onnxruntime
from vo_service.inference.runtime import ModelRuntime, _Exported
imported = time.perf_counter() - t
import numpy as np, psutil
home, record, flux, ivar = pickle.load(open(sys.argv[1], "rb"))
row = SimpleNamespace(model_id=record.model_id, artifact_path=record.artifact_path,
                      artifact_sha256=record.artifact_sha256)
t = time.perf_counter()
runtime = ModelRuntime(record.model_id, record.grid, "l2", _Exported(home, row, 1), None, None)
loaded = time.perf_counter() - t
times = []
for _ in range(60):
    t = time.perf_counter()
    runtime.encode_arrays(flux[None], ivar[None], None)
    times.append(time.perf_counter() - t)
print(json.dumps({"import": imported, "load": loaded, "encode": float(np.median(times[10:])),
                  "rss": psutil.Process().memory_info().rss}))
"""


def _echo(conn, dim: int) -> None:
    while (message := conn.recv()) is not None:
        conn.send(np.zeros(dim, np.float32) + message[0][:dim])


def _network_costs(database, settings, ae_id: str, dim: int, path: Path) -> None:
    """Start-up and per-request cost of the encoder with torch and with ONNX Runtime, each
    in a fresh process, and the pipe round trip a worker process would add."""
    import json
    import multiprocessing
    import pickle

    from ml.model_registry import get
    from ml.preprocess import preprocess
    from vo_service.archive.readers import read_spectrum

    record = get(database.engine, ae_id)
    flux, ivar = preprocess(read_spectrum(path), record.grid)
    args = settings.home / "bench-costs.pkl"
    args.write_bytes(pickle.dumps((settings.home, record, flux, ivar)))
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    for name, code in (("torch", TORCH_PROCESS), ("ONNX Runtime", ONNX_PROCESS)):
        t = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", code, str(args)], env=env, cwd=REPO,
                             capture_output=True, text=True, check=True)
        wall = time.perf_counter() - t
        got = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"  {name:12s}: import {got['import'] * 1000:.0f} ms, model load "
              f"{got['load'] * 1000:.0f} ms, encode one spectrum {got['encode'] * 1000:.2f} ms, "
              f"resident {got['rss'] / 2**20:.0f} MiB (process wall {wall:.1f} s)")
    parent, child = multiprocessing.Pipe()
    worker = multiprocessing.get_context("fork").Process(target=_echo, args=(child, dim))
    worker.start()
    times = []
    for _ in range(300):
        t = time.perf_counter()
        parent.send((flux, ivar))
        parent.recv()
        times.append(time.perf_counter() - t)
    parent.send(None)
    worker.join()
    print(f"  pipe round trip of one spectrum's arrays to a worker process: "
          f"{_percentiles(times[20:])}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=1_000_000, help="latent vectors per model")
    p.add_argument("--dims", default="12,128", help="latent dimensions, comma-separated")
    p.add_argument("--queries", type=int, default=100, help="query points of the recall")
    p.add_argument("--repeat", type=int, default=100, help="timed requests per figure")
    p.add_argument("--spectra", type=int, default=300, help="real synthetic spectra")
    p.add_argument("--epochs", type=int, default=5, help="training epochs of each model")
    p.add_argument("--home", help="LATENTVO_HOME to use (default: a fresh temporary one)")
    args = p.parse_args()

    home, port, base = service_home(args.home, "latentvo-sim-")

    import sqlalchemy as sa

    from vo_service.archive.store import FileStore
    from vo_service.config import load_settings
    from vo_service.db.database import Database

    settings = load_settings()
    database = Database(settings)
    database.upgrade()
    rng = np.random.default_rng(5)
    dims = [int(d) for d in args.dims.split(",")]
    _archive(database, settings, args.spectra)
    trained = {dim: _train(database, settings, dim, args.epochs) for dim in dims}
    store = FileStore(settings.store_dir)
    with database.engine.connect() as conn:
        real = conn.execute(sa.text(
            "SELECT obs_publisher_did, file_sha256 FROM latentvo.spectra "
            "ORDER BY spectrum_id LIMIT 50")).all()
    print(f"== where the network runs (model {trained[dims[0]][0]}) ==")
    _network_costs(database, settings, trained[dims[0]][0], dims[0],
                   store.path_for(real[0].file_sha256))
    for dim, (ae_id, label_id) in trained.items():
        _fill(database, ae_id, label_id, dim, args.n, rng)
    files = [store.path_for(r.file_sha256).read_bytes() for r in real]
    dids = [r.obs_publisher_did for r in real]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "vo_service.cli", "serve", "--port",
                             str(port)], env=env, cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_until_up(f"{base}/tap/availability")
        for dim, (ae_id, label_id) in trained.items():
            print(f"== {args.n:,} latent vectors of dimension {dim} (model {ae_id}) ==")
            _http(base, files, dids, args.repeat, ae_id)
            _recall(database, ae_id, label_id, dim, args.queries, rng)
            _slider(database, settings, ae_id, label_id, dim, args.repeat, rng)
    finally:
        proc.terminate()
        proc.wait(30)
        database.dispose()
        if database.embedded is not None:
            database.embedded.stop()
    print(f"(home: {home}; {os.cpu_count()} cores; {args.repeat} timed requests per figure, "
          f"{args.queries} recall queries)")


if __name__ == "__main__":
    main()
