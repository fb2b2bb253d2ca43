"""Inference over the archive: latent vectors or labels for every spectrum not done yet.

The job is idempotent and resumable: it selects only the spectra without a product
row for the model, writes each chunk in one transaction (under a per-model advisory
lock, re-checking for rows another run wrote meanwhile), so a killed run loses only
its current chunk and a repeated run writes nothing. Operator mistakes are found
before anything is written: a missing or altered artifact, vectors of another size
already stored under the model, spectra that do not cover the model's grid (unless
``skip_uncovered``). An autoencoder run finally creates its HNSW index if missing; a
label run does so for its autoencoder's index when it wrote vectors or dropped it.

A label run encodes the spectra whose autoencoder vectors are not stored yet (its
domain score needs them) and stores those vectors as well, in the same transaction as
its labels; so ``infer labels`` alone fills both tables, shifting and loading each
spectrum once, and a following autoencoder run finds nothing to do.

Inserting into an HNSW graph costs several times a bulk build per row, so a run that
adds many vectors to the ones stored (at least a third as many) drops the index first
and builds it again at the end; until then similarity queries on the model scan (same
answers, slower). A run that adds few vectors inserts into the index.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import sqlalchemy as sa
import torch

from ml.archive_reader import ArchiveSpectra, cache_for, select_spectra
from ml.artifacts import load_autoencoder, load_label_model
from ml.device import inference_batch, pick_device
from ml.domain import DomainModel
from ml.errors import MLError
from ml.model_registry import AUTOENCODER, ModelRecord, get
from ml.models.autoencoder import encode_means
from ml.models.inputs import batches, network_input
from ml.models.label_cnn import LabelEnsemble, LabelPredictor
from ml.snr import spectrum_snr
from schema.latent_index import drop_index, ensure_index
from schema.tables import LABEL_VALUES, labels, latent, spectra
from vo_service.archive.store import FileStore
from vo_service.config import Settings
from vo_service.db.copy import copy_rows


@dataclass
class InferReport:
    """Counts and timings of one inference run."""

    model_id: str
    autoencoder_id: str  # whose latent vectors the run reads and writes (itself, or a
    # label model's base)
    written: int = 0  # rows of the model's own table
    # latent vectors written: an autoencoder run's own rows, or those a label run encoded
    # for its domain score and stored under its autoencoder
    vectors_written: int = 0
    already_done: int = 0
    skipped: dict[str, str] = field(default_factory=dict)  # obs_id -> reason
    index: str | None = None
    rebuilt_index: bool = False  # dropped before writing, built again at the end
    seconds: float = 0.0
    # wall seconds per phase: "prepare" (models, preflight), "load" (read + preprocess, or
    # the cache), "model", "write" (COPY), "index" (the similarity index)
    phases: dict[str, float] = field(default_factory=lambda: dict.fromkeys(
        ("prepare", "load", "model", "write", "index"), 0.0))

    def rate(self, phase: str | None = None) -> float:
        """Spectra per second overall, or through one phase alone."""
        seconds = self.seconds if phase is None else self.phases[phase]
        return self.written / seconds if seconds > 0 else 0.0

    def summary(self) -> str:
        """One line for the command line: what was written, how fast, and what was skipped."""
        text = (f"model {self.model_id}: {self.written} spectra written "
                f"({self.rate():,.0f}/s; prepare {self.phases['prepare']:.2f} s, load "
                f"{self.rate('load'):,.0f}/s, model {self.rate('model'):,.0f}/s, write "
                f"{self.rate('write'):,.0f}/s, index {self.phases['index']:.2f} s), "
                f"{self.already_done} already done, {len(self.skipped)} skipped")
        if self.vectors_written and self.autoencoder_id != self.model_id:
            text += (f"; {self.vectors_written} latent vectors of autoencoder "
                     f"{self.autoencoder_id} written too")
        if self.index:
            how = ("built after the writes" if self.rebuilt_index else
                   "updated row by row" if self.vectors_written else "in place")
            text += f"; similarity index {self.index} {how}"
        return text


def _lock_key(model_id: str) -> int:
    return int.from_bytes(hashlib.sha256(f"infer:{model_id}".encode()).digest()[:8], "big",
                          signed=True)


def _pending(conn: sa.Connection, table: sa.Table, model_id: str) -> ArchiveSpectra:
    done = sa.exists().where(table.c.spectrum_id == spectra.c.spectrum_id,
                             table.c.model_id == model_id)
    return select_spectra(conn, ~done)


class _Job:
    """The loaded model(s) of one inference run and how they turn arrays into rows.

    A label run needs its autoencoder's latent vectors for the domain score: it reads
    those already stored and encodes the rest, and writes what it encoded as the
    autoencoder's products too, so a later autoencoder run has nothing left to do. Both
    networks read the same rest-frame spectra (the label model is trained on its
    autoencoder's template), so each spectrum is shifted once per run.
    """

    def __init__(self, settings: Settings, record: ModelRecord, engine: sa.Engine,
                 device: str | None) -> None:
        self.record = record
        self.engine = engine
        self.device = pick_device(device)
        self.predictor: LabelPredictor | None = None  # both set for a label run
        self.domain: DomainModel | None = None
        if record.kind == AUTOENCODER:
            self.autoencoder_record = record
            self.table = latent
        else:
            assert record.base_model_id is not None  # label models name their autoencoder
            self.autoencoder_record = get(engine, record.base_model_id)
            self.predictor, self.domain = load_label_model(settings.home, record)
            self.table = labels
        self.autoencoder, _ = load_autoencoder(settings.home, self.autoencoder_record)
        self.autoencoder.to(self.device).eval()
        if self.predictor is not None:
            ensemble = self.predictor.ensemble.to(self.device).eval()
            if not (torch.equal(ensemble.template, self.autoencoder.template)
                    and ensemble.frame["velocity_step"]
                    == self.autoencoder.config["velocity_step"]):
                raise MLError(f"label model {record.model_id!r} does not use the rest frame "
                              f"of its autoencoder {record.base_model_id!r}; its artifact "
                              "does not belong to that autoencoder")

    def products(self, spectrum_ids: np.ndarray, flux: np.ndarray, ivar: np.ndarray,
                 power: np.ndarray) -> list[tuple[sa.Table, str, list[dict]]]:
        """The rows to write as (table, model id, rows), in the order of their locks: an
        autoencoder run's vectors, or a label run's labels and then the vectors it
        encoded on the way."""
        ae_id = self.autoencoder_record.model_id
        if self.predictor is None or self.domain is None:
            mu = encode_means(self.autoencoder, flux, ivar, power, self.device)
            return [(latent, ae_id, _vector_rows(ae_id, spectrum_ids, mu))]
        mu = np.full((len(spectrum_ids), self.autoencoder.latent_dim), np.nan, np.float32)
        where, stored = _stored_vectors(self.engine, ae_id, spectrum_ids)
        if len(where):
            mu[where] = stored
        encode = np.isnan(mu).any(axis=1)
        mu[encode], mean, var = self._encode_and_predict(self.predictor.ensemble, flux, ivar,
                                                         power, encode)
        snr = spectrum_snr(flux, ivar)
        mean, sigma = self.predictor.physical(mean, var, snr)
        scores = self.domain.score(mu)
        inside = self.domain.in_domain(scores, mean, sigma, snr)
        out = []
        for i, sid in enumerate(spectrum_ids):
            row = {"spectrum_id": int(sid), "model_id": self.record.model_id,
                   "domain_score": float(scores[i]), "in_domain": bool(inside[i])}
            for j, q in enumerate(self.predictor.quantities):
                row[q], row[f"{q}_err"] = float(mean[i, j]), float(sigma[i, j])
            out.append(row)
        return [(labels, self.record.model_id, out),
                (latent, ae_id, _vector_rows(ae_id, spectrum_ids[encode], mu[encode]))]

    def _encode_and_predict(self, ensemble: LabelEnsemble, flux: np.ndarray, ivar: np.ndarray,
                            power: np.ndarray, encode: np.ndarray
                            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Latent means of the ``encode`` rows and standardised label means and variances
        of all rows, both networks reading one rest-frame shift per batch."""
        ae = self.autoencoder
        vectors = [np.zeros((0, ae.latent_dim), np.float32)]
        means, variances = [], []
        with torch.inference_mode():
            for start, f, iv, p in batches(flux, ivar, power, self.device,
                                           inference_batch(self.device)):
                rest_flux, rest_ivar, rv = ae.rest_frame(f, iv)
                x = network_input(rest_flux, rest_ivar)
                rows = torch.as_tensor(encode[start:start + len(f)], device=self.device)
                if rows.any():
                    cond = ae.condition(p, len(f))[rows]
                    vectors.append(ae.latent_from_rest(x[rows], rv[rows], cond).cpu().numpy())
                mean, var = ensemble(x, ensemble.condition(p, len(f)))
                means.append(mean.cpu())
                variances.append(var.cpu())
        return np.concatenate(vectors), torch.cat(means).numpy(), torch.cat(variances).numpy()


def _vector_rows(model_id: str, spectrum_ids: np.ndarray, mu: np.ndarray) -> list[dict]:
    return [{"spectrum_id": int(sid), "model_id": model_id,
             "vec": "[" + ",".join(f"{v:.9g}" for v in vec) + "]"}  # exact float32
            for sid, vec in zip(spectrum_ids, mu, strict=True)]


def _stored_vectors(engine: sa.Engine, model_id: str,
                    spectrum_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(positions in ``spectrum_ids``, vectors) of the vectors stored under the model."""
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT spectrum_id, vec::real[] AS vec FROM latentvo.latent "
            "WHERE model_id = :m AND spectrum_id = ANY(:ids)"),
            {"m": model_id, "ids": spectrum_ids.tolist()}).all()
    if not rows:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    order = np.argsort(spectrum_ids)
    found = np.array([r.spectrum_id for r in rows], dtype=spectrum_ids.dtype)
    where = order[np.searchsorted(spectrum_ids, found, sorter=order)]
    return where, np.array([r.vec for r in rows], dtype=np.float32)


def _vector_counts(conn: sa.Connection, model_id: str,
                   spectrum_ids: np.ndarray) -> tuple[int, int]:
    """(how many of ``spectrum_ids`` lack a vector of the autoencoder, vectors stored)."""
    stored = conn.scalar(sa.text("SELECT count(*) FROM latentvo.latent WHERE model_id = :m"),
                         {"m": model_id})
    present = conn.scalar(sa.text(
        "SELECT count(*) FROM latentvo.latent WHERE model_id = :m "
        "AND spectrum_id = ANY(:ids)"), {"m": model_id, "ids": spectrum_ids.tolist()})
    return len(spectrum_ids) - present, stored


def _check_stored_size(conn: sa.Connection, record: ModelRecord) -> None:
    if record.kind != AUTOENCODER:
        return
    wrong = conn.scalar(sa.text(
        "SELECT count(*) FROM latentvo.latent WHERE model_id = :m AND vector_dims(vec) <> :n"),
        {"m": record.model_id, "n": record.latent_dim})
    if wrong:
        raise MLError(f"{wrong} latent vectors stored under model {record.model_id!r} do not "
                      f"have its {record.latent_dim} dimensions; delete them "
                      "('latentvo ml forget') before inferring again")


def infer(engine: sa.Engine, settings: Settings, model_id: str, *, chunk_size: int = 2048,
          skip_uncovered: bool = False, limit: int | None = None, device: str | None = None,
          progress: Callable[[int], None] | None = None) -> InferReport:
    """Write the model's products for all spectra that lack them (at most ``limit``)."""
    started = time.monotonic()
    record = get(engine, model_id)
    job = _Job(settings, record, engine, device)
    ae_record = job.autoencoder_record
    report = InferReport(model_id, ae_record.model_id)
    with engine.connect() as conn:
        _check_stored_size(conn, ae_record)
        todo = _pending(conn, job.table, model_id)
        report.already_done = conn.execute(
            sa.select(sa.func.count()).select_from(job.table)
            .where(job.table.c.model_id == model_id)).scalar_one()
    covering = todo.covering(record.grid)
    if not covering.all():
        bad = [todo.obs_id[i] for i in np.flatnonzero(~covering)]
        if not skip_uncovered:
            raise MLError(f"{len(bad)} spectra do not cover the grid of model {model_id!r} "
                          f"({record.grid.requirement()}), e.g. "
                          f"{', '.join(bad[:3])}; nothing written (use --skip-uncovered to "
                          "leave them out)")
        report.skipped.update({o: "does not cover the model's wavelength grid" for o in bad})
        todo = todo.subset(np.flatnonzero(covering))
    if limit is not None:
        todo = todo.subset(np.arange(min(limit, len(todo))))
    if record.kind == AUTOENCODER:  # every pending spectrum lacks a vector
        new_vectors, stored_vectors = len(todo), report.already_done
    else:
        with engine.connect() as conn:
            new_vectors, stored_vectors = _vector_counts(conn, ae_record.model_id,
                                                         todo.spectrum_id)
    if new_vectors and 3 * new_vectors >= stored_vectors:
        report.rebuilt_index = _drop_index_if_free(engine, ae_record.model_id)
    cache = cache_for(settings, record.grid)
    store = FileStore(settings.store_dir)
    report.phases["prepare"] = time.monotonic() - started
    for start in range(0, len(todo), chunk_size):
        chunk = todo.subset(np.arange(start, min(start + chunk_size, len(todo))))
        tick = time.monotonic()
        loaded = cache.load(chunk.file_sha256, store.path_for, keep=False)
        tick = _lap(report, "load", tick)
        for i in np.flatnonzero(~loaded.ok):
            report.skipped[chunk.obs_id[i]] = loaded.errors.get(chunk.file_sha256[i],
                                                                "unreadable")
        ok = np.flatnonzero(loaded.ok)
        if len(ok):
            parts = job.products(chunk.spectrum_id[ok], loaded.flux[ok], loaded.ivar[ok],
                                 loaded.resolving_power[ok])
            tick = _lap(report, "model", tick)
            written = _write(engine, parts)
            report.written += written[0]
            report.vectors_written += written[-1]  # the latent part comes last
            _lap(report, "write", tick)
        if progress:
            progress(len(chunk))
    if record.kind == AUTOENCODER or report.vectors_written or report.rebuilt_index:
        tick = time.monotonic()
        assert ae_record.latent_dim is not None  # every autoencoder has one
        with engine.begin() as conn:
            report.index = ensure_index(conn, ae_record.model_id, ae_record.latent_dim,
                                        ae_record.distance_metric or "l2")
        _lap(report, "index", tick)
    report.seconds = time.monotonic() - started
    return report


REBUILD_LOCK_WAIT = "10s"
LOCK_NOT_AVAILABLE = "55P03"  # SQLSTATE of an expired lock_timeout


def _drop_index_if_free(engine: sa.Engine, model_id: str) -> bool:
    """Drop the model's index unless queries keep it busy (then the run inserts into it).

    Rebuilding pays when the new rows are at least a third of the stored ones: on the
    2-core machine pgvector inserted ~2,600 rows/s into an existing index against
    ~10,000 rows/s for a bulk build (bench/ml_throughput.py, "new" run).
    """
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f"SET LOCAL lock_timeout = '{REBUILD_LOCK_WAIT}'"))
            drop_index(conn, model_id)
    except sa.exc.OperationalError as exc:
        if getattr(exc.orig, "pgcode", None) != LOCK_NOT_AVAILABLE:
            raise
        return False
    return True


