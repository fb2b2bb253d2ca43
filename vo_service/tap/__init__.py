"""TAP 1.1: sync and async (UWS 1.1) queries, uploads, examples, and its VOSI resources.

:func:`install` mounts every TAP route on the application and creates the
shared objects (``app.state.tap``, ``app.state.job_store``, ``app.state.jobs``);
:func:`start` and :func:`stop` run the async workers with the application.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI

log = logging.getLogger("latentvo.tap")


def install(app: FastAPI, database) -> None:
    from schema.catalogues import PublishedTables
    from vo_service.dali import now_utc
    from vo_service.tap import examples, jobs, root, sync
    from vo_service.tap.query import TAPService
    from vo_service.tap.uws import JobManager, JobStore
    from vo_service.vosi import availability, capabilities, tables

    limits = database.settings.tap
    result_dir = database.settings.home / "tap-results"
    published = PublishedTables(database.engine)
    tap = TAPService(database, published, limits, result_dir)
    store = JobStore(database.engine, limits, result_dir)
    app.state.tap = tap
    app.state.job_store = store
    app.state.jobs = JobManager(store, tap)
    app.state.started = now_utc().replace(microsecond=0)
    for module in (root, sync, jobs, examples, availability, capabilities, tables):
        app.include_router(module.router)


def start(app: FastAPI) -> None:
    from schema.catalogues import refresh_tap_schema

    tap = app.state.tap
    tap.result_dir.mkdir(parents=True, exist_ok=True)
    try:
        # TAP_SCHEMA over the declared tables *and* the published catalogues
        # (``latentvo db upgrade`` regenerates it from the declared tables only).
        with tap.database.engine.begin() as conn:
            refresh_tap_schema(conn)
    except Exception:  # noqa: BLE001 - serve what there is rather than nothing
        log.exception("regenerating TAP_SCHEMA failed")
    app.state.jobs.start()
    try:  # warm up: load the ADBC driver and Arrow kernels before the first query
        conn = tap.runner.acquire()
        tap.runner.release(conn)
        tap.catalog()
    except Exception:  # noqa: BLE001 - the first query will report the problem
        log.exception("TAP warm-up failed")


def stop(app: FastAPI) -> None:
    app.state.jobs.stop()
    app.state.tap.runner.close()
