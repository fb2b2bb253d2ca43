"""A catalogue of ML-annotated spectra for the TAP tests, published as ``mlspec.spectra``.

The rows have the columns that ``bench/mlspec.toml`` declares (the catalogue of the
DaCHS comparison kit, which ``bench/tap.py`` loads into both services), so the TAP
tests publish through the same declaration as the benchmark without needing the kit
itself: a plain clone of the repository has everything the tests use.

The values are synthetic but shaped like a survey catalogue, because tests depend on
the shape: about one row in ten re-observes an earlier target (same name, position
0.2 arcsec off), S/N is lognormal around 30 so ``snr > 100`` selects a few percent of
the rows, and the 16-dimensional latent vectors are a smooth function of the labels.
The same ``n`` and ``seed`` always give the same rows.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

LATENT_DIM = 16

# Columns in the declaration's order, with the dtype of their values.
COLUMNS: dict[str, str] = {
    "spec_id": "i8", "target_name": "text", "ra": "f8", "dec": "f8", "survey": "text",
    "snr": "f4", "em_min": "f8", "em_max": "f8", "em_res_power": "f4", "spec_length": "i4",
    "t_min": "f8", "t_max": "f8", "t_exptime": "f4", "teff_pred": "f4", "teff_err": "f4",
    "logg_pred": "f4", "logg_err": "f4", "mh_pred": "f4", "mh_err": "f4",
    "in_training_domain": "bool", "latent": "latent", "model_version": "text",
}

# survey: share of the rows, wavelength range [Angstrom], resolving power, pixels,
# MJD range of its observations, exposure times [s]
SURVEYS = {
    "LAMOST-LRS": (0.5, (3700.0, 9100.0), 1800.0, 3909, (55900.0, 60300.0), (600, 1200, 1800)),
    "APOGEE": (0.2, (15140.0, 16940.0), 22500.0, 8575, (55750.0, 59900.0), (500, 1000, 3000)),
    "GALAH": (0.2, (4713.0, 7887.0), 28000.0, 4096, (56950.0, 59600.0), (1200, 2400, 3600)),
    "GaiaRVS": (0.1, (8460.0, 8700.0), 11500.0, 2401, (56863.0, 57901.0), (4.4, 44.0)),
}


def _designation(ra: float, dec: float) -> str:
    """A J2000-style name from the position (sexagesimal, truncated as IAU names are)."""
    ra_s = int(ra / 15.0 * 3600.0 * 100)  # hundredths of a second of time
    dec_s = int(abs(dec) * 3600.0 * 10)  # tenths of an arcsecond
    hh, rest = divmod(ra_s, 360_000)
    mm, ss = divmod(rest, 6_000)
    dd, rest = divmod(dec_s, 36_000)
    dm, ds = divmod(rest, 600)
    sign = "-" if dec < 0 else "+"
    return f"LVT J{hh:02d}{mm:02d}{ss / 100:05.2f}{sign}{dd:02d}{dm:02d}{ds / 10:04.1f}"


def generate(n: int, seed: int = 20240917) -> dict[str, np.ndarray]:
    """``n`` catalogue rows as column name -> array (object arrays for text)."""
    rng = np.random.default_rng(seed)
    n_targets = max(1, round(n * 0.9))
    target_ra = rng.uniform(0.0, 360.0, n_targets)
    target_dec = np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, n_targets)))
    seen: dict[str, int] = {}
    names = np.empty(n_targets, dtype=object)
    for i, (r, d) in enumerate(zip(target_ra, target_dec, strict=True)):
        name = _designation(r, d)
        seen[name] = seen.get(name, 0) + 1  # two targets in one name cell: keep them apart
        names[i] = name if seen[name] == 1 else f"{name}_{seen[name]}"

    # every target once, the rest re-observations of random targets, in random order
    target = rng.permutation(np.concatenate(
        [np.arange(n_targets), rng.integers(0, n_targets, n - n_targets)]))
    _, first = np.unique(target, return_index=True)
    repeat = np.ones(n, dtype=bool)
    repeat[first] = False
    jitter = np.where(repeat, 0.2 / 3600.0, 0.0)
    dec = np.clip(target_dec[target] + rng.normal(0.0, 1.0, n) * jitter, -90.0, 90.0)
    cos_dec = np.maximum(np.cos(np.radians(dec)), 1e-3)
    ra = (target_ra[target] + rng.normal(0.0, 1.0, n) * jitter / cos_dec) % 360.0

    survey_names = list(SURVEYS)
    which = rng.choice(len(SURVEYS), size=n, p=[s[0] for s in SURVEYS.values()])
    spec = [SURVEYS[survey_names[i]] for i in which]
    wl_min = np.array([s[1][0] for s in spec]) + rng.uniform(-5.0, 5.0, n)
    wl_max = np.array([s[1][1] for s in spec]) + rng.uniform(-5.0, 5.0, n)
    mjd_lo, mjd_hi = np.array([s[4] for s in spec]).T
    t_min = mjd_lo + rng.uniform(0.0, 1.0, n) * (mjd_hi - mjd_lo)
    exptime = np.array([rng.choice(s[5]) for s in spec], dtype=float)

    snr = np.clip(np.exp(rng.normal(np.log(30.0), 0.8, n)), 1.0, 1000.0)
    teff_err = 30.0 + 1500.0 / snr
    logg_err = 0.04 + 2.0 / snr
    mh_err = 0.03 + 1.5 / snr
    giant = rng.uniform(0.0, 1.0, n_targets) < 0.35
    teff_true = np.clip(np.where(giant, rng.normal(4700, 350, n_targets),
                                 rng.normal(5600, 700, n_targets)), 2900, 9500)
    logg_true = np.clip(np.where(giant, rng.normal(2.5, 0.6, n_targets),
                                 rng.normal(4.35, 0.25, n_targets)), 0.0, 5.5)
    mh_true = np.clip(rng.normal(-0.3, 0.35, n_targets), -2.5, 0.6)
    teff = teff_true[target] + rng.normal(0.0, 1.0, n) * teff_err
    logg = logg_true[target] + rng.normal(0.0, 1.0, n) * logg_err
    mh = mh_true[target] + rng.normal(0.0, 1.0, n) * mh_err
    in_domain = ((teff >= 3500) & (teff <= 7000) & (logg >= 0.5) & (logg <= 5.0)
                 & (mh >= -2.0) & (snr >= 10))

    features = np.stack([(teff - 5200) / 1000, logg - 3.5, (mh + 0.3) / 0.4,
                         np.log10(snr) - 1.5], axis=1)
    weights = rng.normal(0.0, 1.0, (4, LATENT_DIM))
    latent = np.tanh(features @ weights) + rng.normal(0.0, 0.05, (n, LATENT_DIM))

    return {
        "spec_id": np.arange(1, n + 1, dtype="i8"),
        "target_name": names[target],
        "ra": np.round(ra, 9),
        "dec": np.round(dec, 9),
        "survey": np.array([survey_names[i] for i in which], dtype=object),
        "snr": snr.astype("f4"),
        "em_min": wl_min * 1e-10,
        "em_max": wl_max * 1e-10,
        "em_res_power": (np.array([s[2] for s in spec]) * rng.uniform(0.9, 1.1, n)).astype("f4"),
        "spec_length": np.array([s[3] for s in spec], dtype="i4"),
        "t_min": t_min,
        "t_max": t_min + exptime / 86400.0,
        "t_exptime": exptime.astype("f4"),
        "teff_pred": teff.astype("f4"),
        "teff_err": teff_err.astype("f4"),
        "logg_pred": logg.astype("f4"),
        "logg_err": logg_err.astype("f4"),
        "mh_pred": mh.astype("f4"),
        "mh_err": mh_err.astype("f4"),
        "in_training_domain": in_domain,
        "latent": latent.astype("f4"),
        "model_version": np.where(rng.uniform(0.0, 1.0, n) < 0.8, "mlspec-cnn-1.2",
                                  "mlspec-cnn-1.3").astype(object),
    }


def _text(value, kind: str) -> str:
    """One CSV field: floats that read back to the same bits, latent as a PostgreSQL array."""
    if kind == "latent":
        return "{" + ",".join(f"{x:.9g}" for x in value) + "}"
    if kind == "bool":
        return "true" if value else "false"
    if kind == "f4":
        return f"{value:.9g}"
    if kind == "f8":
        return repr(float(value))
    return str(value)


def write_csv(rows: dict[str, np.ndarray], path: Path) -> Path:
    """The rows as CSV with a header line, the input ``latentvo publish table`` reads."""
    with open(path, "w", newline="") as f:
        out = csv.writer(f, lineterminator="\n")
        out.writerow(COLUMNS)
        for i in range(len(rows["spec_id"])):
            out.writerow([_text(rows[name][i], kind) for name, kind in COLUMNS.items()])
    return path
