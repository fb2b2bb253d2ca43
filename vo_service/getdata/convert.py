"""Conversions of a stored spectrum file: Spectrum DM VOTable, FITS binary table, PNG preview.

Every conversion is computed once and cached on disk under
``LATENTVO_HOME/cache/getdata/<aa>/<sha256>.<ext>`` (written to a temporary
name, then renamed, so concurrent requests never see half a file). The store is
content-addressed, so a cached product never goes stale; bump
:data:`CACHE_VERSION` when a writer changes.

* ``votable``: the IVOA Spectrum DM VOTable of ``vo_service.archive.readers.spectrum_votable``;
* ``fits``: a FITS binary table, one row per pixel, with the Spectrum DM utypes
  in ``TUTYPEn`` and units in ``TUNITn`` (astropy and specutils' ``tabular-fits``
  loader read wavelength and flux with their units);
* ``png``: a plot of flux against wavelength, drawn by matplotlib in a
  separate worker process (:mod:`vo_service.getdata.previews`: the web process
  never imports matplotlib).
"""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from vo_service.archive.spectrum import Spectrum

if TYPE_CHECKING:
    from vo_service.archive.store import FileStore

CACHE_VERSION = "1"


@dataclass(frozen=True)
class Representation:
    """A converted form of a spectrum file: its key, MIME type, file extension, description."""

    key: str
    mime: str
    extension: str
    description: str


NATIVE = "native"
REPRESENTATIONS: dict[str, Representation] = {
    "votable": Representation("votable", "application/x-votable+xml", "vot",
                              "IVOA Spectrum DM 1.1 VOTable (wavelength in Angstrom)"),
    "fits": Representation("fits", "application/fits", "fits",
                           "FITS binary table with Spectrum DM utypes (wavelength in "
                           "Angstrom); loads with astropy and specutils"),
    "png": Representation("png", "image/png", "png", "Plot of the spectrum (PNG)"),
}
# FORMAT values (case-insensitive) accepted by /getdata, MIME types included.
FORMAT_ALIASES = {
    "native": NATIVE, "original": NATIVE,
    "votable": "votable", "vot": "votable", "xml": "votable", "sdm": "votable",
    "application/x-votable+xml": "votable", "text/xml": "votable",
    "fits": "fits", "application/fits": "fits", "image/fits": "fits",
    "png": "png", "preview": "png", "graphic": "png", "image/png": "png",
}


class ConversionError(RuntimeError):
    """A representation cannot be made (unreadable or missing file, preview failure)."""


