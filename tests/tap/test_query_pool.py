"""The TAP query pool after its connections died (issue 16, finding 2).

A restarted database (or one that ended idle sessions) leaves the pool with dead
connections; the next query must run on a new one instead of failing.
"""

from __future__ import annotations

import sqlalchemy as sa

from vo_service.tap.runner import QueryRunner


def _backend_pid(runner: QueryRunner) -> int:
    execution = runner.execute("SELECT pg_backend_pid() AS pid", [])
    try:
        return next(iter(execution.batches())).column("pid")[0].as_py()
    finally:
        execution.close()


def test_dead_pooled_connections_are_replaced(database):
    runner = QueryRunner(database, size=4)
    try:
        first = _backend_pid(runner)
        assert _backend_pid(runner) == first  # pooled
        # end the pooled session as the role it logged in as (each role may end its own)
        engine = database.reader_engine if database.reader_url else database.engine
        with engine.connect() as conn:
            assert conn.scalar(sa.select(sa.func.pg_terminate_backend(first, 5000)))
        second = _backend_pid(runner)
        assert second != first
        assert _backend_pid(runner) == second
    finally:
        runner.close()


def test_sessions_are_named(database):
    runner = QueryRunner(database, size=1)
    try:
        execution = runner.execute("SELECT current_setting('application_name') AS name", [])
        try:
            name = next(iter(execution.batches())).column("name")[0].as_py()
        finally:
            execution.close()
    finally:
        runner.close()
    assert name.startswith("latentvo/") and name.split("/")[2].isdigit()
