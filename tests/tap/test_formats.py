"""Output formats: every serialisation parses, carries the metadata, and round-trips values."""

from __future__ import annotations

import csv
import io
import json
import subprocess

import httpx
import numpy as np
import pyarrow as pa
import pytest
from astropy.io import fits
from astropy.io.votable import parse, parse_single_table

from schema.vo import ColumnMeta
from vo_service.formats import FORMATS, resolve
from vo_service.formats.fields import Field
from vo_service.formats.votable import VOTableWriter

QUERY = ("SELECT TOP 50 spec_id, target_name, ra, snr, in_training_domain, latent "
         "FROM mlspec.spectra ORDER BY spec_id")


def fetch(tap_server, fmt, query=QUERY, **extra):
    response = httpx.post(tap_server + "/sync", data={"LANG": "ADQL", "QUERY": query,
                                                      "RESPONSEFORMAT": fmt, **extra},
                          timeout=60)
    assert response.status_code == 200, response.text[:500]
    return response


@pytest.fixture(scope="module")
def reference(tap_server, tap_data):
    table = parse_single_table(io.BytesIO(fetch(tap_server, "votable/td").content)).to_table()
    assert len(table) == 50
    return table


@pytest.mark.parametrize("fmt", ["votable", "votable/td", "application/x-votable+xml"])
def test_votable_serialisations(tap_server, reference, fmt):
    response = fetch(tap_server, fmt)
    vot = parse(io.BytesIO(response.content))
    resource = vot.resources[0]
    assert resource.type == "results"
    status = [i for i in resource.infos if i.name == "QUERY_STATUS"]
    assert status[0].value == "OK"
    infos = {i.name: i.value for i in resource.infos}
    assert infos["QUERY"] == QUERY and infos["standardID"] == "ivo://ivoa.net/std/TAP"
    assert infos["request_date"].endswith("Z")
    table = vot.get_first_table()
    fields = {f.name: f for f in table.fields}
    assert fields["latent"].arraysize == "16" and fields["latent"].datatype == "float"
    assert fields["ra"].unit == "deg" and fields["ra"].ucd == "pos.eq.ra;meta.main"
    assert fields["teff_pred" if "teff_pred" in fields else "snr"].ucd
    got = table.to_table()
    for name in reference.colnames:
        assert np.array_equal(np.asarray(got[name]), np.asarray(reference[name])), name
    if fmt == "application/x-votable+xml":
        assert response.headers["content-type"] == fmt


def test_csv_tsv_json_fits(tap_server, reference):
    text = fetch(tap_server, "csv")
    assert text.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(text.text)))
    assert rows[0] == ["spec_id", "target_name", "ra", "snr", "in_training_domain", "latent"]
    assert len(rows) == 51 and rows[1][1] == reference["target_name"][0]
    assert float(rows[1][2]) == reference["ra"][0]
    assert [float(x) for x in rows[1][5].split()] == pytest.approx(list(reference["latent"][0]))
    tsv = fetch(tap_server, "tsv").text.splitlines()
    assert tsv[0].split("\t")[0] == "spec_id" and len(tsv) == 51
    data = json.loads(fetch(tap_server, "json").content)
    assert [c["name"] for c in data["columns"]][:2] == ["spec_id", "target_name"]
    assert len(data["data"]) == 50 and data["status"] == "OK"
    hdus = fits.open(io.BytesIO(fetch(tap_server, "fits").content))
    table = hdus[1].data
    assert len(table) == 50 and hdus[1].header["TUNIT3"] == "deg"
    assert np.allclose(table["latent"], np.asarray(reference["latent"]))
    assert list(table["spec_id"]) == list(reference["spec_id"])


def test_overflow_is_a_trailing_info(tap_server, archive):
    body = fetch(tap_server, "votable", MAXREC="10").content
    vot = parse(io.BytesIO(body))
    assert len(vot.get_first_table().array) == 10
    head, tail = body.split(b"</TABLE>")
    assert b'value="OVERFLOW"' in tail and b'value="OVERFLOW"' not in head


STATUS = "X-VO-Query-Status"


@pytest.mark.parametrize("fmt", ["csv", "tsv"])
def test_text_overflow_is_an_http_header(tap_server, archive, fmt):
    """CSV/TSV cannot carry QUERY_STATUS: a result cut at MAXREC says OVERFLOW in the
    header (and holds exactly MAXREC rows, no comment line); a complete one says OK."""
    cut = fetch(tap_server, fmt, MAXREC="10")
    assert cut.headers[STATUS] == "OVERFLOW"
    lines = cut.text.splitlines()
    assert len(lines) == 11 and not any(line.startswith("#") for line in lines)
    whole = fetch(tap_server, fmt, MAXREC="50")
    assert whole.headers[STATUS] == "OK" and len(whole.text.splitlines()) == 51
    assert fetch(tap_server, fmt, MAXREC="0").headers[STATUS] == "OVERFLOW"


def test_streamed_text_overflow_is_an_http_header(tap_server, archive):
    """A result too large to send in one piece (streamed) still says OVERFLOW when MAXREC
    cut it, as the rows beyond MAXREC are read before the first byte."""
    query = "SELECT a.spec_id, b.spec_id AS other FROM mlspec.spectra a, mlspec.spectra b"
    with httpx.stream("POST", tap_server + "/sync", timeout=120, data={
            "LANG": "ADQL", "QUERY": query, "RESPONSEFORMAT": "csv",
            "MAXREC": "300000"}) as response:
        assert response.status_code == 200
        assert response.headers.get("content-length") is None  # streamed, not one piece
        assert response.headers[STATUS] == "OVERFLOW"
        assert sum(chunk.count(b"\n") for chunk in response.iter_bytes()) == 300_001


