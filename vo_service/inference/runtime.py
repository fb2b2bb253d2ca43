"""A registered autoencoder (and its label model) run in the web process, without torch.

``latentvo ml export-onnx`` (also run at registration, ``ml.onnx_export``) leaves the
networks as ONNX graphs next to the artifact; this module loads them with ONNX
Runtime and does around them what ``latentvo ml infer`` does in torch: the same
preprocessing (``ml.preprocess``, numpy), the RV measurement and rest-frame shift
(``vo_service.inference.rv``), the conditioning on the resolving power, the label
scaling, the S/N-dependent calibration (``ml.sigma_calibration``, on the S/N of
``ml.snr``) and the domain flag (``vo_service.inference.domain``). So an uploaded copy
of an archive file lands on that file's stored vector, labels, errors and flag.

:func:`load_runtime` keeps the last few models per process (``[similar] runtimes``):
opening the graphs costs tens of milliseconds, a request a few.
"""

from __future__ import annotations

import hashlib
import io
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

from ml.preprocess import Grid, preprocess
from ml.sigma_calibration import SigmaCalibration
from ml.snr import spectrum_snr
from schema.tables import AUTOENCODER, LABEL_REGRESSOR, MODEL_RANK
from vo_service.archive.spectrum import Spectrum
from vo_service.config import Settings
from vo_service.dali import DALIError
from vo_service.inference.domain import DomainCheck
from vo_service.inference.rv import shift, to_rest_frame

MANIFEST = "inference.json"  # as ml.onnx_export writes them
ARRAYS = "inference.npz"
FORMAT = 2  # ml.onnx_export.FORMAT: S/N-dependent calibration and domain cuts
POWER_PIVOT = 2500.0  # ml.models.inputs.POWER_PIVOT: resolving power mapped to 0


def network_input(flux: np.ndarray, ivar: np.ndarray) -> np.ndarray:
    """(batch, 2, pixels) float32: [flux - 1, noise sigma clipped to 1] (ml.models.inputs)."""
    good = ivar > 0
    signal = np.where(good, flux - 1.0, 0.0)
    sigma = np.where(good, 1.0 / np.sqrt(np.maximum(ivar, 1.0)), 1.0)
    return np.stack([signal, sigma], axis=1).astype(np.float32)


def conditioning(resolving_power: float | None, n: int, default: float) -> np.ndarray:
    """(n, 1) float32 log(R / 2500); a missing, NaN or non-positive R counts as ``default``."""
    power = default if resolving_power is None or not np.isfinite(resolving_power) \
        or resolving_power <= 0 else float(resolving_power)
    return np.full((n, 1), np.log(np.float32(power) / np.float32(POWER_PIVOT)), np.float32)


class InferenceUnavailable(DALIError):
    """The model cannot be run in the web process (unknown, or not exported): 404."""

    def __init__(self, message: str) -> None:
        super().__init__(f"NotFoundFault: {message}", 404)


@dataclass
class Encoded:
    """One spectrum as the model sees it and where it lands in the latent space."""

    latent: np.ndarray  # (latent_dim,) float32, as stored in latentvo.latent
    flux: np.ndarray  # normalised flux on the model grid (observed frame)
    ivar: np.ndarray
    rv_kms: float
    resolving_power: float | None  # stated by the file; None: the model's default applies
    snr: float  # median S/N (as ingest records it)


@dataclass
class Prediction:
    """A label model's labels for one spectrum; unpacks as ``labels, sigma, in_domain``."""

    labels: dict[str, float]
    sigma: dict[str, float]
    in_domain: bool
    domain_score: float

    def __iter__(self):  # noqa: ANN204 - tuple-like unpacking
        return iter((self.labels, self.sigma, self.in_domain))


class _Exported:
    """The checked files of one model's export: manifest, arrays and graph sessions."""

    def __init__(self, home: Path, row: sa.Row, threads: int) -> None:
        folder = (home / row.artifact_path).parent
        path = folder / MANIFEST
        hint = f"run 'latentvo ml export-onnx {row.model_id}'"
        if not path.is_file():
            raise InferenceUnavailable(f"model {row.model_id} has no exported inference graph "
                                       f"(it was registered before ONNX export); {hint}")
        manifest = json.loads(path.read_text())
        if manifest.get("format") != FORMAT:
            raise InferenceUnavailable(f"the inference graph of model {row.model_id} was "
                                       f"exported by an older version (format "
                                       f"{manifest.get('format')}, this service reads "
                                       f"{FORMAT}); {hint}")
        if manifest.get("artifact_sha256") != row.artifact_sha256:
            raise InferenceUnavailable(f"the inference graph of model {row.model_id} was not "
                                       f"exported from its current artifact; {hint}")
        self.manifest = manifest
        self.config: dict[str, Any] = manifest["config"]
        self.quantities: list[str] = manifest["quantities"]
        blobs = {}
        for name, sha in manifest["files"].items():
            data = (folder / name).read_bytes() if (folder / name).is_file() else b""
            if hashlib.sha256(data).hexdigest() != sha:
                raise InferenceUnavailable(f"inference file {name} of model {row.model_id} is "
                                           f"missing or altered; {hint}")
            blobs[name] = data
        with np.load(io.BytesIO(blobs.pop(ARRAYS))) as arrays:
            self.arrays = {k: arrays[k] for k in arrays.files}
        import onnxruntime  # here: 0.4 s of import that only model-running requests pay

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.sessions = {name.removesuffix(".onnx"): onnxruntime.InferenceSession(
            data, options, providers=["CPUExecutionProvider"]) for name, data in blobs.items()}

    def run(self, graph: str, **feeds: np.ndarray) -> list[np.ndarray]:
        return self.sessions[graph].run(None, feeds)