def _lap(report: InferReport, phase: str, since: float) -> float:
    now = time.monotonic()
    report.phases[phase] += now - since
    return now


def _write(engine: sa.Engine, parts: list[tuple[sa.Table, str, list[dict]]]) -> list[int]:
    """COPY one chunk's rows of each (table, model) in one transaction, leaving out rows
    another run wrote meanwhile; returns the rows written per part.

    The per-model advisory locks are taken in the order given, a label model's before
    its autoencoder's, and an autoencoder run takes only its own, so runs never wait on
    each other in a cycle.
    """
    if not any(rows for _, _, rows in parts):
        return [0] * len(parts)
    written = []
    with engine.begin() as conn:
        for table, model_id, rows in parts:
            if not rows:
                written.append(0)
                continue
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_lock_key(model_id))))
            present = set(conn.scalars(sa.select(table.c.spectrum_id).where(
                table.c.model_id == model_id,
                table.c.spectrum_id.in_([r["spectrum_id"] for r in rows]))))
            fresh = [r for r in rows if r["spectrum_id"] not in present]
            columns = (["spectrum_id", "model_id", "vec"] if table is latent else
                       ["spectrum_id", "model_id", *LABEL_VALUES])
            written.append(copy_rows(conn, table, columns, fresh))
    return written


def forget(engine: sa.Engine, model_id: str) -> int:
    """Delete a model's latent vectors or labels and its similarity index (keeps the model)."""
    record = get(engine, model_id)
    table = latent if record.kind == AUTOENCODER else labels
    with engine.begin() as conn:
        drop_index(conn, model_id)
        return conn.execute(table.delete().where(table.c.model_id == model_id)).rowcount
