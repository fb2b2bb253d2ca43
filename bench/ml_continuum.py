"""Systematic continuum errors of ``ml.preprocess.normalise`` on a grid's range.

    python bench/ml_continuum.py [--range union|common] [--n 16] [--iterations 6]
                                 [--degrees 4 10 12]

Renders noise-free spectra of the synthetic archive's five instruments
(``ml.synth.model.observed_flux``: continuum x lines x instrument response, each over
its own range, R at most 20,000) and their true normalised flux
(``normalised_flux``), puts both on the ``ml.grid_choice.grid_for`` grid of the
instruments' ranges (8,192 px), normalises the first with each continuum degree and
prints the median and 90th percentile over stars of |normalised / truth - 1| in 64-pixel
medians (line cores cancel, the continuum error stays), red and blue of 4500 A. The
figures behind ``ml.grid_choice.continuum_for``.
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
from ml.preprocess import preprocess_many, resample  # noqa: E402
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
    args = parser.parse_args()
    rng = np.random.default_rng(3)
    n = args.n
    labels = {"teff": rng.uniform(4000, 7000, n), "logg": rng.uniform(1, 5, n),
              "mh": rng.uniform(-2, 0.5, n), "alpha_m": rng.uniform(0, 0.4, n),
              "rv": rng.normal(0, 30, n)}
    base = grid_for(np.array([i.wave_min for i in INSTRUMENTS]),
                    np.array([i.wave_max for i in INSTRUMENTS]), 8192, args.range)
    lo, hi = base.bounds()
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


if __name__ == "__main__":
    main()
