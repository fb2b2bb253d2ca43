"""Real clients: pyvo SSA, DataLink from SSA and from ObsCore TAP rows, getData, previews."""

from __future__ import annotations

import io
import warnings

import astropy.units as u
import httpx
import numpy as np
import pytest
import pyvo
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.table import Table
from astropy.time import Time

from tests.ssa.conftest import AE_MODEL, LABEL_MODEL
from tests.ssa.test_ssa_http import votable
from vo_service.archive.spectrum import air_to_vacuum


@pytest.fixture
def svc(ssa_server, ssa_archive):
    return pyvo.dal.SSAService(ssa_server + "/ssa")


def test_pyvo_position_band_time(svc, spectra_rows):
    row = spectra_rows[7]
    pos = SkyCoord(row["s_ra"] * u.deg, row["s_dec"] * u.deg)
    res = svc.search(pos=pos, diameter=0.1 * u.deg)
    assert row["obs_publisher_did"] in list(res["obs_publisher_did"])
    rec = res[0]
    assert rec.format == "application/x-votable+xml"
    assert rec.title and rec.acref.startswith(svc.baseurl.rsplit("/ssa", 1)[0])
    assert rec.ra == pytest.approx(row["s_ra"]) and rec.dec == pytest.approx(row["s_dec"])
    assert rec["label_model_id"] == LABEL_MODEL and np.isfinite(rec["teff"])
    lo, hi = row["em_min"], row["em_max"]
    banded = svc.search(pos=pos, diameter=0.1 * u.deg, band=(lo * u.m, hi * u.m))
    assert row["obs_publisher_did"] in list(banded["obs_publisher_did"])
    t = Time(row["t_min"], format="mjd")
    timed = svc.search(pos=pos, diameter=0.1 * u.deg, time=Time([t.mjd - 1, t.mjd + 1],
                                                                 format="mjd"))
    assert row["obs_publisher_did"] in list(timed["obs_publisher_did"])
    assert len(svc.search(pos=pos, diameter=0.1 * u.deg,
                          band=(1e-3 * u.m, 2e-3 * u.m))) == 0


def test_pyvo_metadata(svc):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        names = {c.name for c in svc.columns}
    assert {"accref", "obs_publisher_did", "teff", "in_domain"} <= names


def test_getdataset_loads_with_units(svc, spectra_rows, tmp_path):
    row = spectra_rows[11]
    res = svc.search(pos=SkyCoord(row["s_ra"] * u.deg, row["s_dec"] * u.deg),
                     diameter=0.01 * u.deg, pubdid=row["obs_publisher_did"])
    assert len(res) == 1
    raw = res[0].getdataset().read()  # via DataLink: the first #this link (FITS table)
    path = tmp_path / "spectrum.fits"
    path.write_bytes(raw)
    table = Table.read(path, hdu=1)
    assert table["WAVELENGTH"].unit == u.AA
    assert len(table) == row["em_xel"]
    assert table["FLUX"].unit is not None
    wave = table["WAVELENGTH"].quantity[[0, -1]].to_value(u.AA)
    if row["spec_frame"] == "air":  # the file keeps its frame; em_min/em_max are in vacuum
        wave = air_to_vacuum(wave)
    wave_m = (wave * u.AA).to_value(u.m)
    assert wave_m == pytest.approx([row["em_min"], row["em_max"]], rel=1e-9)
    try:
        from specutils import Spectrum1D
    except ImportError:
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        spec = Spectrum1D.read(path, format="tabular-fits")
    assert spec.spectral_axis.unit == u.AA
    assert spec.flux.unit == table["FLUX"].unit
    # the Spectrum DM VOTable of SSA's default format loads with units too
    vot = Table.read(io.BytesIO(httpx.get(res[0].getdataurl()).content), format="votable")
    assert vot["wavelength"].unit == u.AA


