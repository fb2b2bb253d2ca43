"""SSA 1.1 queryData parameters: parsing and validation, no database.

Every parse error is a :class:`~vo_service.dali.DALIError` whose text names the
parameter and the accepted syntax; the endpoint turns it into the SSA error
form (``QUERY_STATUS=ERROR``). Range lists follow SSA 1.1 §8.7: items separated
by ``,``, range ends by ``/`` (either end may be open), an optional third
``/step`` field (ignored), and an optional ``;qualifier`` at the end.
"""

from __future__ import annotations

import calendar
import datetime as dt
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from vo_service.config import SSALimits
from vo_service.dali import DALIError, Params

DEFAULT_SIZE = 0.2  # deg, diameter used when POS comes without SIZE
MJD_EPOCH = dt.datetime(1858, 11, 17, tzinfo=dt.UTC)
FRAMES = ("ICRS", "FK5", "J2000", "GALACTIC")
# FORMAT keywords (case-insensitive) -> the representation served for them
FORMAT_KEYWORDS = {
    "all": "votable", "compliant": "votable", "votable": "votable", "xml": "votable",
    "native": "native", "fits": "fits", "graphic": "png",
}
FORMAT_MIMES = {
    "application/x-votable+xml": "votable", "text/xml": "votable",
    "application/fits": "fits", "image/fits": "fits", "image/png": "png",
}

Range = tuple[float | None, float | None]
# (text, "lo" or "hi") -> value: how the ends of a range are read
Convert = Callable[[str, str], float]


@dataclass
class SSAQuery:
    """A validated queryData request: constraints in ICRS degrees, metres and MJD.

    Ranges are closed intervals with None for an open end; a list of ranges matches
    what any of them matches. The ``teff`` ... ``model`` fields are latentvo's
    extensions over the ML label predictions.
    """

    pos: tuple[float, float] | None = None  # ICRS deg
    size: float | None = None  # diameter, deg
    band: list[Range] = field(default_factory=list)  # metres
    time: list[Range] = field(default_factory=list)  # MJD
    formats: list[str] = field(default_factory=lambda: ["votable"])  # representations
    maxrec: int = SSALimits.maxrec_default
    top: int | None = None
    targetname: list[str] = field(default_factory=list)
    targetclass: list[str] = field(default_factory=list)
    collection: list[str] = field(default_factory=list)
    pubdid: list[str] = field(default_factory=list)
    redshift: list[Range] = field(default_factory=list)
    specrp: float | None = None
    snr: float | None = None
    mtime: list[Range] = field(default_factory=list)  # MJD
    teff: list[Range] = field(default_factory=list)
    logg: list[Range] = field(default_factory=list)
    mh: list[Range] = field(default_factory=list)
    alpha_m: list[Range] = field(default_factory=list)
    domain_score: float | None = None  # maximum
    in_domain: bool | None = None
    model: str | None = None
    run_id: str | None = None
    metadata_only: bool = False


def _number(text: str, name: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise DALIError(f"{name}: {text!r} is not a number") from None
    if math.isnan(value):
        raise DALIError(f"{name}: NaN is not allowed")
    return value


def split_qualifier(text: str) -> tuple[str, str | None]:
    """``"value;qualifier"`` -> ``("value", "qualifier")``; no (or an empty) qualifier: None."""
    body, _, qualifier = text.partition(";")
    return body, (qualifier.strip() or None) if qualifier else None


def range_list(text: str, name: str, convert: Convert | None = None) -> list[Range]:
    """``a/b,c/,/d,e`` -> [(a, b), (c, None), (None, d), (e, e)] (closed intervals).

    Parameters
    ----------
    text
        The range list (without its qualifier).
    name
        The parameter's name, for the error messages.
    convert
        Reads one end: ``(text, "lo" or "hi") -> value``; by default a plain number.

    Raises
    ------
    DALIError
        For an empty list or item, a malformed value, or a range whose lower bound is
        above its upper one.
    """
    convert = convert or (lambda t, end: _number(t, name))
    out: list[Range] = []
    if not text.strip():
        raise DALIError(f"{name} is empty")
    for item in text.split(","):
        item = item.strip()
        if not item:
            raise DALIError(f"{name}: empty item in range list {text!r}")
        parts = item.split("/")
        lo: float | None
        hi: float | None
        if len(parts) > 3:
            raise DALIError(f"{name}: {item!r} is not a value or a range lo/hi")
        if len(parts) == 1:
            lo = convert(parts[0], "lo")
            hi = convert(parts[0], "hi")
        else:
            lo = convert(parts[0], "lo") if parts[0].strip() else None
            hi = convert(parts[1], "hi") if parts[1].strip() else None
            if lo is None and hi is None:
                raise DALIError(f"{name}: {item!r} has neither a lower nor an upper bound")
        if lo is not None and hi is not None and lo > hi:
            raise DALIError(f"{name}: range {item!r} has its lower bound above its upper one")
        out.append((lo, hi))
    return out


def parse_pos(text: str) -> tuple[float, float]:
    """POS ``ra,dec[;frame]`` as ICRS (ra, dec) in degrees; FK5 and GALACTIC are converted.

    Raises
    ------
    DALIError
        For a malformed position, a declination outside -90..90 or an unknown frame.
    """
    body, frame = split_qualifier(text.strip())
    parts = body.split(",")
    if len(parts) != 2:
        raise DALIError(f"POS must be 'ra,dec' in decimal degrees (optionally ';ICRS'), "
                        f"got {text!r}")
    ra, dec = (_number(p.strip(), "POS") for p in parts)
    if not math.isfinite(ra) or not math.isfinite(dec):
        raise DALIError(f"POS: coordinates must be finite, got {text!r}")
    if not -90.0 <= dec <= 90.0:
        raise DALIError(f"POS: declination {dec} is outside -90..90")
    frame_name = (frame or "ICRS").upper()
    if frame_name not in FRAMES:
        raise DALIError(f"POS: unsupported reference frame {frame!r}; this service "
                        f"supports {', '.join(FRAMES)}")
    if frame_name in ("FK5", "J2000", "GALACTIC"):
        from astropy import units as u
        from astropy.coordinates import SkyCoord

        system = "galactic" if frame_name == "GALACTIC" else "fk5"
        if system == "galactic":
            coord = SkyCoord(l=ra * u.deg, b=dec * u.deg, frame="galactic")
        else:
            coord = SkyCoord(ra=ra * u.deg, dec=dec * u.deg, frame="fk5", equinox="J2000")
        icrs = coord.icrs
        return float(icrs.ra.deg) % 360.0, float(icrs.dec.deg)
    return ra % 360.0, dec


_ISO = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?)?)?)?"
                  r"(Z)?$")


