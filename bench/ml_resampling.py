"""How much a star's rest-frame network input depends on its RV, per resampling.

For one spectrum of each instrument of a synthetic archive, the generator's noise-free
spectrum (no tellurics) is rendered at its RV plus offsets spanning one grid pixel, put on
the grid ``train-ae`` would choose (``ml.preprocess``: resampled, normalised) and shifted
back to the rest frame by the known RV (``ml.rv.shift``). A pipeline that loses nothing
would give the same rest-frame spectrum every time; the script prints the RMS change
against the first offset (per cent of the continuum), for each ``Grid.resampling``.

    python bench/ml_resampling.py --n 600            # writes (or reuses) the archive
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ml_quality import archive, grid_for  # noqa: E402

from ml.preprocess import RESAMPLINGS, normalise, resample  # noqa: E402
from ml.rv import shift  # noqa: E402
from ml.synth.instruments import INSTRUMENTS  # noqa: E402
from ml.synth.model import normalised_flux  # noqa: E402
from ml.synth.replay import LABELS, ArchiveReplay  # noqa: E402
from vo_service.archive.spectrum import Spectrum, SpectrumMeta  # noqa: E402

EDGE = 50  # grid pixels left out at each end of the good ones (shifted-in pixels)


def rest_frame_change(spectra: list[Spectrum], rvs: np.ndarray, grid) -> np.ndarray:
    """RMS change (continuum units) of each rest-frame spectrum against the first."""
    flux, ivar = map(np.array, zip(*(resample(s, grid) for s in spectra), strict=True))
    flux, ivar = normalise(flux, ivar, grid)
    rest, rest_ivar = shift(torch.as_tensor(flux, dtype=torch.float64),
                            torch.as_tensor(ivar, dtype=torch.float64),
                            torch.as_tensor(rvs / grid.velocity_step))
    good = np.flatnonzero((rest_ivar.numpy() > 0).all(axis=0))[EDGE:-EDGE]
    diff = rest.numpy()[1:, good] - rest.numpy()[:1, good]
    return np.sqrt(np.mean(diff**2, axis=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=600, help="spectra in the archive")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("bench/out/ml_quality"))
    parser.add_argument("--wavelength-range", default="union", choices=("common", "union"))
    parser.add_argument("--steps", type=int, default=8, help="offsets within one grid pixel")
    args = parser.parse_args()
    out = archive(args.out.resolve() / f"archive-{args.n}-{args.seed}", args.n, args.seed)
    grid = grid_for(out, 0, args.wavelength_range)
    print(f"grid {grid.n_pixels} pixels of {grid.velocity_step:.1f} km/s "
          f"({args.wavelength_range}); RMS change of the rest-frame spectrum over RV offsets "
          f"of 1/{args.steps} to 1 grid pixel, per cent of the continuum")
    replay, seen = ArchiveReplay(out), set()
    for number, chunk in enumerate(replay.chunks):
        inst = INSTRUMENTS[chunk.instrument]
        if inst.name in seen:
            continue
        seen.add(inst.name)
        model = replay.chunk(number)
        theta = model.theta[0]
        rvs = theta[4] + np.linspace(0.0, 1.0, args.steps + 1) * grid.velocity_step
        labels = {k: np.full(len(rvs), theta[j]) for j, k in enumerate(LABELS)}
        labels |= {"rv": rvs, "airmass": np.zeros(len(rvs)), "pwv": np.zeros(len(rvs))}
        flux = normalised_flux(labels, model.wavelength, model.setup.resolving_power,
                               frame=model.setup.frame)
        spectra = [Spectrum(model.wavelength, f, np.full(len(f), 1e4),
                            SpectrumMeta(obs_id=inst.name, ra=0.0, dec=0.0,
                                         spec_frame=model.setup.frame)) for f in flux]
        native = np.median(np.diff(np.log(model.wavelength))) * 299792.458
        print(f"{inst.name:7s} native pixel ~{native:5.1f} km/s, Teff {theta[0]:5.0f} K: "
              + "; ".join(f"{name} " + " ".join(
                  f"{v:.2f}" for v in 100 * rest_frame_change(
                      spectra, rvs, replace(grid, resampling=name)))
                  for name in RESAMPLINGS))


if __name__ == "__main__":
    main()
