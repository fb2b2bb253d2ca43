"""Signal-to-noise ratio of a preprocessed spectrum, from its own arrays.

Calibration and the domain flag depend on S/N, and inference must work on any
spectrum (an uploaded file as well as an archive row), so the S/N is measured on
what the networks see -- the flux and inverse variance on the model grid -- never
read from the database. Numpy only: the web process may import this module.
"""

from __future__ import annotations

import numpy as np


def spectrum_snr(flux: np.ndarray, ivar: np.ndarray) -> np.ndarray:
    """Median per-pixel S/N, ``|flux| * sqrt(ivar)``, over the unmasked pixels (ivar > 0)
    of each spectrum on the model grid; 0 for a spectrum with no unmasked pixel.

    ``flux`` and ``ivar`` are (n, pixels) or (pixels,); returns (n,) or a 0-d array.
    Per *grid* pixel: resampling to a coarser grid raises it (several native pixels
    per grid pixel), so it is comparable between spectra on the same model grid,
    which is all calibration and the domain flag need. The median ignores the line
    cores and bad pixels that a mean would let pull it.
    """
    flux, ivar = np.asarray(flux, float), np.asarray(ivar, float)
    good = np.isfinite(flux) & np.isfinite(ivar) & (ivar > 0)
    per_pixel = np.where(good, np.abs(np.where(good, flux, 0.0))
                         * np.sqrt(np.where(good, ivar, 0.0)), np.nan)
    counted = good.any(axis=-1)
    out = np.zeros(counted.shape)
    if np.any(counted):
        out[counted] = np.nanmedian(per_pixel[counted], axis=-1)
    return out
