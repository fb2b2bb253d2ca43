"""Recognising a spectrum file's format from its content, whatever its name.

Files are classified by their first bytes (FITS, gzip, XML/VOTable) and, for FITS, by
the HDU layout each format module's ``matches`` recognises; an archive full of
``.fits`` files of different origins, or a misnamed file, is thus read correctly.
"""

from __future__ import annotations

import gzip
from pathlib import Path

from vo_service.archive.readers import eso_phase3, fits_1d_wcs, sdss
from vo_service.archive.readers.fitsfile import FITS_MAGIC, GZIP_MAGIC, FitsHDU
from vo_service.archive.spectrum import SpectrumError

HEAD_BYTES = 4096
# Checked in this order: the table layouts are specific, the 1D image is the fallback.
FITS_LAYOUTS = (sdss, eso_phase3, fits_1d_wcs)


def file_kind(path: str | Path) -> str:
    """'fits' or 'votable' from the first bytes (gzip is looked through)."""
    with open(path, "rb") as handle:
        head = handle.read(HEAD_BYTES)
    if head.startswith(GZIP_MAGIC):
        try:
            with gzip.open(path, "rb") as handle:
                head = handle.read(HEAD_BYTES)
        except (OSError, EOFError) as exc:
            raise SpectrumError(f"corrupt gzip stream ({exc})") from exc
    if not head:
        raise SpectrumError("file is empty")
    if head.startswith(FITS_MAGIC):
        return "fits"
    if b"<VOTABLE" in head:
        return "votable"
    preview = head[:24].decode("ascii", errors="replace")
    raise SpectrumError(f"neither a FITS file nor a VOTable (file starts with {preview!r})")


def fits_layout(hdus: list[FitsHDU]) -> str:
    """Format name of a FITS file read into memory, or SpectrumError naming what was found."""
    for module in FITS_LAYOUTS:
        if module.matches(hdus):
            return module.NAME
    found = ", ".join(h.describe() for h in hdus)
    raise SpectrumError(f"FITS layout not recognised as a 1D spectrum (HDUs: {found})")
