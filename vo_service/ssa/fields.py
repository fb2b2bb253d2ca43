"""The columns of an SSA 1.1 queryData response.

Columns backed by a declared table column (``latentvo.spectra``,
``latentvo.labels``) take their name, datatype, unit, UCD and description from
the declaration (``schema.tables``); only the SSA utype is added here, because
SSA 1.1 identifies its standard fields by ``ssa:``-prefixed utype (which pyvo
and TOPCAT match literally). Columns computed for SSA (access reference,
coverage midpoints and widths, constants of the data model) are defined here
with the UCD and utype SSA 1.1 gives them.

Each :class:`SSAColumn` knows how to compute its cell from one database row
and the representation (native file, Spectrum DM VOTable, FITS table, PNG) the
record offers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from schema.tables import LABEL_VALUES, labels, spectra
from schema.vo import ColumnMeta, column_meta
from vo_service.formats.fields import Field


@dataclass(frozen=True)
class SSAColumn:
    """A column of the SSA response and how to compute its cell."""

    field: Field
    value: Callable  # (row, ctx) -> cell


def declared(column, *, utype: str | None = None, ucd: str | None = None,
             name: str | None = None, value: Callable | None = None) -> SSAColumn:
    """A column read from a declared one, with SSA's utype (and, rarely, its own UCD);
    the cell is the database row's value unless ``value`` computes it."""
    key = column.name
    field = Field.from_column(column, name, utype=utype, ucd=ucd or column_meta(column).ucd)
    return SSAColumn(field, value or (lambda row, ctx, key=key: row[key]))


def computed(name: str, datatype: str, value: Callable, **meta) -> SSAColumn:
    """A column SSA defines with no declared counterpart; ``meta`` as in ColumnMeta."""
    return SSAColumn(Field.of(name, ColumnMeta(datatype, **meta)), value)


def _mid(a, b):
    return None if a is None or b is None else (a + b) / 2.0


def _width(a, b):
    return None if a is None or b is None else b - a


def _flux_calibration(unit: str | None) -> str:
    low = (unit or "").strip().lower()
    if low in ("", "adu", "ct", "count", "counts", "electron"):
        return "UNCALIBRATED"
    return "ABSOLUTE"


s, lab = spectra.c, labels.c

