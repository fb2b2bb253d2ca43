"""Latent-space analysis: which dimensions carry information, and about what.

Per dimension: mean and spread over all encoded spectra, the information it carries
(mean KL divergence of the VAE posterior from the prior, in nats: zero for a dimension
the decoder ignores; for the RV coordinate, from its Cramér-Rao width) and an
``informative`` flag. Per dimension and physical quantity: mutual information (Kraskov
k-NN estimator), and the same for as many leading PCA components of the same
(observed-frame, preprocessed) spectra, so users see whether the autoencoder
concentrates the physics better than a linear decomposition. ``mi_pca_rest`` is PCA of
the rest-frame spectra, the stronger baseline for the stellar labels (reported by the
benchmark).

The 2-D map of the latent space (``latentvo.latent_map``, drawn by the explorer page) is a
t-SNE embedding of a seeded sample of the stored latent vectors: their informative learned
dimensions, without the RV coordinate (a map ordered by velocity would hide the stellar
physics the page colours it by). t-SNE rather than UMAP: scikit-learn is already a
dependency, while umap-learn would bring numba and its compiler into the ML install.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import sqlalchemy as sa
import torch
from sklearn.decomposition import PCA
from sklearn.feature_selection import mutual_info_regression
from sklearn.manifold import TSNE

from ml.archive_reader import LABEL_QUANTITIES, load_arrays, reference_set, select_spectra
from ml.artifacts import load_autoencoder
from ml.errors import MLError
from ml.model_registry import get
from ml.models.autoencoder import SpectrumAutoencoder, encode_arrays, information
from ml.models.inputs import network_input
from schema.tables import (
    latent,
    latent_dimensions,
    latent_map,
    latent_mutual_information,
    spectra,
)
from vo_service.config import Settings

MI_QUANTITIES = (*LABEL_QUANTITIES, "rv")


@dataclass
class Analysis:
    """What a model's latent space says about the spectra: information per dimension and
    the mutual information of latent dimensions and of PCA components with the labels.
    """

    information: np.ndarray  # nats per latent dimension
    informative: np.ndarray
    mi_latent: np.ndarray  # (latent_dim, quantities)
    mi_pca: np.ndarray  # (n_components, quantities)
    mi_pca_rest: np.ndarray  # (n_components, quantities), PCA of rest-frame spectra
    quantities: list[str]
    n_sample: int
    map_points: int = 0  # spectra placed on the 2-D map
    map_seconds: float = 0.0  # time the t-SNE embedding took


def mutual_information(components: np.ndarray, values: np.ndarray, seed: int) -> np.ndarray:
    """MI (nats) of each component column with ``values`` over the rows where it is finite."""
    ok = np.isfinite(values)
    if ok.sum() < 20:
        return np.full(components.shape[1], np.nan)
    return mutual_info_regression(components[ok], values[ok], n_neighbors=3,
                                  random_state=seed)


def _pca(x: np.ndarray, n: int, seed: int) -> np.ndarray:
    return PCA(n_components=min(n, *x.shape), random_state=seed).fit_transform(x)


def analyse_arrays(model: SpectrumAutoencoder, flux: np.ndarray, ivar: np.ndarray,
                   resolving_power: np.ndarray | None, quantities: dict[str, np.ndarray],
                   informative_nats: float, seed: int = 0,
                   device: torch.device | None = None) -> Analysis:
    """Information per dimension and MI (latent vs PCA) on a sample of spectra.

    ``quantities`` maps names to per-spectrum values (NaN = unknown); "rv" is the model's
    own cross-correlation velocity when not given.
    """
    device = device or torch.device("cpu")
    mu, logvar = encode_arrays(model.to(device), flux, ivar, resolving_power, device)
    info = information((mu, logvar))
    quantities = dict(quantities)
    quantities.setdefault("rv", mu[:, -1] * model.config["rv_scale_kms"])
    names = [q for q in MI_QUANTITIES if q in quantities]
    with torch.no_grad():
        rest_flux, rest_ivar, _ = model.cpu().rest_frame(torch.as_tensor(flux),
                                                         torch.as_tensor(ivar))
    pca = _pca(network_input(flux, ivar)[:, 0].numpy(), mu.shape[1], seed)
    pca_rest = _pca(network_input(rest_flux, rest_ivar)[:, 0].numpy(), mu.shape[1], seed)
    mi_latent, mi_pca, mi_pca_rest = (
        np.column_stack([mutual_information(c, quantities[q], seed) for q in names])
        for c in (mu, pca, pca_rest))
    return Analysis(info, info > informative_nats, mi_latent, mi_pca, mi_pca_rest, names,
                    len(flux))


def map_coordinates(vectors: np.ndarray, informative: np.ndarray, seed: int) -> np.ndarray:
    """(n, 2) t-SNE coordinates of latent ``vectors`` from their informative learned
    dimensions (the last, RV, coordinate left out; all learned ones when none is
    informative). Perplexity follows the sample size so that small archives map too."""
    learned = informative[:-1]
    x = vectors[:, :-1][:, learned] if learned.any() else vectors[:, :-1]
    if len(x) < 5:
        raise MLError(f"the 2-D map needs at least 5 encoded spectra, got {len(x)}")
    perplexity = float(min(30.0, (len(x) - 1) / 3))
    return TSNE(n_components=2, perplexity=perplexity, init="pca", learning_rate="auto",
                random_state=seed).fit_transform(x.astype(np.float32))


def analyse(engine: sa.Engine, settings: Settings, model_id: str, *,
            label_set: str | None = None, sample: int = 5000, map_points: int = 10_000,
            seed: int = 0, progress=None) -> Analysis:
    """Analyse an autoencoder over the archive and (re)write its analysis tables and its
    2-D map (of at most ``map_points`` spectra, a seeded sample; 0: no map)."""
    record = get(engine, model_id)
    model, _ = load_autoencoder(settings.home, record)
    with engine.connect() as conn:
        encoded = select_spectra(conn, sa.exists().where(
            latent.c.spectrum_id == spectra.c.spectrum_id, latent.c.model_id == model_id))
        if len(encoded) == 0:
            raise MLError(f"model {model_id!r} has no latent vectors yet; run "
                          f"'latentvo ml infer {model_id}' first")
        stored = conn.execute(sa.select(latent.c.spectrum_id, latent.c.vec).where(
            latent.c.model_id == model_id).order_by(latent.c.spectrum_id)).all()
        ids = np.array([r.spectrum_id for r in stored], dtype=np.int64)
        vectors = np.array([np.asarray(r.vec, dtype=np.float64) for r in stored])
        key_column, table = reference_set(conn, label_set) if label_set else (None, {})
    keys = encoded.target_name if key_column == "target_name" else encoded.obs_id
    labelled = np.array([k in table for k in keys], dtype=bool)
    rng = np.random.default_rng(seed)
    # The labelled spectra first (they carry the physics), then a random rest.
    order = np.concatenate([rng.permutation(np.flatnonzero(labelled)),
                            rng.permutation(np.flatnonzero(~labelled))])
    chosen = encoded.subset(np.sort(order[:sample]))
    loaded = load_arrays(settings, record.grid, chosen, progress)
    ok = np.flatnonzero(loaded.ok)
    chosen = chosen.subset(ok)
    chosen_keys = chosen.target_name if key_column == "target_name" else chosen.obs_id
    values = {q: np.array([table.get(k, {}).get(q, (np.nan, None))[0] for k in chosen_keys],
                          dtype=float) for q in LABEL_QUANTITIES}
    values = {q: v for q, v in values.items() if np.isfinite(v).sum() >= 20}
    result = analyse_arrays(model, loaded.flux[ok], loaded.ivar[ok],
                            loaded.resolving_power[ok], values,
                            record.hyperparameters["informative_nats"], seed)
    mapped = np.sort(rng.permutation(len(ids))[:map_points]) if map_points else ids[:0]
    started = time.perf_counter()
    xy = map_coordinates(vectors[mapped], result.informative, seed) if len(mapped) else None
    result.map_points, result.map_seconds = len(mapped), time.perf_counter() - started
    _write(engine, model_id, vectors, result)
    if xy is not None:
        _write_map(engine, model_id, ids[mapped], xy)
    return result


def _write_map(engine: sa.Engine, model_id: str, ids: np.ndarray, xy: np.ndarray) -> None:
    with engine.begin() as conn:
        conn.execute(latent_map.delete().where(latent_map.c.model_id == model_id))
        conn.execute(latent_map.insert(), [
            {"model_id": model_id, "spectrum_id": int(i), "x": float(x), "y": float(y)}
            for i, (x, y) in zip(ids, xy, strict=True)])


def _write(engine: sa.Engine, model_id: str, vectors: np.ndarray, result: Analysis) -> None:
    mean, std = vectors.mean(axis=0), vectors.std(axis=0)
    with engine.begin() as conn:
        for table in (latent_dimensions, latent_mutual_information):
            conn.execute(table.delete().where(table.c.model_id == model_id))
        conn.execute(latent_dimensions.insert(), [
            {"model_id": model_id, "dim": d, "mean": float(mean[d]), "stddev": float(std[d]),
             "information": float(result.information[d]),
             "informative": bool(result.informative[d])} for d in range(len(mean))])
        rows = []
        for basis, mi in (("latent", result.mi_latent), ("pca", result.mi_pca)):
            for c in range(mi.shape[0]):
                for j, q in enumerate(result.quantities):
                    if np.isfinite(mi[c, j]):
                        rows.append({"model_id": model_id, "basis": basis, "component": c,
                                     "quantity": q, "mutual_information": float(mi[c, j])})
        if rows:
            conn.execute(latent_mutual_information.insert(), rows)
