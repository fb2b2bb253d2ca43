"""IVOA Spectrum Data Model (1.1) serialised as a VOTable, one row per pixel.

Columns are FIELDs and observation metadata PARAMs, each with its Spectrum DM utype
(``spec:Spectrum.Data.SpectralAxis.Value``, ``spec:Spectrum.Target.Name``, ...) and
UCD. Reading (with ``astropy.io.votable``) identifies columns by utype first, by UCD
second and by name last, so documents from other services are understood too.

The writer produces a VOTable 1.4 document with TABLEDATA serialisation that the
service also offers for download: COOSYS for the position, TIMESYS for the MJD times,
air wavelengths flagged by the ``em.wl;obs.atmos`` UCD as the Spectrum DM recommends.
It formats the XML itself because ``astropy.io.votable`` needs ~100 ms per 4,000-row
table; tests check the output with astropy's strict parser.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import astropy.units as u
import numpy as np
from astropy.io import votable

from vo_service.archive.readers import votable_data
from vo_service.archive.readers.common import (
    as_vector,
    assemble,
    file_stem,
    finite_float,
    ivar_from_sigma,
    parse_unit,
    reading,
    sigma_from_ivar,
    unit_string,
)
from vo_service.archive.spectrum import Spectrum, SpectrumError, SpectrumMeta

NAME = "spectrum-votable"

WAVE = "data.spectralaxis.value"
FLUX = "data.fluxaxis.value"
ERROR = "data.fluxaxis.accuracy.staterror"
QUALITY = ("data.fluxaxis.quality", "data.fluxaxis.accuracy.qualitystatus")

# (role, UCD primary words, names) used when a FIELD has no recognised utype.
_FIELD_FALLBACK = {
    WAVE: (("em.wl",), ("wavelength", "wave", "lambda", "spectral_axis")),
    FLUX: (("phot.flux.density", "phot.flux"), ("flux", "flux_density")),
    ERROR: (("stat.error",), ("flux_error", "error", "err", "sigma")),
}


def normalise_utype(utype: str | None) -> str:
    """'spec:Spectrum.Data.FluxAxis.Value' and 'Data.FluxAxis.Value' -> 'data.fluxaxis.value'."""
    text = (utype or "").strip().lower()
    text = text.split(":", 1)[-1]
    return text.removeprefix("spectrum.")


def _role_of_field(field: votable.tree.Field, role: str) -> int:
    """Match quality of ``field`` for ``role``: 3 utype, 2 UCD, 1 name, 0 none."""
    utype = normalise_utype(field.utype)
    if utype == role or (role == QUALITY[0] and utype in QUALITY):
        return 3
    if role not in _FIELD_FALLBACK:
        return 1 if (field.name or "").lower() in ("quality", "qual", "flags") else 0
    ucds, names = _FIELD_FALLBACK[role]
    words = [w.strip().lower() for w in (field.ucd or "").split(";")]
    if role == ERROR:
        if "stat.error" in words and any(w.startswith("phot.flux") for w in words):
            return 2
    elif words and words[0] in ucds:
        return 2
    return 1 if (field.name or "").lower() in names else 0


def _pick(fields: list, role: str) -> votable.tree.Field | None:
    scored = [(score, -i, f) for i, f in enumerate(fields) if (score := _role_of_field(f, role))]
    return max(scored, key=lambda t: (t[0], t[1]))[2] if scored else None


def _column(table: votable.tree.TableElement, field: votable.tree.Field) -> np.ndarray:
    names = table.array.dtype.names
    data = table.array[field.ID if field.ID in names else field.name]
    values = np.ma.filled(np.ma.asarray(data).astype(np.float64), np.nan)
    return as_vector(values, field.name)


Params = dict[str, votable.tree.Param]


def _params(vot: votable.tree.VOTableFile) -> tuple[Params, Params]:
    """All PARAMs by normalised utype and by lower-case name."""
    by_utype: Params = {}
    by_name: Params = {}
    for element in vot.iter_fields_and_params():
        if isinstance(element, votable.tree.Param):
            if element.utype:
                by_utype.setdefault(normalise_utype(element.utype), element)
            by_name.setdefault((element.name or "").lower(), element)
    return by_utype, by_name


def _value(param: votable.tree.Param | None) -> object | None:
    if param is None:
        return None
    value = param.value
    if np.ma.is_masked(value):
        return None
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, str):
        return value.strip() or None
    return value


def _text(param: votable.tree.Param | None) -> str | None:
    """A PARAM's value as text, for metadata that SpectrumMeta holds as strings."""
    value = _value(param)
    return None if value is None else str(value)


def _number(param: votable.tree.Param | None) -> float | None:
    return finite_float(_value(param))


