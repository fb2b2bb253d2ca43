"""The in-memory 1D spectrum that every reader returns and every consumer takes.

Readers of the supported file formats (``vo_service.archive.readers``) turn a file into a
:class:`Spectrum`; the ingest job (``vo_service.ingest``) extracts the
archive metadata from it, and the ML preprocessing resamples its arrays.
Keeping one small, explicit type here means a new format only needs a reader.

Conventions:

* ``wavelength`` is in Angstrom, in the frame the file states (``meta.spec_frame``),
  strictly increasing.
* ``flux`` is in ``meta.flux_unit`` (any astropy-parsable unit string, may be
  relative/dimensionless for normalised spectra).
* ``ivar`` is the inverse variance of ``flux``; 0 marks a pixel without
  information (bad pixel or masked), never NaN.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def air_to_vacuum(wave_air: np.ndarray) -> np.ndarray:
    """Vacuum wavelengths (Angstrom) from air ones.

    The inverse of Ciddor's (1996) refractive index in the form given by
    N. Piskunov for VALD, good to a few 1e-9 relative over 2000-25000 A.
    """
    wave_air = np.asarray(wave_air, dtype=np.float64)
    s2 = (1e4 / wave_air) ** 2
    n = (1.0 + 8.336624212083e-5 + 2.408926869968e-2 / (130.1065924522 - s2)
         + 1.599740894897e-4 / (38.92568793293 - s2))
    return wave_air * n


class SpectrumError(ValueError):
    """A file that cannot be turned into a valid spectrum; the message says why."""


@dataclass
class SpectrumMeta:
    """Observation metadata found in (or derived from) a spectrum file."""

    obs_id: str
    target_name: str | None = None
    ra: float | None = None  # ICRS, degrees
    dec: float | None = None  # ICRS, degrees
    t_min: float | None = None  # MJD (UTC) of exposure start
    t_max: float | None = None  # MJD (UTC) of exposure end
    exptime: float | None = None  # seconds
    instrument: str | None = None
    facility: str | None = None
    resolving_power: float | None = None  # lambda / delta lambda
    snr: float | None = None  # median S/N as stated by the file, if any
    collection: str | None = None
    flux_unit: str = "erg s-1 cm-2 Angstrom-1"
    spec_frame: str = "vacuum"  # "air" or "vacuum" wavelengths
    # Why spec_frame was assumed, when the file does not state its frame (None: it does);
    # ingest reports it and records it with the file's outcome.
    spec_frame_note: str | None = None
    extra: dict = field(default_factory=dict)


@dataclass
class Spectrum:
    """One spectrum as every reader returns it: increasing wavelength (Angstrom, in the
    frame ``meta.spec_frame`` says), flux, inverse variance (0 marks a bad pixel) and
    metadata. :meth:`validate` checks these conventions.
    """

    wavelength: np.ndarray
    flux: np.ndarray
    ivar: np.ndarray
    meta: SpectrumMeta
    source_format: str = "unknown"

    def validate(self) -> None:
        """Raise :class:`SpectrumError` unless the arrays form a usable spectrum."""
        w, f, iv = self.wavelength, self.flux, self.ivar
        if w.ndim != 1 or f.ndim != 1 or iv.ndim != 1:
            raise SpectrumError(
                f"arrays must be one-dimensional (wavelength {w.shape}, flux {f.shape}, "
                f"ivar {iv.shape})"
            )
        if not (len(w) == len(f) == len(iv)):
            raise SpectrumError(
                f"array lengths differ: wavelength {len(w)}, flux {len(f)}, ivar {len(iv)}"
            )
        if len(w) < 2:
            raise SpectrumError(f"spectrum has {len(w)} pixel(s); at least 2 are needed")
        if not np.all(np.isfinite(w)):
            raise SpectrumError("wavelength array contains NaN or infinite values")
        if np.any(np.diff(w) <= 0):
            raise SpectrumError("wavelength array is not strictly increasing")
        if w[0] <= 0:
            raise SpectrumError(f"wavelength must be positive (first value {w[0]})")
        good = np.isfinite(f) & np.isfinite(iv) & (iv > 0)
        if good.mean() < 0.5:
            raise SpectrumError(
                f"only {good.mean():.0%} of the pixels have finite flux and positive "
                "inverse variance (NaN-riddled or empty spectrum)"
            )
        m = self.meta
        if m.ra is None or m.dec is None:
            raise SpectrumError("no sky position (RA/Dec) found")
        if not (0.0 <= m.ra < 360.0) or not (-90.0 <= m.dec <= 90.0):
            raise SpectrumError(f"sky position out of range: RA={m.ra}, Dec={m.dec}")

    def vacuum_wavelength(self) -> np.ndarray:
        """Wavelengths in vacuum (what ObsCore, SSA and the models use)."""
        if self.meta.spec_frame == "air":
            return air_to_vacuum(self.wavelength)
        return self.wavelength

    def median_snr(self) -> float:
        """Median per-pixel S/N over the good pixels (flux * sqrt(ivar))."""
        good = np.isfinite(self.flux) & (self.ivar > 0)
        if not good.any():
            return 0.0
        return float(np.median(np.abs(self.flux[good]) * np.sqrt(self.ivar[good])))
