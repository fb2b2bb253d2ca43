"""Atomic lines and molecular bands of the synthetic stellar model (air wavelengths, Angstrom).

A few hundred well-known lines (Balmer series, Ca II H&K and triplet, Mg I b, Na I D,
Ca I 4227 and 6162, Fe I/Fe II, Ti, Cr, Mn, Sr II, Ba II, O I ...) with approximate
excitation potentials and solar strengths, completed by a fixed pseudo-random forest of
weak metal lines that makes the spectra as line-rich as real ones. Strengths are
"log tau0 at solar parameters", scaled by the model with abundance, a Boltzmann
excitation term and a Saha-like ionisation term; the numbers are illustrative, chosen
so that every label has its own, physically directed, signature.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Ionisation behaviour of the absorbing species in FGK atmospheres.
MINORITY_NEUTRAL = 0  # e.g. Fe I: the element is mostly ionised, lines strengthen when cool
MAJORITY_ION = 1  # e.g. Fe II, Ca II: gravity-sensitive through the electron pressure
MAJORITY_NEUTRAL = 2  # e.g. O I: no ionisation term

_ION_POTENTIAL = {
    "Fe": 7.90,
    "Ti": 6.83,
    "Ca": 6.11,
    "Si": 8.15,
    "Cr": 6.77,
    "Ni": 7.64,
    "Mg": 7.65,
    "V": 6.75,
    "Mn": 7.43,
    "Al": 5.99,
    "Na": 5.14,
    "K": 4.34,
    "Sr": 5.69,
    "Ba": 5.21,
    "O": 13.62,
}
ALPHA_ELEMENTS = {"O", "Mg", "Si", "Ca", "Ti"}


@dataclass(frozen=True)
class Lines:
    """Arrays describing absorption lines; one entry per line."""

    wave: np.ndarray  # air wavelength, Angstrom
    chi_ex: np.ndarray  # excitation potential of the lower level, eV
    chi_ion: np.ndarray  # ionisation potential of the element, eV
    kind: np.ndarray  # MINORITY_NEUTRAL, MAJORITY_ION or MAJORITY_NEUTRAL
    alpha: np.ndarray  # 1.0 for alpha elements (scale with [alpha/M])
    log_tau0: np.ndarray  # log10 line-centre optical depth at solar parameters
    mass: np.ndarray  # atomic mass (thermal Doppler width)
    damping: np.ndarray  # wing strength P0 (Angstrom^2) at solar parameters; 0 for weak lines
    gamma_logg: np.ndarray  # d log10(wing strength) / d log g (pressure broadening)
    window: np.ndarray  # half-width (Angstrom) over which the line is evaluated


_MASS = {
    "H": 1.0,
    "O": 16.0,
    "Na": 23.0,
    "Mg": 24.3,
    "Al": 27.0,
    "Si": 28.1,
    "K": 39.1,
    "Ca": 40.1,
    "Ti": 47.9,
    "V": 50.9,
    "Cr": 52.0,
    "Mn": 54.9,
    "Fe": 55.8,
    "Ni": 58.7,
    "Sr": 87.6,
    "Ba": 137.3,
}


def _kind(species: str) -> int:
    element, stage = species.split()
    if element == "O":
        return MAJORITY_NEUTRAL
    return MAJORITY_ION if stage == "II" else MINORITY_NEUTRAL


def _lines(rows: list[tuple], window: float) -> Lines:
    """Build Lines from (wave, species, chi_ex, log_tau0[, P0, gamma_logg, window]) rows."""
    elements = [r[1].split()[0] for r in rows]
    return Lines(
        wave=np.array([r[0] for r in rows]),
        chi_ex=np.array([r[2] for r in rows]),
        chi_ion=np.array([_ION_POTENTIAL[e] for e in elements]),
        kind=np.array([_kind(r[1]) for r in rows]),
        alpha=np.array([1.0 if e in ALPHA_ELEMENTS else 0.0 for e in elements]),
        log_tau0=np.array([r[3] for r in rows]),
        mass=np.array([_MASS[e] for e in elements]),
        damping=np.array([r[4] if len(r) > 4 else 0.0 for r in rows]),
        gamma_logg=np.array([r[5] if len(r) > 5 else 0.0 for r in rows]),
        window=np.array([r[6] if len(r) > 6 else window for r in rows]),
    )


# Strong lines with pressure-broadened wings:
# (wave, species, chi_ex, log_tau0, P0 [A^2], dlog P / dlog g, half window [A]).
STRONG = _lines(
    [
        (3933.66, "Ca II", 0.00, 4.0, 100.0, 0.40, 120.0),
        (3968.47, "Ca II", 0.00, 3.7, 55.0, 0.40, 100.0),
        (4226.73, "Ca I", 0.00, 2.5, 0.50, 0.45, 40.0),
        (5167.32, "Mg I", 2.71, 2.3, 0.20, 0.55, 40.0),
        (5172.68, "Mg I", 2.71, 2.6, 0.35, 0.55, 40.0),
        (5183.60, "Mg I", 2.72, 2.8, 0.50, 0.55, 40.0),
        (5269.54, "Fe I", 0.86, 2.2, 0.06, 0.30, 15.0),
        (5328.04, "Fe I", 0.92, 2.0, 0.05, 0.30, 15.0),
        (5528.40, "Mg I", 4.35, 1.6, 0.05, 0.40, 20.0),
        (5889.95, "Na I", 0.00, 2.4, 0.12, 0.50, 40.0),
        (5895.92, "Na I", 0.00, 2.1, 0.07, 0.50, 40.0),
        (7664.90, "K I", 0.00, 1.5, 0.010, 0.50, 30.0),
        (7698.96, "K I", 0.00, 1.2, 0.006, 0.50, 30.0),
        (8183.26, "Na I", 2.10, 0.9, 0.004, 0.80, 30.0),
        (8194.82, "Na I", 2.10, 1.1, 0.006, 0.80, 30.0),
        (8498.02, "Ca II", 1.69, 2.8, 0.55, 0.25, 40.0),
        (8542.09, "Ca II", 1.70, 3.4, 3.40, 0.25, 60.0),
        (8662.14, "Ca II", 1.69, 3.2, 1.70, 0.25, 50.0),
        (8806.76, "Mg I", 4.35, 1.9, 0.06, 0.40, 20.0),
    ],
    window=40.0,
)

# Hydrogen Balmer series: (wave, log_tau0, P0 [A^2], half window [A]).
_BALMER = [
    (6562.80, 2.0, 3.0, 150.0),
    (4861.33, 1.7, 3.0, 120.0),
    (4340.47, 1.5, 2.5, 100.0),
    (4101.74, 1.3, 2.2, 80.0),
    (3970.07, 1.1, 1.8, 50.0),
    (3889.05, 0.9, 1.4, 40.0),
    (3835.38, 0.7, 1.1, 40.0),
    (3797.90, 0.5, 0.8, 40.0),
]
BALMER = Lines(
    wave=np.array([b[0] for b in _BALMER]),
    chi_ex=np.full(len(_BALMER), 10.2),
    chi_ion=np.full(len(_BALMER), 13.6),
    kind=np.full(len(_BALMER), MAJORITY_NEUTRAL),
    alpha=np.zeros(len(_BALMER)),
    log_tau0=np.array([b[1] for b in _BALMER]),
    mass=np.ones(len(_BALMER)),
    damping=np.array([b[2] for b in _BALMER]),
    gamma_logg=np.full(len(_BALMER), 0.6),
    window=np.array([b[3] for b in _BALMER]),
)

# Named weak lines: (wave, species, chi_ex, log_tau0).
_NAMED_WEAK = [
    (4045.81, "Fe I", 1.49, 2.2),
    (4063.59, "Fe I", 1.56, 1.9),
    (4071.74, "Fe I", 1.61, 1.8),
    (4143.87, "Fe I", 1.56, 1.6),
    (4202.03, "Fe I", 1.49, 1.7),
    (4260.47, "Fe I", 2.40, 1.7),
    (4271.76, "Fe I", 1.49, 1.9),
    (4307.90, "Fe I", 1.56, 1.9),
    (4325.76, "Fe I", 1.61, 1.9),
    (4383.55, "Fe I", 1.48, 2.1),
    (4404.75, "Fe I", 1.56, 1.9),
    (4415.12, "Fe I", 1.61, 1.7),
    (4920.50, "Fe I", 2.83, 1.5),
    (4957.60, "Fe I", 2.81, 1.5),
    (5012.07, "Fe I", 0.86, 1.2),
    (5051.63, "Fe I", 0.92, 1.0),
    (5083.34, "Fe I", 0.96, 0.9),
    (5171.60, "Fe I", 1.49, 1.3),
    (5227.19, "Fe I", 1.56, 1.5),
    (5371.49, "Fe I", 0.96, 1.5),
    (5397.13, "Fe I", 0.92, 1.4),
    (5405.77, "Fe I", 0.99, 1.4),
    (5429.70, "Fe I", 0.96, 1.4),
    (5446.92, "Fe I", 0.99, 1.4),
    (5455.61, "Fe I", 1.01, 1.3),
    (5586.76, "Fe I", 3.37, 1.2),
    (5615.64, "Fe I", 3.33, 1.2),
    (6136.61, "Fe I", 2.45, 1.0),
    (6191.56, "Fe I", 2.43, 1.0),
    (6230.72, "Fe I", 2.56, 1.0),
    (6252.56, "Fe I", 2.40, 0.9),
    (6393.60, "Fe I", 2.43, 0.9),
    (6400.00, "Fe I", 3.60, 0.9),
    (6430.85, "Fe I", 2.18, 0.8),
    (6494.98, "Fe I", 2.40, 1.0),
    (6546.24, "Fe I", 2.76, 0.6),
    (6677.99, "Fe I", 2.69, 0.8),
    (8327.05, "Fe I", 2.20, 0.9),
    (8387.77, "Fe I", 2.18, 1.0),
    (8688.62, "Fe I", 2.18, 1.1),
    (8824.22, "Fe I", 2.20, 0.9),
    (4233.17, "Fe II", 2.58, 1.0),
    (4583.84, "Fe II", 2.81, 1.0),
    (4923.93, "Fe II", 2.89, 1.3),
    (5018.44, "Fe II", 2.89, 1.4),
    (5169.03, "Fe II", 2.89, 1.4),
    (5197.58, "Fe II", 3.23, 0.6),
    (5234.62, "Fe II", 3.22, 0.7),
    (5316.62, "Fe II", 3.15, 0.9),
    (6147.74, "Fe II", 3.89, 0.1),
    (6149.25, "Fe II", 3.89, 0.0),
    (6247.56, "Fe II", 3.89, 0.2),
    (6456.38, "Fe II", 3.90, 0.3),
    (6516.08, "Fe II", 2.89, 0.2),
    (6162.17, "Ca I", 1.90, 1.5),
    (6122.22, "Ca I", 1.89, 1.4),
    (6102.72, "Ca I", 1.88, 1.2),
    (6439.07, "Ca I", 2.53, 1.2),
    (6493.78, "Ca I", 2.52, 0.9),
    (6717.68, "Ca I", 2.71, 0.9),
    (4454.78, "Ca I", 1.90, 1.3),
    (5588.75, "Ca I", 2.53, 1.1),
    (5857.45, "Ca I", 2.93, 0.9),
    (4981.73, "Ti I", 0.85, 0.9),
    (4991.07, "Ti I", 0.84, 0.9),
    (4999.50, "Ti I", 0.83, 0.8),
    (5173.74, "Ti I", 0.00, 0.6),
    (5192.97, "Ti I", 0.02, 0.6),
    (5210.38, "Ti I", 0.05, 0.6),
    (6261.10, "Ti I", 1.43, 0.0),
    (8426.51, "Ti I", 0.83, 0.3),
    (4443.80, "Ti II", 1.08, 1.1),
    (4501.27, "Ti II", 1.12, 1.0),
    (4533.97, "Ti II", 1.24, 1.0),
    (4549.62, "Ti II", 1.58, 1.0),
    (4563.76, "Ti II", 1.22, 0.9),
    (4571.97, "Ti II", 1.57, 1.0),
    (5204.51, "Cr I", 0.94, 1.2),
    (5206.04, "Cr I", 0.94, 1.3),
    (5208.42, "Cr I", 0.94, 1.4),
    (4254.33, "Cr I", 0.00, 1.6),
    (4274.80, "Cr I", 0.00, 1.6),
    (4289.72, "Cr I", 0.00, 1.4),
    (4030.75, "Mn I", 0.00, 1.6),
    (4033.06, "Mn I", 0.00, 1.5),
    (4034.48, "Mn I", 0.00, 1.3),
    (3944.01, "Al I", 0.00, 1.5),
    (3961.52, "Al I", 0.01, 1.7),
    (5684.48, "Si I", 4.95, 0.2),
    (5708.40, "Si I", 4.95, 0.5),
    (5772.15, "Si I", 5.08, 0.3),
    (6155.13, "Si I", 5.62, 0.3),
    (7405.77, "Si I", 5.61, 0.5),
    (7415.95, "Si I", 5.61, 0.6),
    (5476.90, "Ni I", 1.83, 1.1),
    (6643.63, "Ni I", 1.68, 0.7),
    (6767.77, "Ni I", 1.83, 0.7),
    (4554.03, "Ba II", 0.00, 1.6),
    (5853.67, "Ba II", 0.60, 0.8),
    (6141.71, "Ba II", 0.70, 1.0),
    (6496.90, "Ba II", 0.60, 1.0),
    (4077.71, "Sr II", 0.00, 1.7),
    (4215.52, "Sr II", 0.00, 1.6),
    (7771.94, "O I", 9.15, 1.0),
    (7774.17, "O I", 9.15, 0.9),
    (7775.39, "O I", 9.15, 0.7),
]

# Species mix of the pseudo-random line forest: (species, share, chi_ex range).
_FOREST_SPECIES = [
    ("Fe I", 0.50, (0.0, 5.0)),
    ("Fe II", 0.08, (2.5, 4.0)),
    ("Ti I", 0.08, (0.0, 2.0)),
    ("Ti II", 0.05, (1.0, 2.5)),
    ("Ca I", 0.05, (1.5, 3.0)),
    ("Si I", 0.05, (4.9, 6.0)),
    ("Cr I", 0.06, (0.0, 3.5)),
    ("Ni I", 0.07, (1.5, 4.5)),
    ("Mg I", 0.03, (4.0, 5.5)),
    ("V I", 0.03, (0.0, 1.5)),
]
FOREST_SIZE = 420
FOREST_RANGE = (3650.0, 9300.0)
_FOREST_SEED = 20_240_611  # fixed: the line list is part of the model, not of a draw


def _forest() -> list[tuple]:
    """Weak lines with density rising to the blue (~ lambda^-2), as in real FGK spectra."""
    rng = np.random.default_rng(_FOREST_SEED)
    lo, hi = FOREST_RANGE
    u = rng.uniform(size=FOREST_SIZE)
    waves = 1.0 / (1.0 / lo - u * (1.0 / lo - 1.0 / hi))
    shares = np.array([s[1] for s in _FOREST_SPECIES])
    picks = rng.choice(len(_FOREST_SPECIES), size=FOREST_SIZE, p=shares / shares.sum())
    rows = []
    for wave, pick in zip(waves, picks, strict=True):
        species, _, (chi_lo, chi_hi) = _FOREST_SPECIES[pick]
        chi = rng.uniform(chi_lo, chi_hi)
        log_tau0 = rng.uniform(-1.3, 1.3) - 0.15 * (chi - 2.5)
        rows.append((float(wave), species, float(chi), float(log_tau0)))
    return rows


WEAK = _lines(_NAMED_WEAK + _forest(), window=0.0)


@dataclass(frozen=True)
class Bands:
    """Molecular (or telluric) absorption bands: sharp head, exponential fall-off."""

    head: np.ndarray  # band-head air wavelength, Angstrom
    direction: np.ndarray  # +1 degraded to the red, -1 to the blue
    scale: np.ndarray  # e-folding length of the absorption away from the head, Angstrom
    extent: np.ndarray  # distance from the head over which the band is evaluated, Angstrom
    strength: np.ndarray  # optical depth at the head for unit abundance factor
    period: np.ndarray  # spacing of the rotational-line texture, Angstrom
    molecule: tuple[str, ...]


def bands_from_rows(rows: list[tuple]) -> Bands:
    """Build Bands from (molecule, head, direction, scale, extent, strength, period) rows."""
    return Bands(
        head=np.array([r[1] for r in rows]),
        direction=np.array([r[2] for r in rows], dtype=float),
        scale=np.array([r[3] for r in rows]),
        extent=np.array([r[4] for r in rows]),
        strength=np.array([r[5] for r in rows]),
        period=np.array([r[6] for r in rows]),
        molecule=tuple(r[0] for r in rows),
    )


MOLECULAR = bands_from_rows(
    [
        ("TiO", 4761.0, 1, 50.0, 120.0, 0.30, 3.1),
        ("TiO", 4954.0, 1, 60.0, 150.0, 0.45, 3.3),
        ("TiO", 5167.0, 1, 60.0, 150.0, 0.50, 3.4),
        ("TiO", 5448.0, 1, 80.0, 150.0, 0.55, 3.6),
        ("TiO", 5847.0, 1, 80.0, 160.0, 0.60, 3.8),
        ("TiO", 6159.0, 1, 100.0, 200.0, 0.80, 4.0),
        ("TiO", 6651.0, 1, 80.0, 150.0, 0.60, 4.3),
        ("TiO", 7054.0, 1, 120.0, 250.0, 1.00, 4.6),
        ("TiO", 7589.0, 1, 60.0, 120.0, 0.50, 4.9),
        ("TiO", 8432.0, 1, 60.0, 120.0, 0.35, 5.4),
        ("TiO", 8859.0, 1, 60.0, 120.0, 0.30, 5.7),
        ("CaH", 6382.0, 1, 40.0, 80.0, 0.40, 2.5),
        ("CaH", 6750.0, 1, 60.0, 130.0, 0.40, 2.7),
        ("MgH", 5211.0, -1, 60.0, 150.0, 0.25, 2.2),
        ("CN", 3883.0, -1, 40.0, 100.0, 0.40, 1.8),
        ("CN", 4216.0, -1, 30.0, 60.0, 0.25, 1.9),
        ("CH", 4314.0, -1, 15.0, 40.0, 0.50, 1.4),
    ]
)