def _mjd(param: votable.tree.Param | None) -> float | None:
    """A time PARAM as MJD: JD values are recognised by their size."""
    value = _number(param)
    if value is not None and value > 2_400_000.5:
        value -= 2_400_000.5
    return value


def _position(by_utype: Params, by_name: Params) -> tuple[float | None, float | None]:
    for key in ("char.spatialaxis.coverage.location.value", "target.pos"):
        value = _value(by_utype.get(key))
        if value is not None:
            coords = np.ravel(np.asarray(value, dtype=np.float64))
            if len(coords) == 2 and np.all(np.isfinite(coords)):
                return float(coords[0]) % 360.0, float(coords[1])
    ra, dec = (
        next((v for k in keys if (v := _number(by_name.get(k))) is not None), None)
        for keys in (("ra", "s_ra"), ("dec", "s_dec"))
    )
    if ra is None or dec is None:
        return None, None
    return ra % 360.0, dec


def _obs_id(by_utype: Params, by_name: Params, fallback: str) -> str:
    for param in (
        by_utype.get("dataid.datasetid"),
        by_utype.get("dataid.creatordid"),
        by_utype.get("curation.publisherdid"),
        by_name.get("obs_id"),
    ):
        value = _value(param)
        if value:
            text = str(value)
            if text.startswith("ivo://"):
                text = text.rsplit("?", 1)[-1].rsplit("#", 1)[-1]
            return text
    return fallback


def _to_angstrom(values: np.ndarray, unit_text: object) -> np.ndarray:
    """Spectral-axis values (wavelength, frequency or energy) in Angstrom."""
    unit = parse_unit(str(unit_text)) if unit_text else u.AA
    if unit is None:
        raise SpectrumError(f"spectral axis unit {unit_text!r} is not a recognised unit")
    try:
        return (values * unit).to_value(u.AA, equivalencies=u.spectral())
    except u.UnitConversionError as exc:
        raise SpectrumError(f"spectral axis unit {unit_text!r} is not spectral") from exc


def from_votable(vot: votable.tree.VOTableFile, fallback_id: str) -> Spectrum:
    """The spectrum of a parsed Spectrum DM VOTable.

    Columns are found by utype, then UCD, then name; metadata comes from the PARAMs.
    ``fallback_id`` is the obs_id when the file names none.
    """
    tables = list(vot.iter_tables())
    if not tables:
        raise SpectrumError("the VOTable holds no TABLE")
    table = next((t for t in tables if "spectrum" in (t.utype or "").lower()), tables[0])
    fields = list(table.fields)
    wave_f, flux_f, err_f = (_pick(fields, role) for role in (WAVE, FLUX, ERROR))
    names = ", ".join(f.name for f in fields) or "none"
    if wave_f is None:
        raise SpectrumError(f"no spectral axis column (by utype, UCD em.wl or name; {names})")
    if flux_f is None:
        raise SpectrumError(f"no flux column (by utype, UCD phot.flux.density or name; {names})")
    if table.array is None or len(table.array) == 0:
        raise SpectrumError("the spectrum table has no rows")
    wavelength = _to_angstrom(_column(table, wave_f), wave_f.unit)
    flux = _column(table, flux_f)
    quality_f = _pick(fields, QUALITY[0])
    bad = _column(table, quality_f) != 0 if quality_f is not None else None
    if err_f is None:
        raise SpectrumError(f"no flux error column (utype {ERROR!r} or UCD stat.error)")
    ivar = ivar_from_sigma(_column(table, err_f), bad=bad)

    by_utype, by_name = _params(vot)
    ra, dec = _position(by_utype, by_name)
    t_min = _mjd(by_utype.get("char.timeaxis.coverage.bounds.start"))
    t_max = _mjd(by_utype.get("char.timeaxis.coverage.bounds.stop"))
    exptime = _number(by_utype.get("char.timeaxis.coverage.support.extent"))
    unit = parse_unit(str(flux_f.unit)) if flux_f.unit else None
    ucd_words = (wave_f.ucd or "").lower()
    meta = SpectrumMeta(
        obs_id=_obs_id(by_utype, by_name, fallback_id),
        target_name=_text(by_utype.get("target.name")),
        ra=ra,
        dec=dec,
        t_min=t_min,
        t_max=t_max,
        exptime=exptime,
        instrument=_text(by_utype.get("dataid.instrument")),
        facility=_text(by_name.get("facility")),
        resolving_power=_number(by_utype.get("char.spectralaxis.respower")),
        snr=_number(by_utype.get("derived.snr")),
        collection=_text(by_utype.get("dataid.collection")),
        flux_unit=unit_string(unit) if unit is not None else "",
        spec_frame="air" if "obs.atmos" in ucd_words else "vacuum",
        spec_frame_note=None if ucd_words.strip() else (
            f"vacuum wavelengths assumed: the spectral column {wave_f.name!r} has no UCD "
            "(em.wl;obs.atmos is air, em.wl vacuum)"),
    )
    refpos = _value(by_utype.get("coordsys.spectralframe.refpos"))
    if refpos:
        meta.extra["specsys"] = str(refpos)
    return assemble(wavelength, flux, ivar, meta, NAME, labels=("spectral axis", "flux", "error"))


