"""FORMAT=METADATA: every input parameter this SSA service understands, as ``INPUT:`` PARAMs."""

from __future__ import annotations

from schema.tables import labels
from schema.vo import column_meta
from vo_service.config import SSALimits
from vo_service.formats.votable import Param
from vo_service.ssa.params import DEFAULT_SIZE


def _label(name: str, extra: str) -> Param:
    meta = column_meta(labels.c[name])
    what = (meta.description or name).lower()
    return Param(f"INPUT:{name.upper()}", "", unit=meta.unit, ucd=meta.ucd,
                 description=f"latentvo extension: range lo/hi of {what} "
                 f"(label model of MODEL); {extra}")


def input_params(limits: SSALimits) -> list[Param]:
    """The ``INPUT:`` PARAMs of FORMAT=METADATA, declaring the service's ``[ssa]`` limits."""
    return [
        Param("INPUT:REQUEST", "queryData", description="Operation: queryData (required)"),
        Param("INPUT:POS", "", unit="deg", ucd="pos.eq",
              utype="ssa:Char.SpatialAxis.Coverage.Location.Value",
              description="Search position 'ra,dec' in decimal degrees, ICRS; a ';FK5' (J2000) "
              "or ';GALACTIC' (l,b) suffix is converted to ICRS"),
        Param("INPUT:SIZE", str(DEFAULT_SIZE), datatype="double", unit="deg",
              ucd="phys.angSize;instr.fov",
              utype="ssa:Char.SpatialAxis.Coverage.Bounds.Extent", minimum="0",
              maximum=str(limits.max_size),
              description=f"Diameter of the search cone around POS (default {DEFAULT_SIZE} deg "
              f"when POS is given; at most {limits.max_size:g} deg)"),
        Param("INPUT:BAND", "", unit="m", ucd="em.wl",
              utype="ssa:Char.SpectralAxis.Coverage.Bounds.Extent",
              description="Vacuum wavelength range list in metres (lo/hi, /hi, lo/, a single "
              "value, comma-separated); spectra overlapping any range match (edges included); "
              "';source' and ';observer' are accepted (stars: both frames agree here)"),
        Param("INPUT:TIME", "", ucd="time.epoch", utype="ssa:Char.TimeAxis.Coverage.Bounds.Extent",
              description="ISO 8601 range list (UTC) of the exposure, e.g. 2012-03-14/2017-09-04; "
              "exposures overlapping a range match; a date (or year, month) stands for its "
              "whole period"),
        Param("INPUT:FORMAT", "all", ucd="meta.code.mime", utype="ssa:Access.Format",
              options=("all", "compliant", "native", "votable", "fits", "graphic", "xml",
                       "metadata", "application/x-votable+xml", "application/fits", "image/png"),
              description="Formats of the records: all/compliant/votable/xml = Spectrum DM "
              "VOTable (the default), native = the original file, fits = FITS binary table, "
              "graphic = PNG preview, or MIME types; several values give one record per format "
              "and spectrum; metadata = this description"),
        Param("INPUT:MAXREC", str(limits.maxrec_default), datatype="int", minimum="0",
              maximum=str(limits.maxrec_hard),
              description=f"Maximum number of records (default {limits.maxrec_default}, hard limit "
              f"{limits.maxrec_hard}); truncation is flagged by QUERY_STATUS=OVERFLOW"),
        Param("INPUT:TOP", "", datatype="int", minimum="1",
              description="Return only the N best-scoring records (nearest to POS first)"),
        Param("INPUT:TARGETNAME", "", ucd="meta.id;src", utype="ssa:Target.Name",
              description="Target name(s), comma-separated, matched case-insensitively"),
        Param("INPUT:TARGETCLASS", "", ucd="src.class", utype="ssa:Target.Class",
              description="Target class(es); every target here is a 'star'"),
        Param("INPUT:COLLECTION", "", ucd="meta.id", utype="ssa:DataID.Collection",
              description="Collection name(s), case-insensitive prefix match"),
        Param("INPUT:PUBDID", "", ucd="meta.ref.ivoid", utype="ssa:Curation.PublisherDID",
              description="Publisher dataset identifier of one spectrum"),
        Param("INPUT:REDSHIFT", "", ucd="src.redshift", utype="ssa:Target.Redshift",
              description="Redshift range; the targets are stars (z = 0 at this precision), "
              "so ranges containing 0 match every spectrum and others none"),
        Param("INPUT:SPECRP", "", datatype="double", ucd="spect.resolution",
              utype="ssa:Char.SpectralAxis.ResPower",
              description="Minimum spectral resolving power lambda/delta lambda"),
        Param("INPUT:SNR", "", datatype="double", ucd="stat.snr", utype="ssa:Derived.SNR",
              description="Minimum median signal-to-noise ratio"),
        Param("INPUT:MTIME", "", ucd="time.creation",
              description="ISO 8601 range of the time the spectrum was published (ingested)"),
        Param("INPUT:VERSION", "1.1", description="SSA version (1.1; 1.0 requests are answered)"),
        Param("INPUT:RUNID", "", description="Identifier of the request, echoed in the response"),
        Param("INPUT:COMPRESS", "", datatype="boolean",
              description="Accepted; files are served as stored (gzip FITS with "
              "Content-Encoding: gzip)"),
        _label("teff", "e.g. TEFF=5000/6000"),
        _label("logg", "e.g. LOGG=4/"),
        _label("mh", "e.g. MH=/-1"),
        _label("alpha_m", "e.g. ALPHA_M=0.2/"),
        Param("INPUT:DOMAIN_SCORE_MAX", "", datatype="double", ucd="stat.value;meta.modelled",
              description="latentvo extension: maximum domain_score (distance from the label "
              "model's training sample)"),
        Param("INPUT:IN_DOMAIN", "", datatype="boolean", ucd="meta.code.qual",
              description="latentvo extension: true = only spectra inside the label model's "
              "training domain, false = only those outside"),
        Param("INPUT:MODEL", "", ucd="meta.id;meta.software",
              description="latentvo extension: label model whose predictions fill the ML columns "
              "and the TEFF/LOGG/MH/ALPHA_M/IN_DOMAIN constraints (default: the most recently "
              "registered label-regressor in latentvo.models)"),
    ]
