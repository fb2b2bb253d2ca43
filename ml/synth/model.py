"""Rendering synthetic stellar spectra from labels (Teff, log g, [M/H], [alpha/M], RV).

The model is phenomenological but physically directed, so that each label leaves its
own, non-degenerate imprint:

* continuum: a blackbody at Teff with metal-line blanketing in the blue, times the
  instrument response;
* lines (``linelist``): strengths scale with [M/H] (+[alpha/M] for alpha elements), a
  Boltzmann term in the excitation potential and a Saha-like term (neutral lines of
  ionised metals strengthen in cool stars; ionised lines strengthen at low log g).
  Optical depth area follows a curve of growth (linear, saturated, damped); strong lines
  add pressure-broadened Lorentzian wings that grow with log g (Balmer, Mg b, Na D,
  Ca II, Ca I 4227, Na I 8190); Balmer lines peak near 10,000 K;
* molecular bands: TiO below ~4000 K, CaH and MgH in cool dwarfs, CN in cool giants,
  the CH G band in G-K stars;
* everything stellar is Doppler shifted by the RV; telluric O2/H2O bands are not.

Lines are drawn directly at the instrument's resolution (Gaussian cores of width
sqrt(sigma_instrument^2 + sigma_Doppler^2)), each evaluated only over a window of
pixels around it and accumulated with ``np.bincount``, which keeps a batch of 4,000-pixel
spectra at well over 1,000 spectra/s on one core.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ml.synth import linelist, telluric
from ml.synth.linelist import Bands, Lines
from vo_service.archive.spectrum import air_to_vacuum

C_KMS = 299_792.458
SIGMA_PER_FWHM = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))
THETA_SUN = 5040.0 / 5777.0
LOGG_SUN = 4.44
_MIN_TAU = 1e-4  # features weaker than this everywhere in a batch are skipped
_RV_MARGIN = 0.0006  # relative wavelength margin for |RV| <= 180 km/s

Profile = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _label(labels: Any, key: str, default: float | None, n: int | None) -> np.ndarray:
    """Label ``key`` as a float array from a mapping, record or structured array."""
    try:
        value = labels[key]
    except (KeyError, ValueError, IndexError):
        if default is None:
            raise KeyError(f"labels need {key!r}") from None
        value = default
    arr = np.atleast_1d(np.asarray(value, dtype=np.float64))
    return np.broadcast_to(arr, (n,)).copy() if n is not None else arr


class _OpticalDepth:
    """Optical depth of a batch (B spectra x N pixels) accumulated feature by feature.

    Feature ``j`` is evaluated only on the pixels within ``half[j]`` of its centre;
    features are grouped by window size (steps of sqrt 2) so that narrow lines do not pay
    for the widest band, and all contributions are summed by one ``np.bincount``.
    """

    def __init__(self, grid: np.ndarray, n_spec: int) -> None:
        self.grid = grid
        self.shape = (n_spec, len(grid))
        self._pixels: list[np.ndarray] = []
        self._values: list[np.ndarray] = []

    def add(self, centre: np.ndarray, half: np.ndarray, profile: Profile) -> None:
        """Add ``profile(dl, cols)`` around each centre (B, L); ``cols`` selects features."""
        n_spec, n_pix = self.shape
        buckets = np.exp2(np.ceil(2.0 * np.log2(np.maximum(half, 1))) / 2.0).astype(int)
        offset = (np.arange(n_spec) * n_pix)[:, None, None]
        for size in np.unique(buckets):
            cols = np.flatnonzero(buckets == size)
            sub = centre[:, cols]
            pix = np.searchsorted(self.grid, sub)[..., None] + np.arange(-size, size + 1)
            inside = (pix >= 0) & (pix < n_pix)
            np.clip(pix, 0, n_pix - 1, out=pix)
            values = profile(self.grid[pix] - sub[..., None], cols)
            values *= inside
            pix += offset
            self._pixels.append(pix.ravel())
            self._values.append(values.ravel())

    def total(self) -> np.ndarray:
        size = self.shape[0] * self.shape[1]
        if not self._pixels:
            return np.zeros(self.shape)
        return np.bincount(
            np.concatenate(self._pixels), np.concatenate(self._values), minlength=size
        ).reshape(self.shape)


def _half_pixels(grid: np.ndarray, wave: np.ndarray, width: np.ndarray) -> np.ndarray:
    """Half-window in pixels covering ``width`` Angstrom around each ``wave``."""
    step = np.interp(wave, grid[:-1], np.diff(grid))
    return np.ceil(1.1 * width / step).astype(int) + 1


def _in_range(wave: np.ndarray, window: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Features whose window can touch the grid at any allowed RV."""
    margin = window + _RV_MARGIN * wave
    return (wave + margin > grid[0]) & (wave - margin < grid[-1])


