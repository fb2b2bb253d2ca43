"""The DaCHS comparison kit's catalogue and the tests' own catalogue are interchangeable.

``bench/tap.py`` publishes the kit's rows (``../shared/anchors/dachs/gen_data.py``) through
``bench/mlspec.toml`` to compare latentvo with DaCHS; the TAP tests publish the rows of
``tests/catalogue_data.py`` through the same declaration, so that they run without the kit.
Where the kit is present, this checks that the two generators make the same columns with
the same types, and that the kit's own CSV publishes with the declaration.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import sqlalchemy as sa

from schema.catalogue_declaration import Declaration
from tests import catalogue_data
from tests.conftest import REPO
from vo_service.publish.loader import publish, unpublish

N_ROWS = 500


@pytest.fixture(scope="module")
def kit(shared):
    """The kit's generator module, loaded from its file (it is a script, not a package)."""
    path = shared("anchors/dachs/gen_data.py", "the DaCHS comparison kit")
    spec = importlib.util.spec_from_file_location("kit_gen_data", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_kit_rows_match_the_test_catalogue_and_publish(kit, database, tmp_path):
    kit_rows, our_rows = kit.generate(N_ROWS), catalogue_data.generate(N_ROWS)
    assert [c[0] for c in kit.COLUMNS] == list(catalogue_data.COLUMNS)
    for name in catalogue_data.COLUMNS:
        theirs, ours = np.asarray(kit_rows[name]), np.asarray(our_rows[name])
        assert (theirs.dtype, theirs.shape) == (ours.dtype, ours.shape), name

    csv_path = tmp_path / "kit.csv"
    kit.write_csv(kit_rows, csv_path)
    text = (REPO / "bench" / "mlspec.toml").read_text()
    (tmp_path / "kit.toml").write_text(text.replace('name = "spectra"', 'name = "kit_spectra"'))
    declaration = Declaration.from_file(tmp_path / "kit.toml")
    result = publish(database.engine, declaration, csv_path,
                     reader_role=database.settings.reader_role, replace=True)
    try:
        assert result.rows == N_ROWS
        with database.engine.connect() as conn:
            first = conn.execute(sa.text(
                "SELECT target_name, latent FROM mlspec.kit_spectra WHERE spec_id = 1")).one()
        assert first.target_name == kit_rows["target_name"][0]
        assert np.allclose(first.latent, kit_rows["latent"][0])
    finally:
        unpublish(database.engine, "mlspec", "kit_spectra")
