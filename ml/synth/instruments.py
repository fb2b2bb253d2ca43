"""The synthetic archive's spectrographs: wavelength grid, resolution, file format, units.

Each is modelled on a real instrument's range, grid type, wavelength frame and file
format. With ~4,000 pixels a grid cannot sample a high-resolution spectrograph, so the
rendering uses the *effective* resolving power, at most the one of two pixels per
resolution element; that is the value written to the files.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CALIBRATED_UNIT = "erg Angstrom-1 s-1 cm-2"
VEGA_5500 = 3.63e-9  # erg/s/cm2/A of a V = 0 star at 5500 A


@dataclass(frozen=True)
class Instrument:
    """A simulated spectrograph: its file format, wavelength range and grid, resolving
    power, wavelength frame and flux units.
    """

    name: str
    format: str
    facility: str
    wave_min: float  # Angstrom
    wave_max: float
    log_grid: bool
    resolving_power: float  # nominal, before the pixel-sampling limit
    frame: str  # "air" or "vacuum"
    flux_unit: str
    unit_scale: float  # flux in flux_unit of a V = 0 star at 5500 A (SDSS: 5 mag fainter)
    share: float  # fraction of the archive's spectra
    suffix: str

    def grid(self, n_pixels: int) -> np.ndarray:
        """Wavelength grid (Angstrom) with ``n_pixels`` pixels."""
        if self.log_grid:
            return np.logspace(np.log10(self.wave_min), np.log10(self.wave_max), n_pixels)
        return np.linspace(self.wave_min, self.wave_max, n_pixels)

    def effective_resolving_power(self, grid: np.ndarray) -> float:
        """Nominal R, capped at two pixels per FWHM at the grid's median wavelength."""
        sampling = np.median(grid[1:] / np.diff(grid)) / 2.0
        return float(round(min(self.resolving_power, sampling)))

    def response(self, grid: np.ndarray) -> np.ndarray:
        """Throughput shape: a blaze-like envelope if uncalibrated, else a ripple."""
        if self.flux_unit == "adu":
            return np.exp(-0.5 * ((grid - 5600.0) / 1500.0) ** 2)
        return 1.0 + 0.02 * np.sin(2.0 * np.pi * (grid - self.wave_min) / 1700.0)


INSTRUMENTS: tuple[Instrument, ...] = (
    Instrument(
        name="HARPS",
        format="fits-1d-wcs",
        facility="ESO-3.6",
        wave_min=3800.0,
        wave_max=6900.0,
        log_grid=False,
        resolving_power=115_000,
        frame="air",
        flux_unit="adu",
        unit_scale=2.0e13,
        share=0.25,
        suffix=".fits",
    ),
    Instrument(
        name="UVES",
        format="eso-phase3",
        facility="ESO-VLT-U2",
        wave_min=4800.0,
        wave_max=6800.0,
        log_grid=False,
        resolving_power=40_000,
        frame="air",
        flux_unit=CALIBRATED_UNIT,
        unit_scale=VEGA_5500,
        share=0.15,
        suffix=".fits",
    ),
    Instrument(
        name="FEROS",
        format="eso-phase3",
        facility="MPI-2.2",
        wave_min=3800.0,
        wave_max=8900.0,
        log_grid=False,
        resolving_power=48_000,
        frame="air",
        flux_unit=CALIBRATED_UNIT,
        unit_scale=VEGA_5500,
        share=0.10,
        suffix=".fits.gz",
    ),
    Instrument(
        name="SDSS",
        format="sdss",
        facility="SDSS 2.5-M",
        wave_min=3800.0,
        wave_max=9200.0,
        log_grid=True,
        resolving_power=2_000,
        frame="vacuum",
        flux_unit="10**-17 erg Angstrom-1 s-1 cm-2",
        unit_scale=VEGA_5500 * 1e15,
        share=0.40,
        suffix=".fits",
    ),
    Instrument(
        name="LAMOST",
        format="spectrum-votable",
        facility="LAMOST",
        wave_min=3700.0,
        wave_max=9000.0,
        log_grid=True,
        resolving_power=1_800,
        frame="vacuum",
        flux_unit=CALIBRATED_UNIT,
        unit_scale=VEGA_5500,
        share=0.10,
        suffix=".xml",
    ),
)