def _select(lines: Lines, keep: np.ndarray) -> Lines:
    return Lines(**{k: getattr(lines, k)[keep] for k in Lines.__dataclass_fields__})


def _select_bands(bands: Bands, keep: np.ndarray) -> Bands:
    fields = {k: getattr(bands, k)[keep] for k in Bands.__dataclass_fields__ if k != "molecule"}
    return Bands(**fields, molecule=tuple(np.array(bands.molecule)[keep]))


def _frame_wave(wave: np.ndarray, frame: str) -> np.ndarray:
    return air_to_vacuum(wave) if frame == "vacuum" else wave


def _log_strength(
    lines: Lines, teff: np.ndarray, logg: np.ndarray, mh: np.ndarray, am: np.ndarray
) -> np.ndarray:
    """log10 of line-centre optical depth, shape (B, L): abundance, excitation, ionisation."""
    dtheta = (5040.0 / teff - THETA_SUN)[:, None]
    dlogg = (logg - LOGG_SUN)[:, None]
    # Saha-like neutral/ion ratio r, anchored so that r_sun(Fe) ~ 1/15.
    log_r_sun = THETA_SUN * lines.chi_ion - 8.1
    log_r = log_r_sun + 0.5 * lines.chi_ion * dtheta
    log_neutral = log_r - np.logaddexp(0.0, log_r * math.log(10)) / math.log(10)
    log_ionised = -np.logaddexp(0.0, log_r * math.log(10)) / math.log(10)
    ion = np.where(
        lines.kind == linelist.MINORITY_NEUTRAL,
        log_neutral - (log_r_sun - np.log10(1.0 + 10.0**log_r_sun)),
        np.where(
            lines.kind == linelist.MAJORITY_ION,
            log_ionised + np.log10(1.0 + 10.0**log_r_sun) - 0.45 * dlogg,
            0.0,
        ),
    )
    return lines.log_tau0 + mh[:, None] + lines.alpha * am[:, None] - lines.chi_ex * dtheta + ion


def _doppler_kms(lines: Lines, teff: np.ndarray, logg: np.ndarray) -> np.ndarray:
    """Thermal plus microturbulent Doppler velocity (km/s), shape (B, L)."""
    micro = np.clip(1.0 + 0.3 * (4.4 - logg) + 2e-4 * (teff - 5800.0), 0.5, 3.0)
    thermal2 = 0.1289**2 * teff[:, None] / lines.mass
    return np.sqrt(thermal2 + micro[:, None] ** 2)


def _curve_of_growth(tau0: np.ndarray, damping: np.ndarray) -> np.ndarray:
    """Equivalent width in Doppler units: linear, then saturated, then damped (sqrt)."""
    return tau0 / (1.0 + tau0) ** 0.8 + np.sqrt(damping * tau0) * tau0 / (1.0 + tau0)


