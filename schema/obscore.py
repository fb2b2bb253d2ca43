"""``ivoa.obscore``: the ObsCore 1.1 view over the spectra, declared once.

The view is declared here like every published table, so TAP_SCHEMA, VOSI
``/tables``, VOTable FIELDs and the ADQL catalog describe it from this one
place. Its body is hand-written DDL in migration ``0003`` (Alembic does not
autogenerate views); ``tests/ssa/test_obscore.py`` checks that the migrated
view has exactly the columns declared here, in this order.

Where a column means the same as a column of ``latentvo.spectra`` or
``latentvo.labels``, its description comes from that declaration; the UCD,
utype and unit of the 30 mandatory columns are the ones ObsCore 1.1 (with
its errata) prescribes, with the ``obscore:`` utype prefix that taplint and
TOPCAT expect. The machine-learning columns (``label_model_id`` ... ``in_domain``)
are documented extension columns, copied from ``latentvo.labels`` with all
their metadata; they hold the predictions of the *current label model*, rank 1
of kind ``label-regressor`` in :data:`schema.tables.MODEL_RANK` (the view reads
that rule since migration 0006).

``access_url`` points to the DataLink ``{links}`` endpoint of each spectrum. The
public base URL is not data: it depends on how the service is reached (the
configured ``base_url``, else the request's own scheme, host and port), so the
view reads it per query from the transaction setting :data:`PUBLIC_BASE_SETTING`,
which the TAP service sets for every query it runs (``vo_service.obscore``).
Nothing is stored, so nothing goes stale; a session that does not set it
(psql, an export) gets the path alone.
"""

from __future__ import annotations

from typing import Any, Unpack

import sqlalchemy as sa

from schema.tables import LABEL_REGRESSOR, LABEL_VALUES, MODEL_RANK, labels, metadata, spectra
from schema.vo import (
    ColumnMeta,
    ColumnMetaFields,
    SQLType,
    VOTable,
    column_meta,
    table_meta,
    vo_table,
)

IVOA_SCHEMA = "ivoa"
OBSCORE_TABLE_UTYPE = "ivo://ivoa.net/std/ObsCore#table-1.1"
OBSCORE_DATA_MODEL = "ivo://ivoa.net/std/ObsCore#core-1.1"
DATALINK_MIME = "application/x-votable+xml;content=datalink"
DATALINK_LINKS_PATH = "/datalink/links"


def _obscore(name: str, sqltype: SQLType, *, ucd: str, utype: str | None,
             unit: str | None = None, description: str | None = None,
             like: sa.Column[Any] | None = None, principal: bool = False,
             indexed: bool = False) -> sa.Column[Any]:
    """A standard ObsCore column; the description defaults to that of ``like``."""
    text = description or (column_meta(like).description if like is not None else None)
    if not text:
        raise ValueError(f"obscore column {name} needs a description")
    return _column(name, sqltype, description=text, unit=unit, ucd=ucd,
                   utype=f"obscore:{utype}" if utype else None, principal=principal, std=True,
                   indexed=indexed)


def _column(name: str, sqltype: SQLType, **meta: Unpack[ColumnMetaFields]) -> sa.Column[Any]:
    """A view column (no constraints) with its metadata; the VOTable type from ``sqltype``."""
    if isinstance(sqltype, type):
        sqltype = sqltype()
    return sa.Column(name, sqltype, info={"vo": ColumnMeta.for_sql_type(sqltype, **meta)},
                     comment=meta["description"])


def _extension(source: sa.Column[Any], name: str | None = None,
               description: str | None = None) -> sa.Column[Any]:
    """An extension column carrying the declared metadata of ``source``."""
    meta = column_meta(source)
    return _column(name or source.name, source.type.__class__,
                   description=description or meta.description, unit=meta.unit, ucd=meta.ucd,
                   utype=meta.utype, principal=meta.principal, indexed=meta.indexed)


s = spectra.c
lab = labels.c
_position = table_meta(spectra).position
if _position is None:  # pragma: no cover - latentvo.spectra declares its position
    raise RuntimeError("latentvo.spectra declares no sky position; ivoa.obscore needs one")