class ModelRuntime:
    """An autoencoder's encoder and decoder, and its label model's ensemble if exported.

    ``model_id`` is the autoencoder; ``label_model_id`` the label model whose
    :meth:`predict` answers (the one named, or the current one trained on this
    autoencoder), None when there is none with an export.
    """

    def __init__(self, model_id: str, grid: Grid, distance_metric: str | None,
                 autoencoder: _Exported, label_model_id: str | None,
                 labels: _Exported | None) -> None:
        self.model_id = model_id
        self.grid = grid
        self.distance_metric = distance_metric
        self._ae = autoencoder
        self.latent_dim: int = int(autoencoder.config["latent_dim"])
        self.label_model_id = label_model_id
        self._labels = labels
        self._domain = None if labels is None else DomainCheck(labels.arrays,
                                                               labels.manifest["domain"])
        self._calibration = None if labels is None else SigmaCalibration.from_state(
            labels.manifest["calibration"])
        self.quantities: list[str] = [] if labels is None else labels.quantities

    @property
    def information(self) -> np.ndarray:
        """Information (nats) per latent dimension, as the autoencoder recorded it."""
        return self._ae.arrays["information"]

    def encode(self, spectrum: Spectrum) -> Encoded:
        """Preprocess a spectrum onto the grid and encode it as ``ml infer`` does.

        Raises
        ------
        ml.preprocess.PreprocessError
            The spectrum does not cover the grid or has no good pixel on it.
        """
        flux, ivar = preprocess(spectrum, self.grid)
        power = spectrum.meta.resolving_power
        snr = spectrum.meta.snr
        if snr is None or not np.isfinite(snr):
            snr = spectrum.median_snr()
        latent, rv = self.encode_arrays(flux[None], ivar[None], power)
        return Encoded(latent[0], flux, ivar, float(rv[0]),
                       None if power is None else float(power), float(snr))

    def encode_arrays(self, flux: np.ndarray, ivar: np.ndarray,
                      resolving_power: float | None) -> tuple[np.ndarray, np.ndarray]:
        """Latent vectors and RVs (km/s) of preprocessed spectra (rows)."""
        cfg = self._ae.config
        rest_flux, rest_ivar, rv = to_rest_frame(flux, ivar, self._ae.arrays["template"],
                                                 cfg["velocity_step"])
        cond = conditioning(resolving_power, len(flux), cfg["default_power"])
        (mu,) = self._ae.run("encoder", x=network_input(rest_flux, rest_ivar), cond=cond)
        rv_coordinate = (rv / cfg["rv_scale_kms"]).astype(np.float32)[:, None]
        return np.concatenate([mu, rv_coordinate], axis=1), rv

    def decode(self, latents: np.ndarray, resolving_power: float | None = None) -> np.ndarray:
        """Normalised flux (n, pixels) on the grid, in the observed frame of each latent's
        RV coordinate, for full latent vectors (n, latent_dim)."""
        cfg = self._ae.config
        latents = np.asarray(latents, np.float32).reshape(-1, self.latent_dim)
        cond = conditioning(resolving_power, len(latents), cfg["default_power"])
        (rest,) = self._ae.run("decoder", z=np.ascontiguousarray(latents[:, :-1]), cond=cond)
        pixels = -latents[:, -1].astype(np.float64) * cfg["rv_scale_kms"] / cfg["velocity_step"]
        observed, _ = shift(rest, np.ones_like(rest), pixels, 0.0)
        return observed + 1.0

    def predict(self, encoded: Encoded) -> Prediction:
        """Labels, calibrated 1-sigma errors and the domain flag of an encoded spectrum.

        Raises
        ------
        InferenceUnavailable
            No exported label model goes with this autoencoder.
        """
        if self._labels is None or self._domain is None or self._calibration is None:
            raise InferenceUnavailable(f"autoencoder {self.model_id} has no label model with "
                                       "an exported inference graph")
        cfg, arrays = self._labels.config, self._labels.arrays
        rest_flux, rest_ivar, _ = to_rest_frame(encoded.flux[None], encoded.ivar[None],
                                                arrays["template"], cfg["velocity_step"])
        cond = conditioning(encoded.resolving_power, 1, cfg["default_power"])
        mean, var = self._labels.run("labels", x=network_input(rest_flux, rest_ivar), cond=cond)
        snr = spectrum_snr(encoded.flux[None], encoded.ivar[None])  # as ml infer measures it
        sigma = self._calibration.sigma(var, snr) * arrays["label_scale"]
        labels = mean * arrays["label_scale"] + arrays["label_mean"]
        score = self._domain.score(encoded.latent[None].astype(np.float64))
        inside = bool(self._domain.in_domain(score, labels, sigma, snr)[0])
        return Prediction({q: float(labels[0, i]) for i, q in enumerate(self.quantities)},
                          {q: float(sigma[0, i]) for i, q in enumerate(self.quantities)},
                          inside, float(score[0]))