def _add_lines(
    tau: _OpticalDepth,
    grid: np.ndarray,
    sigma_inst: np.ndarray,
    lines: Lines,
    log_tau: np.ndarray,
    doppler: np.ndarray,
    logg: np.ndarray,
    teff: np.ndarray,
    shift: np.ndarray,
    wave: np.ndarray,
) -> None:
    """Accumulate the optical depth of ``lines`` (Gaussian cores, Lorentzian wings)."""
    tau0 = 10.0 ** np.minimum(log_tau, 6.0)
    v_ref = np.sqrt(0.1289**2 * 5777.0 / lines.mass + 1.0)
    damping = 0.02 * 10.0 ** (0.4 * (logg - LOGG_SUN))[:, None]
    w_doppler = wave * doppler / C_KMS * math.sqrt(math.pi)
    area = w_doppler * _curve_of_growth(tau0 * v_ref / doppler, damping)
    centre = wave[None, :] * shift[:, None]
    sig_inst = np.interp(wave, grid, sigma_inst)
    sigma = np.sqrt(sig_inst**2 + 0.5 * (wave * doppler / C_KMS) ** 2)
    has_wings = lines.damping > 0
    if has_wings.any():
        rel = 10.0 ** np.minimum(log_tau - lines.log_tau0, 4.0)
        gamma = 10.0 ** (lines.gamma_logg * (logg - LOGG_SUN)[:, None])
        wing = lines.damping * rel * gamma * (teff[:, None] / 5777.0) ** 0.3
        area = np.sqrt(area**2 + 4.0 * wing)
        width = np.maximum(2.0 * sigma, np.sqrt(wing / math.pi))
    else:
        wing = np.zeros_like(area)
        width = sigma
    peak = area / (sigma * math.sqrt(2.0 * math.pi))
    keep = np.max(np.maximum(peak, wing), axis=0) > _MIN_TAU
    if not keep.any():
        return
    peak, sigma, wing, width, centre = (a[:, keep] for a in (peak, sigma, wing, width, centre))
    window = lines.window[keep]
    reach = window if has_wings.any() else 4.0 * np.max(sigma, axis=0)
    half = _half_pixels(grid, wave[keep], reach)

    def profile(dl: np.ndarray, cols: np.ndarray) -> np.ndarray:
        core = peak[:, cols, None] * np.exp(-0.5 * (dl / sigma[:, cols, None]) ** 2)
        if not has_wings.any():
            return core
        taper = np.clip(1.0 - (dl / window[cols, None]) ** 2, 0.0, 1.0) ** 2
        lorentz = wing[:, cols, None] / (math.pi * (dl**2 + width[:, cols, None] ** 2))
        return core + lorentz * taper

    tau.add(centre, half, profile)


def _add_bands(
    tau: _OpticalDepth,
    grid: np.ndarray,
    sigma_inst: np.ndarray,
    bands: Bands,
    head: np.ndarray,
    strength: np.ndarray,
) -> None:
    """Accumulate band optical depth: smoothed head, exponential fall-off, line texture.

    ``head`` (B, K) is the observed band-head wavelength, ``strength`` (B, K) the depth.
    """
    keep = np.max(strength, axis=0) > _MIN_TAU
    if not keep.any():
        return
    head, strength = head[:, keep], strength[:, keep]
    direction, scale, extent, period = (
        getattr(bands, k)[keep] for k in ("direction", "scale", "extent", "period")
    )
    edge = np.sqrt(np.interp(bands.head[keep], grid, sigma_inst) ** 2 + 0.3**2)
    contrast = 0.35 * np.exp(-2.0 * (math.pi * edge / period) ** 2)
    centre = head + direction * extent / 2.0
    half = _half_pixels(grid, centre[0], extent / 2.0 + 4.0 * edge)

    def profile(dl: np.ndarray, cols: np.ndarray) -> np.ndarray:
        x = direction[cols, None] * dl + extent[cols, None] / 2.0
        beyond = np.maximum(x, 0.0)
        shape = 0.5 * (1.0 + np.tanh(x / (1.2 * edge[cols, None])))
        shape *= np.exp(-beyond / scale[cols, None])
        shape *= 1.0 + contrast[cols, None] * np.cos(2.0 * math.pi * x / period[cols, None])
        shape *= np.clip(1.0 - (beyond / extent[cols, None]) ** 2, 0.0, 1.0) ** 2
        return strength[:, cols, None] * shape

    tau.add(centre, half, profile)


