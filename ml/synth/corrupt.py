"""Deliberately broken spectrum files, each named after its defect, for ingest tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vo_service.archive.readers import eso_phase3, fits_1d_wcs, sdss
from vo_service.archive.readers.fitsfile import Column, bintable_hdu, primary_hdu, write_hdus
from vo_service.archive.spectrum import Spectrum, SpectrumMeta

_VOTABLE_WITHOUT_FLUX = """<?xml version="1.0" encoding="UTF-8"?>
<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3">
  <RESOURCE type="results" utype="spec:Spectrum">
    <TABLE name="spectrum" utype="spec:Spectrum">
      <PARAM name="target_name" datatype="char" arraysize="*" utype="spec:Spectrum.Target.Name"
        value="SYN-CORRUPT"/>
      <PARAM name="position" datatype="double" arraysize="2" unit="deg" ucd="pos.eq"
        utype="spec:Spectrum.Char.SpatialAxis.Coverage.Location.Value" value="150.0 2.0"/>
      <FIELD name="wavelength" datatype="double" unit="Angstrom" ucd="em.wl"
        utype="spec:Spectrum.Data.SpectralAxis.Value"/>
      <FIELD name="sky" datatype="float" ucd="instr.background"/>
      <DATA>
        <TABLEDATA>
{rows}        </TABLEDATA>
      </DATA>
    </TABLE>
  </RESOURCE>
</VOTABLE>
"""


def _good_spectrum(n: int = 300) -> Spectrum:
    wave = np.linspace(5000.0, 5300.0, n)
    flux = 1.0 - 0.5 * np.exp(-0.5 * ((wave - 5183.6) / 1.5) ** 2)
    meta = SpectrumMeta(
        obs_id="LVS-CORRUPT-000000",
        target_name="SYN-CORRUPT",
        ra=150.0,
        dec=2.0,
        t_min=58000.0,
        t_max=58000.01,
        exptime=864.0,
        instrument="UVES",
        facility="ESO-VLT-U2",
        resolving_power=5000.0,
        flux_unit="erg Angstrom-1 s-1 cm-2",
        spec_frame="air",
    )
    return Spectrum(wave, flux * 1e-14, np.full(n, 1e30), meta, "eso-phase3")


def write_corrupt_examples(out_dir: str | Path) -> dict[str, Path]:
    """Write one file per defect into ``out_dir``; returns {defect name: path}."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}

    def target(name: str) -> Path:
        paths[name.split(".")[0]] = out / name
        return out / name

    good = _good_spectrum()
    eso_phase3.write(good, target("truncated.fits"))
    data = paths["truncated"].read_bytes()
    paths["truncated"].write_bytes(data[: len(data) // 2 + 100])

    wave, flux = good.wavelength / 10.0, good.flux.astype(np.float32)
    columns: list[Column] = [
        ("WAVE", wave, {"TUNIT": "nm"}),
        ("FLUX", flux[:-10], {}),
        ("ERR", np.full(len(flux) - 10, 1e-15, dtype=np.float32), {}),
    ]
    write_hdus(
        target("wave_flux_length_mismatch.fits"),
        [primary_hdu([("RA", 150.0, ""), ("DEC", 2.0, "")]), bintable_hdu(columns)],
    )

    nan = Spectrum(good.wavelength, np.full(len(good.flux), np.nan), good.ivar, good.meta)
    eso_phase3.write(nan, target("all_nan_flux.fits"))

    no_position = Spectrum(good.wavelength, good.flux, good.ivar, good.meta)
    no_position.meta = SpectrumMeta(**{**vars(good.meta), "ra": None, "dec": None})
    fits_1d_wcs.write(no_position, target("missing_position.fits"))

    shuffled = np.random.default_rng(0).permutation(len(good.wavelength))
    unsorted = Spectrum(good.wavelength[shuffled], good.flux, good.ivar, good.meta)
    sdss.write(unsorted, target("non_monotonic_wavelength.fits"))

    target("not_fits.fits").write_text("This is a text file, not a FITS file.\n")
    target("empty.fits").write_bytes(b"")

    rows = "".join(
        f"<TR><TD>{w:.3f}</TD><TD>{sky:.4g}</TD></TR>\n"
        for w, sky in zip(good.wavelength, good.flux, strict=True)
    )
    target("votable_without_flux.xml").write_text(_VOTABLE_WITHOUT_FLUX.format(rows=rows))
    return paths
