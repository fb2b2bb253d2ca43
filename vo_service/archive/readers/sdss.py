"""SDSS-style spectrum (``spec-PLATE-MJD-FIBER.fits``).

HDU 1 is a BINTABLE with one row per pixel: ``loglam`` (log10 of vacuum wavelength in
Angstrom), ``flux`` (1e-17 erg/s/cm2/A), ``ivar`` and optionally ``and_mask`` (non-zero
marks a bad pixel) and ``wdisp`` (line-spread sigma in pixels, which gives the
resolving power). The primary header holds PLUG_RA/PLUG_DEC, MJD, PLATEID, FIBERID,
TAI-BEG/TAI-END (TAI seconds since MJD 0, taken as UTC: the 35 s offset is below any
use made of it here) and EXPTIME.
"""

from __future__ import annotations

import math
from pathlib import Path

import astropy.units as u
import numpy as np

from vo_service.archive.readers.common import (
    as_vector,
    assemble,
    file_stem,
    header_float,
    header_str,
    parse_unit,
    position,
    reading,
    unit_string,
)
from vo_service.archive.readers.eso_header import SECONDS_PER_DAY
from vo_service.archive.readers.fitsfile import (
    FitsHDU,
    bintable_hdu,
    primary_hdu,
    read_fits,
    write_hdus,
)
from vo_service.archive.spectrum import Spectrum, SpectrumError, SpectrumMeta

NAME = "sdss"
SDSS_FLUX_UNIT = u.Unit("1e-17 erg / (s cm2 Angstrom)")
SDSS_BUNIT = "1E-17 erg/cm^2/s/Ang"  # as written by the SDSS pipeline (not FITS-standard)
_BAD_PIXEL_BIT = 1 << 22  # a set bit in and_mask marks the pixel as bad


def matches(hdus: list[FitsHDU]) -> bool:
    """True for a BINTABLE in HDU 1 with ``loglam`` and ``flux`` columns."""
    if len(hdus) < 2 or hdus[1].kind != "bintable":
        return False
    names = {name.lower() for name in hdus[1].column_names}
    return {"loglam", "flux"} <= names


def _index(table: FitsHDU, name: str) -> int | None:
    lower = [c.lower() for c in table.column_names]
    return lower.index(name) if name in lower else None


def _column(table: FitsHDU, name: str) -> np.ndarray | None:
    index = _index(table, name)
    return None if index is None else as_vector(table.column(index), name)


def _resolving_power(loglam: np.ndarray, wdisp: np.ndarray | None) -> float | None:
    """Median lambda / FWHM from the per-pixel Gaussian sigma ``wdisp`` (in pixels)."""
    if wdisp is None or len(loglam) < 2:
        return None
    good = np.isfinite(wdisp) & (wdisp > 0)
    if not good.any():
        return None
    step = np.gradient(loglam)[good]
    return float(np.median(1.0 / (2.3548 * wdisp[good] * math.log(10) * step)))


def _meta(header: dict, fallback_id: str) -> SpectrumMeta:
    plate = header_float(header, "PLATEID", "PLATE")
    mjd = header_float(header, "MJD")
    fiber = header_float(header, "FIBERID", "FIBER")
    obs_id = header_str(header, "OBS_ID")
    if obs_id is None and plate is not None and mjd is not None and fiber is not None:
        obs_id = f"sdss-{int(plate):04d}-{int(mjd):05d}-{int(fiber):04d}"
    ra, dec = position(
        header_float(header, "PLUG_RA", "RA"), header_float(header, "PLUG_DEC", "DEC")
    )
    exptime = header_float(header, "EXPTIME")
    tai_beg, tai_end = header_float(header, "TAI-BEG"), header_float(header, "TAI-END")
    t_min = tai_beg / SECONDS_PER_DAY if tai_beg is not None else header_float(header, "MJD-OBS")
    t_max = tai_end / SECONDS_PER_DAY if tai_end is not None else None
    if t_max is None and t_min is not None and exptime is not None:
        t_max = t_min + exptime / SECONDS_PER_DAY
    extra = {
        key: int(value)
        for key, value in (("plate", plate), ("mjd", mjd), ("fiberid", fiber))
        if value is not None
    }
    return SpectrumMeta(
        obs_id=obs_id or fallback_id,
        target_name=header_str(header, "OBJECT", "NAME", "TARGNAME"),
        ra=ra,
        dec=dec,
        t_min=t_min,
        t_max=t_max,
        exptime=exptime,
        instrument=header_str(header, "INSTRUME"),
        facility=header_str(header, "TELESCOP"),
        snr=header_float(header, "SNR", "SN_MEDIAN"),
        spec_frame="air" if header.get("VACUUM") is False else "vacuum",
        extra=extra,
    )