COLUMNS: list[SSAColumn] = [
    declared(s.obs_publisher_did, utype="ssa:Curation.PublisherDID"),
    computed("accref", "char", lambda r, c: c.url, ucd="meta.ref.url",
             utype="ssa:Access.Reference",
             description="URL that downloads the spectrum in the format of access_format"),
    computed("access_format", "char", lambda r, c: c.mime, ucd="meta.code.mime",
             utype="ssa:Access.Format", description="MIME type of the file at accref"),
    declared(s.access_estsize, utype="ssa:Access.Size",
             value=lambda r, c: c.size_kb),
    computed("title", "char", lambda r, c: c.title, ucd="meta.title;meta.dataset",
             utype="ssa:DataID.Title", description="Title of the spectrum"),
    computed("data_model", "char", lambda r, c: c.data_model, utype="ssa:Dataset.DataModel",
             ucd="meta.code", description="Data model of the file at accref"),
    computed("dataset_type", "char", lambda r, c: "Spectrum", utype="ssa:Dataset.Type",
             ucd="meta.code.class", description="Type of the dataset"),
    declared(s.em_xel, utype="ssa:Dataset.Length"),
    computed("publisher", "char", lambda r, c: c.publisher, ucd="meta.curation",
             utype="ssa:Curation.Publisher", description="Publisher of the spectrum"),
    declared(s.obs_collection, utype="ssa:DataID.Collection"),
    declared(s.instrument_name, utype="ssa:DataID.Instrument"),
    declared(s.facility_name),
    computed("data_source", "char", lambda r, c: "survey", utype="ssa:DataID.DataSource",
             ucd="meta.code.class", description="Origin of the data (survey, pointed, ...)"),
    computed("creation_type", "char", lambda r, c: "archival", ucd="meta.code.class",
             utype="ssa:DataID.CreationType", description="How the dataset was created"),
    declared(s.target_name, utype="ssa:Target.Name"),
    computed("target_class", "char", lambda r, c: "star", ucd="src.class",
             utype="ssa:Target.Class", description="Class of the target"),
    computed("target_pos", "double", lambda r, c: [r["s_ra"], r["s_dec"]], arraysize="2",
             xtype="point", unit="deg", ucd="pos.eq;src", utype="ssa:Target.Pos",
             description="ICRS position of the target (RA, Dec)"),
    computed("space_frame", "char", lambda r, c: "ICRS", ucd="meta.code",
             utype="ssa:CoordSys.SpaceFrame.Name", description="Spatial reference frame"),
    computed("location", "double", lambda r, c: [r["s_ra"], r["s_dec"]], arraysize="2",
             xtype="point", unit="deg", ucd="pos.eq",
             utype="ssa:Char.SpatialAxis.Coverage.Location.Value",
             description="ICRS position observed (RA, Dec)"),
    declared(s.s_ra), declared(s.s_dec),
    computed("aperture", "double", lambda r, c: None, unit="deg", ucd="phys.angSize;instr.fov",
             utype="ssa:Char.SpatialAxis.Coverage.Bounds.Extent",
             description="Angular diameter of the aperture (not recorded: NULL)"),
    computed("score", "double", lambda r, c: c.score, ucd="stat.value",
             utype="ssa:Query.Score",
             description="How well the spectrum matches POS: 1 at the centre of the search "
             "cone, 0 at its edge (NULL without POS)"),
    computed("t_mid", "double", lambda r, c: _mid(r["t_min"], r["t_max"]), unit="d",
             ucd="time.epoch", utype="ssa:Char.TimeAxis.Coverage.Location.Value",
             description="Midpoint of the exposure (MJD, UTC)"),
    declared(s.t_exptime, utype="ssa:Char.TimeAxis.Coverage.Bounds.Extent"),
    declared(s.t_min, utype="ssa:Char.TimeAxis.Coverage.Bounds.Start"),
    declared(s.t_max, utype="ssa:Char.TimeAxis.Coverage.Bounds.Stop"),
    computed("spec_mid", "double", lambda r, c: _mid(r["em_min"], r["em_max"]), unit="m",
             ucd="em.wl;instr.bandpass", utype="ssa:Char.SpectralAxis.Coverage.Location.Value",
             description="Midpoint of the wavelength range covered"),
    computed("spec_width", "double", lambda r, c: _width(r["em_min"], r["em_max"]), unit="m",
             ucd="em.wl;instr.bandwidth", utype="ssa:Char.SpectralAxis.Coverage.Bounds.Extent",
             description="Width of the wavelength range covered"),
    declared(s.em_min, utype="ssa:Char.SpectralAxis.Coverage.Bounds.Start"),
    declared(s.em_max, utype="ssa:Char.SpectralAxis.Coverage.Bounds.Stop"),
    declared(s.em_res_power, utype="ssa:Char.SpectralAxis.ResPower"),
    computed("spec_res", "double",
             lambda r, c: (_mid(r["em_min"], r["em_max"]) / r["em_res_power"]
                           if r["em_res_power"] else None),
             unit="m", ucd="spect.resolution;em.wl", utype="ssa:Char.SpectralAxis.Resolution",
             description="Spectral resolution (wavelength midpoint / resolving power)"),
    computed("spectral_ucd", "char", lambda r, c: "em.wl", ucd="meta.ucd",
             utype="ssa:Char.SpectralAxis.Ucd", description="UCD of the spectral axis"),
    computed("spectral_calibration", "char", lambda r, c: "CALIBRATED", ucd="meta.code.qual",
             utype="ssa:Char.SpectralAxis.Calibration",
             description="Calibration of the spectral axis"),
    computed("flux_ucd", "char", lambda r, c: "phot.flux.density;em.wl", ucd="meta.ucd",
             utype="ssa:Char.FluxAxis.Ucd", description="UCD of the flux axis"),
    declared(s.flux_unit, utype="ssa:Char.FluxAxis.Unit"),
    computed("flux_calibration", "char", lambda r, c: _flux_calibration(r["flux_unit"]),
             ucd="meta.code.qual", utype="ssa:Char.FluxAxis.Calibration",
             description="Calibration of the flux axis (ABSOLUTE or UNCALIBRATED)"),
    declared(s.snr, utype="ssa:Derived.SNR"),
    declared(s.spectrum_id, ucd="meta.id"),
    # machine-learning products (latentvo extension), from latentvo.labels
    declared(lab.model_id, name="label_model_id",
             value=lambda r, c: r["label_model_id"]),
    *(declared(lab[name]) for name in LABEL_VALUES),
]
FIELDS: list[Field] = [c.field for c in COLUMNS]
ID_FIELD = "obs_publisher_did"
