"""Systematic continuum errors of ``ml.preprocess.normalise`` on a grid's range.

    python bench/ml_continuum.py [--range union|common] [--n 16] [--iterations 6]
                                 [--degrees 4 10 12]
    python bench/ml_continuum.py --noise 10 20 40 80 150 [--windows 3000 8000]

Renders noise-free spectra of the synthetic archive's five instruments
(``ml.synth.model.observed_flux``: continuum x lines x instrument response, each over
its own range, R at most 20,000) and their true normalised flux
(``normalised_flux``), puts both on the ``ml.grid_choice.grid_for`` grid of the
instruments' ranges (8,192 px), normalises the first with each continuum degree and
prints the median and 90th percentile over stars of |normalised / truth - 1| in 64-pixel
medians (line cores cancel, the continuum error stays), red and blue of 4500 A. The
figures behind ``ml.grid_choice.continuum_for``.

``--noise SNR...`` asks instead what the noise does to the continuum: each noise-free
spectrum on the grid gets 8 draws of Gaussian noise at each S/N (sigma proportional to
the square root of the flux, S/N at the median flux) and is normalised with and without
it by the upper-envelope fit (the grid's degree) and by running means of ``--windows``
km/s. Printed per fit and S/N: the median over draws of the mean offset of the
normalised flux (noisy - noise-free, %) and the RMS of its 64-pixel medians (%), against
the pixel noise alone. Figures behind ``ml.grid_choice.CONTINUUM_FITS``.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ml.grid_choice import grid_for  # noqa: E402
from ml.preprocess import normalise, preprocess_many, resample  # noqa: E402
from ml.synth import model  # noqa: E402
from ml.synth.instruments import INSTRUMENTS  # noqa: E402
from vo_service.archive.spectrum import Spectrum, SpectrumMeta  # noqa: E402

CHUNK = 64
BLUE = 4500.0  # Angstrom: line blanketing below leaves the upper envelope few points


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--range", default="union", choices=("common", "union"))
    parser.add_argument("--n", type=int, default=16, help="stars per instrument")
    parser.add_argument("--iterations", type=int, default=None,
                        help="clipping iterations (default: the grid's)")
    parser.add_argument("--degrees", type=int, nargs="+", default=[4, 10, 12])
    parser.add_argument("--noise", type=float, nargs="+", metavar="SNR",
                        help="measure the noise's effect at these S/N instead")
    parser.add_argument("--windows", type=float, nargs="+", default=[3000.0, 8000.0],
                        help="--noise: running-mean sigmas (km/s) to compare")
    args = parser.parse_args()
    rng = np.random.default_rng(3)
    n = args.n
    labels = {"teff": rng.uniform(4000, 7000, n), "logg": rng.uniform(1, 5, n),
              "mh": rng.uniform(-2, 0.5, n), "alpha_m": rng.uniform(0, 0.4, n),
              "rv": rng.normal(0, 30, n)}
    base = grid_for(np.array([i.wave_min for i in INSTRUMENTS]),  # the envelope's degree
                    np.array([i.wave_max for i in INSTRUMENTS]), 8192, args.range,
                    continuum="upper-envelope")
    lo, hi = base.bounds()
    if args.noise:
        print(f"{args.range} grid {lo:.0f}-{hi:.0f} A, {base.n_pixels} px; noisy - noise-free "
              "normalised flux in %: median offset / RMS of 64-pixel medians")
    else:
        print(f"{args.range} grid {lo:.0f}-{hi:.0f} A, {base.n_pixels} px; |residual| in %, "
              "median/90th percentile")
    usable = base.n_pixels // CHUNK * CHUNK
    centre = base.wavelength[:usable].reshape(-1, CHUNK).mean(axis=1)
    blue = centre < BLUE
    for inst in INSTRUMENTS:
        if not base.covered_by(inst.wave_min, inst.wave_max):
            continue
        wave = np.exp(np.linspace(np.log(inst.wave_min), np.log(inst.wave_max), 30000))
        power = min(inst.resolving_power, 20000)
        observed = model.observed_flux(labels, wave, power, frame="vacuum",
                                       response=inst.response(wave)[None])
        norm = model.normalised_flux(labels, wave, power, frame="vacuum")
        ones = np.ones(len(wave))
        spectra = [Spectrum(wave, observed[k], ones * 1e6,
                            SpectrumMeta(obs_id=f"{inst.name}-{k}", ra=0.0, dec=0.0))
                   for k in range(n)]
        if args.noise:
            noise_effect(args, base, spectra, rng, inst.name, usable)
            continue
        truth = np.stack([resample(replace(s, flux=norm[k]), base)[0]
                          for k, s in enumerate(spectra)])
        cells = []
        for degree in args.degrees:
            grid = replace(base, continuum_degree=degree,
                           continuum_iterations=args.iterations or base.continuum_iterations)
            flux, ivar = (np.stack(a) for a in zip(*preprocess_many(spectra, grid), strict=True))
            ratio = np.where(ivar > 0, flux / np.where(ivar > 0, truth, 1.0), np.nan) - 1
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # all-masked chunks
                error = np.abs(np.nanmedian(ratio[:, :usable].reshape(n, -1, CHUNK), axis=2))
                parts = [f"{name} {np.nanmedian(error[:, side]) * 100:.2f}/"
                         f"{np.nanpercentile(error[:, side], 90) * 100:.2f}"
                         for name, side in (("red", ~blue), ("blue", blue))
                         if np.isfinite(error[:, side]).any()]
            cells.append(f"degree {degree}: " + ", ".join(parts))
        print(f"{inst.name:7s} {inst.wave_min:.0f}-{inst.wave_max:.0f}  " + " | ".join(cells),
              flush=True)


def noise_effect(args, base, spectra, rng, name: str, usable: int) -> None:
    """One line per continuum fit: offset / RMS of 64-pixel medians per S/N (see --noise)."""
    resampled = [resample(s, base) for s in spectra]
    flux = np.stack([f for f, _ in resampled])
    good = np.stack([iv > 0 for _, iv in resampled])
    fits = {"upper-envelope": base} | {
        f"running mean {w:.0f} km/s": replace(base, continuum_fit="running-mean",
                                              continuum_window_kms=w) for w in args.windows}
    floor = []
    for label, grid in fits.items():
        cells = []
        for snr in args.noise:
            level = np.nanmedian(np.where(good, flux, np.nan), axis=1, keepdims=True)
            sigma = np.sqrt(np.clip(flux, 1e-3 * level, None) * level) / snr
            ivar = np.where(good, 1.0 / sigma**2, 0.0)
            clean = normalise(flux, ivar, grid)[0]
            offsets, spreads, pixel = [], [], []
            for _ in range(8):
                noisy, out_ivar = normalise(flux + rng.normal(0.0, 1.0, flux.shape) * sigma,
                                            ivar, grid)
                diff = np.where(out_ivar > 0, noisy - clean, np.nan)[:, :usable]
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # all-masked chunks
                    chunks = np.nanmedian(diff.reshape(len(flux), -1, CHUNK), axis=2)
                    offsets.append(np.nanmean(chunks))
                    spreads.append(np.sqrt(np.nanmean(chunks**2)))
                    noise = np.where(out_ivar > 0, 1 / np.sqrt(np.where(out_ivar > 0, out_ivar,
                                                                        1)), np.nan)
                    pixel.append(np.nanmedian(noise) * 1.25 / np.sqrt(CHUNK))
            cells.append(f"S/N {snr:.0f}: {np.median(offsets) * 100:+.2f}/"
                         f"{np.median(spreads) * 100:.2f}")
            if label == "upper-envelope":
                floor.append(f"S/N {snr:.0f}: {np.median(pixel) * 100:.2f}")
        print(f"{name:7s} {label:24s} " + " | ".join(cells), flush=True)
    print(f"{name:7s} {'pixel noise alone':24s} " + " | ".join(floor), flush=True)


if __name__ == "__main__":
    main()