def test_datalink_from_ssa(svc, spectra_rows):
    row = spectra_rows[2]
    res = svc.search(pos=SkyCoord(row["s_ra"] * u.deg, row["s_dec"] * u.deg),
                     diameter=0.01 * u.deg, pubdid=row["obs_publisher_did"])
    links = res[0].getdatalink()
    this = list(links.bysemantics("#this"))
    assert [r.content_type for r in this] == ["application/fits", "application/x-votable+xml",
                                              row["access_format"]]
    original = httpx.get(this[2].access_url)
    assert original.status_code == 200
    preview = next(links.bysemantics("#preview"))
    png = httpx.get(preview.access_url, timeout=60)  # the first preview starts its worker
    assert png.headers["content-type"] == "image/png" and png.content[:4] == b"\x89PNG"
    derivations = {r["local_semantics"]: r for r in links.bysemantics("#derivation")}
    labels = Table.read(io.BytesIO(httpx.get(derivations["labels"].access_url).content),
                        format="votable")
    assert set(labels["model_id"]) >= {LABEL_MODEL}
    docs = list(links.bysemantics("#documentation"))
    assert any(AE_MODEL in r.description for r in docs)
    similar = next(r for r in links.bysemantics("#counterpart") if r.service_def)
    out = similar.process(K=5)
    table = Table.read(io.BytesIO(out.read()), format="votable")
    assert len(table) == 5 and list(table["rank"]) == [1, 2, 3, 4, 5]
    assert np.all(np.diff(table["distance"]) >= 0)
    assert row["obs_publisher_did"] not in list(table["obs_publisher_did"])


def test_similar_matches_brute_force(ssa_server, ssa_archive, spectra_rows):
    import sqlalchemy as sa

    did = spectra_rows[4]["obs_publisher_did"]
    r = httpx.get(ssa_server + "/datalink/similar", params={"ID": did, "K": "7"})
    got = votable(r.content).get_first_table().to_table(use_names_over_ids=True)
    with ssa_archive.engine.connect() as conn:
        want = list(conn.scalars(sa.text(
            "SELECT v.spectrum_id FROM latentvo.latent v, latentvo.latent q "
            "WHERE q.spectrum_id = :s AND v.model_id = q.model_id AND v.spectrum_id <> :s "
            "ORDER BY v.vec <-> q.vec LIMIT 7"), {"s": spectra_rows[4]["spectrum_id"]}))
    assert list(got["spectrum_id"]) == want


def brute_force_neighbours(engine, spectrum_id: int) -> list[int]:
    """Every other spectrum of the autoencoder, nearest first, by an exact scan."""
    import sqlalchemy as sa

    with engine.connect() as conn:
        return list(conn.scalars(sa.text(
            "SELECT v.spectrum_id FROM latentvo.latent v, latentvo.latent q "
            "WHERE q.spectrum_id = :s AND v.model_id = q.model_id AND v.spectrum_id <> :s "
            "ORDER BY v.vec <-> q.vec, v.spectrum_id"), {"s": spectrum_id}))


@pytest.mark.parametrize("k", [1, 1000])  # 1000: [datalink] similar_k_max's default
def test_similar_k_range_ends_are_complete_and_exact(ssa_server, ssa_archive, spectra_rows, k):
    """K=1 and K=similar_k_max: other spectra only, all of them when fewer than K exist
    (1000 > 500: an exact scan, where pgvector's ef_search cap once gave a 500)."""
    row = spectra_rows[11]
    r = httpx.get(ssa_server + "/datalink/similar",
                  params={"ID": row["obs_publisher_did"], "K": str(k)}, timeout=60)
    assert r.status_code == 200, r.text
    got = votable(r.content).get_first_table().to_table(use_names_over_ids=True)
    want = brute_force_neighbours(ssa_archive.engine, row["spectrum_id"])[:k]
    assert list(got["spectrum_id"]) == want
    assert list(got["rank"]) == list(range(1, len(want) + 1))


@pytest.mark.parametrize("k", ["0", "1001", "-3", "ten"])
def test_similar_k_out_of_range_is_a_usage_fault(ssa_server, ssa_archive, spectra_rows, k):
    r = httpx.get(ssa_server + "/datalink/similar",
                  params={"ID": spectra_rows[0]["obs_publisher_did"], "K": k})
    assert r.status_code == 400
    assert r.headers["content-type"].startswith("application/x-votable+xml")
    assert b"UsageFault: K must be an integer from 1 to 1000" in r.content


def test_similar_descriptor_declares_the_k_settings(ssa_server, ssa_archive, spectra_rows):
    r = httpx.get(ssa_server + "/datalink/links",
                  params={"ID": spectra_rows[0]["obs_publisher_did"]})
    assert b'name="K"' in r.content and b'<MAX value="1000"' in r.content
    assert b"Number of neighbours (default 10)" in r.content


