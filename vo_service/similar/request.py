"""The parameters of a ``/similar`` request, read and checked (DALI conventions).

* ``UPLOAD``: one spectrum file (multipart part named ``UPLOAD``), in any format
  ``latentvo ingest`` reads; or ``ID``: the publisher DID of an archive spectrum;
* ``MODEL``: an autoencoder, or a label model (its autoencoder is searched and its
  labels answer); default: the current autoencoder and its current label model;
* ``K``: neighbours, 1 to ``[similar] k_max``;
* ``TEFF``, ``LOGG``, ``MH``: DALI intervals ``"lo hi"`` (``-Inf``/``+Inf`` open
  ends; empty: no constraint) on the neighbours' predicted labels;
* ``IN_DOMAIN``: ``true``/``false``, the neighbours' training-domain flag;
* ``RESPONSEFORMAT``: VOTable (default), CSV, TSV or JSON.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from vo_service.config import SimilarSettings
from vo_service.dali import DALIError, Params
from vo_service.formats import OutputFormat, UnknownFormat, resolve

FILTERS = {"TEFF": "teff", "LOGG": "logg", "MH": "mh"}  # parameter -> labels column
FORMATS = ("votable-b2", "votable-td", "csv", "tsv", "json")
TRUE, FALSE = ("true", "t", "1", "yes"), ("false", "f", "0", "no")


@dataclass(frozen=True)
class SimilarRequest:
    """What a client asked for; exactly one of ``upload`` and ``did`` is set."""

    upload: bytes | None
    did: str | None
    model: str | None
    k: int
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)  # column -> bounds
    in_domain: bool | None = None
    response_format: OutputFormat | None = None
    mime: str = "application/x-votable+xml"

    @property
    def filtered(self) -> bool:
        """Whether the neighbours are constrained by their labels."""
        return bool(self.ranges) or self.in_domain is not None


def interval(name: str, text: str) -> tuple[float, float] | None:
    """A DALI interval ``"lo hi"`` (None when empty); DALIError when malformed."""
    parts = text.split()
    if not parts:
        return None
    try:
        lo, hi = (float(p) for p in parts) if len(parts) == 2 else (math.nan, math.nan)
    except ValueError:
        lo = hi = math.nan
    if math.isnan(lo) or math.isnan(hi) or lo > hi:
        raise DALIError(f"{name} must be an interval 'low high' (numbers, -Inf/+Inf for an "
                        f"open end, low <= high), got {text!r}")
    return lo, hi


def read_request(params: Params, limits: SimilarSettings) -> SimilarRequest:
    """The request in ``params``; :class:`DALIError` (400) when something is wrong."""
    upload = params.file("UPLOAD")
    did = (params.single("ID") or "").strip() or None
    if upload is None and params.single("UPLOAD"):
        raise DALIError("UPLOAD must be a file part of a multipart/form-data POST "
                        "(the spectrum file itself)")
    if (upload is None) == (did is None):
        raise DALIError("give either UPLOAD (a spectrum file, multipart POST) or ID (the "
                        "publisher DID of an archive spectrum), not both or neither")
    if upload is not None and not upload:
        raise DALIError("UPLOAD is empty")
    k_text = params.single("K")
    try:
        k = int(k_text) if k_text not in (None, "") else limits.k_default
    except ValueError:
        raise DALIError(f"K must be an integer from 1 to {limits.k_max}, got {k_text!r}") \
            from None
    if not 1 <= k <= limits.k_max:
        raise DALIError(f"K must be an integer from 1 to {limits.k_max}, got {k}")
    ranges = {}
    for name, column in FILTERS.items():
        bounds = interval(name, params.single(name) or "")
        if bounds is not None:
            ranges[column] = bounds
    domain_text = (params.single("IN_DOMAIN") or "").strip().lower()
    if domain_text and domain_text not in TRUE + FALSE:
        raise DALIError(f"IN_DOMAIN must be true or false, got {params.single('IN_DOMAIN')!r}")
    try:
        fmt, mime = resolve(params.single("RESPONSEFORMAT"))
    except UnknownFormat as exc:
        raise DALIError(str(exc)) from None
    if fmt.key not in FORMATS:
        raise DALIError(f"unsupported RESPONSEFORMAT {params.single('RESPONSEFORMAT')!r}; "
                        "/similar answers votable, csv, tsv or json")
    return SimilarRequest(upload, did, (params.single("MODEL") or "").strip() or None, k,
                          ranges, None if not domain_text else domain_text in TRUE, fmt, mime)