def test_async_result_states_its_status(tap_server, archive):
    """The result file of an async job carries the job's QUERY_STATUS in the header too."""
    with httpx.Client(base_url=tap_server, timeout=60) as client:
        for maxrec, status in (("10", "OVERFLOW"), ("50", "OK")):
            job = client.post("/async", data={"LANG": "ADQL", "QUERY": QUERY, "PHASE": "RUN",
                                              "RESPONSEFORMAT": "csv", "MAXREC": maxrec})
            url = job.headers["location"]
            client.get(url, params={"WAIT": "10", "PHASE": "QUEUED"})
            for _ in range(60):
                if client.get(url + "/phase").text in ("COMPLETED", "ERROR"):
                    break
                client.get(url, params={"WAIT": "1"})
            result = client.get(url + "/results/result")
            assert result.status_code == 200, result.text
            assert result.headers[STATUS] == status
            client.delete(url)


def test_votlint_accepts_results(stilts, tap_server, archive, tmp_path):
    for fmt in ("votable", "votable/td"):
        path = tmp_path / f"{fmt.replace('/', '_')}.vot"
        path.write_bytes(fetch(tap_server, fmt, MAXREC="20").content)
        run = subprocess.run([stilts, "votlint", f"votable={path}"], capture_output=True,
                             text=True, timeout=120)
        assert run.returncode == 0 and not run.stdout.strip(), run.stdout


def test_unknown_format_names_the_known_ones():
    with pytest.raises(ValueError, match="csv"):
        resolve("application/x-fancy")
    assert resolve("votable/td")[0].key == "votable-td"
    assert resolve("text/csv")[1] == "text/csv"
    assert {f.key for f in FORMATS} >= {"votable-b2", "votable-td", "csv", "tsv", "fits"}


def _roundtrip(batch, fields, serialization):
    writer = VOTableWriter(fields, serialization)
    body = writer.header() + b"".join(writer.rows([batch])) + writer.footer()
    return parse_single_table(io.BytesIO(body)).to_table()


@pytest.mark.parametrize("serialization", ["BINARY2", "TABLEDATA"])
def test_writer_nulls_and_types(serialization):
    """Null flags, NaN, empty strings, variable and fixed arrays, every scalar type."""
    rng = np.random.default_rng(3)
    n = 257
    mask = rng.random(n) < 0.2
    strings = [None if m else ("é" * (i % 3) + "x<&>" + str(i)) for i, m in enumerate(mask)]
    strings[1] = ""
    batch = pa.record_batch([
        pa.array(np.arange(n, dtype=np.int64), mask=mask),
        pa.array(rng.integers(-100, 100, n).astype(np.int16)),
        pa.array(rng.integers(0, 10**6, n).astype(np.int32), mask=~mask),
        pa.array(rng.normal(size=n).astype(np.float32)),
        pa.array(np.where(mask, np.nan, rng.normal(size=n))),
        pa.array([None if m else bool(i % 2) for i, m in enumerate(mask)], pa.bool_()),
        pa.array(strings, pa.string()),
        pa.array([None if m else list(rng.normal(size=4).astype(np.float32))
                  for m in mask], pa.list_(pa.float32())),
        pa.array([list(range(i % 5)) for i in range(n)], pa.list_(pa.float64())),
    ], names=["l", "s", "i", "f", "d", "b", "t", "v4", "vv"])
    fields = [Field.of(name, ColumnMeta(*votable)) for name, *votable in (
        ("l", "long"), ("s", "short"), ("i", "int"), ("f", "float"), ("d", "double"),
        ("b", "boolean"), ("t", "char", "*"), ("v4", "float", "4"), ("vv", "double", "*"))]
    got = _roundtrip(batch, fields, serialization)
    assert len(got) == n
    assert list(np.ma.getmaskarray(got["l"])) == list(mask)
    assert got["l"][~mask].tolist() == np.arange(n)[~mask].tolist()
    assert got["s"].tolist() == batch.column(1).to_pylist()
    assert got["i"][mask].tolist() == np.asarray(batch.column(2).to_pylist())[mask].tolist()
    assert np.allclose(np.asarray(got["f"]), batch.column(3).to_numpy())
    assert np.isnan(np.ma.filled(got["d"], np.nan)[mask]).all()
    flags = zip(got["b"].tolist(), np.ma.getmaskarray(got["b"]), strict=True)
    assert [None if m else v for v, m in flags] == batch.column(5).to_pylist()
    texts = [None if np.ma.is_masked(v) else str(v) for v in got["t"]]
    # VOTable char is ASCII: binary serialisations write other characters as '?'
    expected = [s if serialization == "TABLEDATA" or s is None else s.replace("é", "?")
                for s in strings]
    assert [t or None for t in texts] == [e or None for e in expected]
    v4 = np.ma.getdata(got["v4"])[~mask]
    assert np.allclose(v4, np.array([r for r in batch.column(7).to_pylist() if r is not None]))
    assert [len(v) for v in got["vv"]] == [i % 5 for i in range(n)]