def read(path: str | Path) -> Spectrum:
    """Read a Spectrum DM VOTable file."""
    with reading(path, NAME):
        vot = votable_data.parse(Path(path).read_bytes())
        spectrum = from_votable(vot, file_stem(Path(path).name))
        spectrum.validate()
        return spectrum


def _param(
    name: str,
    value: str | float | tuple[float, ...] | None,
    utype: str = "",
    ucd: str = "",
    unit: str = "",
    ref: str = "",
) -> str | None:
    """One PARAM element, or None when there is no value to state."""
    if value is None:
        return None
    if isinstance(value, str):
        kind = 'datatype="char" arraysize="*"'
        text = value
    elif isinstance(value, tuple):
        kind = f'datatype="double" arraysize="{len(value)}"'
        text = " ".join(repr(float(v)) for v in value)
    else:
        kind = 'datatype="double"'
        text = repr(float(value))
    attrs = [f"name={quoteattr(name)}", kind]
    for key, val in (("unit", unit), ("ucd", ucd), ("utype", utype), ("ref", ref)):
        if val:
            attrs.append(f"{key}={quoteattr(val)}")
    return f"      <PARAM {' '.join(attrs)} value={quoteattr(text)}/>"


def _field(name: str, datatype: str, unit: str, ucd: str, utype: str, description: str) -> str:
    unit_attr = f" unit={quoteattr(unit)}" if unit else ""
    return (
        f"      <FIELD name={quoteattr(name)} ID={quoteattr(name)} datatype={quoteattr(datatype)}"
        f"{unit_attr} ucd={quoteattr(ucd)} utype={quoteattr(utype)}>\n"
        f"        <DESCRIPTION>{escape(description)}</DESCRIPTION>\n      </FIELD>"
    )


def _vounit(unit_text: str) -> str:
    unit = parse_unit(unit_text)
    if unit is None:
        return ""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return unit.to_string("vounit")


_ROW = "<TR><TD>%.12g</TD><TD>%.9g</TD><TD>%.9g</TD><TD>%d</TD></TR>\n"


def _rows(spectrum: Spectrum) -> str:
    """TABLEDATA rows, formatted in one pass; bad pixels get error NaN and quality 1."""
    sigma = sigma_from_ivar(spectrum.ivar)
    bad = sigma <= 0
    columns = np.empty((len(sigma), 4), dtype=object)
    columns[:, 0] = spectrum.wavelength.tolist()
    columns[:, 1] = spectrum.flux.astype(np.float32).tolist()
    columns[:, 2] = np.where(bad, np.nan, sigma).astype(np.float32).tolist()
    columns[:, 3] = bad.astype(int).tolist()
    return ((_ROW * len(sigma)) % tuple(columns.ravel().tolist())).replace(">nan<", ">NaN<")


