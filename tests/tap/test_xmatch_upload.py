"""Cross-matching an uploaded table with a published catalogue over TAP (pyvo).

The upload is a temporary table without an index; the catalogue's zone index
serves the join whichever side of CONTAINS or DISTANCE the upload is on. The
pairs must be exactly those of a numpy brute force, including pairs across
RA 0/360.
"""

from __future__ import annotations

import numpy as np
import pytest
from astropy.table import Table

from tests import catalogue_data
from tests.tap.conftest import N_CATALOGUE

pyvo = pytest.importorskip("pyvo")

RADIUS = 0.3


def _unit(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    r, d = np.radians(ra), np.radians(dec)
    return np.stack([np.cos(d) * np.cos(r), np.cos(d) * np.sin(r), np.sin(d)], axis=1)


@pytest.fixture(scope="module")
def upload_and_pairs():
    """Uploaded positions near catalogue rows (some mirrored across RA 0/360) and at
    random, and the (upload id, spec_id) pairs within RADIUS: sure ones and those
    within 1e-9 deg of the radius."""
    cat = catalogue_data.generate(N_CATALOGUE)
    rng = np.random.default_rng(16)
    near = rng.choice(N_CATALOGUE, 150, replace=False)
    ra = cat["ra"][near] + rng.normal(0, RADIUS / 2, 150)
    dec = np.clip(cat["dec"][near] + rng.normal(0, RADIUS / 2, 150), -90, 90)
    edge = np.nonzero((cat["ra"] < 0.5) | (cat["ra"] > 359.5))[0]
    assert len(edge) >= 3
    mirrored = cat["ra"][edge] + np.where(cat["ra"][edge] < 180, -0.2, 0.2)
    ra = np.concatenate([ra, mirrored, rng.uniform(0, 360, 100)]) % 360.0
    dec = np.concatenate([dec, cat["dec"][edge], np.degrees(np.arcsin(rng.uniform(-1, 1, 100)))])
    ids = np.arange(1, len(ra) + 1, dtype=np.int32)
    ua, uc = _unit(ra, dec), _unit(cat["ra"], cat["dec"])
    sep = np.degrees(np.arctan2(np.linalg.norm(np.cross(ua[:, None], uc[None]), axis=2),
                                ua @ uc.T))
    pairs = {(int(ids[i]), int(cat["spec_id"][j])) for i, j in zip(*np.nonzero(sep <= RADIUS),
                                                                    strict=True)}
    maybe = {(int(ids[i]), int(cat["spec_id"][j]))
             for i, j in zip(*np.nonzero(np.abs(sep - RADIUS) <= 1e-9), strict=True)}
    across = {(int(ids[i]), int(cat["spec_id"][j]))
              for i, j in zip(*np.nonzero((sep <= RADIUS)
                                          & (np.abs(ra[:, None] - cat["ra"][None]) > 180)),
                              strict=True)}
    assert len(across) >= 3  # the RA 0/360 pairs are there
    return Table({"id": ids, "ra": ra, "dec": dec}), pairs, maybe


@pytest.mark.parametrize("cond", [
    "1 = CONTAINS(POINT('ICRS', s.ra, s.dec), CIRCLE('ICRS', u.ra, u.dec, {r}))",
    "CONTAINS(POINT(u.ra, u.dec), CIRCLE(s.ra, s.dec, {r})) = 1",
    "DISTANCE(POINT(u.ra, u.dec), POINT(s.ra, s.dec)) <= {r}",
])
def test_upload_crossmatch_is_exact(tap_server, archive, upload_and_pairs, cond):
    upload, pairs, maybe = upload_and_pairs
    svc = pyvo.dal.TAPService(tap_server)
    result = svc.run_sync("SELECT u.id, s.spec_id FROM TAP_UPLOAD.pts AS u JOIN mlspec.spectra "
                          f"AS s ON {cond.format(r=RADIUS)}", uploads={"pts": upload},
                          maxrec=100000).to_table()
    got = {(int(a), int(b)) for a, b in zip(result["id"], result["spec_id"], strict=True)}
    assert got - maybe == pairs - maybe and len(pairs) > 100
