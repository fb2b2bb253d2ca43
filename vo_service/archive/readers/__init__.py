"""Readers and writers of the 1D spectrum file formats that latentvo ingests.

Each format is one module with ``NAME``, ``read(path) -> Spectrum`` and
``write(spectrum, path)``. :func:`read_spectrum` recognises the format from the file's
content (not its name), returns a validated
:class:`~vo_service.archive.spectrum.Spectrum`, and turns every failure into a
:class:`~vo_service.archive.spectrum.SpectrumError` whose message names the file and the
reason.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from vo_service.archive.readers import eso_phase3, fits_1d_wcs, sdss, spectrum_votable
from vo_service.archive.readers.common import file_stem, reading
from vo_service.archive.readers.fitsfile import read_fits
from vo_service.archive.readers.sniff import file_kind, fits_layout
from vo_service.archive.spectrum import Spectrum

FORMATS: dict[str, ModuleType] = {
    module.NAME: module for module in (eso_phase3, fits_1d_wcs, sdss, spectrum_votable)
}
SUFFIXES: tuple[str, ...] = (".fits", ".fit", ".fits.gz", ".fit.gz", ".xml", ".vot")


def sniff_format(path: str | Path) -> str:
    """Name of the format of the file at ``path``, judged from its content."""
    with reading(path, "a spectrum file"):
        if file_kind(path) == "votable":
            return spectrum_votable.NAME
        return fits_layout(read_fits(path))


def read_spectrum(path: str | Path) -> Spectrum:
    """Read any supported spectrum file; SpectrumError says why a file is unusable."""
    fallback_id = file_stem(Path(path).name)
    with reading(path, "a spectrum file"):
        if file_kind(path) == "votable":
            spectrum = spectrum_votable.read(path)
        else:
            hdus = read_fits(path)
            spectrum = FORMATS[fits_layout(hdus)].from_hdus(hdus, fallback_id)
        spectrum.validate()
        return spectrum


def has_spectrum_suffix(path: str | Path) -> bool:
    """Whether the ingest should consider ``path`` (case-insensitive suffix match)."""
    return Path(path).name.lower().endswith(SUFFIXES)


__all__ = ["FORMATS", "SUFFIXES", "has_spectrum_suffix", "read_spectrum", "sniff_format"]
