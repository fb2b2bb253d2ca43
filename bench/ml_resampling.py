"""How much a star's rest-frame network input depends on its RV, per resampling.

For the first ``--stars`` spectra of each instrument of a synthetic archive, the
generator's noise-free spectrum (no tellurics) is rendered at its RV plus offsets
spanning one grid pixel, put on the grid ``train-ae`` would choose (``ml.preprocess``:
resampled, normalised) and shifted back to the rest frame by the known RV
(``ml.rv.shift``). A pipeline that loses nothing would give the same rest-frame spectrum
every time; the script prints the RMS change
against the first offset (per cent of the continuum), for each ``Grid.resampling``, as
the median over the stars.

What that costs the labels: a least-squares fit of Teff, log g, [M/H] and [alpha/M],
linearised at the star's labels on the same rest-frame pipeline (finite differences,
``ml.synth.replay.STEPS``), takes the changes for label shifts; the script prints their
RMS over the offsets in units of the fit's own noise error at S/N 100 per grid pixel.
Above 1, the pattern costs a label more than the noise of an S/N 100 spectrum does.

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
from ml.synth.replay import LABELS, STEPS, ArchiveReplay  # noqa: E402
from vo_service.archive.spectrum import Spectrum, SpectrumMeta  # noqa: E402

EDGE = 50  # grid pixels left out at each end of the good ones (shifted-in pixels)


def rest_frames(spectra: list[Spectrum], rvs: np.ndarray, grid) -> tuple[np.ndarray, np.ndarray]:
    """Rest-frame flux of each spectrum (rows) and the pixels good in all of them."""
    flux, ivar = map(np.array, zip(*(resample(s, grid) for s in spectra), strict=True))
    flux, ivar = normalise(flux, ivar, grid)
    rest, rest_ivar = shift(torch.as_tensor(flux, dtype=torch.float64),
                            torch.as_tensor(ivar, dtype=torch.float64),
                            torch.as_tensor(rvs / grid.velocity_step))
    good = np.zeros(flux.shape[1], bool)
    good[np.flatnonzero((rest_ivar.numpy() > 0).all(axis=0))[EDGE:-EDGE]] = True
    return rest.numpy(), good


def render(model, theta: np.ndarray, rvs: np.ndarray) -> list[Spectrum]:
    """Noise-free, telluric-free spectra of one star (labels ``theta`` (K, 4)) at ``rvs``
    on the file's pixels."""
    labels = {k: theta[:, j] for j, k in enumerate(LABELS)}
    labels |= {"rv": rvs, "airmass": np.zeros(len(rvs)), "pwv": np.zeros(len(rvs))}
    flux = normalised_flux(labels, model.wavelength, model.setup.resolving_power,
                           frame=model.setup.frame)
    return [Spectrum(model.wavelength, f, np.full(len(f), 1e4),
                     SpectrumMeta(obs_id="star", ra=0.0, dec=0.0, spec_frame=model.setup.frame))
            for f in flux]


def figures(model, theta: np.ndarray, rvs: np.ndarray, grid) -> tuple[np.ndarray, np.ndarray]:
    """(RMS change per offset, RMS label shift / noise error at S/N 100 per label)."""
    rest, good = rest_frames(render(model, np.repeat(theta[None], len(rvs), 0), rvs), rvs, grid)
    change = rest[1:, good] - rest[:1, good]
    steps = np.diag(STEPS[:len(LABELS)])
    around = np.concatenate([theta + steps, theta - steps])
    moved, moved_good = rest_frames(render(model, around, np.full(len(around), rvs[0])),
                                    np.full(len(around), rvs[0]), grid)
    keep = good & moved_good
    jacobian = ((moved[:len(LABELS)] - moved[len(LABELS):]) / (2 * STEPS[:len(LABELS), None]))
    jac = jacobian[:, keep].T
    shifts = np.linalg.lstsq(jac, (rest[1:, keep] - rest[:1, keep]).T, rcond=None)[0]
    noise = np.sqrt(np.diag(np.linalg.inv(jac.T @ jac))) / 100.0
    return (np.sqrt(np.mean(change**2, axis=1)),
            np.sqrt(np.mean(shifts**2, axis=1)) / noise)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=600, help="spectra in the archive")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("bench/out/ml_quality"))
    parser.add_argument("--wavelength-range", default="union", choices=("common", "union"))
    parser.add_argument("--steps", type=int, default=8, help="offsets within one grid pixel")
    parser.add_argument("--stars", type=int, default=5,
                        help="stars per instrument (medians are printed)")
    args = parser.parse_args()
    out = archive(args.out.resolve() / f"archive-{args.n}-{args.seed}", args.n, args.seed)
    grid = grid_for(out, 0, args.wavelength_range)
    print(f"grid {grid.n_pixels} pixels of {grid.velocity_step:.1f} km/s "
          f"({args.wavelength_range}); RMS change of the rest-frame spectrum over RV offsets "
          f"of 1/{args.steps} to 1 grid pixel, per cent of the continuum, and the label "
          "shifts a linearised fit takes from it; medians over the stars")
    offsets = np.linspace(0.0, 1.0, args.steps + 1)
    replay, seen = ArchiveReplay(out), set()
    for number, chunk in enumerate(replay.chunks):
        inst = INSTRUMENTS[chunk.instrument]
        if inst.name in seen:
            continue
        seen.add(inst.name)
        model = replay.chunk(number)
        rows = range(min(args.stars, len(model.obs_ids)))
        native = np.median(np.diff(np.log(model.wavelength))) * 299792.458
        print(f"{inst.name:7s} native pixels ~{native:5.1f} km/s, {len(rows)} stars, Teff "
              + " ".join(f"{model.theta[r, 0]:.0f}" for r in rows))
        for name in RESAMPLINGS:
            results = [figures(model, model.theta[r, :len(LABELS)],
                               model.theta[r, 4] + offsets * grid.velocity_step,
                               replace(grid, resampling=name)) for r in rows]
            change = np.median([c for c, _ in results], axis=0)
            ratio = np.median([r for _, r in results], axis=0)
            print(f"  {name:7s} change " + " ".join(f"{v:.2f}" for v in 100 * change)
                  + " %; label shift / noise at S/N 100: " + " ".join(
                      f"{q} {r:.2f}" for q, r in zip(LABELS, ratio, strict=True)))


if __name__ == "__main__":
    main()