def iso_to_mjd(text: str, end: str, name: str = "TIME") -> float:
    """An ISO 8601 date/time as MJD (UTC); a truncated value covers its whole period.

    ``end == "lo"`` gives the start of the period named (``1999`` -> 1999-01-01T00:00),
    ``"hi"`` its end (``1999`` -> 2000-01-01T00:00), so ``1998-05-21/1999`` covers
    the whole of 1999 and ``TIME=2012-03-14`` the whole day.
    """
    m = _ISO.match(text.strip())
    if not m:
        raise DALIError(f"{name}: {text!r} is not an ISO 8601 date or time "
                        "(YYYY[-MM[-DD[Thh:mm[:ss[.fff]]]]])")
    year, month, day, hour, minute, second, frac, _z = m.groups()
    try:
        start = dt.datetime(int(year), int(month or 1), int(day or 1), int(hour or 0),
                            int(minute or 0), int(second or 0), tzinfo=dt.UTC)
    except ValueError as exc:
        raise DALIError(f"{name}: {text!r} is not a valid date ({exc})") from None
    if frac:
        start += dt.timedelta(seconds=float(frac))
    if end == "hi":
        if month is None:
            start = start.replace(year=start.year + 1)
        elif day is None:
            days = calendar.monthrange(start.year, start.month)[1]
            start += dt.timedelta(days=days)
        elif hour is None:
            start += dt.timedelta(days=1)
        elif second is None:
            start += dt.timedelta(minutes=1)
        elif not frac:
            start += dt.timedelta(seconds=1)
        else:  # "46.534" covers 46.534 up to 46.535
            start += dt.timedelta(seconds=10.0 ** -(len(frac) - 1))
    return (start - MJD_EPOCH).total_seconds() / 86400.0


def _band(text: str) -> list[Range]:
    body, qualifier = split_qualifier(text.strip())
    if qualifier is not None and qualifier.lower() not in ("source", "observer"):
        raise DALIError(f"BAND: unknown qualifier {qualifier!r} (use ;source or ;observer)")
    if body and re.search(r"[A-Za-z]", body.replace("e", "").replace("E", "")):
        raise DALIError(f"BAND: {body!r} is not a wavelength range in metres; bandpass "
                        "names are not supported here (use e.g. BAND=4e-7/5e-7)")
    ranges = range_list(body, "BAND")
    for lo, hi in ranges:
        for v in (lo, hi):
            if v is not None and v <= 0:
                raise DALIError(f"BAND: wavelengths must be positive metres, got {v}")
    return ranges


def _formats(text: str) -> tuple[list[str], bool]:
    """(representations in the order asked, metadata-only)."""
    out: list[str] = []
    for item in text.split(","):
        value = item.strip().lower()
        if not value:
            continue
        if value == "metadata":
            return [], True
        rep: str | None
        if value in FORMAT_KEYWORDS:
            rep = FORMAT_KEYWORDS[value]
        elif "/" in value:  # a MIME type: offered or not, never an error
            rep = FORMAT_MIMES.get(value.split(";")[0].strip())
            if rep is None:
                continue
        else:
            raise DALIError(f"FORMAT: unknown value {item.strip()!r}; use all, compliant, "
                            "native, votable, fits, graphic, xml, metadata or MIME types")
        if rep not in out:
            out.append(rep)
    return out, False


