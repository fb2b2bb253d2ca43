"""Spectrum file formats: round trips, content sniffing, error reporting."""

from __future__ import annotations

import gzip
import warnings
from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
from astropy.io import fits, votable
from astropy.table import Table

from ml.synth import write_corrupt_examples
from vo_service.archive.readers import FORMATS, SUFFIXES, fits_1d_wcs, read_spectrum, sniff_format
from vo_service.archive.readers.fits_1d_wcs import estimate_sigma
from vo_service.archive.spectrum import Spectrum, SpectrumError, SpectrumMeta

CALIBRATED = "erg Angstrom-1 s-1 cm-2"
N = 1500

# format -> (grid, flux unit, frame, suffix)
CASES = {
    "eso-phase3": (np.linspace(4800.0, 6800.0, N), CALIBRATED, "air", ".fits"),
    "fits-1d-wcs": (np.linspace(3800.0, 6900.0, N), "adu", "air", ".fits"),
    "sdss": (
        np.logspace(np.log10(3800), np.log10(9200), N),
        "10**-17 " + CALIBRATED,
        "vacuum",
        ".fits",
    ),
    "spectrum-votable": (
        np.logspace(np.log10(3700), np.log10(9000), N),
        CALIBRATED,
        "vacuum",
        ".xml",
    ),
}


def make_spectrum(fmt: str, seed: int = 1) -> Spectrum:
    grid, unit, frame, _ = CASES[fmt]
    rng = np.random.default_rng(seed)
    flux = 100.0 * (1.0 - 0.6 * np.exp(-0.5 * ((grid - 5183.6) / 2.0) ** 2))
    flux += rng.normal(0.0, 1.0, N)
    ivar = np.full(N, 1.0)
    ivar[[10, 500, 501]] = 0.0
    meta = SpectrumMeta(
        obs_id="LVS-TEST-000042",
        target_name="SYN-000042",
        ra=123.456789,
        dec=-45.678901,
        t_min=58123.25,
        t_max=58123.26,
        exptime=864.0,
        instrument="UVES",
        facility="ESO-VLT-U2",
        resolving_power=2000.0,
        snr=55.5,
        collection="LVS-SYNTH",
        flux_unit=unit,
        spec_frame=frame,
    )
    return Spectrum(grid, flux, ivar, meta, fmt)


def assert_same(read: Spectrum, orig: Spectrum, check_ivar: bool = True) -> None:
    np.testing.assert_allclose(read.wavelength, orig.wavelength, rtol=2e-6)
    np.testing.assert_allclose(read.flux, orig.flux, rtol=1e-6, atol=1e-5)
    if check_ivar:
        np.testing.assert_allclose(read.ivar, orig.ivar, rtol=1e-5)
    a, b = read.meta, orig.meta
    assert (a.obs_id, a.target_name, a.instrument, a.facility) == (
        b.obs_id,
        b.target_name,
        b.instrument,
        b.facility,
    )
    assert a.ra == pytest.approx(b.ra) and a.dec == pytest.approx(b.dec)
    assert a.t_min == pytest.approx(b.t_min, abs=1e-8)
    assert a.t_max == pytest.approx(b.t_max, abs=1e-8)
    assert a.exptime == pytest.approx(b.exptime)
    assert a.resolving_power == pytest.approx(b.resolving_power, rel=2e-3)
    assert a.snr == pytest.approx(b.snr)
    assert a.spec_frame == b.spec_frame
    assert u.Unit(a.flux_unit) == u.Unit(b.flux_unit)


@pytest.mark.parametrize("fmt", sorted(CASES))
def test_round_trip(fmt: str, tmp_path: Path) -> None:
    orig = make_spectrum(fmt)
    path = tmp_path / f"spectrum{CASES[fmt][3]}"
    FORMATS[fmt].write(orig, path)
    for reader in (read_spectrum, FORMATS[fmt].read):
        read = reader(path)
        assert read.source_format == fmt
        assert_same(read, orig)
        assert read.ivar[500] == 0.0 and read.ivar[0] > 0