def _molecular_log_strength(
    teff: np.ndarray, logg: np.ndarray, mh: np.ndarray, am: np.ndarray
) -> dict[str, np.ndarray]:
    """log10 abundance-temperature factor of each molecule, per spectrum."""
    theta = 5040.0 / teff
    return {
        "TiO": np.clip(9.0 * (theta - 1.292) + mh + 0.5 * am - 0.15 * (logg - 4.5), -8, 1.5),
        "CaH": np.clip(9.0 * (theta - 1.292) + mh + 0.5 * am + 1.0 * (logg - 4.5), -8, 1.0),
        "MgH": np.clip(6.0 * (theta - 1.15) + mh + am + 0.8 * (logg - 4.5), -8, 1.0),
        "CN": np.clip(3.0 * (theta - 1.1) + mh - 0.4 * (logg - 2.5), -8, 0.7),
        "CH": np.clip(0.8 * mh + 2.5 * (theta - 0.9) - 8.0 * np.maximum(theta - 1.2, 0.0), -8, 0.5),
    }


def _balmer_log_strength(teff: np.ndarray) -> np.ndarray:
    """Population of hydrogen n=2 relative to the Sun: rises with Teff, peaks near 10^4 K."""
    theta = 5040.0 / teff
    return -4.0 * (theta - THETA_SUN) - np.log10(1.0 + (teff / 9500.0) ** 8)


def continuum(wavelength: np.ndarray, teff: np.ndarray, mh: np.ndarray) -> np.ndarray:
    """Blackbody at Teff (1 at 5500 A) with blue metal-line blanketing, shape (B, N)."""
    c2 = 1.4388e8  # hc/k in Angstrom K
    t = teff[:, None]
    planck = (
        (5500.0 / wavelength) ** 5 * np.expm1(c2 / (5500.0 * t)) / np.expm1(c2 / (wavelength * t))
    )
    theta = 5040.0 / teff[:, None]
    blanket = 0.25 * 10.0 ** mh[:, None] * (theta / THETA_SUN) ** 2 * (4000.0 / wavelength) ** 4
    return planck * np.exp(-blanket)


def normalised_flux(
    labels: Mapping | np.ndarray,
    wavelength: np.ndarray,
    resolving_power: float,
    *,
    frame: str = "air",
) -> np.ndarray:
    """Noise-free continuum-normalised spectra (B, N): stellar lines and bands x tellurics.

    ``labels`` holds arrays (or scalars) teff, logg, mh, alpha_m and optionally rv
    (km/s, default 0), airmass (default 1.2), pwv (mm, default 2).
    """
    grid = np.asarray(wavelength, dtype=np.float64)
    teff = _label(labels, "teff", None, None)
    n = len(teff)
    logg, mh, am = (_label(labels, k, None, n) for k in ("logg", "mh", "alpha_m"))
    rv = _label(labels, "rv", 0.0, n)
    airmass, pwv = _label(labels, "airmass", 1.2, n), _label(labels, "pwv", 2.0, n)
    shift = np.sqrt((1.0 + rv / C_KMS) / (1.0 - rv / C_KMS))
    sigma_inst = grid * SIGMA_PER_FWHM / resolving_power
    tau = _OpticalDepth(grid, n)

    for lines, log_tau in (
        (linelist.WEAK, None),
        (linelist.STRONG, None),
        (linelist.BALMER, _balmer_log_strength(teff)[:, None] + linelist.BALMER.log_tau0),
    ):
        wave = _frame_wave(lines.wave, frame)
        keep = _in_range(wave, lines.window + 5.0 * wave / resolving_power, grid)
        sub = _select(lines, keep)
        log_tau = _log_strength(sub, teff, logg, mh, am) if log_tau is None else log_tau[:, keep]
        doppler = _doppler_kms(sub, teff, logg)
        _add_lines(tau, grid, sigma_inst, sub, log_tau, doppler, logg, teff, shift, wave[keep])

    molecules = _molecular_log_strength(teff, logg, mh, am)
    bands = linelist.MOLECULAR
    keep = _in_range(_frame_wave(bands.head, frame), bands.extent, grid)
    mol = _select_bands(bands, keep)
    strength = mol.strength * 10.0 ** np.stack([molecules[m] for m in mol.molecule], axis=1)
    head = _frame_wave(mol.head, frame)[None, :] * shift[:, None]
    _add_bands(tau, grid, sigma_inst, mol, head, strength)

    tell = telluric.TELLURIC
    keep = _in_range(_frame_wave(tell.head, frame), tell.extent, grid)
    tel = _select_bands(tell, keep)
    head = np.broadcast_to(_frame_wave(tel.head, frame), (n, len(tel.head)))
    _add_bands(tau, grid, sigma_inst, tel, head, telluric.telluric_strengths(tel, airmass, pwv))
    return np.exp(-tau.total())


