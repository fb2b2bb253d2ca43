"""The model registry: artifacts on disk plus one provenance row per model.

An artifact (weights, grid, normalisation, calibration, domain sample) is written
under ``LATENTVO_HOME/models/<model_id>/`` atomically, then registered in
``latentvo.models`` with its SHA-256; loading checks that checksum, so a model
that was moved, truncated or replaced is refused instead of silently used.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from dataclasses import dataclass
from datetime import datetime
from importlib import metadata
from pathlib import Path

import sqlalchemy as sa

from ml.errors import MLError
from ml.preprocess import Grid
from schema.tables import AUTOENCODER as AUTOENCODER  # the kinds are declared with the
from schema.tables import LABEL_REGRESSOR as LABEL_REGRESSOR  # table; ml imports them here
from schema.tables import models

MODEL_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


@dataclass
class ModelRecord:
    """One row of the model registry (the published ``models`` table): what a model is, what it
    was trained on and where its artifact lies.

    The row is the model's provenance: training selection and checksum, seed, code
    version and hyper-parameters, enough to train the same model again.
    """

    model_id: str
    kind: str
    architecture: dict
    hyperparameters: dict
    latent_dim: int | None
    grid: Grid
    training_selection: str
    training_checksum: str
    training_size: int
    reference_label_source: str | None
    base_model_id: str | None
    code_version: str
    random_seed: int
    metrics: dict
    distance_metric: str | None
    artifact_path: str
    artifact_sha256: str
    created_at: datetime | None = None

    def row(self) -> dict:
        """The record as column values for an INSERT (JSON columns as text)."""
        return {
            "model_id": self.model_id, "kind": self.kind,
            "architecture": json.dumps(self.architecture, sort_keys=True),
            "hyperparameters": json.dumps(self.hyperparameters, sort_keys=True),
            "latent_dim": self.latent_dim, "wavelength_grid": self.grid.to_json(),
            "training_selection": self.training_selection,
            "training_checksum": self.training_checksum, "training_size": self.training_size,
            "reference_label_source": self.reference_label_source,
            "base_model_id": self.base_model_id, "code_version": self.code_version,
            "random_seed": self.random_seed, "metrics": json.dumps(self.metrics, sort_keys=True),
            "distance_metric": self.distance_metric, "artifact_path": self.artifact_path,
            "artifact_sha256": self.artifact_sha256,
        }

    @classmethod
    def from_row(cls, row: dict) -> ModelRecord:
        """The record of a registry row, as :meth:`row` wrote it."""
        return cls(
            model_id=row["model_id"], kind=row["kind"],
            architecture=json.loads(row["architecture"]),
            hyperparameters=json.loads(row["hyperparameters"]), latent_dim=row["latent_dim"],
            grid=Grid.from_json(row["wavelength_grid"]),
            training_selection=row["training_selection"],
            training_checksum=row["training_checksum"], training_size=row["training_size"],
            reference_label_source=row["reference_label_source"],
            base_model_id=row["base_model_id"], code_version=row["code_version"],
            random_seed=row["random_seed"], metrics=json.loads(row["metrics"]),
            distance_metric=row["distance_metric"], artifact_path=row["artifact_path"],
            artifact_sha256=row["artifact_sha256"], created_at=row["created_at"])


def code_version() -> str:
    """Installed latentvo version, recorded with each model; ``0+unknown`` from a bare checkout."""
    try:
        return metadata.version("latentvo")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def check_model_id(model_id: str) -> str:
    """Return ``model_id`` if it may name a model (file and URL safe), else raise MLError."""
    if not MODEL_ID_PATTERN.match(model_id):
        raise MLError(f"invalid model id {model_id!r}: use up to 63 letters, digits, '.', '_' "
                      "or '-', starting with a letter or digit")
    return model_id


def default_model_id(prefix: str) -> str:
    """A fresh model id, ``<prefix>-<local time>``, for runs that name none."""
    return f"{prefix}-{datetime.now().strftime('%Y%m%dT%H%M%S')}"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def save_artifact(home: Path, model_id: str, payload: dict) -> tuple[str, str]:
    """Write the artifact atomically; returns (path relative to home, sha256)."""
    import torch  # here, not at the top: ingest reads the registry and needs no torch

    relative = Path("models") / model_id / "model.pt"
    target = home / relative
    if target.exists():
        raise MLError(f"an artifact for model {model_id!r} already exists at {target}")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".model.pt.{os.getpid()}.tmp")
    torch.save(payload, tmp)
    os.replace(tmp, target)
    return relative.as_posix(), _sha256(target)


def register(engine: sa.Engine, home: Path, record: ModelRecord) -> None:
    """Insert the registry row; on failure remove the artifact so nothing dangles."""
    try:
        with engine.begin() as conn:
            if conn.scalar(sa.select(models.c.model_id).where(
                    models.c.model_id == record.model_id)):
                raise MLError(f"model {record.model_id!r} is already registered; choose "
                              "another --model-id")
            conn.execute(models.insert().values(**record.row()))
    except BaseException:
        shutil.rmtree((home / record.artifact_path).parent, ignore_errors=True)
        raise


def ensure_new(engine: sa.Engine, model_id: str) -> str:
    """Refuse an id that is taken (checked before training, so no time is wasted)."""
    check_model_id(model_id)
    with engine.connect() as conn:
        if conn.scalar(sa.select(models.c.model_id).where(models.c.model_id == model_id)):
            raise MLError(f"model {model_id!r} is already registered; choose another "
                          "--model-id")
    return model_id


def get(engine: sa.Engine, model_id: str) -> ModelRecord:
    """The registered model ``model_id``; MLError when there is none."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(models).where(models.c.model_id == model_id)) \
            .mappings().first()
    if row is None:
        raise MLError(f"no model {model_id!r} in the registry (see 'latentvo ml list')")
    return ModelRecord.from_row(dict(row))


def list_models(engine: sa.Engine) -> list[ModelRecord]:
    """Every registered model, oldest first."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(models).order_by(models.c.created_at)).mappings().all()
    return [ModelRecord.from_row(dict(r)) for r in rows]


def model_grids(engine: sa.Engine) -> list[Grid]:
    """The distinct wavelength grids of the registered models (what ingest preprocesses for)."""
    with engine.connect() as conn:
        texts = conn.scalars(sa.select(models.c.wavelength_grid).distinct()).all()
    return list(dict.fromkeys(Grid.from_json(t) for t in texts if t))


def load_artifact(home: Path, record: ModelRecord) -> dict:
    """The artifact's payload after checking it exists and matches its checksum."""
    path = home / record.artifact_path
    if not path.is_file():
        raise MLError(f"artifact of model {record.model_id!r} is missing: {path}")
    sha = _sha256(path)
    if sha != record.artifact_sha256:
        raise MLError(f"artifact of model {record.model_id!r} at {path} has checksum "
                      f"{sha[:12]}..., the registry says {record.artifact_sha256[:12]}...; "
                      "it was changed after training")
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)