def dumps(spectrum: Spectrum) -> bytes:
    """The Spectrum DM VOTable document for ``spectrum`` (UTF-8 bytes)."""
    meta = spectrum.meta
    flux_unit = _vounit(meta.flux_unit)
    unit = parse_unit(meta.flux_unit)
    if unit is not None and unit.is_equivalent(u.erg / u.s / u.cm**2 / u.AA):
        flux_cal = "ABSOLUTE"
    else:
        flux_cal = "UNCALIBRATED"
    position = None if meta.ra is None or meta.dec is None else (meta.ra, meta.dec)
    wave_ucd = "em.wl;obs.atmos" if meta.spec_frame == "air" else "em.wl"
    frame_word = "air" if meta.spec_frame == "air" else "vacuum"
    params = [
        _param("DataModel", "Spectrum-1.1", "spec:Spectrum.DataModel"),
        _param("obs_id", meta.obs_id, "spec:Spectrum.DataID.DatasetID", "meta.id;meta.dataset"),
        _param(
            "title",
            f"{meta.target_name or meta.obs_id} spectrum",
            "spec:Spectrum.DataID.Title",
            "meta.title",
        ),
        _param("obs_collection", meta.collection, "spec:Spectrum.DataID.Collection", "meta.id"),
        _param("instrument", meta.instrument, "spec:Spectrum.DataID.Instrument", "meta.id;instr"),
        _param("facility", meta.facility, "", "meta.id;instr.tel"),
        _param("target_name", meta.target_name, "spec:Spectrum.Target.Name", "meta.id;src"),
        _param("space_frame", "ICRS", "spec:Spectrum.CoordSys.SpaceFrame.Name"),
        _param(
            "position",
            position,
            "spec:Spectrum.Char.SpatialAxis.Coverage.Location.Value",
            "pos.eq;meta.main",
            "deg",
            "icrs",
        ),
        _param(
            "t_min",
            meta.t_min,
            "spec:Spectrum.Char.TimeAxis.Coverage.Bounds.Start",
            "time.start;obs.exposure",
            "d",
            "mjd_utc",
        ),
        _param(
            "t_max",
            meta.t_max,
            "spec:Spectrum.Char.TimeAxis.Coverage.Bounds.Stop",
            "time.end;obs.exposure",
            "d",
            "mjd_utc",
        ),
        _param(
            "t_exptime",
            meta.exptime,
            "spec:Spectrum.Char.TimeAxis.Coverage.Support.Extent",
            "time.duration;obs.exposure",
            "s",
        ),
        _param(
            "spectral_refpos",
            meta.extra.get("specsys", "TOPOCENTER"),
            "spec:Spectrum.CoordSys.SpectralFrame.RefPos",
        ),
        _param(
            "wavelength_min",
            float(spectrum.wavelength[0]),
            "spec:Spectrum.Char.SpectralAxis.Coverage.Bounds.Start",
            "em.wl;stat.min",
            "Angstrom",
        ),
        _param(
            "wavelength_max",
            float(spectrum.wavelength[-1]),
            "spec:Spectrum.Char.SpectralAxis.Coverage.Bounds.Stop",
            "em.wl;stat.max",
            "Angstrom",
        ),
        _param(
            "resolving_power",
            meta.resolving_power,
            "spec:Spectrum.Char.SpectralAxis.ResPower",
            "spect.resolution",
        ),
        _param("spectral_calibration", "CALIBRATED", "spec:Spectrum.Char.SpectralAxis.Calibration"),
        _param("flux_calibration", flux_cal, "spec:Spectrum.Char.FluxAxis.Calibration"),
        _param("snr", meta.snr, "spec:Spectrum.Derived.SNR", "stat.snr"),
    ]
    fields = [
        _field(
            "wavelength",
            "double",
            "Angstrom",
            wave_ucd,
            "spec:Spectrum.Data.SpectralAxis.Value",
            f"wavelength ({frame_word})",
        ),
        _field(
            "flux",
            "float",
            flux_unit,
            "phot.flux.density;em.wl",
            "spec:Spectrum.Data.FluxAxis.Value",
            "flux density",
        ),
        _field(
            "flux_error",
            "float",
            flux_unit,
            "stat.error;phot.flux.density;em.wl",
            "spec:Spectrum.Data.FluxAxis.Accuracy.StatError",
            "1-sigma statistical error of the flux (NaN: pixel without information)",
        ),
        _field(
            "quality",
            "short",
            "",
            "meta.code.qual",
            "spec:Spectrum.Data.FluxAxis.Quality",
            "0 good, 1 bad pixel",
        ),
    ]
    head = "\n".join(
        [
            '<?xml version="1.0" encoding="UTF-8"?>',
            '<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3"',
            '  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"',
            '  xsi:schemaLocation="http://www.ivoa.net/xml/VOTable/v1.3 '
            'http://www.ivoa.net/xml/VOTable/votable-1.4.xsd">',
            '  <RESOURCE type="results" utype="spec:Spectrum">',
            '    <COOSYS ID="icrs" system="ICRS"/>',
            '    <TIMESYS ID="mjd_utc" timeorigin="MJD-origin" timescale="UTC"'
            ' refposition="TOPOCENTER"/>',
            f'    <TABLE name="spectrum" utype="spec:Spectrum" nrows="{len(spectrum.flux)}">',
            f"      <DESCRIPTION>{escape(f'Spectrum {meta.obs_id}')}</DESCRIPTION>",
            *(p for p in params if p is not None),
            *fields,
            "      <DATA>",
            "        <TABLEDATA>",
            "",
        ]
    )
    tail = "        </TABLEDATA>\n      </DATA>\n    </TABLE>\n  </RESOURCE>\n</VOTABLE>\n"
    return (head + _rows(spectrum) + tail).encode("utf-8")


def write(spectrum: Spectrum, path: str | Path) -> None:
    """Write ``spectrum`` as a Spectrum DM VOTable file."""
    Path(path).write_bytes(dumps(spectrum))