obscore = vo_table(
    "obscore",
    metadata,
    _obscore("dataproduct_type", sa.Text, ucd="meta.code.class",
             utype="ObsDataset.dataProductType", principal=True,
             description="Data product type: always 'spectrum' here"),
    _obscore("calib_level", sa.Integer, ucd="meta.code;obs.calib",
             utype="ObsDataset.calibLevel",
             description="Calibration level (2: calibrated, science-ready 1D spectra)"),
    _obscore("obs_collection", sa.Text, ucd="meta.id", utype="DataID.collection",
             like=s.obs_collection, principal=True),
    _obscore("obs_id", sa.Text, ucd="meta.id", utype="DataID.observationID", like=s.obs_id,
             indexed=True),
    _obscore("obs_publisher_did", sa.Text, ucd="meta.ref.ivoid",
             utype="Curation.publisherDID", like=s.obs_publisher_did, principal=True,
             indexed=True),
    _obscore("access_url", sa.Text, ucd="meta.ref.url", utype="Access.reference",
             principal=True,
             description="DataLink {links} URL of the spectrum: the file in several formats, "
             "its preview, its machine-learning products and similar spectra"),
    _obscore("access_format", sa.Text, ucd="meta.code.mime", utype="Access.format",
             description="Content type of access_url (the DataLink MIME type)"),
    _obscore("access_estsize", sa.BigInteger, ucd="phys.size;meta.file", utype="Access.size",
             unit="kbyte", like=s.access_estsize),
    _obscore("target_name", sa.Text, ucd="meta.id;src", utype="Target.name",
             like=s.target_name, principal=True, indexed=True),
    _obscore("s_ra", sa.Double, ucd="pos.eq.ra", unit="deg",
             utype="Char.SpatialAxis.Coverage.Location.Coord.Position2D.Value2.C1",
             like=s.s_ra, principal=True, indexed=True),
    _obscore("s_dec", sa.Double, ucd="pos.eq.dec", unit="deg",
             utype="Char.SpatialAxis.Coverage.Location.Coord.Position2D.Value2.C2",
             like=s.s_dec, principal=True, indexed=True),
    _obscore("s_fov", sa.Double, ucd="phys.angSize;instr.fov", unit="deg",
             utype="Char.SpatialAxis.Coverage.Bounds.Extent.diameter",
             description="Diameter of the aperture (not recorded by the spectrum files: NULL)"),
    _obscore("s_region", sa.Text, ucd="pos.outline;obs.field",
             utype="Char.SpatialAxis.Coverage.Support.Area",
             description="Sky region covered (not recorded by the spectrum files: NULL)"),
    _obscore("s_resolution", sa.Double, ucd="pos.angResolution", unit="arcsec",
             utype="Char.SpatialAxis.Resolution.Refval.value",
             description="Spatial resolution (not recorded: NULL)"),
    _obscore("s_xel1", sa.BigInteger, ucd="meta.number", utype="Char.SpatialAxis.numBins1",
             description="Number of elements along the first spatial axis (1: a 1D spectrum)"),
    _obscore("s_xel2", sa.BigInteger, ucd="meta.number", utype="Char.SpatialAxis.numBins2",
             description="Number of elements along the second spatial axis (1: a 1D spectrum)"),
    _obscore("t_min", sa.Double, ucd="time.start;obs.exposure", unit="d",
             utype="Char.TimeAxis.Coverage.Bounds.Limits.StartTime", like=s.t_min),
    _obscore("t_max", sa.Double, ucd="time.end;obs.exposure", unit="d",
             utype="Char.TimeAxis.Coverage.Bounds.Limits.StopTime", like=s.t_max),
    _obscore("t_exptime", sa.Double, ucd="time.duration;obs.exposure", unit="s",
             utype="Char.TimeAxis.Coverage.Support.Extent", like=s.t_exptime),
    _obscore("t_resolution", sa.Double, ucd="time.resolution", unit="s",
             utype="Char.TimeAxis.Resolution.Refval.value",
             description="Temporal resolution (the exposure is not time-resolved: NULL)"),
    _obscore("t_xel", sa.BigInteger, ucd="meta.number", utype="Char.TimeAxis.numBins",
             description="Number of elements along the time axis (1: one exposure)"),
    _obscore("em_min", sa.Double, ucd="em.wl;stat.min", unit="m",
             utype="Char.SpectralAxis.Coverage.Bounds.Limits.LoLimit", like=s.em_min,
             principal=True),
    _obscore("em_max", sa.Double, ucd="em.wl;stat.max", unit="m",
             utype="Char.SpectralAxis.Coverage.Bounds.Limits.HiLimit", like=s.em_max,
             principal=True),
    _obscore("em_res_power", sa.Double, ucd="spect.resolution",
             utype="Char.SpectralAxis.Resolution.ResolPower.refVal", like=s.em_res_power),
    _obscore("em_xel", sa.BigInteger, ucd="meta.number", utype="Char.SpectralAxis.numBins",
             like=s.em_xel),
    _obscore("o_ucd", sa.Text, ucd="meta.ucd", utype="Char.ObservableAxis.ucd",
             description="UCD of the observable: phot.flux.density;em.wl for flux-calibrated "
             "spectra, phot.count for spectra in detector units"),
    _obscore("pol_states", sa.Text, ucd="meta.code;phys.polarization",
             utype="Char.PolarizationAxis.stateList",
             description="Polarization states (none: NULL)"),
    _obscore("pol_xel", sa.BigInteger, ucd="meta.number", utype="Char.PolarizationAxis.numBins",
             description="Number of polarization samples (none: NULL)"),
    _obscore("facility_name", sa.Text, ucd="meta.id;instr.tel",
             utype="Provenance.ObsConfig.Facility.name", like=s.facility_name),
    _obscore("instrument_name", sa.Text, ucd="meta.id;instr",
             utype="Provenance.ObsConfig.Instrument.name", like=s.instrument_name),
    _obscore("obs_title", sa.Text, ucd="meta.title;obs", utype="DataID.title",
             description="Title of the spectrum: target, instrument and observation id"),
    # ---- extension columns (latentvo) -------------------------------------------
    _extension(s.spectrum_id, description="latentvo extension: internal identifier of the "
               "spectrum (joins latentvo.labels and latentvo.latent)"),
    _extension(s.healpix_index, description="latentvo extension: NESTED HEALPix index of "
               f"(s_ra, s_dec) at order {_position.depth}, used for "
               "positional searches"),
    _extension(s.snr, description="latentvo extension: median signal-to-noise ratio per pixel"),
    _extension(lab.model_id, name="label_model_id",
               description="latentvo extension: label model that predicted teff ... in_domain "
               f"(the current {LABEL_REGRESSOR}: rank 1 in {MODEL_RANK}, the latest "
               "created_at, ties to the greater model_id; see latentvo.models)"),
    *(_extension(lab[c], description=f"latentvo extension: {column_meta(lab[c]).description}")
      for c in LABEL_VALUES),
    schema=IVOA_SCHEMA,
    vo=VOTable(
        description="ObsCore 1.1 view of the spectra, with latentvo's machine-learning "
        "labels as extension columns; access_url leads to each spectrum's DataLink links",
        utype=OBSCORE_TABLE_UTYPE,
        table_type="view",
        position=_position,  # the view's columns keep the table's names
        table_index=5,
    ),
)

# The transaction setting the view's access_url starts with (migration 0005).
PUBLIC_BASE_SETTING = "latentvo.public_base_url"

# Characters of a publisher DID that must be escaped inside the ID=... query value of
# access_url ('%' first). The view applies the same replacements (migration 0003).
URL_ESCAPES = (("%", "%25"), (" ", "%20"), ("#", "%23"), ("&", "%26"), ("+", "%2B"),
               ("?", "%3F"), ("=", "%3D"))


def escape_id(pubdid: str) -> str:
    """A publisher DID as the view writes it into access_url's query string."""
    for char, code in URL_ESCAPES:
        pubdid = pubdid.replace(char, code)
    return pubdid
