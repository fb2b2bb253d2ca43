"""SSA over plain HTTP: parameters, boundaries, errors, differential checks against ADQL."""

from __future__ import annotations

import io
import warnings

import httpx
import pytest
from astropy.io.votable import parse

from tests.ssa.conftest import LABEL_MODEL, N_SPECTRA


def votable(body: bytes):
    """Parse strictly: any astropy VOTable warning fails, except the VOUnit log() units
    of the declaration (``log(cm.s**-2)``), which astropy's unit parser does not know."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        vot = parse(io.BytesIO(body), verify="warn")
    problems = [str(w.message) for w in caught
                if not ("W50" in str(w.message) and "log(" in str(w.message))
                and "W03" not in str(w.message)]  # W03: SSA's INPUT:POS is no XML ID
    assert not problems, problems
    return vot


def status(vot) -> list[str]:
    res = vot.resources[0]
    return [i.value for i in res.infos if i.name == "QUERY_STATUS"]


def ssa(server, **params):
    return httpx.get(server + "/ssa", params={"REQUEST": "queryData", **params}, timeout=30)


def rows(server, **params):
    r = ssa(server, **params)
    assert r.status_code == 200, r.text[:500]
    vot = votable(r.content)
    assert status(vot)[0] == "OK"
    return vot.get_first_table().to_table(use_names_over_ids=True)


def test_all_spectra_without_constraints(ssa_server, ssa_archive):
    t = rows(ssa_server)
    assert len(t) == N_SPECTRA
    assert set(t["label_model_id"]) == {LABEL_MODEL}


def _tap_count(server, adql):
    r = httpx.post(server + "/tap/sync", data={"REQUEST": "doQuery", "LANG": "ADQL",
                                               "QUERY": adql, "MAXREC": "100000"}, timeout=60)
    assert r.status_code == 200, r.text[:400]
    t = votable(r.content).get_first_table().to_table()
    return sorted(t.columns[0].tolist())


@pytest.mark.parametrize("size", [0.5, 4.0, 40.0 / 3, 20.0])
def test_cone_equals_adql_cone(ssa_server, ssa_archive, spectra_rows, size):
    """SSA POS/SIZE (a diameter) selects exactly the ADQL CONTAINS/CIRCLE(SIZE/2) rows."""
    for row in spectra_rows[::9]:
        ra, dec = row["s_ra"], row["s_dec"]
        got = sorted(rows(ssa_server, POS=f"{ra!r},{dec!r}", SIZE=repr(size),
                          MAXREC="100000")["spectrum_id"].tolist())
        want = _tap_count(ssa_server, (
            "SELECT spectrum_id FROM latentvo.spectra WHERE 1 = CONTAINS(POINT('ICRS', s_ra, "
            f"s_dec), CIRCLE('ICRS', {ra!r}, {dec!r}, {size / 2!r}))"))
        assert got == want and row["spectrum_id"] in got


def test_obscore_cone_equals_ssa_cone(ssa_server, ssa_archive, spectra_rows):
    row = spectra_rows[3]
    got = sorted(rows(ssa_server, POS=f"{row['s_ra']},{row['s_dec']}", SIZE="10")
                 ["obs_publisher_did"].tolist())
    want = _tap_count(ssa_server, (
        "SELECT obs_publisher_did FROM ivoa.obscore WHERE 1 = CONTAINS(POINT('ICRS', s_ra, "
        f"s_dec), CIRCLE('ICRS', {row['s_ra']}, {row['s_dec']}, 5))"))
    assert got == want


def test_pos_default_size_and_frame_suffix(ssa_server, ssa_archive, spectra_rows):
    row = spectra_rows[0]
    plain = rows(ssa_server, POS=f"{row['s_ra']},{row['s_dec']}")
    icrs = rows(ssa_server, POS=f"{row['s_ra']},{row['s_dec']};ICRS")
    assert row["spectrum_id"] in plain["spectrum_id"]
    assert plain["spectrum_id"].tolist() == icrs["spectrum_id"].tolist()
    assert plain["score"][0] == pytest.approx(1.0)  # nearest first, at the centre


def test_band_edges_and_open_ranges(ssa_server, ssa_archive, spectra_rows):
    lo, hi = spectra_rows[0]["em_min"], spectra_rows[0]["em_max"]
    did = spectra_rows[0]["obs_publisher_did"]

    def dids(band):
        return set(rows(ssa_server, BAND=band)["obs_publisher_did"])

    assert did in dids(f"{hi!r}/{hi * 2!r}")  # touching the upper edge overlaps
    assert did in dids(f"{lo / 2!r}/{lo!r}")  # touching the lower edge overlaps
    assert did not in dids(f"{hi * 1.0000001!r}/")  # just above: no overlap
    assert did not in dids(f"/{lo * 0.9999999!r}")  # just below
    assert did in dids(f"/{lo!r}")
    assert did in dids(f"{(lo + hi) / 2!r}")  # a single wavelength inside
    assert did in dids(f"1e-9/2e-9,{lo!r}/{hi!r}")  # a list: any range
    assert did in dids(f"{lo!r}/{hi!r};source")
    expected = {r["obs_publisher_did"] for r in spectra_rows
                if r["em_max"] >= 4e-7 and r["em_min"] <= 5e-7}
    assert dids("4e-7/5e-7") == expected


def test_time_ranges(ssa_server, ssa_archive, spectra_rows):
    from vo_service.ssa.params import iso_to_mjd

    row = next(r for r in spectra_rows if r["t_min"] is not None)
    import datetime as dt

    start = dt.datetime(1858, 11, 17) + dt.timedelta(days=row["t_min"])
    day = start.strftime("%Y-%m-%d")
    got = set(rows(ssa_server, TIME=day)["obs_publisher_did"])
    expected = {r["obs_publisher_did"] for r in spectra_rows if r["t_min"] is not None
                and (r["t_max"] or r["t_min"]) >= iso_to_mjd(day, "lo")
                and r["t_min"] <= iso_to_mjd(day, "hi")}
    assert row["obs_publisher_did"] in got and got == expected
    # an ISO range, with time of day, seconds and fractions, and open ends
    t0 = start.strftime("%Y-%m-%dT%H:%M:%S.%f")[:23]
    assert row["obs_publisher_did"] in set(rows(ssa_server, TIME=f"{t0}/")["obs_publisher_did"])
    assert row["obs_publisher_did"] in set(rows(ssa_server, TIME=f"/{t0}")["obs_publisher_did"])
    assert len(rows(ssa_server, TIME="1990-01-01/1990-12-31")) == 0


def test_ml_columns_and_custom_parameters(ssa_server, ssa_archive):
    t = rows(ssa_server, TEFF="4000/4500", IN_DOMAIN="true")
    assert len(t) > 0
    assert all(4000 <= v <= 4500 for v in t["teff"]) and all(t["in_domain"])
    old = rows(ssa_server, MODEL="labels-ssa-0", TEFF="4000/4500")
    assert len(old) == 0  # the old model's predictions are 1000 K hotter
    fields = {f.name: f for f in votable(ssa(ssa_server).content).get_first_table().fields}
    assert fields["teff"].ucd == "phys.temperature.effective;meta.modelled"
    assert str(fields["teff"].unit) == "K"
    assert fields["teff_err"].ucd == "stat.error;phys.temperature.effective"


def test_format_values(ssa_server, ssa_archive):
    default = rows(ssa_server, MAXREC="3")
    assert set(default["access_format"]) == {"application/x-votable+xml"}
    native = rows(ssa_server, FORMAT="native", MAXREC="50")
    assert "application/fits" in set(native["access_format"])
    both = rows(ssa_server, FORMAT="FITS,graphic", MAXREC="4")
    assert list(both["access_format"]) == ["application/fits", "image/png"] * 2
    assert len(rows(ssa_server, FORMAT="text/csv")) == 0  # a MIME type we do not offer
    meta = votable(ssa(ssa_server, FORMAT="metadata").content)
    names = {p.name for p in meta.resources[0].params}
    assert {"INPUT:POS", "INPUT:SIZE", "INPUT:BAND", "INPUT:TIME", "INPUT:FORMAT",
            "INPUT:TEFF", "INPUT:IN_DOMAIN", "INPUT:MODEL"} <= names
    assert len(meta.get_first_table().array) == 0


def test_maxrec_overflow_and_top(ssa_server, ssa_archive):
    r = ssa(ssa_server, MAXREC="5")
    vot = votable(r.content)
    assert status(vot) == ["OK", "OVERFLOW"] and len(vot.get_first_table().array) == 5
    vot = votable(ssa(ssa_server, MAXREC=str(N_SPECTRA)).content)
    assert status(vot) == ["OK"]
    vot = votable(ssa(ssa_server, TOP="3").content)
    assert status(vot) == ["OK"] and len(vot.get_first_table().array) == 3


@pytest.mark.parametrize("params, words", [
    ({"POS": "12.5"}, "POS"),
    ({"POS": "abc,10"}, "POS"),
    ({"POS": "10,95"}, "declination"),
    ({"POS": "10,20;FK4"}, "frame"),
    ({"SIZE": "-1", "POS": "10,20"}, "SIZE"),
    ({"BAND": "5e-7/4e-7"}, "BAND"),
    ({"BAND": "V"}, "bandpass"),
    ({"BAND": "abc/def"}, "BAND"),
    ({"TIME": "2012-13-45"}, "TIME"),
    ({"TIME": "yesterday"}, "TIME"),
    ({"FORMAT": "jpeg"}, "FORMAT"),
    ({"REQUEST": "getData"}, "REQUEST"),
    ({"MAXREC": "-3"}, "MAXREC"),
    ({"MODEL": "no-such-model"}, "MODEL"),
    ({"IN_DOMAIN": "maybe"}, "IN_DOMAIN"),
])
def test_bad_input_is_an_ssa_error(ssa_server, ssa_archive, params, words):
    r = httpx.get(ssa_server + "/ssa", params={"REQUEST": "queryData", **params}, timeout=30)
    assert r.status_code == 400
    assert r.headers["content-type"].startswith("application/x-votable+xml")
    vot = votable(r.content)
    infos = {i.name: i for i in vot.resources[0].infos}
    assert infos["QUERY_STATUS"].value == "ERROR"
    assert words.lower() in infos["QUERY_STATUS"].content.lower()
    assert not list(vot.iter_tables())


@pytest.mark.parametrize("params", [{}, {"POS": "10,20", "SIZE": "1"}, {"MAXREC": "5"}])
def test_request_is_required(ssa_server, ssa_archive, params):
    """No REQUEST: a usage error naming REQUEST=queryData, not the whole sky (SSA 1.1
    makes REQUEST mandatory); GET and POST alike."""
    for response in (httpx.get(ssa_server + "/ssa", params=params, timeout=30),
                     httpx.post(ssa_server + "/ssa", data=params, timeout=30)):
        assert response.status_code == 400
        assert response.headers["content-type"].startswith("application/x-votable+xml")
        vot = votable(response.content)
        infos = {i.name: i for i in vot.resources[0].infos}
        assert infos["QUERY_STATUS"].value == "ERROR"
        assert "REQUEST=queryData" in infos["QUERY_STATUS"].content
        assert infos["SERVICE_PROTOCOL"].value == "1.1"
        assert not list(vot.iter_tables())


def test_metadata_needs_no_request(ssa_server, ssa_archive):
    """FORMAT=METADATA (how a client learns the parameters) answers with or without
    REQUEST."""
    for params in ({"FORMAT": "METADATA"}, {"REQUEST": "queryData", "FORMAT": "metadata"}):
        response = httpx.get(ssa_server + "/ssa", params=params, timeout=30)
        assert response.status_code == 200
        vot = votable(response.content)
        assert any(p.name == "INPUT:REQUEST" for p in vot.iter_fields_and_params())
        assert len(vot.get_first_table().array) == 0


def test_parameter_names_are_case_insensitive_and_post_works(ssa_server, ssa_archive,
                                                             spectra_rows):
    row = spectra_rows[5]
    a = rows(ssa_server, pos=f"{row['s_ra']},{row['s_dec']}", size="1")
    r = httpx.post(ssa_server + "/ssa", data={"REQUEST": "queryData",
                                             "POS": f"{row['s_ra']},{row['s_dec']}",
                                             "SIZE": "1"}, timeout=30)
    b = votable(r.content).get_first_table().to_table()
    assert a["spectrum_id"].tolist() == b["spectrum_id"].tolist()


def test_capabilities_and_availability(ssa_server, ssa_archive):
    import xml.etree.ElementTree as ET

    doc = ET.fromstring(httpx.get(ssa_server + "/ssa/capabilities").content)
    xsi = "{http://www.w3.org/2001/XMLSchema-instance}type"
    caps = {c.get("standardID"): c for c in doc.findall("capability")}
    ssa_cap = caps["ivo://ivoa.net/std/SSA"]
    assert ssa_cap.get(xsi) == "ssa:SimpleSpectralAccess"
    assert ssa_cap.find("complianceLevel").text == "full"
    assert ssa_cap.find("interface/accessURL").text == ssa_server + "/ssa?"
    assert [e.tag for e in ssa_cap][1:5] == ["complianceLevel", "dataSource", "dataSource",
                                             "creationType"]
    assert ssa_cap.find("testQuery/size") is not None
    assert "ivo://ivoa.net/std/VOSI#availability" in caps
    avail = httpx.get(ssa_server + "/ssa/availability").text
    assert "<vosi:available>true</vosi:available>" in avail
