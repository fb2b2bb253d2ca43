import numpy as np
import pytest
import sqlalchemy as sa
from astropy.table import Table

from vo_service.archive.reference_labels import LabelTableError, attach


def label_table():
    return Table({"target_name": ["S1", "S2", "S3"], "teff": [5000.0, 6000.0, np.nan],
                  "teff_err": [50.0, 60.0, 70.0], "logg": [4.4, 2.5, 4.0],
                  "e_logg": [0.1, 0.1, 0.1], "mh": [0.0, -1.0, 0.2]})


def stored(database, name):
    with database.engine.connect() as conn:
        return conn.execute(sa.text(
            "SELECT key, quantity, value, error FROM latentvo_ops.reference_labels "
            "WHERE label_set = :n ORDER BY key, quantity"), {"n": name}).all()


@pytest.mark.parametrize("suffix, fmt", [(".csv", "ascii.csv"), (".xml", "votable"),
                                         (".fits", "fits")])
def test_attach_formats(clean_archive, tmp_path, suffix, fmt):
    path = tmp_path / f"labels{suffix}"
    label_table().write(path, format=fmt)
    result = attach(clean_archive.engine, path, "survey")
    assert result.quantities == ["logg", "mh", "teff"]
    rows = stored(clean_archive, "survey")
    assert ("S1", "teff", 5000.0, 50.0) in rows
    assert ("S2", "logg", 2.5, 0.1) in rows  # e_<label> is an error column too
    assert ("S2", "mh", -1.0, None) in rows
    assert not any(k == "S3" and q == "teff" for k, q, _, _ in rows)  # NaN skipped


def test_reattach_same_file_is_noop_and_change_needs_replace(clean_archive, tmp_path):
    path = tmp_path / "labels.csv"
    label_table().write(path, format="ascii.csv")
    attach(clean_archive.engine, path, "survey")
    assert attach(clean_archive.engine, path, "survey").unchanged
    table = label_table()
    table["teff"][0] = 5100.0
    table.write(path, format="ascii.csv", overwrite=True)
    with pytest.raises(LabelTableError, match="--replace"):
        attach(clean_archive.engine, path, "survey")
    assert ("S1", "teff", 5000.0, 50.0) in stored(clean_archive, "survey")
    attach(clean_archive.engine, path, "survey", replace=True)
    assert ("S1", "teff", 5100.0, 50.0) in stored(clean_archive, "survey")


@pytest.mark.parametrize("content, message", [
    ("name,teff\nS1,5000\n", "no key column"),
    ("target_name,teff\nS1,hot\n", "not numeric"),
    ("target_name,teff\nS1,5000\nS1,5100\n", "duplicates"),
    ("target_name\nS1\n", "no numeric label columns"),
])
def test_bad_tables(clean_archive, tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(LabelTableError, match=message):
        attach(clean_archive.engine, path, "bad")
    assert stored(clean_archive, "bad") == []
