"""TAP through pyvo, as astronomers use it: capabilities, tables, sync, async, uploads."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from astropy.table import Table

pyvo = pytest.importorskip("pyvo")


@pytest.fixture(scope="module")
def svc(tap_server):
    return pyvo.dal.TAPService(tap_server)


def test_capabilities(svc):
    cap = svc.get_tap_capability()
    assert svc.maxrec == 20000 and svc.hardlimit == 16_000_000
    adql = cap.get_adql()
    assert adql.get_udf("lvo_latent_distance") is not None
    assert adql.get_feature("ivo://ivoa.net/std/TAPRegExt#features-adql-sets", "UNION")
    ids = {m.ivo_id for m in svc.upload_methods}
    assert "ivo://ivoa.net/std/TAPRegExt#upload-inline" in ids
    assert "ivo://ivoa.net/std/TAPRegExt#upload-http" in ids


def test_table_browsing(svc, archive):
    tables = svc.tables
    names = set(tables.keys())
    assert {"latentvo.spectra", "latentvo.labels", "latentvo.latent", "mlspec.spectra",
            "tap_schema.columns"} <= names
    columns = {c.name: c for c in tables["latentvo.labels"].columns}
    assert columns["teff"].unit == "K"
    assert columns["teff"].ucd == "phys.temperature.effective;meta.modelled"
    latent = {c.name: c for c in tables["mlspec.spectra"].columns}["latent"]
    assert latent.datatype.arraysize == "16"
    assert tables["latentvo.labels"].description


def test_examples(svc, archive):
    examples = svc.examples
    assert len(examples) >= 5
    for example in examples:  # every example runs
        result = svc.run_sync(example["QUERY"].replace("TAP_UPLOAD.targets",
                                                       "latentvo.spectra"), maxrec=5) \
            if "TAP_UPLOAD" not in example["QUERY"] else None
        assert result is None or result.to_table() is not None


def test_sync_values_and_metadata(svc, archive):
    result = svc.run_sync("SELECT TOP 5 s.spectrum_id, l.teff, l.in_domain, v.vec "
                          "FROM latentvo.spectra AS s "
                          "JOIN latentvo.labels AS l ON l.spectrum_id = s.spectrum_id "
                          "JOIN latentvo.latent AS v ON v.spectrum_id = s.spectrum_id "
                          "ORDER BY s.spectrum_id")
    table = result.to_table()
    assert list(table["spectrum_id"]) == [1, 2, 3, 4, 5]
    assert table["teff"].unit == "K"
    assert len(table["vec"][0]) == 8  # latent vectors come as float arrays (arraysize *)
    assert table["in_domain"].dtype == bool
    field = result.fieldname_with_ucd("phys.temperature.effective;meta.modelled")
    assert field == "teff"


def test_maxrec_overflow(svc, archive):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = svc.run_sync("SELECT spectrum_id FROM latentvo.spectra", maxrec=7)
    assert len(result) == 7
    # pyvo stays silent when the user's maxrec was hit exactly ...
    assert not [w for w in caught if "truncated" in str(w.message).lower()]
    # ... but the OVERFLOW status is there
    assert result.query_status == "OVERFLOW"
    complete = svc.run_sync("SELECT TOP 7 spectrum_id FROM latentvo.spectra", maxrec=7)
    assert complete.query_status == "OK" and len(complete) == 7


def test_async_submit_wait_fetch_delete(svc, archive):
    job = svc.submit_job("SELECT spec_id, snr FROM mlspec.spectra WHERE snr > 100 "
                         "ORDER BY spec_id")
    assert job.phase == "PENDING"
    job.run()
    job.wait(timeout=60)
    assert job.phase == "COMPLETED"
    table = job.fetch_result().to_table()
    assert len(table) > 0 and np.all(table["snr"] > 100)
    url = job.url
    job.delete()
    import httpx
    assert httpx.get(url).status_code == 404


def test_async_error_reported(svc, archive):
    with pytest.raises(pyvo.dal.DALQueryError, match="unknown column"):
        svc.run_async("SELECT no_such_column FROM latentvo.spectra")


def test_upload_join_sync_and_async(svc, archive):
    targets = Table({"target": ["STAR 0", "STAR 3", "NOBODY"], "weight": [1.5, 2.0, 0.1]})
    ids = Table({"sid": np.array([2, 4, 6], dtype=np.int32)})
    query = ("SELECT u.target, u.weight, s.spectrum_id, l.teff FROM TAP_UPLOAD.t1 AS u "
             "JOIN latentvo.spectra AS s ON s.target_name = u.target "
             "JOIN latentvo.labels AS l ON l.spectrum_id = s.spectrum_id "
             "ORDER BY s.spectrum_id")
    sync = svc.run_sync(query, uploads={"t1": targets}).to_table()
    assert sorted(set(sync["target"])) == ["STAR 0", "STAR 3"]
    assert len(sync) == 4  # two spectra per star
    both = svc.run_async("SELECT t1.target, t2.sid FROM TAP_UPLOAD.t1 AS t1, TAP_UPLOAD.t2 AS t2",
                         uploads={"t1": targets, "t2": ids}).to_table()
    assert len(both) == 9


def test_upload_round_trip(svc, archive):
    """SELECT * FROM TAP_UPLOAD.t returns what was sent, nulls and types included."""
    sent = Table({
        "i": np.ma.array([1, 2, 3], mask=[False, True, False], dtype=np.int32),
        "x": np.ma.array([1.5, np.nan, -2.25], mask=[False, True, False]),
        "name": np.ma.array(["a", "", "héllo"], mask=[False, True, False]),
        "flag": np.array([True, False, True]),
        "v": np.arange(6, dtype=np.float32).reshape(3, 2),
        "Odd Name": [1, 2, 3],
    })
    for fmt in ("votable", "votable/td"):
        result = svc.search('SELECT * FROM TAP_UPLOAD.t ORDER BY "Odd Name"',
                            uploads={"t": sent}, RESPONSEFORMAT=fmt)
        got = result.to_table()
        assert got.colnames == sent.colnames
        assert got["i"].mask.tolist() == [False, True, False]
        assert got["i"][0] == 1 and got["i"][2] == 3
        assert got["x"][0] == 1.5 and got["x"][2] == -2.25
        assert got["name"][2] == "héllo" and got["name"][0] == "a"
        assert got["flag"].tolist() == [True, False, True]
        assert got["v"].shape == (3, 2) and float(got["v"][2][1]) == 5.0
