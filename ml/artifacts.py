"""What a model artifact holds and how it becomes a usable model again.

Payloads contain only tensors, numbers, strings, lists and dicts, so they load with
``torch.load(weights_only=True)`` (no pickled code runs when a model is loaded).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ml.calibration import SigmaCalibration
from ml.domain import DomainModel
from ml.errors import MLError
from ml.model_registry import AUTOENCODER, LABEL_REGRESSOR, ModelRecord, load_artifact
from ml.models.autoencoder import SpectrumAutoencoder
from ml.models.label_cnn import LabelCNN, LabelEnsemble, LabelPredictor
from ml.train import TrainedAutoencoder, TrainedLabelModel


def autoencoder_payload(trained: TrainedAutoencoder) -> dict:
    """What the artifact of a trained autoencoder holds (see the module notes)."""
    return {"kind": AUTOENCODER, "config": trained.model.config,
            "state_dict": trained.model.state_dict(),
            "information": torch.as_tensor(trained.information)}


def label_payload(trained: TrainedLabelModel, domain: DomainModel) -> dict:
    """What the artifact of a trained label model holds: the ensemble, its frame,
    label scaling, error calibration and the domain model that flags its predictions.
    """
    p = trained.predictor
    return {"kind": LABEL_REGRESSOR, "config": p.ensemble.config,
            "frame": dict(p.ensemble.frame), "template": p.ensemble.template.clone(),
            "members": [m.state_dict() for m in p.ensemble.members],
            "quantities": list(p.quantities), "label_mean": torch.as_tensor(p.label_mean),
            "label_scale": torch.as_tensor(p.label_scale),
            "calibration": p.calibration.state(), "domain": domain.state()}


def _payload(home: Path, record: ModelRecord, kind: str) -> dict:
    if record.kind != kind:
        raise MLError(f"model {record.model_id!r} is a {record.kind}, not a {kind}")
    payload = load_artifact(home, record)
    if payload.get("kind") != kind:
        raise MLError(f"artifact of model {record.model_id!r} does not hold a {kind}")
    return payload


def load_autoencoder(home: Path, record: ModelRecord) -> tuple[SpectrumAutoencoder, np.ndarray]:
    """The network and its per-dimension information (nats)."""
    payload = _payload(home, record, AUTOENCODER)
    config = payload["config"]
    if config["latent_dim"] != record.latent_dim:
        raise MLError(f"artifact of model {record.model_id!r} has {config['latent_dim']} "
                      f"latent dimensions, the registry says {record.latent_dim}")
    model = SpectrumAutoencoder(config["n_pixels"], config["latent_dim"],
                                tuple(config["channels"]), config["hidden"],
                                config["velocity_step"], config["rv_scale_kms"],
                                config["default_power"], config["guided"])
    model.load_state_dict(payload["state_dict"])
    return model.eval(), payload["information"].numpy()


def load_label_model(home: Path, record: ModelRecord) -> tuple[LabelPredictor, DomainModel]:
    """The label predictor of a registered label model and its domain model.

    Raises
    ------
    MLError
        The record is not a label model, its artifact does not match it, or it was
        trained before the domain model had its coverage test.
    """
    payload = _payload(home, record, LABEL_REGRESSOR)
    config = payload["config"]
    members = []
    for state in payload["members"]:
        member = LabelCNN(config["n_pixels"], config["n_labels"], tuple(config["channels"]),
                          config["hidden"])
        member.load_state_dict(state)
        members.append(member.eval())
    ensemble = LabelEnsemble(members, payload["frame"]["velocity_step"],
                             payload["frame"]["default_power"])
    ensemble.template.copy_(payload["template"])
    predictor = LabelPredictor(ensemble, list(payload["quantities"]),
                               payload["label_mean"].numpy(), payload["label_scale"].numpy(),
                               SigmaCalibration.from_state(payload["calibration"]))
    if "population" not in payload["domain"]:
        raise MLError(f"label model {record.model_id} predates the domain coverage test; "
                      "train it again ('latentvo ml train-labels')")
    return predictor, DomainModel.from_state(payload["domain"])
