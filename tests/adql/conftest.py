"""Fixtures of the ADQL tests: the conformance suite, catalogs, a scratch database."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import sqlalchemy as sa

from schema.tables import published_tables
from tests.adql import data
from tests.adql.suite import SUITE_DIR, SUITE_NAME, load_suite
from tests.adql.tables import SCHEMA, latent_index, metadata
from vo_service.adql import Catalog


@pytest.fixture(scope="session")
def suite(shared):
    return load_suite(shared(SUITE_DIR, SUITE_NAME))


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    """The published schema plus the test tables, with the test models' indexes."""
    return Catalog.from_tables(list(published_tables()) + list(metadata.sorted_tables),
                               latent_index=latent_index)


@pytest.fixture(scope="session")
def adql_db(request):
    """The session database with adql_test filled (skips when no database fixture)."""
    try:
        database = request.getfixturevalue("database")
    except pytest.FixtureLookupError:
        pytest.skip("the 'database' fixture is not available")
    engine = database.engine
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
        conn.execute(sa.text(f"CREATE SCHEMA {SCHEMA}"))
        conn.execute(sa.text("CREATE EXTENSION IF NOT EXISTS vector"))
    metadata.create_all(engine)
    rng = np.random.default_rng(20240611)
    points = data.point_rows(rng, data.N_POINTS)
    data.fill_points(engine, points)
    vectors = data.fill_vectors(engine, rng, data.N_VECTORS)
    reader = database.settings.reader_role
    with engine.begin() as conn:
        conn.execute(sa.text(f"GRANT USAGE ON SCHEMA {SCHEMA} TO \"{reader}\""))
        conn.execute(sa.text(f"GRANT SELECT ON ALL TABLES IN SCHEMA {SCHEMA} TO \"{reader}\""))
        conn.execute(sa.text(f"ANALYZE {SCHEMA}.points"))
        conn.execute(sa.text(f"ANALYZE {SCHEMA}.vectors"))
    yield SimpleNamespace(database=database, points=points, vectors=vectors)
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
