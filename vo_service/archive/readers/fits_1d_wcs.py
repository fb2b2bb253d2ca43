"""1D FITS image with a wavelength WCS in the primary header (e.g. HARPS ``s1d`` files).

The wavelength of pixel ``p`` comes from CRVAL1, CDELT1 (or CD1_1), CRPIX1:

* ``CTYPE1`` ``WAVE``/``AWAV`` (vacuum/air, FITS WCS paper III), linear or with the
  ``-LOG`` algorithm. These two closed formulas are evaluated here rather than through
  ``astropy.wcs``, whose construction (wcslib parsing the whole header) cost more than
  reading the file; ``tests/test_formats.py`` checks them against astropy.wcs;
* ``LINEAR`` or no ``CTYPE1`` (the HARPS convention, air wavelengths) is linear, and
  IRAF's ``DC-FLAG = 1`` means the axis holds log10(wavelength).

These files usually carry no errors. An optional second HDU named ERR/SIGMA (sigma),
IVAR (inverse variance) or VAR (variance) is used when present; otherwise the noise is
estimated from the flux (:func:`estimate_sigma`) and ``meta.extra['ivar_estimated']``
says so.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np

from vo_service.archive.readers import eso_header
from vo_service.archive.readers.common import (
    as_vector,
    assemble,
    file_stem,
    header_float,
    ivar_from_sigma,
    parse_unit,
    reading,
    sigma_from_ivar,
    unit_string,
    wavelength_to_angstrom,
)
from vo_service.archive.readers.fitsfile import (
    FitsHDU,
    image_hdu,
    primary_hdu,
    read_fits,
    write_hdus,
)
from vo_service.archive.spectrum import Spectrum, SpectrumError

NAME = "fits-1d-wcs"
NOISE_BLOCK = 64  # pixels per block of the running noise estimate

_SIGMA_EXT = {"ERR", "ERROR", "SIGMA", "NOISE", "STDDEV"}
_IVAR_EXT = {"IVAR", "INVVAR"}
_VAR_EXT = {"VAR", "VARIANCE"}


def matches(hdus: list[FitsHDU]) -> bool:
    """True when the primary HDU holds a one-dimensional image."""
    header = hdus[0].header
    return header.get("NAXIS") == 1 or (
        header.get("NAXIS") == 2 and header.get("NAXIS2") == 1 and "CRVAL1" in header
    )


def estimate_sigma(flux: np.ndarray) -> np.ndarray:
    """Per-pixel noise from the flux alone, robust to lines and outliers.

    The DER_SNR statistic (Stoehr et al. 2008): for white noise, 2 f_i - f_{i-2} - f_{i+2}
    has standard deviation sqrt(6) sigma, and 1.482602 * median(|.|) is a robust sigma.
    Taking pixels two apart ignores correlation between neighbours, and the median
    ignores lines and cosmics. It is evaluated in blocks of NOISE_BLOCK pixels and
    interpolated, so that sigma follows the flux level along the spectrum.
    """
    n = len(flux)
    resid = np.full(n, np.nan)
    if n > 4:
        resid[2:-2] = np.abs(2.0 * flux[2:-2] - flux[:-4] - flux[4:])
    resid *= 1.482602 / math.sqrt(6.0)
    n_blocks = max(1, math.ceil(n / NOISE_BLOCK))
    padded = np.full(n_blocks * NOISE_BLOCK, np.nan)
    padded[:n] = resid
    blocks = padded.reshape(n_blocks, NOISE_BLOCK)
    counts = np.isfinite(blocks).sum(axis=1)
    ok = counts >= NOISE_BLOCK // 4
    if not ok.any():
        raise SpectrumError("too few finite flux values to estimate the noise")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        block_sigma = np.nanmedian(blocks[ok], axis=1)
    centres = (np.flatnonzero(ok) + 0.5) * NOISE_BLOCK - 0.5
    sigma = np.interp(np.arange(n), centres, block_sigma)
    floor = 1e-6 * np.nanmedian(np.abs(flux)) if np.isfinite(flux).any() else 0.0
    return np.maximum(sigma, floor)


def _keyword(header: dict, key: str, default: float) -> float:
    value = header_float(header, key)
    return default if value is None else value


def _wavelengths(header: dict, n: int) -> tuple[np.ndarray, str, bool]:
    """(wavelength in Angstrom, 'air'|'vacuum', frame_assumed) from the WCS keywords."""
    ctype = str(header.get("CTYPE1", "")).strip().upper()
    unit = header.get("CUNIT1")
    if ctype[:4] in ("WAVE", "AWAV"):
        if ctype[4:] not in ("", "-LOG"):
            raise SpectrumError(f"unsupported wavelength WCS algorithm CTYPE1={ctype!r}")
        crval = header_float(header, "CRVAL1")
        if crval is None:
            raise SpectrumError("no wavelength calibration (CRVAL1)")
        # Paper I defaults: CRPIX 0, CDELT 1, PC identity; CD1_1 replaces CDELT*PC.
        scale = header_float(header, "CD1_1")
        if scale is None:
            scale = _keyword(header, "CDELT1", 1.0) * _keyword(header, "PC1_1", 1.0)
        pixel = np.arange(1, n + 1, dtype=np.float64)
        offset = scale * (pixel - _keyword(header, "CRPIX1", 0.0))
        axis = crval * np.exp(offset / crval) if ctype.endswith("-LOG") else crval + offset
        frame = "air" if ctype.startswith("AWAV") else "vacuum"
        return wavelength_to_angstrom(axis, unit, "m"), frame, False
    if ctype not in ("", "LINEAR", "LAMBDA", "WAVELENGTH"):
        raise SpectrumError(f"CTYPE1={ctype!r} is not a wavelength axis")
    crval = header_float(header, "CRVAL1")
    cdelt = header_float(header, "CDELT1", "CD1_1")
    crpix = header_float(header, "CRPIX1")
    if crval is None or cdelt is None:
        raise SpectrumError("no wavelength calibration (CRVAL1 and CDELT1 or CD1_1)")
    axis = crval + cdelt * (np.arange(n, dtype=np.float64) + 1.0 - (crpix or 1.0))
    if header.get("DC-FLAG") == 1:
        axis = 10.0**axis
    return wavelength_to_angstrom(axis, unit, "Angstrom"), "air", True


def _error_ivar(hdus: list[FitsHDU], n: int) -> np.ndarray | None:
    """Inverse variance from a recognised error extension, else None."""
    for hdu in hdus[1:]:
        name = hdu.extname
        if hdu.data is None or name not in _SIGMA_EXT | _IVAR_EXT | _VAR_EXT:
            continue
        values = as_vector(hdu.data, name)
        if len(values) != n:
            raise SpectrumError(f"{name} extension has {len(values)} values but flux has {n}")
        if name in _IVAR_EXT:
            return values
        if name in _VAR_EXT:
            return ivar_from_sigma(np.sqrt(np.clip(values, 0, None)))
        return ivar_from_sigma(values)
    return None


def from_hdus(hdus: list[FitsHDU], fallback_id: str) -> Spectrum:
    """The spectrum of a 1D WCS FITS file read into memory (see the module notes)."""
    primary = hdus[0]
    if primary.data is None:
        raise SpectrumError("the primary HDU holds no data")
    flux = as_vector(primary.data, "primary image")
    header = primary.header
    wavelength, frame, assumed = _wavelengths(header, len(flux))
    meta = eso_header.read_meta(header, fallback_id)
    meta.spec_frame = frame
    if assumed:
        meta.spec_frame_note = (f"{frame} wavelengths assumed: CTYPE1 is "
                                f"{str(header.get('CTYPE1', '')).strip() or 'absent'}, "
                                "not WAVE or AWAV (IRAF linear axis; HARPS s1d files are air)")
    bunit = header.get("BUNIT")
    unit = parse_unit(str(bunit)) if bunit else None
    meta.flux_unit = unit_string(unit) if unit is not None else ""
    ivar = _error_ivar(hdus, len(flux))
    if ivar is None:
        finite = np.isfinite(flux)
        if not finite.any():
            raise SpectrumError("primary image has no finite value (all NaN or infinite)")
        ivar = ivar_from_sigma(estimate_sigma(np.where(finite, flux, np.nan)))
        meta.extra["ivar_estimated"] = "der_snr"
    return assemble(wavelength, flux, ivar, meta, NAME, labels=("wavelength", "flux", "ivar"))


def read(path: str | Path) -> Spectrum:
    """Read a 1D FITS spectrum with a wavelength WCS (plain or gzipped)."""
    with reading(path, NAME):
        spectrum = from_hdus(read_fits(path), file_stem(Path(path).name))
        spectrum.validate()
        return spectrum


def _wcs_cards(wavelength: np.ndarray, frame: str) -> list[tuple[str, object, str]]:
    """CRVAL1/CDELT1/CRPIX1/CTYPE1 for a linear or log-uniform grid."""
    steps = np.diff(wavelength)
    ctype = "AWAV" if frame == "air" else "WAVE"
    if np.allclose(steps, steps.mean(), rtol=1e-6, atol=0):
        cdelt = float(steps.mean())
    else:
        log_steps = np.diff(np.log(wavelength))
        if not np.allclose(log_steps, log_steps.mean(), rtol=1e-6, atol=0):
            raise SpectrumError("wavelength grid is neither linear nor logarithmic")
        cdelt = float(wavelength[0] * log_steps.mean())
        ctype += "-LOG"
    return [
        ("CTYPE1", ctype, "air/vacuum wavelength (FITS WCS paper III)"),
        ("CUNIT1", "Angstrom", "wavelength unit"),
        ("CRPIX1", 1.0, "reference pixel"),
        ("CRVAL1", float(wavelength[0]), "wavelength at reference pixel"),
        ("CDELT1", cdelt, "wavelength step (or -LOG parameter)"),
    ]


def write(spectrum: Spectrum, path: str | Path, *, with_error: bool = True) -> None:
    """Write ``spectrum`` as a 1D image; its grid must be linear or log-uniform.

    ``with_error=False`` leaves out the ERR extension, as HARPS s1d files do.
    """
    meta = spectrum.meta
    cards = _wcs_cards(spectrum.wavelength, meta.spec_frame)
    if meta.flux_unit:
        cards.append(("BUNIT", meta.flux_unit, "flux unit"))
    cards += eso_header.write_cards(meta)
    hdus = [primary_hdu(cards, spectrum.flux.astype(np.float32))]
    if with_error:
        hdus.append(image_hdu("ERR", sigma_from_ivar(spectrum.ivar).astype(np.float32)))
    write_hdus(path, hdus)
