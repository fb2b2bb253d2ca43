"""Helpers shared by the format readers: error wrapping, header look-ups, units, arrays.

Every reader funnels its arrays through :func:`assemble` so that the conventions of
:class:`vo_service.archive.spectrum.Spectrum` (Angstrom, increasing wavelength, ivar 0
for bad pixels, finite flux) are enforced in exactly one place.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import SupportsFloat

import astropy.units as u
import numpy as np

from vo_service.archive.spectrum import Spectrum, SpectrumError, SpectrumMeta

# Spellings seen in real headers that astropy's parsers reject or misread ("A" is ampere).
_UNIT_ALIASES: dict[str, u.UnitBase] = {
    "a": u.AA,
    "aa": u.AA,
    "ang": u.AA,
    "angs": u.AA,
    "angstrom": u.AA,
    "angstroms": u.AA,
    "1e-17 erg/cm^2/s/ang": u.Unit("1e-17 erg / (s cm2 Angstrom)"),
    "1e-17 erg/s/cm^2/ang": u.Unit("1e-17 erg / (s cm2 Angstrom)"),
    "erg/cm^2/s/ang": u.Unit("erg / (s cm2 Angstrom)"),
    "erg/s/cm^2/ang": u.Unit("erg / (s cm2 Angstrom)"),
}


@contextmanager
def reading(path: str | Path, what: str) -> Iterator[None]:
    """Turn any failure while reading ``path`` into a SpectrumError naming the file."""
    name = Path(path).name
    try:
        yield
    except SpectrumError as exc:
        if str(exc).startswith(f"{name}: "):
            raise
        raise SpectrumError(f"{name}: {exc}") from exc
    except FileNotFoundError as exc:
        raise SpectrumError(f"{name}: file not found") from exc
    except Exception as exc:  # the contract: nothing escapes un-wrapped
        raise SpectrumError(
            f"{name}: cannot be read as {what}: {type(exc).__name__}: {exc}"
        ) from exc


def file_stem(name: str) -> str:
    """File name without the FITS/VOTable suffixes (also after .gz)."""
    for suffix in (".gz", ".fits", ".fit", ".fts", ".xml", ".vot"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return name


def header_value(header: Mapping, *keys: str) -> object | None:
    """First present, non-blank value among ``keys`` (FITS headers, dicts)."""
    for key in keys:
        if key in header:
            value = header[key]
            if value is None or (isinstance(value, str) and not value.strip()):
                continue
            return value
    return None


def header_float(header: Mapping, *keys: str) -> float | None:
    """First of ``keys`` that holds a finite number; strings like '12.5' count."""
    for key in keys:
        value = header_value(header, key)
        if isinstance(value, bool):
            continue
        number = finite_float(value)
        if number is not None:
            return number
    return None


def finite_float(value: object) -> float | None:
    """``value`` as a finite float, or None when it is not one.

    Numbers (numpy scalars included) and numeric strings such as '12.5' convert;
    None, other objects, NaN and infinities give None. Header and PARAM values come
    untyped from the file, so readers check them here rather than trust them.
    """
    if not isinstance(value, str | SupportsFloat):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def header_str(header: Mapping, *keys: str) -> str | None:
    """First present, non-blank value among ``keys`` as a stripped string."""
    value = header_value(header, *keys)
    return None if value is None else str(value).strip()


def parse_unit(text: str | None) -> u.UnitBase | None:
    """Parse a unit string as written in FITS/VOTable files; None if unparsable."""
    return None if text is None else _parse_unit(str(text))


@functools.lru_cache(maxsize=256)
def _parse_unit(text: str) -> u.UnitBase | None:
    """Cached: astropy's unit parsers cost milliseconds, archives repeat a few units."""
    cleaned = str(text).strip()
    alias = _UNIT_ALIASES.get(cleaned.lower())
    if alias is not None:
        return alias
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for fmt in ("fits", "vounit", "generic", "cds"):
            try:
                return u.Unit(cleaned, format=fmt)
            except (ValueError, TypeError):
                continue
    return None


