"""Radial velocities from the spectra themselves, by cross-correlation with a template.

The archive's files need not carry a pipeline RV, yet the latent-space analysis
relates dimensions to RV. On the log-uniform model grid a velocity is a pixel shift,
so each spectrum is cross-correlated (FFT) with a template that is built from the
sample itself: the median absorption spectrum, re-aligned and re-built a few times.
Velocities are relative to that template's zero point, which is all that mutual
information needs (it is invariant under shifts).
"""

from __future__ import annotations

import numpy as np


def _absorption(flux: np.ndarray, ivar: np.ndarray) -> np.ndarray:
    signal = np.where(ivar > 0, 1.0 - flux, 0.0)
    return signal - signal.mean(axis=1, keepdims=True)


def _shift(signal: np.ndarray, pixels: np.ndarray) -> np.ndarray:
    """Shift each row by ``-pixels`` (Fourier shift, periodic edges are negligible here)."""
    freq = np.fft.rfftfreq(signal.shape[1])
    phase = np.exp(2j * np.pi * freq[None, :] * pixels[:, None])
    return np.fft.irfft(np.fft.rfft(signal, axis=1) * phase, n=signal.shape[1], axis=1)


def _lags(signal: np.ndarray, template: np.ndarray, max_lag: int) -> np.ndarray:
    n = signal.shape[1]
    cc = np.fft.irfft(np.fft.rfft(signal, axis=1) * np.conj(np.fft.rfft(template))[None, :],
                      n=n, axis=1)
    lags = np.concatenate([np.arange(0, max_lag + 1), np.arange(-max_lag, 0)])
    window = cc[:, lags]
    best = window.argmax(axis=1)
    left = window[np.arange(len(best)), (best - 1) % len(lags)]
    mid = window[np.arange(len(best)), best]
    right = window[np.arange(len(best)), (best + 1) % len(lags)]
    denom = left - 2 * mid + right
    offset = np.where(denom < 0, 0.5 * (left - right) / np.where(denom < 0, denom, -1), 0.0)
    return lags[best] + np.clip(offset, -0.5, 0.5)


def measure_rv(flux: np.ndarray, ivar: np.ndarray, velocity_step: float,
               max_kms: float = 400.0, iterations: int = 3) -> np.ndarray:
    """RV (km/s, relative to a self-built template) of each normalised spectrum."""
    signal = _absorption(flux, ivar)
    max_lag = max(1, min(int(max_kms / velocity_step), signal.shape[1] // 4))
    template = np.median(signal, axis=0)
    lags = np.zeros(len(signal))
    for _ in range(iterations):
        lags = _lags(signal, template, max_lag)
        template = np.median(_shift(signal, lags), axis=0)
    return lags * velocity_step
