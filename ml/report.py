"""The model quality report: one HTML page with PNG figures, for archive staff to review.

It is built from what the archive holds (registry row with training history and
metrics, the analysis tables, the inferred labels next to the reference labels), so it
can be regenerated at any time and shows what users will actually query.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import sqlalchemy as sa  # noqa: E402
import torch  # noqa: E402

from ml.archive_reader import load_arrays, reference_set, select_spectra  # noqa: E402
from ml.artifacts import load_autoencoder  # noqa: E402
from ml.model_registry import AUTOENCODER, ModelRecord, get  # noqa: E402
from schema.tables import spectra  # noqa: E402
from vo_service.config import Settings  # noqa: E402

RECONSTRUCTED = 4  # spectra shown with their reconstructions, from low to high S/N


def _save(fig, out: Path, name: str) -> str:
    fig.tight_layout()
    fig.savefig(out / name, dpi=90)
    plt.close(fig)
    return name


def _history_plot(record: ModelRecord, out: Path) -> str:
    history = record.metrics.get("history", {})
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, values in history.items():
        if "kl" not in name:
            ax.plot(np.arange(1, len(values) + 1), values, label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    if record.kind == AUTOENCODER:
        ax.set_yscale("log")
    ax.legend(fontsize=7)
    ax.set_title(f"{record.model_id}: training")
    return _save(fig, out, f"{record.model_id}-history.png")


def _autoencoder_plots(conn: sa.Connection, record: ModelRecord, out: Path) -> list[str]:
    dims = conn.execute(sa.text(
        "SELECT dim, information, informative FROM latentvo.latent_dimensions "
        "WHERE model_id = :m ORDER BY dim"), {"m": record.model_id}).all()
    info = [d.information for d in dims] or record.metrics.get("information_nats", [])
    names = []
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.bar(np.arange(len(info)), info, color="tab:blue")
    ax.axhline(record.hyperparameters.get("informative_nats", 0.05), color="k", lw=0.8, ls="--")
    ax.set_xlabel("latent dimension")
    ax.set_ylabel("information (nats)")
    names.append(_save(fig, out, f"{record.model_id}-information.png"))
    mi = conn.execute(sa.text(
        "SELECT basis, component, quantity, mutual_information FROM "
        "latentvo.latent_mutual_information WHERE model_id = :m"), {"m": record.model_id}).all()
    if mi:
        quantities = sorted({r.quantity for r in mi})
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.5), sharey=True)
        for ax, basis in zip(axes, ("latent", "pca"), strict=True):
            rows = [r for r in mi if r.basis == basis]
            n = max(r.component for r in rows) + 1
            grid = np.full((len(quantities), n), np.nan)
            for r in rows:
                grid[quantities.index(r.quantity), r.component] = r.mutual_information
            image = ax.imshow(grid, aspect="auto", cmap="viridis", vmin=0)
            ax.set_yticks(range(len(quantities)), quantities)
            ax.set_xlabel(f"{basis} component")
            ax.set_title(f"mutual information, {basis}")
        fig.colorbar(image, ax=axes, label="nats")
        fig.savefig(out / f"{record.model_id}-mi.png", dpi=90)
        plt.close(fig)
        names.append(f"{record.model_id}-mi.png")
    return names


def _reconstruction_plot(conn: sa.Connection, settings: Settings, record: ModelRecord,
                         out: Path) -> str | None:
    """A few archive spectra (S/N quantiles) on the model grid with their reconstructions."""
    covered = select_spectra(conn, spectra.c.snr.isnot(None))
    covered = covered.subset(np.flatnonzero(covered.covering(record.grid)))
    if len(covered) == 0:
        return None
    order = np.argsort(covered.snr)
    picks = order[np.linspace(0, len(order) - 1, min(RECONSTRUCTED, len(order))).astype(int)]
    chosen = covered.subset(picks)
    arrays = load_arrays(settings, record.grid, chosen)
    model, _ = load_autoencoder(settings.home, record)
    with torch.no_grad():
        flux = torch.as_tensor(arrays.flux, dtype=torch.float32)
        ivar = torch.as_tensor(arrays.ivar, dtype=torch.float32)
        cond = model.condition(arrays.resolving_power, len(flux))
        latent, _ = model.latent(flux, ivar, cond)
        # decode() gives normalised flux minus one, as the networks see their input
        model_flux = model.decode(latent, cond).numpy() + 1.0
    wave = record.grid.wavelength
    fig, axes = plt.subplots(len(picks), 1, figsize=(9, 1.9 * len(picks)), sharex=True)
    for i, ax in enumerate(np.atleast_1d(axes)):
        good = arrays.ivar[i] > 0
        observed = np.where(good, arrays.flux[i], np.nan)
        ax.plot(wave, observed, color="0.55", lw=0.5, label="observed (normalised)")
        ax.plot(wave, model_flux[i], color="tab:red", lw=0.7, label="reconstruction")
        ax.set_ylabel("flux")
        ax.set_title(f"{chosen.obs_id[i]}  S/N {chosen.snr[i]:.0f}", fontsize=8)
    np.atleast_1d(axes)[0].legend(fontsize=7, loc="lower right")
    np.atleast_1d(axes)[-1].set_xlabel("vacuum wavelength (Angstrom)")
    return _save(fig, out, f"{record.model_id}-reconstructions.png")


def _label_plots(conn: sa.Connection, record: ModelRecord, out: Path) -> list[str]:
    quantities = record.hyperparameters["quantities"]
    rows = conn.execute(sa.text(
        "SELECT s.obs_id, s.target_name, s.snr, l.* FROM latentvo.labels l JOIN "
        "latentvo.spectra s USING (spectrum_id) WHERE l.model_id = :m"),
        {"m": record.model_id}).mappings().all()
    if not rows:
        return []
    assert record.reference_label_source is not None  # label models are trained on one
    key_column, table = reference_set(conn, record.reference_label_source)
    names = []
    fig, axes = plt.subplots(1, len(quantities), figsize=(3.2 * len(quantities), 3.2))
    for ax, q in zip(np.atleast_1d(axes), quantities, strict=True):
        references, predictions, in_domain = [], [], []
        for r in rows:
            value = table.get(r[key_column], {}).get(q)
            if value is not None and r[q] is not None:
                references.append(value[0])
                predictions.append(r[q])
                in_domain.append(r["in_domain"])
        ref, pred, inside = map(np.asarray, (references, predictions, in_domain))
        if len(ref):
            ax.scatter(ref[inside], pred[inside], s=3, alpha=0.5, label="in domain")
            ax.scatter(ref[~inside], pred[~inside], s=3, alpha=0.5, c="tab:red",
                       label="out of domain")
            lo, hi = np.nanmin(ref), np.nanmax(ref)
            ax.plot([lo, hi], [lo, hi], "k-", lw=0.7)
        ax.set_xlabel(f"reference {q}")
        ax.set_ylabel(f"predicted {q}")
    np.atleast_1d(axes)[0].legend(fontsize=7)
    names.append(_save(fig, out, f"{record.model_id}-labels.png"))
    names.append(_residual_plots(rows, quantities, key_column, table, record, out))
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    scores = np.array([r["domain_score"] for r in rows], dtype=float)
    axes[0].hist(scores, bins=60, color="tab:gray")
    axes[0].axvline(record.metrics.get("domain_threshold", np.nan), color="tab:red")
    axes[0].set_xlabel("domain score")
    axes[0].set_yscale("log")
    snr = np.array([r["snr"] or np.nan for r in rows], dtype=float)
    q0 = quantities[0]
    axes[1].scatter(snr, [r[f"{q0}_err"] for r in rows], s=3, alpha=0.5)
    axes[1].set_xscale("log")
    axes[1].set_xlabel("S/N")
    axes[1].set_ylabel(f"{q0} error")
    names.append(_save(fig, out, f"{record.model_id}-domain.png"))
    return names


def _residual_plots(rows, quantities: list[str], key_column: str, table: dict,
                    record: ModelRecord, out: Path) -> str:
    """Per label: residual against the reference vs S/N (top), and the calibration of the
    errors (bottom): (predicted - reference) / sqrt(sigma^2 + sigma_ref^2) should follow
    N(0, 1) if the stated errors are right."""
    fig, axes = plt.subplots(2, len(quantities), figsize=(3.2 * len(quantities), 5.6),
                             squeeze=False)
    grid = np.linspace(-5, 5, 201)
    for j, q in enumerate(quantities):
        snrs, residuals, pulls = [], [], []
        for r in rows:
            ref = table.get(r[key_column], {}).get(q)
            if ref is None or r[q] is None or not r["in_domain"]:
                continue
            ref_value, ref_err = ref[0], ref[1] or 0.0
            snrs.append(r["snr"] or np.nan)
            residuals.append(r[q] - ref_value)
            pulls.append((r[q] - ref_value) / np.hypot(r[f"{q}_err"], ref_err))
        snr, resid, z = map(np.asarray, (snrs, residuals, pulls))
        top, bottom = axes[0, j], axes[1, j]
        top.scatter(snr, resid, s=3, alpha=0.4)
        top.axhline(0.0, color="k", lw=0.7)
        top.set_xscale("log")
        top.set_xlabel("S/N")
        top.set_ylabel(f"{q}: predicted - reference")
        if len(z):
            bottom.hist(np.clip(z, -5, 5), bins=50, range=(-5, 5), density=True,
                        color="tab:blue", alpha=0.7,
                        label=f"std {np.std(z):.2f}, n {len(z)}")
            bottom.plot(grid, np.exp(-0.5 * grid**2) / np.sqrt(2 * np.pi), "k-", lw=0.8,
                        label="N(0, 1)")
            bottom.legend(fontsize=7)
        bottom.set_xlabel(f"{q}: standardised residual")
    fig.suptitle(f"{record.model_id}: in-domain spectra with reference labels (training and "
                 "held-out stars alike; the held-out figures are the metrics above)", fontsize=8)
    return _save(fig, out, f"{record.model_id}-residuals.png")


def _snr_plot(record: ModelRecord, out: Path) -> str | None:
    """Calibration and domain flag per S/N bin of held-out stars (``metrics["by_snr"]``),
    against their goals: z-std 0.9-1.1, 68 % / 95 % coverage within 3 points of nominal,
    at most 3 % of in-domain stars flagged."""
    rows = record.metrics.get("by_snr")
    if not rows:
        return None
    lo = np.array([r["snr_min"] for r in rows])
    hi = np.array([r["snr_max"] for r in rows])
    centre, half = np.sqrt(lo * hi), [np.sqrt(lo * hi) - lo, hi - np.sqrt(lo * hi)]
    quantities = record.hyperparameters["quantities"]

    def figure(q: str, key: str) -> np.ndarray:
        return np.array([r["labels"].get(q, {}).get(key, np.nan) for r in rows])

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    axes[0].axhspan(0.9, 1.1, color="tab:green", alpha=0.15, label="goal 0.9-1.1")
    for q in quantities:
        axes[0].errorbar(centre, figure(q, "z_std"), xerr=half, marker="o", ms=3, lw=0.8,
                         label=q)
    axes[0].set_ylabel("z-std")
    for nominal, key, style in ((0.6827, "coverage_68", "o-"), (0.9545, "coverage_95", "s--")):
        axes[1].axhspan(nominal - 0.03, nominal + 0.03, color="tab:green", alpha=0.15)
        for q in quantities:
            axes[1].plot(centre, figure(q, key), style, ms=3, lw=0.8,
                         label=f"{q} {key[-2:]} %")
    axes[1].set_ylabel("interval coverage (goal: nominal +- 3 points)")
    flagged = np.array([r.get("flagged_fraction", np.nan) for r in rows])
    axes[2].axhspan(0, 0.03, color="tab:green", alpha=0.15, label="goal <= 3 %")
    axes[2].errorbar(centre, flagged, xerr=half, marker="o", ms=3, lw=0.8, color="tab:red",
                     label="flagged out of domain")
    axes[2].set_ylabel("fraction of held-out stars")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel("S/N (model grid, ml.snr)")
        ax.legend(fontsize=6)
    fig.suptitle(f"{record.model_id}: held-out stars per S/N bin (errors cross-fitted, "
                 f"{sum(r['n'] for r in rows)} spectra)", fontsize=8)
    return _save(fig, out, f"{record.model_id}-by-snr.png")


def _informative_summary(conn: sa.Connection, record: ModelRecord) -> str:
    """One sentence: how many latent dimensions carry information (latent_dimensions)."""
    dims = conn.execute(sa.text(
        "SELECT count(*) AS n, count(*) FILTER (WHERE informative) AS informative "
        "FROM latentvo.latent_dimensions WHERE model_id = :m"), {"m": record.model_id}).one()
    if not dims.n:
        return "<p>No latent-space analysis yet ('latentvo ml analyse').</p>"
    threshold = record.hyperparameters.get("informative_nats", 0.05)
    return (f"<p><b>{dims.informative} of {dims.n} latent dimensions are informative</b> "
            f"(information above {threshold} nats; the last dimension is the radial "
            "velocity).</p>")


def write_report(engine: sa.Engine, settings: Settings, model_ids: list[str],
                 out_dir: Path | None = None) -> Path:
    """Write ``index.html`` and its PNGs; returns the path of the page."""
    out = out_dir or settings.home / "reports" / "-".join(model_ids)
    out.mkdir(parents=True, exist_ok=True)
    sections = []
    with engine.connect() as conn:
        for model_id in model_ids:
            record = get(engine, model_id)
            images = [_history_plot(record, out)]
            summary = ""
            if record.kind == AUTOENCODER:
                images += _autoencoder_plots(conn, record, out)
                reconstructions = _reconstruction_plot(conn, settings, record, out)
                images += [reconstructions] if reconstructions else []
                summary = _informative_summary(conn, record)
            else:
                by_snr = _snr_plot(record, out)
                images += ([by_snr] if by_snr else []) + _label_plots(conn, record, out)
            metrics = {k: v for k, v in record.metrics.items()
                       if not isinstance(v, (dict, list))}
            table = "".join(f"<tr><td>{html.escape(k)}</td><td>{v:.4g}</td></tr>"
                            if isinstance(v, float) else
                            f"<tr><td>{html.escape(k)}</td><td>{html.escape(str(v))}</td></tr>"
                            for k, v in sorted(metrics.items()))
            provenance = {"kind": record.kind, "base model": record.base_model_id,
                          "training selection": record.training_selection,
                          "training size": record.training_size,
                          "training checksum": record.training_checksum,
                          "reference labels": record.reference_label_source,
                          "seed": record.random_seed, "code version": record.code_version,
                          "artifact": f"{record.artifact_path} (sha256 "
                                      f"{record.artifact_sha256[:16]}...)",
                          "distance metric": record.distance_metric}
            prov = "".join(f"<tr><td>{k}</td><td>{html.escape(str(v))}</td></tr>"
                           for k, v in provenance.items() if v is not None)
            figures = "".join(f'<p><img src="{name}" alt="{name}"></p>' for name in images)
            sections.append(
                f"<h2>{html.escape(model_id)}</h2>{summary}"
                f"<h3>Provenance</h3><table>{prov}</table>"
                f"<h3>Validation metrics</h3><table>{table}</table>"
                f"<h3>Architecture</h3><pre>"
                f"{html.escape(json.dumps(record.architecture, indent=1))}</pre>{figures}")
    page = out / "index.html"
    page.write_text(
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>latentvo model report"
        "</title><style>body{font-family:sans-serif;max-width:1000px;margin:auto}"
        "td{padding:2px 8px;border-bottom:1px solid #ddd}</style></head><body>"
        f"<h1>Model report</h1>{''.join(sections)}</body></html>")
    return page
