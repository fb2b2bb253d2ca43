"""ESO primary-header keywords for observation metadata, shared by ESO-origin formats.

Both ESO Phase 3 spectra and HARPS-style s1d images describe the observation with the
same keywords (OBJECT, RA, DEC, MJD-OBS, EXPTIME, INSTRUME, TELESCOP, ARCFILE, ...),
so reading and writing them lives here once.
"""

from __future__ import annotations

from collections.abc import Mapping

from astropy.time import Time

from vo_service.archive.readers.common import file_stem, header_float, header_str, position
from vo_service.archive.readers.fitsfile import Card
from vo_service.archive.spectrum import SpectrumMeta

SECONDS_PER_DAY = 86400.0


def read_meta(header: Mapping, fallback_id: str) -> SpectrumMeta:
    """Observation metadata from an ESO-style primary header."""
    arcfile = header_str(header, "ARCFILE", "ORIGFILE")
    ra, dec = position(header_float(header, "RA"), header_float(header, "DEC"))
    t_min = header_float(header, "MJD-OBS")
    exptime = header_float(header, "EXPTIME", "TEXPTIME")
    t_max = header_float(header, "MJD-END")
    if t_max is None and t_min is not None and exptime is not None:
        t_max = t_min + exptime / SECONDS_PER_DAY
    extra = {
        key.lower(): str(header[key])
        for key in ("SPECSYS", "PRODCATG", "ORIGIN", "FLUXCAL")
        if header_str(header, key)
    }
    return SpectrumMeta(
        obs_id=file_stem(arcfile) if arcfile else fallback_id,
        target_name=header_str(header, "OBJECT"),
        ra=ra,
        dec=dec,
        t_min=t_min,
        t_max=t_max,
        exptime=exptime,
        instrument=header_str(header, "INSTRUME"),
        facility=header_str(header, "TELESCOP"),
        resolving_power=header_float(header, "SPEC_RES"),
        snr=header_float(header, "SNR"),
        extra=extra,
    )


def write_cards(meta: SpectrumMeta) -> list[Card]:
    """Primary-header cards for ``meta``; keys with no value are left out by the writer."""
    date_obs = None
    if meta.t_min is not None:
        date_obs = Time(meta.t_min, format="mjd", scale="utc").isot
    return [
        ("ORIGIN", meta.extra.get("origin", "ESO"), "European Southern Observatory"),
        ("TELESCOP", meta.facility, "telescope"),
        ("INSTRUME", meta.instrument, "instrument"),
        ("OBJECT", meta.target_name, "target designation"),
        ("RA", meta.ra, "[deg] ICRS right ascension"),
        ("DEC", meta.dec, "[deg] ICRS declination"),
        ("EQUINOX", 2000.0, "standard FK5 (years)"),
        ("RADESYS", "ICRS", "coordinate reference frame"),
        ("DATE-OBS", date_obs, "start of observation (UTC)"),
        ("MJD-OBS", meta.t_min, "[d] start of observation (MJD, UTC)"),
        ("MJD-END", meta.t_max, "[d] end of observation (MJD, UTC)"),
        ("EXPTIME", meta.exptime, "[s] total integration time"),
        ("TEXPTIME", meta.exptime, "[s] total exposure time"),
        ("SPEC_RES", meta.resolving_power, "spectral resolving power lambda/dlambda"),
        ("SNR", meta.snr, "median signal-to-noise ratio"),
        ("ARCFILE", f"{meta.obs_id}.fits", "archive file name"),
    ]
