"""Signal-to-noise ratio of a preprocessed spectrum, from its own arrays.

Calibration and the domain flag depend on S/N, and inference must work on any
spectrum (an uploaded file as well as an archive row), so the S/N is measured on
what the networks see -- the flux and inverse variance on the model grid -- never
read from the database. Numpy only: the web process may import this module.
"""

from __future__ import annotations

import numpy as np

STRIDE = 4  # every 4th grid pixel: ~1,000 pixels of a 4,096 grid give the same median


def spectrum_snr(flux: np.ndarray, ivar: np.ndarray) -> np.ndarray:
    """Median per-pixel S/N, ``|flux| * sqrt(ivar)``, over the unmasked pixels (ivar > 0)
    among every ``STRIDE``-th pixel of each spectrum on the model grid (the lower middle
    value for an even count); 0 for a spectrum with none.

    ``flux`` and ``ivar`` are (n, pixels) or (pixels,); returns (n,) or a 0-d array.
    Per *grid* pixel: resampling to a coarser grid raises it (several native pixels per
    grid pixel), so it is comparable between spectra on the same model grid, which is
    all calibration and the domain flag need. The median ignores the line cores and bad
    pixels that a mean would let pull it; the stride keeps it cheap next to the networks
    at inference (the calibration varies with log S/N, a percent does not matter).
    """
    flux = np.asarray(flux, np.float32)[..., ::STRIDE]
    ivar = np.asarray(ivar, np.float32)[..., ::STRIDE]
    good = np.isfinite(flux) & np.isfinite(ivar) & (ivar > 0)
    with np.errstate(invalid="ignore"):
        per_pixel = np.abs(flux) * np.sqrt(ivar)
    ranked = np.where(good, per_pixel, np.inf).reshape(-1, per_pixel.shape[-1])
    count = good.sum(axis=-1).reshape(-1)
    middle = np.zeros(len(count))
    # masked pixels (inf) rank last, so the median is the middle of the first ``count``;
    # spectra with the same count share one partition (linear time, unlike a sort)
    for n in np.unique(count[count > 0]):
        rows = np.flatnonzero(count == n)
        kth = (int(n) - 1) // 2
        middle[rows] = np.partition(ranked[rows], kth, axis=-1)[:, kth]
    return middle.reshape(good.shape[:-1])
