"""The explorer page's answers: spectra with their reconstructions, decoded latent points
with their nearest archive spectra, and decoded spectra as Spectrum DM VOTables.

The networks run in this (web) process through the torch-free inference runtime
(:mod:`vo_service.inference.runtime`, which keeps the last ``[similar] runtimes`` models
loaded): a spectrum is encoded exactly as ingest and inference prepare it (same grid,
RV and normalisation) and a latent point is decoded at the resolving power of the
spectrum it started from.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sqlalchemy as sa

from vo_service.archive.spectrum import Spectrum, SpectrumMeta
from vo_service.archive.store import FileStore
from vo_service.config import ExploreSettings, Settings
from vo_service.dali import DALIError, Params
from vo_service.explore import queries
from vo_service.getdata.convert import ConversionError, convert, read_stored
from vo_service.inference.runtime import ModelRuntime, load_runtime

LATENT_BOUND = 1e6
"""Largest latent coordinate a decode request may give (the archive's lie within a few
units; pgvector's float4 overflows near 3e38)."""
NOISE_FREE_IVAR = 1e20
"""Inverse variance written for decoded pixels: a decoded spectrum has no noise, and the
Spectrum DM writer marks pixels of zero (or infinite) inverse variance as bad."""


@dataclass(frozen=True)
class DecodeRequest:
    """Latent points to decode (``LATENT``, comma-separated, repeatable) at one resolving
    power (``RESOLVING_POWER``; the model's own conditioning when absent)."""

    model: queries.ExploredModel
    latents: np.ndarray  # (n, latent_dim)
    resolving_power: float | None


def _finite_list(values: np.ndarray) -> list[float | None]:
    """JSON numbers, with None for NaN and infinities (JSON has neither)."""
    return [float(v) if np.isfinite(v) else None for v in values]


class Explorer:
    """The explorer's work on one database (read-only role) and file store."""

    def __init__(self, settings: Settings, engine: sa.Engine, store: FileStore) -> None:
        self.settings = settings
        self.limits: ExploreSettings = settings.explore
        self.engine = engine
        self.store = store

    # -- parameters ------------------------------------------------------------------

    def model(self, params: Params) -> queries.ExploredModel:
        """The autoencoder named by ``MODEL`` (the current one when absent)."""
        return queries.explored_model(self.engine, (params.single("MODEL") or "").strip()
                                      or None)

    def decode_request(self, params: Params) -> DecodeRequest:
        """The points of a decode request; 400 DALIError when malformed or too many."""
        model = self.model(params)
        texts = params.all("LATENT")
        if not texts:
            raise DALIError("LATENT is missing: give a latent vector as comma-separated "
                            f"numbers ({model.latent_dim} of them)")
        if len(texts) > self.limits.decode_batch:
            raise DALIError(f"{len(texts)} LATENT vectors exceed this service's limit of "
                            f"{self.limits.decode_batch} per request")
        try:
            latents = np.array([[float(v) for v in t.split(",")] for t in texts])
        except ValueError:
            raise DALIError("LATENT must be comma-separated numbers") from None
        if latents.shape[1] != model.latent_dim or not (np.abs(latents) <= LATENT_BOUND).all():
            raise DALIError(f"LATENT must have {model.latent_dim} numbers between "
                            f"-{LATENT_BOUND:g} and {LATENT_BOUND:g} for model {model.model_id}")
        text = params.single("RESOLVING_POWER")
        try:
            power = float(text) if text not in (None, "") else None
        except ValueError:
            raise DALIError(f"RESOLVING_POWER must be a number, got {text!r}") from None
        if power is not None and not (np.isfinite(power) and power > 0):
            raise DALIError(f"RESOLVING_POWER must be a positive number, got {text!r}")
        return DecodeRequest(model, latents, power)

    # -- answers ---------------------------------------------------------------------

    def runtime(self, model_id: str) -> ModelRuntime:
        """The loaded runtime of ``model_id`` (404 DALIError without an ONNX export)."""
        return load_runtime(self.settings, self.engine, model_id)

    def model_description(self, model: queries.ExploredModel) -> dict[str, object]:
        """The model, its wavelength grid and one slider per informative dimension."""
        runtime = self.runtime(model.model_id)
        return {"model_id": model.model_id, "latent_dim": model.latent_dim,
                "metric": model.metric, "label_model": model.label_model,
                "wavelength": _finite_list(np.asarray(runtime.grid.wavelength)),
                "wavelength_unit": "Angstrom", "wavelength_frame": "vacuum",
                "dimensions": queries.dimensions(self.engine, model)}

    def spectrum_view(self, model: queries.ExploredModel, did: str) -> dict[str, object]:
        """The spectrum ``did`` on the model grid (normalised flux and its error), the
        reconstruction of its stored latent vector, the residuals and its neighbours."""
        row = queries.spectrum(self.engine, model, did)
        try:
            observed = read_stored(self.store.path_for(row.file_sha256))
        except ConversionError as exc:
            raise DALIError(f"NotFoundFault: spectrum {did}: {exc}", 404) from None
        runtime = self.runtime(model.model_id)
        encoded = runtime.encode(observed)
        reconstruction = runtime.decode(row.vector[None, :], encoded.resolving_power)[0]
        flux = np.asarray(encoded.flux, dtype=float)
        ivar = np.asarray(encoded.ivar, dtype=float)
        error = np.where(ivar > 0, 1 / np.sqrt(np.where(ivar > 0, ivar, 1)), np.nan)
        residual = np.where(ivar > 0, flux - reconstruction, np.nan)
        k = self.limits.neighbours
        others = [n for n in queries.nearest(self.engine, model, row.vector, k + 1)
                  if n["did"] != did][:k]
        return {"did": row.did, "target_name": row.target_name, "labels": row.labels,
                "latent": _finite_list(row.vector),
                "resolving_power": encoded.resolving_power, "snr": encoded.snr,
                "rv_kms": encoded.rv_kms, "flux": _finite_list(np.where(ivar > 0, flux, np.nan)),
                "error": _finite_list(error), "reconstruction": _finite_list(reconstruction),
                "residual": _finite_list(residual), "neighbours": others}

    def decode(self, request: DecodeRequest) -> list[dict[str, object]]:
        """Each point's decoded spectrum and its nearest archive spectra."""
        fluxes = self.runtime(request.model.model_id).decode(
            request.latents.astype(np.float32), request.resolving_power)
        return [{"flux": _finite_list(np.asarray(f)),
                 "neighbours": queries.nearest(self.engine, request.model, z,
                                               self.limits.neighbours)}
                for z, f in zip(request.latents, fluxes, strict=True)]

    def decoded_votable(self, request: DecodeRequest) -> bytes:
        """The first point's decoded spectrum as an IVOA Spectrum DM VOTable (normalised,
        dimensionless flux on the model's vacuum wavelength grid)."""
        runtime = self.runtime(request.model.model_id)
        flux = np.asarray(runtime.decode(request.latents[:1].astype(np.float32),
                                         request.resolving_power)[0], dtype=float)
        wave = np.asarray(runtime.grid.wavelength, dtype=float)
        meta = SpectrumMeta(
            obs_id=f"decoded-{request.model.model_id}", target_name="decoded latent point",
            resolving_power=request.resolving_power, flux_unit="",
            extra={"latent": ",".join(f"{v:.6g}" for v in request.latents[0])})
        spectrum = Spectrum(wave, flux, np.full_like(flux, NOISE_FREE_IVAR), meta)
        return convert(spectrum, "votable", f"decoded by {request.model.model_id}")
