"""A toy spectrum model for unit tests that need labelled arrays but no archive.

Line depths depend smoothly on (Teff, log g, [M/H], [alpha/M]) and the lines move with
the radial velocity, which is all the label model and the autoencoder need to show that
they learn; the synthetic archive (``ml.synth``) is used where files and the database
matter.
"""

from __future__ import annotations

import numpy as np

from vo_service.archive.spectrum import Spectrum, SpectrumMeta

WAVE_MIN, WAVE_MAX = 5000.0, 5400.0
RANGES = {"teff": (4000.0, 7000.0), "logg": (1.0, 5.0), "mh": (-2.0, 0.5),
          "alpha_m": (-0.2, 0.4)}
QUANTITIES = list(RANGES)


def draw_labels(n: int, rng: np.random.Generator) -> np.ndarray:
    return np.column_stack([rng.uniform(lo, hi, n) for lo, hi in RANGES.values()])


def render(labels: np.ndarray, snr: np.ndarray, rng: np.random.Generator,
           n_pixels: int = 1600, rv: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
    """Wavelength (n_pixels,), flux and ivar (n, n_pixels) of toy spectra."""
    wave = np.linspace(WAVE_MIN, WAVE_MAX, n_pixels)
    line_rng = np.random.default_rng(12345)
    n_lines = 60
    centres = line_rng.uniform(WAVE_MIN + 10, WAVE_MAX - 10, n_lines)
    sens = line_rng.normal(0, 1, (n_lines, 4)) * [1.2, 0.6, 1.0, 0.5]
    lo = np.array([r[0] for r in RANGES.values()])
    hi = np.array([r[1] for r in RANGES.values()])
    scaled = 2 * (labels - lo) / (hi - lo) - 1  # -1..1
    depth = 0.6 / (1 + np.exp(-(scaled @ sens.T + 0.5)))  # (n, lines)
    rv = np.zeros(len(labels)) if rv is None else rv
    shift = 1 + rv[:, None] / 299792.458
    width = 0.6
    profile = np.exp(-0.5 * ((wave[None, None, :] - (centres[None, :] * shift)[:, :, None])
                             / width) ** 2)
    flux = 1 - np.einsum("nl,nlp->np", depth, profile)
    flux = np.clip(flux, 0.05, None) * (1 + 0.2 * scaled[:, :1] * (wave - 5200) / 200)
    sigma = flux / snr[:, None]
    noisy = flux + rng.normal(0, 1, flux.shape) * sigma
    return wave, noisy, 1 / sigma**2


def spectrum(wave: np.ndarray, flux: np.ndarray, ivar: np.ndarray, obs_id: str) -> Spectrum:
    return Spectrum(wave, flux, ivar, SpectrumMeta(obs_id=obs_id, ra=10.0, dec=-5.0))
