"""ESO Phase 3 one-dimensional spectrum (``PRODCATG = 'SCIENCE.SPECTRUM'``).

Layout per the ESO Science Data Products standard: an empty primary HDU carrying the
observation keywords and a one-row BINTABLE (``VOCLASS = 'SPECTRUM v2.0'``) whose
array cells hold WAVE, FLUX, ERR and optionally QUAL, each described by TUNIT, TUTYP
(Spectrum DM utype) and TUCD. Wavelengths are usually in nm.

Air or vacuum is stated by the WAVE column's TUCD alone: ``em.wl;obs.atmos`` is air,
``em.wl`` (without ``obs.atmos``) vacuum. The standard makes TUCD mandatory; a file
without it is read as vacuum, the frame of the unqualified ``em.wl`` and of FITS's
WAVE axis (and ESO's published ObsCore em_min/em_max), and the assumption is noted on
the spectrum (``meta.spec_frame_note``) for ingest to report.
"""

from __future__ import annotations

from pathlib import Path

import astropy.units as u
import numpy as np

from vo_service.archive.readers import eso_header
from vo_service.archive.readers.common import (
    assemble,
    file_stem,
    ivar_from_sigma,
    parse_unit,
    reading,
    sigma_from_ivar,
    unit_string,
    wavelength_to_angstrom,
)
from vo_service.archive.readers.fitsfile import (
    Column,
    FitsHDU,
    bintable_hdu,
    primary_hdu,
    read_fits,
    write_hdus,
)
from vo_service.archive.spectrum import Spectrum, SpectrumError

NAME = "eso-phase3"
FLUX_DENSITY = u.erg / u.s / u.cm**2 / u.AA

# Column roles: accepted names (first wins) and the utype suffix that identifies them.
_ROLES = {
    "wave": (("WAVE", "WAVELENGTH", "LAMBDA"), "spectralaxis.value"),
    "flux": (("FLUX", "FLUX_REDUCED"), "fluxaxis.value"),
    "err": (("ERR", "ERR_REDUCED", "ERROR", "SIGMA"), "fluxaxis.accuracy.staterror"),
    "qual": (("QUAL", "QUALITY"), "fluxaxis.accuracy.qualitystatus"),
}


def matches(hdus: list[FitsHDU]) -> bool:
    """True for a BINTABLE in HDU 1 with WAVE/FLUX columns or a Phase 3 VOCLASS."""
    if len(hdus) < 2 or hdus[1].kind != "bintable":
        return False
    if str(hdus[1].header.get("VOCLASS", "")).upper().startswith("SPECTRUM"):
        return True
    names = {name.upper() for name in hdus[1].column_names}
    return "FLUX" in names and bool(names & {"WAVE", "WAVELENGTH"})


def _find_column(table: FitsHDU, role: str) -> int | None:
    """Index of the column playing ``role``: by name first, then by TUTYP utype."""
    names, utype = _ROLES[role]
    upper = [name.upper() for name in table.column_names]
    for name in names:
        if name in upper:
            return upper.index(name)
    for i in range(len(upper)):
        tutyp = (table.column_keyword(i, "TUTYP") or "").lower()
        if tutyp.endswith(utype):
            return i
    return None


def _cell(table: FitsHDU, index: int) -> np.ndarray:
    if table.data is None or len(table.data) == 0:
        raise SpectrumError("the spectrum table has no rows")
    column = np.asarray(table.column(index))
    if column.ndim == 1:  # one row per pixel
        return column
    if column.shape[0] != 1:
        raise SpectrumError(
            f"the spectrum table has {column.shape[0]} rows of arrays; one is expected"
        )
    return column[0]


def from_hdus(hdus: list[FitsHDU], fallback_id: str) -> Spectrum:
    """The spectrum of an ESO Phase 3 file read into memory (see the module notes)."""
    if len(hdus) < 2 or hdus[1].kind != "bintable":
        raise SpectrumError("no binary table in extension 1")
    table = hdus[1]
    found = {role: _find_column(table, role) for role in _ROLES}
    wave_i, flux_i, qual_i, err_i = (found[role] for role in ("wave", "flux", "qual", "err"))
    if wave_i is None or flux_i is None:
        role = "wave" if wave_i is None else "flux"
        raise SpectrumError(
            f"no {role.upper()} column (columns: {', '.join(table.column_names)})"
        )
    wave_unit = table.column_keyword(wave_i, "TUNIT")
    wavelength = wavelength_to_angstrom(_cell(table, wave_i), wave_unit, default="nm")
    flux = _cell(table, flux_i)
    qual = _cell(table, qual_i) if qual_i is not None else None
    if qual is not None and len(qual) != len(flux):
        raise SpectrumError(f"QUAL has {len(qual)} values but FLUX has {len(flux)}")
    if err_i is not None:
        err = _cell(table, err_i)
        if len(err) != len(flux):
            raise SpectrumError(f"ERR has {len(err)} values but FLUX has {len(flux)}")
        ivar = ivar_from_sigma(err, bad=None if qual is None else qual != 0)
    else:
        raise SpectrumError("no ERR column: Phase 3 spectra must carry their errors")
    meta = eso_header.read_meta(hdus[0].header, fallback_id)
    flux_tunit = table.column_keyword(flux_i, "TUNIT")
    flux_unit = parse_unit(flux_tunit)
    if flux_unit is not None:
        meta.flux_unit = unit_string(flux_unit)
    else:
        meta.flux_unit = ""
        meta.extra["flux_unit_raw"] = flux_tunit or ""
    meta.spec_frame, meta.spec_frame_note = wavelength_frame(
        table.column_keyword(wave_i, "TUCD"), table.column_names[wave_i])
    return assemble(wavelength, flux, ivar, meta, NAME, labels=("WAVE", "FLUX", "ERR"))