def observed_flux(
    labels: Mapping | np.ndarray,
    wavelength: np.ndarray,
    resolving_power: float,
    *,
    frame: str = "air",
    response: np.ndarray | None = None,
    flux_scale: np.ndarray | float = 1.0,
) -> np.ndarray:
    """Noise-free observed spectra (B, N): continuum x lines x response x flux scale.

    The expectation value of :func:`render_batch`'s flux (defects aside); ``ml.synth.replay``
    uses it as the forward model of the Cramer-Rao bound.
    """
    grid = np.asarray(wavelength, dtype=np.float64)
    norm = normalised_flux(labels, grid, resolving_power, frame=frame)
    n = norm.shape[0]
    teff = _label(labels, "teff", None, n)
    mh = _label(labels, "mh", None, n)
    model = continuum(grid, teff, mh) * norm
    if response is not None:
        model *= response
    model *= np.broadcast_to(np.asarray(flux_scale, dtype=np.float64), (n,))[:, None]
    return model


def noise_sigma(model: np.ndarray, snr: np.ndarray | float) -> np.ndarray:
    """Photon-like per-pixel sigma of spectra ``model`` (B, N) whose median S/N is ``snr``."""
    level = np.median(model, axis=1, keepdims=True)
    snr_arr = np.broadcast_to(np.asarray(snr, dtype=np.float64), (model.shape[0],))[:, None]
    return np.sqrt(np.maximum(model, 1e-3 * level) * level) / snr_arr


def render_batch(
    labels: Mapping | np.ndarray,
    wavelength: np.ndarray,
    resolving_power: float,
    snr: np.ndarray | float,
    rng: np.random.Generator,
    *,
    frame: str = "air",
    response: np.ndarray | None = None,
    flux_scale: np.ndarray | float = 1.0,
    defects: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Noisy spectra (flux, ivar), each (B, N), for a batch of labels on one grid.

    Noise is Gaussian with photon-like scaling, sigma_i = sqrt(F_i * median F) / snr, so
    the median per-pixel S/N is ``snr`` and ``ivar = 1/sigma^2`` is exact. ``response``
    ((N,) or (B, N)) multiplies the blackbody; with ``defects`` a few cosmic-ray hits and
    bad pixels are added and carry ivar 0.
    """
    model = observed_flux(labels, wavelength, resolving_power, frame=frame,
                          response=response, flux_scale=flux_scale)
    sigma = noise_sigma(model, snr)
    flux = model + sigma * rng.standard_normal(model.shape)
    ivar = 1.0 / sigma**2
    if defects:
        add_defects(flux, ivar, np.median(model, axis=1), rng)
    return flux, ivar


def add_defects(
    flux: np.ndarray, ivar: np.ndarray, level: np.ndarray, rng: np.random.Generator
) -> None:
    """Cosmic-ray hits (positive spikes, 1-2 pixels) and dead pixels, all with ivar 0."""
    n_spec, n_pix = flux.shape
    n_cosmic = rng.poisson(2.0, (n_spec,))
    n_dead = rng.poisson(1.5, (n_spec,))
    for i in range(n_spec):
        hits = rng.integers(0, n_pix - 1, n_cosmic[i])
        spans = np.concatenate([hits, hits[rng.random(len(hits)) < 0.4] + 1])
        flux[i, spans] += level[i] * rng.uniform(2.0, 20.0, len(spans))
        ivar[i, spans] = 0.0
        dead = rng.integers(0, n_pix, n_dead[i])
        flux[i, dead] = 0.0
        ivar[i, dead] = 0.0


def render_spectrum(
    labels: Mapping,
    wavelength_grid: np.ndarray,
    resolving_power: float,
    snr: float,
    rng: np.random.Generator,
    **options: Any,
) -> tuple[np.ndarray, np.ndarray]:
    """One noisy spectrum (flux, ivar) for scalar labels; see :func:`render_batch`."""
    flux, ivar = render_batch(labels, wavelength_grid, resolving_power, snr, rng, **options)
    return flux[0], ivar[0]
