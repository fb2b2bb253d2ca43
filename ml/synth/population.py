"""Drawing a plausible stellar population and its observations.

Stars are main-sequence dwarfs (Teff 3500-8000 K, log g 4.0-4.75 falling with Teff) or
red giants (Teff 3800-5500 K, log g 1.0-3.5 rising with Teff, with a red clump), with a
disc plus metal-poor halo metallicity distribution, [alpha/M] rising as [M/H] falls,
halo-like velocity dispersions for metal-poor stars, positions uniform on the sky with a
few clusters, and some binaries. Each star gets one or more observations (epoch,
radial velocity, S/N, exposure, airmass, water vapour).
"""

from __future__ import annotations

import numpy as np

MJD_RANGE = (53000.0, 60000.0)
GIANT_FRACTION = 0.3
REPEAT_FRACTION = 0.25  # stars observed more than once
BINARY_FRACTION = 0.15
CLUSTER_FRACTION = 0.08
N_CLUSTERS = 6

OBSERVATION_DTYPE = np.dtype(
    [
        ("star_id", "i8"),
        ("target_name", "U10"),
        ("kind", "U5"),
        ("teff", "f8"),
        ("logg", "f8"),
        ("mh", "f8"),
        ("alpha_m", "f8"),
        ("rv", "f8"),
        ("ra", "f8"),
        ("dec", "f8"),
        ("vmag", "f8"),
        ("mjd", "f8"),
        ("exptime", "f8"),
        ("snr", "f8"),
        ("airmass", "f8"),
        ("pwv", "f8"),
    ]
)


def target_name(star_id: int) -> str:
    """Stable designation of a synthetic star."""
    return f"SYN-{star_id:06d}"


def _stars(m: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Intrinsic parameters of ``m`` stars."""
    giant = rng.random(m) < GIANT_FRACTION
    teff_dwarf = 3500.0 + 4500.0 * rng.beta(2.0, 2.2, m)
    x = (teff_dwarf - 3500.0) / 4500.0
    logg_dwarf = np.clip(4.72 - 0.6 * x**1.2 + rng.normal(0, 0.06, m), 4.0, 4.75)
    teff_giant = rng.uniform(3800.0, 5500.0, m)
    logg_giant = 1.0 + 2.5 * (teff_giant - 3800.0) / 1700.0 + rng.normal(0, 0.2, m)
    clump = rng.random(m) < 0.3
    teff_giant = np.where(clump, rng.normal(4800.0, 120.0, m), teff_giant)
    logg_giant = np.where(clump, rng.normal(2.45, 0.1, m), logg_giant)
    teff = np.where(giant, np.clip(teff_giant, 3800.0, 5500.0), teff_dwarf)
    logg = np.where(giant, np.clip(logg_giant, 1.0, 3.5), logg_dwarf)

    halo = rng.random(m) < 0.15
    mh = np.where(halo, rng.normal(-1.5, 0.5, m), rng.normal(-0.1, 0.22, m))
    mh = np.clip(mh, -2.5, 0.5)
    thick = (~halo) & (mh < -0.2) & (rng.random(m) < 0.3)
    alpha = np.clip(-0.4 * mh, 0.0, 0.4) + 0.15 * thick + rng.normal(0, 0.03, m)
    alpha = np.clip(alpha, 0.0, 0.4)
    rv = rng.normal(0.0, np.where(mh < -1.0, 100.0, 30.0), m)

    ra = rng.uniform(0.0, 360.0, m)
    dec = np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, m)))
    centres_ra = rng.uniform(0.0, 360.0, N_CLUSTERS)
    centres_dec = np.degrees(np.arcsin(rng.uniform(-0.9, 0.9, N_CLUSTERS)))
    cluster_mh = rng.normal(-0.3, 0.4, N_CLUSTERS)
    cluster_rv = rng.normal(0.0, 40.0, N_CLUSTERS)
    member = rng.random(m) < CLUSTER_FRACTION
    which = rng.integers(0, N_CLUSTERS, m)
    dec = np.where(member, np.clip(centres_dec[which] + rng.normal(0, 0.5, m), -89.9, 89.9), dec)
    spread = 0.5 / np.cos(np.radians(dec))
    ra = np.where(member, (centres_ra[which] + rng.normal(0, 1.0, m) * spread) % 360.0, ra)
    mh = np.where(member, np.clip(cluster_mh[which] + rng.normal(0, 0.03, m), -2.5, 0.5), mh)
    alpha = np.where(member, np.clip(-0.4 * mh, 0.0, 0.4), alpha)
    rv = np.where(member, cluster_rv[which] + rng.normal(0, 1.0, m), rv)
    return {
        "giant": giant,
        "teff": teff,
        "logg": logg,
        "mh": mh,
        "alpha_m": alpha,
        "rv": np.clip(rv, -145.0, 145.0),
        "ra": ra,
        "dec": dec,
        "vmag": rng.uniform(6.0, 16.0, m),
        "binary_k": np.where(rng.random(m) < BINARY_FRACTION, rng.uniform(3.0, 30.0, m), 0.0),
        "binary_p": 10.0 ** rng.uniform(0.0, 3.0, m),
        "binary_phase": rng.uniform(0.0, 2.0 * np.pi, m),
    }


def draw_population(
    n: int, rng: np.random.Generator, *, snr_range: tuple[float, float] = (10.0, 200.0)
) -> np.ndarray:
    """``n`` observations of a synthetic population (structured array, OBSERVATION_DTYPE).

    Some stars are observed several times (different epoch, S/N, airmass and, for
    binaries, radial velocity); repeats of a star are consecutive rows.
    """
    if n < 1:
        raise ValueError("n must be at least 1")
    lo, hi = snr_range
    if not 0 < lo <= hi:
        raise ValueError(f"snr_range must satisfy 0 < low <= high, got {snr_range}")
    m = n  # enough stars even if nobody is observed twice; the surplus is dropped
    stars = _stars(m, rng)
    visits = 1 + np.where(rng.random(m) < REPEAT_FRACTION, rng.integers(1, 5, m), 0)
    star_of_obs = np.repeat(np.arange(m), visits)[:n]

    obs = np.zeros(n, dtype=OBSERVATION_DTYPE)
    obs["star_id"] = star_of_obs + 1
    obs["target_name"] = [target_name(i) for i in obs["star_id"]]
    obs["kind"] = np.where(stars["giant"][star_of_obs], "giant", "dwarf")
    for key in ("teff", "logg", "mh", "alpha_m", "ra", "dec", "vmag"):
        obs[key] = stars[key][star_of_obs]
    mjd = rng.uniform(*MJD_RANGE, n)
    orbit = stars["binary_k"][star_of_obs] * np.sin(
        2.0 * np.pi * mjd / stars["binary_p"][star_of_obs] + stars["binary_phase"][star_of_obs]
    )
    obs["rv"] = np.clip(stars["rv"][star_of_obs] + orbit + rng.normal(0, 0.2, n), -150, 150)
    obs["mjd"] = mjd
    obs["snr"] = np.exp(rng.uniform(np.log(lo), np.log(hi), n))
    exptime = 60.0 * (obs["snr"] / 30.0) ** 2 * 10.0 ** (0.4 * (obs["vmag"] - 10.0))
    obs["exptime"] = np.round(np.clip(exptime, 30.0, 3600.0))
    obs["airmass"] = 1.0 / np.cos(np.radians(rng.uniform(0.0, 60.0, n)))
    obs["pwv"] = np.exp(rng.normal(np.log(3.0), 0.5, n))
    return obs