def estimated_kbytes(key: str, n_pixels: int, native_kb: int) -> int:
    """A rough size of a representation, for SSA Access.Size before it exists."""
    if key == "votable":
        return max(1, (4000 + 90 * n_pixels) // 1024)
    if key == "fits":
        return max(1, (8640 + 22 * n_pixels) // 1024)
    if key == "png":
        return 40
    return native_kb


class Converter:
    """Produces and caches the representations of stored files.

    Parameters
    ----------
    store
        The content-addressed file store.
    cache_dir
        Where converted files are kept.
    draw_preview
        ``(source path, title) -> PNG bytes``; the web service passes
        :meth:`vo_service.getdata.previews.PreviewPool.render`.
    """

    def __init__(self, store: FileStore, cache_dir: Path,
                 draw_preview: Callable[[Path, str], bytes]) -> None:
        self.store = store
        self.cache_dir = Path(cache_dir)
        self.draw_preview = draw_preview
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def cached_path(self, sha256: str, key: str) -> Path:
        """Where representation ``key`` of the stored file ``sha256`` is (or will be) cached."""
        rep = REPRESENTATIONS[key]
        return (self.cache_dir / sha256[:2]
                / f"{sha256}.v{CACHE_VERSION}.{rep.extension}")

    def path(self, sha256: str, key: str, title: str) -> Path:
        """The cached file of representation ``key``, made now if needed."""
        target = self.cached_path(sha256, key)
        if target.exists():
            return target
        with self._guard:
            lock = self._locks.setdefault(f"{sha256}.{key}", threading.Lock())
        with lock:  # one thread per product converts; the others wait for it
            if target.exists():
                return target
            source = self.store.path_for(sha256)
            if not source.exists():
                raise ConversionError("the stored file of this spectrum is missing")
            if key == "png":
                data = self.draw_preview(source, title)
            else:
                data = convert(read_stored(source), key, title)
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}")
            tmp.write_bytes(data)
            os.replace(tmp, target)
        with self._guard:
            self._locks.pop(f"{sha256}.{key}", None)
        return target


def read_stored(source: str | Path) -> Spectrum:
    """The spectrum in a stored file; :class:`ConversionError` when it cannot be read."""
    from vo_service.archive.readers import read_spectrum
    from vo_service.archive.spectrum import SpectrumError

    try:
        return read_spectrum(source)
    except SpectrumError as exc:
        raise ConversionError(f"the stored file cannot be read: {exc}") from None


def convert(spectrum: Spectrum, key: str, title: str) -> bytes:
    """The bytes of representation ``key`` (``votable`` or ``fits``) of ``spectrum``."""
    if key == "votable":
        from vo_service.archive.readers.spectrum_votable import dumps
        return dumps(spectrum)
    if key == "fits":
        return fits_bytes(spectrum, title)
    raise KeyError(key)


def _fits_unit(text: str | None) -> str | None:
    from vo_service.archive.readers.common import parse_unit

    unit = parse_unit(text) if text else None
    if unit is None:
        return text or None
    try:
        return unit.to_string("fits")
    except (ValueError, TypeError):
        return text


def fits_bytes(spectrum: Spectrum, title: str) -> bytes:
    """``spectrum`` as a FITS binary table with Spectrum DM utypes, UCDs and units.

    One row per pixel (wavelength in Angstrom, flux, its error from the inverse
    variance, a quality flag for pixels with no valid flux); the header carries the
    observation's metadata (target, position, times, instrument) and ``title``.
    """
    from astropy.io import fits

    from vo_service.archive.readers.common import sigma_from_ivar

    meta = spectrum.meta
    air = meta.spec_frame == "air"
    flux_unit = _fits_unit(meta.flux_unit)
    cols = [
        fits.Column("WAVELENGTH", "D", unit="Angstrom", array=spectrum.wavelength),
        fits.Column("FLUX", "E", unit=flux_unit, array=spectrum.flux.astype("f4")),
        fits.Column("FLUX_ERROR", "E", unit=flux_unit,
                    array=sigma_from_ivar(spectrum.ivar).astype("f4")),
        fits.Column("QUALITY", "I", array=(spectrum.ivar <= 0).astype("i2")),
    ]
    hdu = fits.BinTableHDU.from_columns(cols, name="SPECTRUM")
    utypes = ("spec:Spectrum.Data.SpectralAxis.Value", "spec:Spectrum.Data.FluxAxis.Value",
              "spec:Spectrum.Data.FluxAxis.Accuracy.StatError",
              "spec:Spectrum.Data.FluxAxis.Quality")
    ucds = ("em.wl;obs.atmos" if air else "em.wl", "phot.flux.density;em.wl",
            "stat.error;phot.flux.density;em.wl", "meta.code.qual")
    for i, (utype, ucd) in enumerate(zip(utypes, ucds, strict=True), start=1):
        hdu.header[f"TUTYP{i}"] = utype
        hdu.header[f"TUCD{i}"] = ucd
    h = hdu.header
    h["VOCLASS"] = ("SPECTRUM V1.0", "IVOA Spectrum data model")
    h["VOSEGT"] = ("Spectrum", "segment type")
    h["TITLE"] = title[:68]
    h["OBJECT"] = (meta.target_name or "")[:68]
    h["OBS_ID"] = meta.obs_id[:68]
    if meta.ra is not None and meta.dec is not None:  # (validated spectra have both)
        h["RA"] = (float(meta.ra), "[deg] ICRS right ascension")
        h["DEC"] = (float(meta.dec), "[deg] ICRS declination")
        h["RADESYS"] = "ICRS"
    if meta.t_min is not None:
        h["MJD-OBS"] = (float(meta.t_min), "[d] start of exposure (UTC)")
    if meta.t_max is not None:
        h["MJD-END"] = (float(meta.t_max), "[d] end of exposure (UTC)")
    if meta.exptime is not None:
        h["EXPTIME"] = (float(meta.exptime), "[s] exposure time")
    if meta.instrument:
        h["INSTRUME"] = meta.instrument[:68]
    if meta.facility:
        h["TELESCOP"] = meta.facility[:68]
    if meta.resolving_power:
        h["SPEC_RES"] = (float(meta.resolving_power), "resolving power lambda/dlambda")
    h["WAVFRAME"] = ("AIR" if air else "VACUUM", "wavelengths are in air or vacuum")
    h["DATALEN"] = (len(spectrum.wavelength), "number of pixels")
    out = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(out)
    return out.getvalue()