def unit_string(unit: u.UnitBase) -> str:
    """The canonical string stored in ``SpectrumMeta.flux_unit`` (FITS style)."""
    try:
        return unit.to_string("fits")
    except (ValueError, TypeError):
        return unit.to_string()


def wavelength_to_angstrom(values: np.ndarray, unit_text: str | None, default: str) -> np.ndarray:
    """Convert wavelengths in ``unit_text`` (``default`` when absent) to Angstrom."""
    text = unit_text if unit_text and str(unit_text).strip() else default
    unit = parse_unit(text)
    if unit is None:
        raise SpectrumError(f"wavelength unit {text!r} is not a recognised unit")
    if unit.physical_type != "length":
        raise SpectrumError(f"wavelength unit {text!r} is not a length")
    return (np.asarray(values, dtype=np.float64) * unit).to_value(u.AA)


def ivar_from_sigma(sigma: np.ndarray, bad: np.ndarray | None = None) -> np.ndarray:
    """1/sigma^2, with 0 wherever sigma is not a positive finite number or ``bad`` is set."""
    sigma = np.asarray(sigma, dtype=np.float64)
    good = np.isfinite(sigma) & (sigma > 0)
    if bad is not None:
        good &= ~np.asarray(bad, dtype=bool)
    ivar = np.zeros_like(sigma)
    ivar[good] = 1.0 / sigma[good] ** 2
    return ivar


def sigma_from_ivar(ivar: np.ndarray) -> np.ndarray:
    """Inverse of :func:`ivar_from_sigma`; 0 marks pixels without information."""
    ivar = np.asarray(ivar, dtype=np.float64)
    sigma = np.zeros_like(ivar)
    good = ivar > 0
    sigma[good] = 1.0 / np.sqrt(ivar[good])
    return sigma


def as_vector(values: object, label: str) -> np.ndarray:
    """A native-endian float64 1D array; a single-row 2D array is flattened."""
    arr = np.asarray(values)
    if arr.ndim == 2 and 1 in arr.shape:
        arr = arr.ravel()
    if arr.ndim != 1:
        raise SpectrumError(f"{label} has shape {arr.shape}; a one-dimensional array is needed")
    if not np.issubdtype(arr.dtype, np.number):
        raise SpectrumError(f"{label} is not numeric (dtype {arr.dtype})")
    return arr.astype(np.float64)


def assemble(
    wavelength: np.ndarray,
    flux: np.ndarray,
    ivar: np.ndarray,
    meta: SpectrumMeta,
    source_format: str,
    labels: tuple[str, str, str] = ("wavelength", "flux", "ivar"),
) -> Spectrum:
    """Build a Spectrum from reader arrays, enforcing the shared conventions.

    Non-finite flux becomes 0 with ivar 0 (the pixel carries no information) so that
    consumers never see NaN; a strictly decreasing wavelength array is reversed.
    """
    w = as_vector(wavelength, labels[0])
    f = as_vector(flux, labels[1])
    iv = as_vector(ivar, labels[2])
    if not (len(w) == len(f) == len(iv)):
        raise SpectrumError(
            f"array lengths differ: {labels[0]} {len(w)}, {labels[1]} {len(f)}, "
            f"{labels[2]} {len(iv)}"
        )
    if len(w) >= 2 and np.all(np.diff(w) < 0):
        w, f, iv = w[::-1].copy(), f[::-1].copy(), iv[::-1].copy()
    finite = np.isfinite(f)
    if not finite.any():
        raise SpectrumError(f"{labels[1]} has no finite value (all NaN or infinite)")
    iv = np.where(np.isfinite(iv) & (iv > 0) & finite, iv, 0.0)
    f = np.where(finite, f, 0.0)
    return Spectrum(wavelength=w, flux=f, ivar=iv, meta=meta, source_format=source_format)


def position(ra: float | None, dec: float | None) -> tuple[float | None, float | None]:
    """Normalise RA into [0, 360); keep None when either coordinate is missing."""
    if ra is None or dec is None:
        return None, None
    return ra % 360.0, dec
