"""The networks of a registered model as ONNX graphs the web process runs without torch.

The web service must not import torch (~1 s and ~300 MB per worker), yet similarity by
uploaded spectrum and the explorer's sliders need the encoder and decoder per request.
So at registration (and on demand, ``latentvo ml export-onnx``) each network is
exported next to the artifact, under ``models/<id>/``:

* an autoencoder: ``encoder.onnx`` (rest-frame input (b, 2, pixels) + conditioning
  (b, 1) -> posterior means of the learned dimensions) and ``decoder.onnx`` (learned
  dimensions + conditioning -> rest-frame flux minus one);
* a label model: ``labels.onnx`` (the same input -> ensemble mean and total variance,
  standardised).

The arrays around the networks (RV template, label scaling, the domain model's
reference points and archive sample) go into ``inference.npz``; ``inference.json``
holds the label model's calibration and the rest of its domain model as the JSON
states that ``ml.sigma_calibration.SigmaCalibration`` and ``ml.domain_cuts`` read on
both sides, names every file with its SHA-256, the artifact it was made from, and the
largest difference between the ONNX graphs and torch on a check batch, which must stay
below ``TOLERANCE`` or the export fails. The RV measurement and shift around the
networks are reimplemented in numpy on the web side (``vo_service.inference.rv``).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ml.artifacts import load_autoencoder, load_label_model
from ml.errors import MLError
from ml.model_registry import AUTOENCODER, ModelRecord
from ml.models.autoencoder import SpectrumAutoencoder
from ml.models.inputs import network_input

MANIFEST = "inference.json"
ARRAYS = "inference.npz"
FORMAT = 2  # 2: S/N-dependent calibration and domain cuts as JSON states in the manifest
TOLERANCE = 1e-3  # largest |ONNX - torch| accepted on the check batch (normalised flux units)
CHECK_BATCH = 8
OPSET = 17


class _Encoder(torch.nn.Module):
    def __init__(self, model: SpectrumAutoencoder) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        mu, _ = self.model.encode(x, cond)
        return mu


class _Decoder(torch.nn.Module):
    def __init__(self, model: SpectrumAutoencoder) -> None:
        super().__init__()
        self.model = model

    def forward(self, z: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return self.model.decode_rest(z, cond)


def _to_onnx(module: torch.nn.Module, args: tuple[torch.Tensor, ...], inputs: list[str],
             outputs: list[str]) -> bytes:
    buffer = io.BytesIO()
    axes = {name: {0: "batch"} for name in inputs + outputs}
    with warnings.catch_warnings():  # the TorchScript exporter needs no onnxscript
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), args, buffer,  # type: ignore[arg-type]
                          input_names=inputs, output_names=outputs, dynamic_axes=axes,
                          opset_version=OPSET, dynamo=False)
    return buffer.getvalue()


def _max_diff(graph: bytes, feeds: dict[str, torch.Tensor],
              expected: tuple[torch.Tensor, ...]) -> float:
    import onnxruntime

    session = onnxruntime.InferenceSession(graph, providers=["CPUExecutionProvider"])
    got = session.run(None, {k: v.numpy() for k, v in feeds.items()})
    return max(float(np.abs(g - e.numpy()).max()) for g, e in zip(got, expected, strict=True))


def _check_inputs(n_pixels: int, template: torch.Tensor, seed: int = 0
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Network inputs like real rest-frame spectra: the template's lines at several
    depths, noise and a few bad pixels, at resolving powers around the pivot."""
    gen = torch.Generator().manual_seed(seed)
    depth = torch.linspace(0.5, 1.5, CHECK_BATCH)[:, None]
    flux = 1.0 - depth * template[None, :] + 0.01 * torch.randn(CHECK_BATCH, n_pixels,
                                                                generator=gen)
    ivar = torch.full((CHECK_BATCH, n_pixels), 1e4)
    ivar[:, ::97] = 0.0
    power = torch.logspace(3.2, 4.2, CHECK_BATCH)
    return network_input(flux, ivar), torch.log(power / 2500.0)[:, None]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def export_model(home: Path, record: ModelRecord) -> dict:
    """Export the model's networks as ONNX next to its artifact; returns the manifest.

    Raises
    ------
    MLError
        The artifact is missing or altered, or an exported graph differs from torch by
        more than ``TOLERANCE`` on the check batch.
    """
    with torch.no_grad():
        files, manifest = _export(home, record)
    folder = (home / record.artifact_path).parent
    for name, data in files.items():
        _write_atomic(folder / name, data)
    _write_atomic(folder / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True).encode())
    return manifest


def _export(home: Path, record: ModelRecord) -> tuple[dict[str, bytes], dict]:
    """(file name -> bytes, manifest) of the model's export, checked against torch."""
    files: dict[str, bytes] = {}
    diffs: dict[str, float] = {}
    if record.kind == AUTOENCODER:
        model, information = load_autoencoder(home, record)
        n = model.config["n_pixels"]
        x, cond = _check_inputs(n, model.template)
        files["encoder.onnx"] = _to_onnx(_Encoder(model), (x, cond), ["x", "cond"], ["mu"])
        mu = _Encoder(model)(x, cond)
        diffs["encoder"] = _max_diff(files["encoder.onnx"], {"x": x, "cond": cond}, (mu,))
        files["decoder.onnx"] = _to_onnx(_Decoder(model), (mu, cond), ["z", "cond"], ["rest"])
        diffs["decoder"] = _max_diff(files["decoder.onnx"], {"z": mu, "cond": cond},
                                     (model.decode_rest(mu, cond),))
        config = dict(model.config)
        arrays = {"template": model.template.numpy(), "information": information}
        states: dict[str, Any] = {}
        quantities: list[str] = []
    else:
        predictor, domain = load_label_model(home, record)
        ensemble = predictor.ensemble.eval()
        n = ensemble.config["n_pixels"]
        x, cond = _check_inputs(n, ensemble.template)
        files["labels.onnx"] = _to_onnx(ensemble, (x, cond), ["x", "cond"], ["mean", "var"])
        diffs["labels"] = _max_diff(files["labels.onnx"], {"x": x, "cond": cond},
                                    ensemble(x, cond))
        config = {**ensemble.config, **ensemble.frame}
        domain_state = domain.state()
        arrays = {"template": ensemble.template.numpy(), "label_mean": predictor.label_mean,
                  "label_scale": predictor.label_scale,
                  **{f"domain_{k}": v.numpy() for k, v in domain_state.items()
                     if isinstance(v, torch.Tensor)}}
        states = {"calibration": predictor.calibration.state(),
                  "domain": {k: v for k, v in domain_state.items()
                             if not isinstance(v, torch.Tensor)}}
        quantities = list(predictor.quantities)
    worst = max(diffs.values())
    if not worst <= TOLERANCE:
        raise MLError(f"ONNX export of model {record.model_id!r} differs from torch by "
                      f"{worst:.3g} (tolerance {TOLERANCE}); not exported")
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]
    files[ARRAYS] = buffer.getvalue()
    manifest = {"format": FORMAT, "model_id": record.model_id, "kind": record.kind,
                "artifact_sha256": record.artifact_sha256, "config": config,
                "quantities": quantities, "opset": OPSET, **states,
                "files": {name: _sha256(data) for name, data in files.items()},
                "check": {"batch": CHECK_BATCH, "tolerance": TOLERANCE,
                          "max_abs_diff": diffs}}
    return files, manifest