def wavelength_frame(tucd: str | None, column: str) -> tuple[str, str | None]:
    """('air' | 'vacuum', note when assumed) from the wavelength column's TUCD."""
    words = {word.strip().lower() for word in (tucd or "").split(";")}
    if "obs.atmos" in words:
        return "air", None
    if (tucd or "").strip():
        return "vacuum", None
    return "vacuum", (f"vacuum wavelengths assumed: the {column} column has no TUCD "
                      "(ESO Phase 3: em.wl;obs.atmos is air, em.wl vacuum)")


def read(path: str | Path) -> Spectrum:
    """Read an ESO Phase 3 spectrum file (plain or gzipped)."""
    with reading(path, NAME):
        spectrum = from_hdus(read_fits(path), file_stem(Path(path).name))
        spectrum.validate()
        return spectrum


def write(spectrum: Spectrum, path: str | Path) -> None:
    """Write ``spectrum`` in Phase 3 layout (WAVE in nm); '.gz' paths are compressed."""
    meta = spectrum.meta
    wave_nm = spectrum.wavelength / 10.0
    sigma = sigma_from_ivar(spectrum.ivar).astype(np.float32)
    qual = (spectrum.ivar <= 0).astype(np.int32)
    flux_unit = parse_unit(meta.flux_unit)
    flux_tunit = unit_string(flux_unit) if flux_unit is not None else meta.flux_unit
    calibrated = flux_unit is not None and flux_unit.is_equivalent(FLUX_DENSITY)
    wave_ucd = "em.wl;obs.atmos" if meta.spec_frame == "air" else "em.wl"
    columns: list[Column] = [
        (
            "WAVE",
            wave_nm.astype(np.float64),
            {
                "TUNIT": "nm",
                "TUTYP": "spec:Data.SpectralAxis.Value",
                "TUCD": wave_ucd,
                "TDMIN": float(wave_nm[0]),
                "TDMAX": float(wave_nm[-1]),
            },
        ),
        (
            "FLUX",
            spectrum.flux.astype(np.float32),
            {
                "TUNIT": flux_tunit,
                "TUTYP": "spec:Data.FluxAxis.Value",
                "TUCD": "phot.flux.density;em.wl",
            },
        ),
        (
            "ERR",
            sigma,
            {
                "TUNIT": flux_tunit,
                "TUTYP": "spec:Data.FluxAxis.Accuracy.StatError",
                "TUCD": "stat.error;phot.flux.density;em.wl",
            },
        ),
        (
            "QUAL",
            qual,
            {"TUTYP": "spec:Data.FluxAxis.Accuracy.QualityStatus", "TUCD": "meta.code.qual"},
        ),
    ]
    primary_cards = [
        *eso_header.write_cards(meta),
        ("PRODCATG", "SCIENCE.SPECTRUM", "data product category"),
        ("SPECSYS", meta.extra.get("specsys", "TOPOCENT"), "reference frame of spectral axis"),
        ("FLUXCAL", "ABSOLUTE" if calibrated else "UNCALIBRATED", "type of flux calibration"),
        ("WAVELMIN", float(wave_nm[0]), "[nm] minimum wavelength"),
        ("WAVELMAX", float(wave_nm[-1]), "[nm] maximum wavelength"),
        ("SPEC_BIN", float(np.mean(np.diff(wave_nm))), "[nm] average spectral bin"),
        ("PROCSOFT", "latentvo", "software that wrote this file"),
    ]
    ext_cards = [
        ("EXTNAME", "SPECTRUM", "extension name"),
        ("VOCLASS", "SPECTRUM v2.0", "VO data model"),
        ("VOPUB", "ESO/SAF", "VO publishing authority"),
        ("TITLE", f"{meta.target_name or meta.obs_id} spectrum", "dataset title"),
        ("RA", meta.ra, "[deg] ICRS right ascension"),
        ("DEC", meta.dec, "[deg] ICRS declination"),
        ("NELEM", len(wave_nm), "number of spectral elements"),
        ("SPEC_VAL", float((wave_nm[0] + wave_nm[-1]) / 2), "[nm] mean wavelength"),
        ("SPEC_BW", float(wave_nm[-1] - wave_nm[0]), "[nm] bandwidth"),
    ]
    write_hdus(path, [primary_hdu(primary_cards), bintable_hdu(columns, ext_cards)])