def from_hdus(hdus: list[FitsHDU], fallback_id: str) -> Spectrum:
    """The spectrum of an SDSS-style file read into memory (see the module notes)."""
    if not matches(hdus):
        raise SpectrumError("HDU 1 is not a binary table with loglam and flux columns")
    table = hdus[1]
    loglam, flux, ivar = (_column(table, name) for name in ("loglam", "flux", "ivar"))
    if ivar is None:
        raise SpectrumError(f"no ivar column (columns: {', '.join(table.column_names)})")
    assert loglam is not None and flux is not None  # matches() saw both columns
    and_mask = _column(table, "and_mask")
    if and_mask is not None:
        if len(and_mask) != len(ivar):
            raise SpectrumError(f"and_mask has {len(and_mask)} values but ivar has {len(ivar)}")
        ivar = np.where(and_mask != 0, 0.0, ivar)
    meta = _meta(hdus[0].header, fallback_id)
    if len(loglam) == len(flux):
        meta.resolving_power = _resolving_power(loglam, _column(table, "wdisp"))
    if meta.resolving_power is None:
        meta.resolving_power = header_float(hdus[0].header, "SPEC_RES")
    flux_index = _index(table, "flux")
    assert flux_index is not None  # matches() saw the column
    bunit = header_str(hdus[0].header, "BUNIT") or table.column_keyword(flux_index, "TUNIT")
    unit = parse_unit(bunit) if bunit else None
    meta.flux_unit = unit_string(unit if unit is not None else SDSS_FLUX_UNIT)
    return assemble(10.0**loglam, flux, ivar, meta, NAME, labels=("loglam", "flux", "ivar"))


def read(path: str | Path) -> Spectrum:
    """Read an SDSS-style spectrum file (plain or gzipped)."""
    with reading(path, NAME):
        spectrum = from_hdus(read_fits(path), file_stem(Path(path).name))
        spectrum.validate()
        return spectrum


def write(spectrum: Spectrum, path: str | Path) -> None:
    """Write ``spectrum`` in SDSS layout; its flux must convert to 1e-17 erg/s/cm2/A."""
    meta = spectrum.meta
    unit = parse_unit(meta.flux_unit)
    if unit is None or not unit.is_equivalent(SDSS_FLUX_UNIT):
        raise SpectrumError(f"SDSS files need a flux density unit, not {meta.flux_unit!r}")
    scale = unit.to(SDSS_FLUX_UNIT)
    loglam = np.log10(spectrum.wavelength)
    columns: list[tuple[str, np.ndarray, dict[str, str]]] = [
        ("flux", (spectrum.flux * scale).astype(np.float32), {}),
        ("loglam", loglam.astype(np.float32), {}),
        ("ivar", (spectrum.ivar / scale**2).astype(np.float32), {}),
        ("and_mask", np.where(spectrum.ivar > 0, 0, _BAD_PIXEL_BIT).astype(np.int32), {}),
    ]
    if meta.resolving_power:
        wdisp = 1.0 / (2.3548 * meta.resolving_power * math.log(10) * np.gradient(loglam))
        columns.append(("wdisp", wdisp.astype(np.float32), {}))
    mjd_day = math.floor(meta.t_min) if meta.t_min is not None else None
    cards = [
        ("TELESCOP", meta.facility, "telescope"),
        ("INSTRUME", meta.instrument, "instrument"),
        ("OBJECT", meta.target_name, "target name"),
        ("OBS_ID", meta.obs_id, "observation identifier"),
        ("PLATEID", meta.extra.get("plate"), "plate number"),
        ("MJD", meta.extra.get("mjd", mjd_day), "MJD of observation night"),
        ("FIBERID", meta.extra.get("fiberid"), "fiber number"),
        ("PLUG_RA", meta.ra, "[deg] ICRS right ascension of the fiber"),
        ("PLUG_DEC", meta.dec, "[deg] ICRS declination of the fiber"),
        (
            "TAI-BEG",
            None if meta.t_min is None else meta.t_min * SECONDS_PER_DAY,
            "[s] start of exposure, seconds since MJD 0",
        ),
        (
            "TAI-END",
            None if meta.t_max is None else meta.t_max * SECONDS_PER_DAY,
            "[s] end of exposure, seconds since MJD 0",
        ),
        ("EXPTIME", meta.exptime, "[s] exposure time"),
        ("SNR", meta.snr, "median S/N over all good pixels"),
        ("VACUUM", meta.spec_frame != "air", "wavelengths are in vacuum"),
        ("BUNIT", SDSS_BUNIT, "flux unit"),
    ]
    write_hdus(
        path, [primary_hdu(cards), bintable_hdu(columns, [("EXTNAME", "COADD", "")], one_row=False)]
    )