_MODEL_COLUMNS = ("model_id, kind, base_model_id, wavelength_grid, latent_dim, "
                  "distance_metric, artifact_path, artifact_sha256")


def resolve_models(engine: sa.Engine, model_id: str | None) -> tuple[sa.Row, sa.Row | None]:
    """(autoencoder row, label model row or None) for a model id (either kind; None:
    the current autoencoder)."""
    with engine.connect() as conn:
        if model_id is None:
            model_id = conn.scalar(sa.text(
                f"SELECT model_id FROM {MODEL_RANK} WHERE kind = :k AND rank = 1"),
                {"k": AUTOENCODER})
            if model_id is None:
                raise InferenceUnavailable("the service has no autoencoder yet")
        named = conn.execute(sa.text(f"SELECT {_MODEL_COLUMNS} FROM latentvo.models "
                                     "WHERE model_id = :m"), {"m": model_id}).first()
        if named is None:
            raise InferenceUnavailable(f"no model {model_id}")
        row: sa.Row = named
        label_row: sa.Row | None
        if row.kind == LABEL_REGRESSOR:
            label_row = row
            base = conn.execute(sa.text(f"SELECT {_MODEL_COLUMNS} FROM latentvo.models "
                                        "WHERE model_id = :m"), {"m": row.base_model_id}).first()
            if base is None:
                raise InferenceUnavailable(f"the autoencoder of label model {model_id} is gone")
            row = base
        else:
            label_row = conn.execute(sa.text(
                f"SELECT {', '.join('m.' + c for c in _MODEL_COLUMNS.split(', '))} "
                f"FROM latentvo.models AS m JOIN {MODEL_RANK} AS r USING (model_id) "
                "WHERE m.kind = :k AND m.base_model_id = :ae ORDER BY r.rank LIMIT 1"),
                {"k": LABEL_REGRESSOR, "ae": row.model_id}).first()
    return row, label_row


def _stamp(home: Path, row: sa.Row) -> tuple:
    """What identifies a loaded export: the model, its artifact and when its manifest was
    written (a new export replaces the cached runtime)."""
    try:
        written = (home / row.artifact_path).parent.joinpath(MANIFEST).stat().st_mtime_ns
    except OSError:
        written = None
    return row.model_id, row.artifact_sha256, written


_cache: OrderedDict[tuple, ModelRuntime] = OrderedDict()
_lock = threading.Lock()


def load_runtime(settings: Settings, engine: sa.Engine, model_id: str | None) -> ModelRuntime:
    """The runtime of an autoencoder (or of a label model's autoencoder with that label
    model), loaded once per process and kept among the last ``[similar] runtimes``.

    A label model named explicitly must have an export; the current label model of a
    named autoencoder is used when it has one and left out otherwise.

    Raises
    ------
    InferenceUnavailable
        Unknown model, or no (or an outdated) ONNX export: 404 with what to run.
    """
    ae_row, label_row = resolve_models(engine, model_id)
    key = (str(settings.home), _stamp(settings.home, ae_row),
           None if label_row is None else _stamp(settings.home, label_row))
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    threads = settings.similar.inference_threads
    autoencoder = _Exported(settings.home, ae_row, threads)
    labels = None
    if label_row is not None:
        try:
            labels = _Exported(settings.home, label_row, threads)
        except InferenceUnavailable:
            if model_id == label_row.model_id:
                raise
            label_row = None
    runtime = ModelRuntime(ae_row.model_id, Grid.from_json(ae_row.wavelength_grid),
                           ae_row.distance_metric, autoencoder,
                           None if label_row is None else label_row.model_id, labels)
    with _lock:
        _cache[key] = runtime
        while len(_cache) > settings.similar.runtimes:
            _cache.popitem(last=False)
    return runtime
