"""Fixtures of the release tests: a small archive and a real server over it.

The archive is the TAP tests' (``tests.tap.conftest.fill_archive``: spectra, an
autoencoder and a label model with their products), written with SQL in the shape
the ingest and ML jobs produce. Every release the tests leave behind is removed
(its schema dropped, its row deleted) so that TAP_SCHEMA is the usual one for the
test modules that run next.
"""

from __future__ import annotations

import csv
import io

import httpx
import pytest
import sqlalchemy as sa

from schema.catalogues import refresh_tap_schema
from tests.conftest import start_server, stop_server
from tests.tap.conftest import fill_archive, stilts


def remove_releases(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        names = conn.execute(sa.text("SELECT name FROM latentvo_ops.releases")).scalars().all()
        for name in names:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        conn.execute(sa.text("DELETE FROM latentvo_ops.releases"))
        refresh_tap_schema(conn)


@pytest.fixture(scope="module")
def release_archive(database):
    """The small archive, no releases; afterwards no releases either."""
    remove_releases(database.engine)
    fill_archive(database.engine)
    with database.engine.begin() as conn:  # fill_archive chose the ids; the ingest goes on
        conn.execute(sa.text("SELECT setval(pg_get_serial_sequence('latentvo.spectra', "
                             "'spectrum_id'), max(spectrum_id)) FROM latentvo.spectra"))
    yield database
    remove_releases(database.engine)


@pytest.fixture(scope="module")
def release_server(release_archive, latentvo_env):
    """Base URL of a ``latentvo serve`` over the release archive."""
    proc, url = start_server(latentvo_env)
    yield url
    stop_server(proc)


class TAP:
    """Synchronous ADQL queries of a server, answers as CSV text."""

    def __init__(self, base_url: str) -> None:
        self.url = base_url + "/tap/sync"

    def answer(self, query: str) -> httpx.Response:
        return httpx.post(self.url, data={"LANG": "ADQL", "QUERY": query,
                                          "RESPONSEFORMAT": "csv"}, timeout=60)

    def text(self, query: str) -> str:
        response = self.answer(query)
        assert response.status_code == 200, response.text
        return response.text

    def rows(self, query: str) -> list[list[str]]:
        """The rows (header line left out)."""
        return list(csv.reader(io.StringIO(self.text(query))))[1:]


__all__ = ["TAP", "remove_releases", "stilts"]