def test_datalink_many_ids_and_errors(ssa_server, ssa_archive, spectra_rows):
    dids = [r["obs_publisher_did"] for r in spectra_rows[:5]] + ["ivo://nowhere/x?y"]
    r = httpx.post(ssa_server + "/datalink/links", data={"ID": dids}, timeout=30)
    assert r.headers["content-type"] == "application/x-votable+xml;content=datalink"
    vot = votable(r.content)
    assert {i.name: i.value for i in vot.resources[0].infos}["standardID"] == \
        "ivo://ivoa.net/std/DataLink#links-1.1"
    t = vot.get_first_table().to_table(use_names_over_ids=True)
    assert t.colnames[0] == "ID"
    ids = list(t["ID"])
    # consecutive per ID, in the order asked
    order = [ids[0]] + [b for a, b in zip(ids, ids[1:], strict=False) if a != b]
    assert order == dids
    bad = t[t["ID"] == "ivo://nowhere/x?y"]
    assert len(bad) == 1 and bad["error_message"][0].startswith("NotFoundFault")
    for row in t:
        filled = [bool(row[c]) and row[c] is not np.ma.masked
                  for c in ("access_url", "service_def", "error_message")]
        assert sum(filled) == 1
    assert str(vot.get_first_table().get_field_by_id("content_length").unit) == "byte"
    err = httpx.get(ssa_server + "/datalink/links", params={"ID": dids[0],
                                                          "RESPONSEFORMAT": "text/csv"})
    assert err.status_code == 400 and b'value="ERROR"' in err.content


def test_datalink_from_obscore_tap(ssa_server, ssa_archive, spectra_rows):
    tap = pyvo.dal.TAPService(ssa_server + "/tap")
    res = tap.run_sync("SELECT TOP 3 * FROM ivoa.obscore ORDER BY obs_id")
    assert res["access_format"][0] == "application/x-votable+xml;content=datalink"
    assert res["access_url"][0].startswith(ssa_server + "/datalink/links?ID=")
    n = 0
    for links in res.iter_datalinks():
        assert next(links.bysemantics("#this")).access_url
        assert next(links.bysemantics("#preview"))
        assert any(r["local_semantics"] == "labels" for r in links.bysemantics("#derivation"))
        n += 1
    assert n == 3


def test_getdata_headers_and_ranges(ssa_server, ssa_archive, spectra_rows):
    from vo_service.urls import PublicURLs

    row = next(r for r in spectra_rows if not r["file_name"].endswith(".gz"))
    url = PublicURLs(ssa_server).getdata(row["obs_publisher_did"])
    full = httpx.get(url)
    assert full.status_code == 200
    assert full.headers["content-type"].startswith(row["access_format"])
    assert int(full.headers["content-length"]) == len(full.content)
    assert full.headers["accept-ranges"] == "bytes"
    part = httpx.get(url, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == full.content[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(full.content)}"
    tail = httpx.get(url, headers={"Range": "bytes=-10"})
    assert tail.content == full.content[-10:]
    head = httpx.head(url)
    assert head.status_code == 200 and int(head.headers["content-length"]) == len(full.content)
    assert httpx.get(url, headers={"Range": f"bytes={len(full.content) + 5}-"}).status_code == 416
    gz = next(r for r in spectra_rows if r["file_name"].endswith(".gz"))
    g = httpx.get(PublicURLs(ssa_server).getdata(gz["obs_publisher_did"]))
    assert g.headers["content-encoding"] == "gzip"
    with fits.open(io.BytesIO(g.content)) as hdul:  # httpx decoded it
        assert len(hdul) >= 1
    fits_url = PublicURLs(ssa_server).getdata(row["obs_publisher_did"], "fits")
    f = httpx.get(fits_url)
    assert f.headers["content-type"] == "application/fits"
    assert int(f.headers["content-length"]) == len(f.content)


@pytest.mark.parametrize("params, status", [
    ({}, 400), ({"ID": "ivo://nowhere/x?y"}, 404), ({"ID": "x", "FORMAT": "jpeg"}, 400)])
def test_getdata_errors(ssa_server, ssa_archive, params, status):
    r = httpx.get(ssa_server + "/getdata", params=params)
    assert r.status_code == status
    vot = votable(r.content)
    assert vot.resources[0].infos[0].value == "ERROR"
