"""The numpy fast path for VOTable rows gives exactly what astropy's parser gives."""

import io
import warnings

import numpy as np
import pytest
from astropy.io import votable
from astropy.io.votable import from_table
from astropy.table import Table

from vo_service.archive.readers import votable_data


def astropy_parse(data: bytes):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return votable.parse(io.BytesIO(data), verify="ignore")


def document(table: Table, serialization: str) -> bytes:
    buf = io.BytesIO()
    from_table(table).to_xml(buf, tabledata_format=serialization)
    return buf.getvalue()


def as_floats(vot):
    array = vot.get_first_table().array
    return {name: np.ma.filled(np.ma.asarray(array[name]).astype(float), np.nan)
            for name in array.dtype.names}


def sample_table():
    rng = np.random.default_rng(3)
    n = 500
    flux = rng.normal(size=n).astype(np.float32)
    flux[[5, 17]] = np.nan
    return Table({"wave": np.linspace(4000, 9000, n), "flux": flux,
                  "err": np.abs(rng.normal(size=n)).astype(np.float32),
                  "quality": rng.integers(0, 2, n).astype(np.int16)})


@pytest.mark.parametrize("serialization", ["tabledata", "binary2"])
def test_fast_path_equals_astropy(serialization):
    data = document(sample_table(), serialization)
    fast, slow = as_floats(votable_data.parse(data)), as_floats(astropy_parse(data))
    assert fast.keys() == slow.keys()
    for name in fast:
        np.testing.assert_array_equal(fast[name], slow[name])


def test_falls_back_for_strings_and_arrays():
    table = Table({"wave": [1.0, 2.0], "name": ["a", "b"]})
    data = document(table, "tabledata")
    vot = votable_data.parse(data)
    assert list(vot.get_first_table().array["name"]) == ["a", "b"]


def test_a_short_row_is_an_error_as_with_astropy():
    data = document(Table({"a": [1.0, 2.0], "b": [3.0, 4.0]}), "tabledata")
    broken = data.replace(b"<TD>4</TD>", b"", 1)
    assert broken != data
    with pytest.raises(votable.exceptions.E21):
        astropy_parse(broken)
    with pytest.raises(votable.exceptions.E21):  # fell back, did not guess
        votable_data.parse(broken)


def test_empty_cells_are_masked():
    data = document(Table({"a": [1.0, 2.0]}), "tabledata").replace(b"<TD>2</TD>", b"<TD/>")
    values = votable_data.parse(data).get_first_table().array["a"]
    assert values.mask.tolist() == [False, True]


def compact(data: bytes) -> bytes:
    """The same document with each row on one line, as latentvo's writer emits it."""
    start, end = data.index(b"<TABLEDATA>"), data.index(b"</TABLEDATA>")
    rows = b"".join(data[start:end].split()).replace(b"<TR>", b"\n<TR>")
    return data[:start] + rows + b"\n" + data[end:]


@pytest.mark.parametrize("layout", ["pretty", "compact"])
def test_fast_path_is_taken_for_plain_rows(layout):
    """Guard against a fast path that silently always falls back to astropy."""
    data = document(sample_table(), "tabledata")
    if layout == "compact":
        data = compact(data)
    start, end = data.index(b"<DATA>"), data.index(b"</DATA>")
    fields = list(astropy_parse(data).get_first_table().fields)
    columns = votable_data._tabledata(data[start + 6:end].strip(), fields)
    assert columns is not None
    slow = as_floats(astropy_parse(data))
    for field, values in zip(fields, columns, strict=True):
        np.testing.assert_array_equal(values, slow[field.ID or field.name])


def test_nulls_and_empty_cells_in_compact_rows():
    data = compact(document(Table({"a": [1.0, 2.0, 3.0], "b": [4.0, 5.0, 6.0]}), "tabledata"))
    data = data.replace(b"<TD>2</TD>", b"<TD/>").replace(b"<TD>6</TD>", b"<TD></TD>")
    array = votable_data.parse(data).get_first_table().array
    assert array["a"].mask.tolist() == [False, True, False]
    assert array["b"].mask.tolist() == [False, False, True]
    assert array["a"][0] == 1.0 and array["b"][1] == 5.0