def test_round_trip_gzip_is_reproducible(tmp_path: Path) -> None:
    orig = make_spectrum("eso-phase3")
    first, second = tmp_path / "a.fits.gz", tmp_path / "b.fits.gz"
    FORMATS["eso-phase3"].write(orig, first)
    FORMATS["eso-phase3"].write(orig, second)
    assert first.read_bytes() == second.read_bytes()
    assert gzip.decompress(first.read_bytes()).startswith(b"SIMPLE  =")
    assert_same(read_spectrum(first), orig)


@pytest.mark.parametrize("fmt", ["eso-phase3", "fits-1d-wcs", "sdss"])
def test_fits_files_are_standard(fmt: str, tmp_path: Path) -> None:
    path = tmp_path / "s.fits"
    FORMATS[fmt].write(make_spectrum(fmt), path)
    with fits.open(path) as hdul:
        hdul.verify("exception")


def test_phase3_units_and_keywords(tmp_path: Path) -> None:
    path = tmp_path / "p3.fits"
    FORMATS["eso-phase3"].write(make_spectrum("eso-phase3"), path)
    with fits.open(path) as hdul:
        assert hdul[0].header["PRODCATG"] == "SCIENCE.SPECTRUM"
        assert hdul[1].header["VOCLASS"] == "SPECTRUM v2.0"
        assert hdul[1].header["TUNIT1"] == "nm"
        assert hdul[1].header["TUTYP2"] == "spec:Data.FluxAxis.Value"
        assert hdul[0].header["WAVELMIN"] == pytest.approx(480.0)
        assert hdul[1].data["WAVE"][0][0] == pytest.approx(480.0)