def _int(params: Params, name: str) -> int | None:
    text = params.single(name)
    if text is None or not text.strip():
        return None
    try:
        value = int(text.strip())
    except ValueError:
        raise DALIError(f"{name} must be a non-negative integer, got {text!r}") from None
    if value < 0:
        raise DALIError(f"{name} must be a non-negative integer, got {text!r}")
    return value


def _float(params: Params, name: str) -> float | None:
    text = params.single(name)
    if text is None or not text.strip():
        return None
    return _number(text.strip(), name)


def _list(params: Params, name: str) -> list[str]:
    text = params.single(name)
    if text is None:
        return []
    return [v.strip() for v in text.split(",") if v.strip()]


def _ranges(params: Params, name: str, convert: Convert | None = None) -> list[Range]:
    text = params.single(name)
    if text is None or not text.strip():
        return []
    return range_list(split_qualifier(text.strip())[0], name, convert)


def parse_query(params: Params, limits: SSALimits) -> SSAQuery:
    """The SSA query that ``params`` ask for, within the service's ``[ssa]`` limits.

    Raises
    ------
    DALIError
        For a parameter that is malformed or beyond a limit, naming it.
    """
    version = params.single("VERSION")
    if version and not re.fullmatch(r"1(\.[01])?(\.\d+)?", version.strip()):
        raise DALIError(f"VERSION={version!r} is not supported; this service implements "
                        "SSA 1.1 (and answers 1.0 requests)")
    q = SSAQuery()
    fmt = params.single("FORMAT")
    if fmt is not None and fmt.strip():
        q.formats, q.metadata_only = _formats(fmt)
    request = (params.single("REQUEST") or "").strip()
    if not request and not q.metadata_only:
        # SSA 1.1 makes REQUEST mandatory; guessing queryData would answer a request
        # without constraints (a typo, a browser) with the whole sky.
        raise DALIError("REQUEST is missing: send REQUEST=queryData with the query's "
                        "constraints (POS, SIZE, BAND, TIME, ...), or FORMAT=METADATA for "
                        "the parameters this SSA 1.1 service accepts")
    if request and request.lower() != "querydata":
        raise DALIError(f"REQUEST={request!r} is not supported; this SSA 1.1 service "
                        "answers REQUEST=queryData (datasets are fetched from "
                        "Access.Reference)")
    if q.metadata_only:
        return q
    pos = params.single("POS")
    if pos is not None and pos.strip():
        q.pos = parse_pos(pos)
    size = _float(params, "SIZE")
    if size is not None:
        if not 0 < size <= limits.max_size:
            raise DALIError(f"SIZE must be a diameter in degrees, more than 0 and at most "
                            f"{limits.max_size:g}, got {size:g}")
        q.size = size
    elif q.pos is not None:
        q.size = DEFAULT_SIZE
    band = params.single("BAND")
    if band is not None and band.strip():
        q.band = _band(band)
    q.time = _ranges(params, "TIME", lambda t, end: iso_to_mjd(t, end, "TIME"))
    q.mtime = _ranges(params, "MTIME", lambda t, end: iso_to_mjd(t, end, "MTIME"))
    maxrec = _int(params, "MAXREC")
    q.maxrec = limits.maxrec_default if maxrec is None else min(maxrec, limits.maxrec_hard)
    q.top = _int(params, "TOP")
    if q.top == 0:
        raise DALIError("TOP must be a positive integer")
    q.targetname = _list(params, "TARGETNAME")
    q.targetclass = [v.lower() for v in _list(params, "TARGETCLASS")]
    q.collection = _list(params, "COLLECTION")
    pubdid = params.single("PUBDID")
    q.pubdid = [pubdid.strip()] if pubdid and pubdid.strip() else []
    q.redshift = _ranges(params, "REDSHIFT")
    q.specrp = _float(params, "SPECRP")
    q.snr = _float(params, "SNR")
    q.teff = _ranges(params, "TEFF")
    q.logg = _ranges(params, "LOGG")
    q.mh = _ranges(params, "MH")
    q.alpha_m = _ranges(params, "ALPHA_M")
    q.domain_score = _float(params, "DOMAIN_SCORE_MAX")
    in_domain = params.single("IN_DOMAIN")
    if in_domain is not None and in_domain.strip():
        from vo_service.dali import parse_bool
        try:
            q.in_domain = parse_bool(in_domain)
        except DALIError:
            raise DALIError(f"IN_DOMAIN must be true, false, 1 or 0, got {in_domain!r}") \
                from None
    model = params.single("MODEL")
    q.model = model.strip() if model and model.strip() else None
    run_id = params.single("RUNID")
    q.run_id = run_id[:64] if run_id else None
    return q
