"""Earth-atmosphere absorption bands, fixed in the observatory frame.

Telluric features do not move with the star's radial velocity, which is what lets a
model (or a test) tell stellar lines from atmospheric ones. Strengths scale with the
airmass and, for water vapour, with the precipitable water vapour (mm).
"""

from __future__ import annotations

import numpy as np

from ml.synth.linelist import Bands, bands_from_rows

# (molecule, head [A, air], direction, scale, extent, optical depth at airmass 1 [/mm PWV], period)
TELLURIC = bands_from_rows(
    [
        ("O2", 6867.2, 1, 15.0, 50.0, 0.50, 1.1),
        ("O2", 7594.0, 1, 25.0, 110.0, 2.00, 1.4),
        ("H2O", 7160.0, 1, 40.0, 180.0, 0.06, 1.6),
        ("H2O", 8120.0, 1, 50.0, 230.0, 0.08, 1.8),
        ("H2O", 8950.0, 1, 80.0, 250.0, 0.15, 2.0),
    ]
)


def telluric_strengths(bands: Bands, airmass: np.ndarray, pwv: np.ndarray) -> np.ndarray:
    """Optical depth at each band head, shape (spectra, bands)."""
    water = np.array([m == "H2O" for m in bands.molecule])
    per_band = np.where(water[None, :], pwv[:, None], 1.0)
    return bands.strength[None, :] * airmass[:, None] * per_band