def test_votable_is_valid_spectrum_dm(tmp_path: Path) -> None:
    path = tmp_path / "s.xml"
    FORMATS["spectrum-votable"].write(make_spectrum("spectrum-votable"), path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", u.UnitsWarning)  # Angstrom/erg: deprecated, legal
        vot = votable.parse(str(path), verify="exception")
    table = vot.get_first_table()
    assert table.get_field_by_id("wavelength").utype == "spec:Spectrum.Data.SpectralAxis.Value"
    utypes = {p.utype for p in table.params}
    assert "spec:Spectrum.Char.SpatialAxis.Coverage.Location.Value" in utypes
    assert "spec:Spectrum.Target.Name" in utypes


def test_votable_columns_found_by_ucd_then_name(tmp_path: Path) -> None:
    """A foreign VOTable without utypes: UCDs, and then names, identify the columns."""
    grid = np.linspace(400.0, 700.0, 200)  # nm, converted to Angstrom
    table = Table({"lam": grid, "f": np.ones(200), "error": np.full(200, 0.1)})
    table["lam"].unit, table["lam"].meta = "nm", {}
    vot = votable.from_table(table)
    fields = vot.get_first_table().fields
    fields[0].ucd, fields[1].ucd = "em.wl", "phot.flux.density;em.wl"
    vot.get_first_table().params.extend(
        [
            votable.tree.Param(vot, name="ra", datatype="double", value=10.0),
            votable.tree.Param(vot, name="dec", datatype="double", value=-5.0),
        ]
    )
    path = tmp_path / "foreign.vot"
    vot.to_xml(str(path))
    spectrum = read_spectrum(path)
    assert spectrum.wavelength[0] == pytest.approx(4000.0)
    assert spectrum.ivar[0] == pytest.approx(100.0)
    assert (spectrum.meta.ra, spectrum.meta.dec) == (10.0, -5.0)
    assert spectrum.meta.spec_frame == "vacuum" and spectrum.meta.spec_frame_note is None
    fields[0].ucd, fields[0].name = None, "wave"  # found by name; its frame is assumed
    vot.to_xml(str(path))
    untagged = read_spectrum(path)
    assert untagged.meta.spec_frame == "vacuum"
    assert untagged.meta.spec_frame_note.startswith(
        "vacuum wavelengths assumed: the spectral column 'wave' has no UCD")


def test_sniffing_uses_content_not_suffix(tmp_path: Path) -> None:
    for fmt, name in (
        ("sdss", "misnamed.xml"),
        ("spectrum-votable", "misnamed.fits"),
        ("fits-1d-wcs", "no_suffix"),
        ("eso-phase3", "x.fit"),
    ):
        path = tmp_path / name
        FORMATS[fmt].write(make_spectrum(fmt), path)
        assert sniff_format(path) == fmt
        assert read_spectrum(path).source_format == fmt


def test_fits_1d_without_errors_estimates_noise(tmp_path: Path) -> None:
    orig = make_spectrum("fits-1d-wcs")
    path = tmp_path / "s1d.fits"
    fits_1d_wcs.write(orig, path, with_error=False)
    read = read_spectrum(path)
    assert read.meta.extra["ivar_estimated"] == "der_snr"
    assert_same(read, orig, check_ivar=False)
    assert np.median(1.0 / np.sqrt(read.ivar)) == pytest.approx(1.0, rel=0.1)
    flat = np.random.default_rng(3).normal(50.0, 2.0, 5000)
    assert np.median(estimate_sigma(flat)) == pytest.approx(2.0, rel=0.05)


def test_fits_1d_log_and_legacy_wcs(tmp_path: Path) -> None:
    spectrum = make_spectrum("sdss")  # log-uniform grid, vacuum -> WAVE-LOG
    path = tmp_path / "log.fits"
    fits_1d_wcs.write(spectrum, path)
    assert fits.getheader(path)["CTYPE1"] == "WAVE-LOG"
    np.testing.assert_allclose(read_spectrum(path).wavelength, spectrum.wavelength, rtol=1e-9)

    header = fits.Header(
        {
            "CRVAL1": 3.6,
            "CDELT1": 1e-4,
            "CRPIX1": 1.0,
            "DC-FLAG": 1,
            "RA": 1.0,
            "DEC": 2.0,
            "OBJECT": "legacy",
        }
    )
    fits.PrimaryHDU(
        np.full(300, 5.0) + np.random.default_rng(0).normal(0, 0.1, 300), header=header
    ).writeto(tmp_path / "legacy.fits")
    legacy = read_spectrum(tmp_path / "legacy.fits")
    assert legacy.wavelength[0] == pytest.approx(10**3.6)
    assert legacy.wavelength[1] == pytest.approx(10**3.6001)
    assert legacy.meta.spec_frame_note.startswith("air wavelengths assumed: CTYPE1 is absent")



WCS_CASES = [
    {"CTYPE1": "WAVE", "CUNIT1": "Angstrom", "CRVAL1": 4000.0, "CDELT1": 0.5, "CRPIX1": 1.0},
    {"CTYPE1": "AWAV", "CUNIT1": "nm", "CRVAL1": 500.0, "CDELT1": 0.01, "CRPIX1": 37.5},
    {"CTYPE1": "WAVE", "CRVAL1": 5.0e-7, "CD1_1": 2.0e-11},  # metres by default, CRPIX 0
    {"CTYPE1": "WAVE", "CUNIT1": "um", "CRVAL1": 0.5, "CDELT1": 2.0, "PC1_1": 5.0e-6,
     "CRPIX1": -3.0},
    {"CTYPE1": "WAVE-LOG", "CUNIT1": "Angstrom", "CRVAL1": 3800.0, "CDELT1": 0.09,
     "CRPIX1": 1.0},
    {"CTYPE1": "AWAV-LOG", "CUNIT1": "nm", "CRVAL1": 600.0, "CDELT1": 0.004, "CRPIX1": 800.0},
]


@pytest.mark.parametrize("keywords", WCS_CASES, ids=lambda k: f"{k['CTYPE1']}-{len(k)}")
def test_spectral_wcs_agrees_with_astropy_wcs(keywords: dict, tmp_path: Path) -> None:
    """The reader's closed-form WAVE/AWAV(-LOG) axis equals wcslib's to 1e-12."""
    from astropy.wcs import WCS

    n = 1000
    header = fits.Header({"RA": 10.0, "DEC": -20.0, "BUNIT": "adu", **keywords})
    flux = 5.0 + np.random.default_rng(1).normal(0, 0.1, n)
    fits.PrimaryHDU(flux, header=header).writeto(tmp_path / "wcs.fits")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        metres = WCS(fits.getheader(tmp_path / "wcs.fits"), naxis=1).pixel_to_world_values(
            np.arange(n, dtype=np.float64))
    spectrum = read_spectrum(tmp_path / "wcs.fits")
    np.testing.assert_allclose(spectrum.wavelength, np.asarray(metres) * 1e10, rtol=1e-12)
    assert spectrum.meta.spec_frame == ("air" if keywords["CTYPE1"].startswith("AWAV")
                                        else "vacuum")


def test_fits_reader_applies_scaling_and_long_strings(tmp_path: Path) -> None:
    """BSCALE/BZERO-scaled integer images and CONTINUE'd string keywords read correctly."""
    n = 500
    flux = np.linspace(100.0, 200.0, n)
    hdu = fits.PrimaryHDU(flux.copy())  # scale() rewrites the array in place
    hdu.header.update({"CTYPE1": "WAVE", "CUNIT1": "Angstrom", "CRVAL1": 5000.0,
                       "CDELT1": 1.0, "CRPIX1": 1.0, "RA": 1.0, "DEC": 2.0,
                       "OBJECT": "a target name that is far longer than one card can hold "
                                 "so that FITS continues it over CONTINUE cards"})
    hdu.scale("int16", bscale=0.01, bzero=150.0)
    fits.HDUList([hdu]).writeto(tmp_path / "scaled.fits.gz")
    spectrum = read_spectrum(tmp_path / "scaled.fits.gz")
    np.testing.assert_allclose(spectrum.flux, flux, atol=0.006)
    assert spectrum.meta.target_name.endswith("over CONTINUE cards")

CORRUPT_REASONS = {
    "truncated": "truncated",
    "wave_flux_length_mismatch": "lengths differ",
    "all_nan_flux": "no finite value",
    "missing_position": "no sky position",
    "non_monotonic_wavelength": "not strictly increasing",
    "not_fits": "neither a FITS file nor a VOTable",
    "empty": "empty",
    "votable_without_flux": "no flux column",
}


def test_corrupt_examples_raise_meaningful_errors(tmp_path: Path) -> None:
    paths = write_corrupt_examples(tmp_path)
    assert set(paths) == set(CORRUPT_REASONS)
    for name, path in paths.items():
        with pytest.raises(SpectrumError) as info:
            read_spectrum(path)
        message = str(info.value)
        assert message.startswith(path.name), message
        assert CORRUPT_REASONS[name] in message, message


def test_foreign_failures_are_wrapped(tmp_path: Path) -> None:
    with pytest.raises(SpectrumError, match="not found"):
        read_spectrum(tmp_path / "missing.fits")
    fits.HDUList([fits.PrimaryHDU(np.zeros((3, 4)))]).writeto(tmp_path / "image2d.fits")
    with pytest.raises(SpectrumError, match="not recognised"):
        read_spectrum(tmp_path / "image2d.fits")
    bad_unit = make_spectrum("eso-phase3")
    path = tmp_path / "badunit.fits"
    FORMATS["eso-phase3"].write(bad_unit, path)
    with fits.open(path, mode="update") as hdul:
        hdul[1].header["TUNIT1"] = "Hz"
    with pytest.raises(SpectrumError, match="not a length"):
        read_spectrum(path)


def test_registry() -> None:
    assert set(FORMATS) == {"eso-phase3", "fits-1d-wcs", "sdss", "spectrum-votable"}
    assert {".fits", ".fit", ".fits.gz", ".xml", ".vot"} <= set(SUFFIXES)


def test_malformed_fits_headers_are_reported(tmp_path: Path) -> None:
    good = tmp_path / "good.fits"
    FORMATS["eso-phase3"].write(make_spectrum("eso-phase3"), good)
    data = good.read_bytes()
    naxis = b"NAXIS   =                    0"
    assert naxis in data
    (tmp_path / "bad_naxis.fits").write_bytes(data.replace(naxis, naxis[:-2] + b"-3", 1))
    (tmp_path / "no_bitpix.fits").write_bytes(data[:80] + b" " * 2800 + data[2880:])
    for name, reason in (("bad_naxis.fits", "illegal NAXIS"),
                         ("no_bitpix.fits", "not a readable FITS file")):
        with pytest.raises(SpectrumError) as info:
            read_spectrum(tmp_path / name)
        message = str(info.value)
        assert message.startswith(name) and reason in message, message
        assert str(tmp_path) not in message and "\n" not in message
