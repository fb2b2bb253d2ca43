"""HTTP handlers of TAP 1.1: ``/tap`` and everything under it.

* ``/tap`` (a page for people), ``/tap/sync``, ``/tap/examples``;
* ``/tap/async``: the UWS 1.1 REST binding (the job list, each job and its
  children; documents from :mod:`vo_service.tap.jobs`, rows from
  :mod:`vo_service.tap.uws`, owners from :mod:`vo_service.tap.owners`: the
  authenticated user's header, else the owner-token cookie);
* VOSI: ``/tap/capabilities``, ``/tap/availability``, ``/tap/tables[/name]``.

Handlers only read the request, call the domain modules and wrap their result in
a response; every :class:`~vo_service.dali.DALIError` becomes a DALI error
document in the one handler of :mod:`vo_service.web`. :func:`install` creates
the shared objects (``app.state.tap``, ``app.state.job_store``, ``app.state.jobs``);
:func:`start` and :func:`stop` run the async workers with the application.
"""

from __future__ import annotations

import asyncio
import logging
import time
from email.utils import format_datetime

import sqlalchemy as sa
from fastapi import APIRouter, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import (
    FileResponse,
    HTMLResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)

from vo_service.dali import VOTABLE_MIME, DALIError, iso_utc
from vo_service.db.database import Database
from vo_service.formats.votable import error_document
from vo_service.tap import examples, jobs, root, sync
from vo_service.tap.owners import COOKIE, Owner
from vo_service.tap.query import TAPService
from vo_service.tap.uws import Job, JobManager, JobStore
from vo_service.urls import base_path
from vo_service.vosi import availability as vosi_availability
from vo_service.vosi import tables as vosi_tables
from vo_service.vosi.capabilities import tap_capabilities
from vo_service.web import (
    admit,
    checked_parameters,
    in_slot,
    public_urls,
    read_params,
    release_when_done,
)

log = logging.getLogger("latentvo.tap")
router = APIRouter(dependencies=[checked_parameters()])


def install(app: FastAPI, database: Database) -> None:
    """Create TAP's shared objects and mount its routes."""
    from schema.catalogues import PublishedTables

    limits = database.settings.tap
    result_dir = database.settings.home / "tap-results"
    published = PublishedTables(database.engine)
    tap = TAPService(database, published, limits, result_dir)
    store = JobStore(database.engine, limits, result_dir, database.settings.uws)
    app.state.tap = tap
    app.state.job_store = store
    app.state.jobs = JobManager(store, tap)
    app.include_router(router)


def start(app: FastAPI) -> None:
    """Refresh TAP_SCHEMA, start the async workers, warm the query path up."""
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
    """Stop the async workers and close the query connections."""
    app.state.jobs.stop()
    app.state.tap.runner.close()


def _store(request: Request) -> JobStore:
    store: JobStore = request.app.state.job_store
    return store


def _manager(request: Request) -> JobManager:
    manager: JobManager = request.app.state.jobs
    return manager


def _xml(body: str) -> Response:
    return Response(body, media_type="text/xml")


def _see(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


# -- the base URL, sync, examples, VOSI ------------------------------------------------


@router.get("/tap", response_class=HTMLResponse)
async def tap_root(request: Request) -> str:
    """The HTML page at the TAP base URL: endpoints and published tables."""
    tables = await run_in_threadpool(request.app.state.tap.published.tables)
    return root.root_page(public_urls(request), tables,
                          request.app.state.database.settings.service.title)


@router.api_route("/tap/sync", methods=["GET", "POST"])
async def tap_sync(request: Request) -> Response:
    """A synchronous query: the whole result when it is small, else streamed.

    It runs in a query slot (:mod:`vo_service.admission`), translation included, and
    is cancelled in the database as soon as its client goes away.
    """
    tap: TAPService = request.app.state.tap
    params = await read_params(request, uploads=True)
    ticket = admit(request)
    try:
        result = await in_slot(request, ticket, sync.run, tap, params,
                               public_urls(request).base, ticket.on_abandon,
                               discard=sync.SyncResult.close)
    except BaseException:
        ticket.release()
        raise
    if result.body is not None:
        ticket.release()
        return Response(result.body, media_type=result.media_type, headers=result.headers)
    assert result.chunks is not None  # sync.run sets either the body or the chunks
    # The slot stays taken while the result streams, and the query is cancelled as soon
    # as the client goes.
    body = sync.stream_in_thread(result.chunks, on_abandon=ticket.on_abandon)
    release_when_done(request, ticket)
    return StreamingResponse(body, media_type=result.media_type, headers=result.headers)


@router.get("/tap/examples")
def tap_examples() -> Response:
    """The DALI examples document (``/tap/examples``)."""
    return Response(examples.document(), media_type="application/xhtml+xml")


@router.api_route("/tap/capabilities", methods=["GET", "HEAD"])
def capabilities(request: Request) -> Response:
    """VOSI capabilities of TAP (HEAD too, for clients that probe it)."""
    body = tap_capabilities(public_urls(request), request.app.state.tap.limits)
    modified = format_datetime(request.app.state.started, usegmt=True)
    return Response(body, media_type="text/xml", headers={"Last-Modified": modified})


def _availability(engine: sa.Engine, jobs: JobManager) -> tuple[bool, str]:
    problem = vosi_availability.probe(engine, "tap_schema.tables")
    if problem:
        return False, problem
    if not jobs.running:
        return True, "synchronous queries are accepted; asynchronous workers are stopped"
    return True, "service is accepting queries"


@router.get("/tap/availability")
async def availability(request: Request) -> Response:
    """VOSI availability: the database answers, and whether the async workers run."""
    ok, note = await run_in_threadpool(
        _availability, request.app.state.database.reader_engine, _manager(request))
    return _xml(vosi_availability.availability_document(ok, note, request.app.state.started))


@router.get("/tap/tables")
async def tables(request: Request, detail: str | None = None) -> Response:
    """VOSI tableset of every published table (``detail=min`` leaves the columns out)."""
    registry = request.app.state.tap.published
    published = await run_in_threadpool(registry.tables)
    return _xml(vosi_tables.tableset_xml(published, registry.descriptions(),
                                         detail=(detail or "max").lower() != "min"))


@router.get("/tap/tables/{name}")
async def one_table(request: Request, name: str) -> Response:
    """VOSI table document of one published table."""
    published = await run_in_threadpool(request.app.state.tap.published.tables)
    return _xml(vosi_tables.one_table_xml(published, name))


# -- the job list ----------------------------------------------------------------------


def _owner(request: Request) -> Owner:
    """Who the request acts for: the authenticated user, else the owner token's holder."""
    header = _store(request).quotas.owner_header
    name = request.headers.get(header, "").strip() if header else ""
    return Owner.user(name) if name else Owner.from_token(request.cookies.get(COOKIE))


async def _get_job(request: Request, job_id: str) -> Job:
    """The job ``job_id`` if the request may act on it (404 unknown, 403 another user's)."""
    job = await run_in_threadpool(_store(request).get, job_id)
    if job is None:
        raise DALIError(f"no job {job_id} (unknown, deleted or expired)", 404)
    if not _owner(request).may_use(job.owner_key, job.owner_id):
        raise DALIError(f"job {job_id} belongs to another user", 403)
    return job


@router.get("/tap/async")
async def job_list(request: Request) -> Response:
    """The requester's own jobs, filtered by PHASE, AFTER and LAST."""
    phases, after, last = jobs.list_filters(await read_params(request))
    rows = await run_in_threadpool(_store(request).list, _owner(request).key, phases, after,
                                   last)
    return _xml(jobs.job_list_xml(public_urls(request), rows))


@router.post("/tap/async")
async def create_job(request: Request) -> Response:
    """Create an async job (queued at once with PHASE=RUN); redirects to it.

    An anonymous client gets its owner token (a new one if it brought none) in a
    cookie scoped to the job list, renewed with every job it creates.
    """
    store = _store(request)
    params = await read_params(request, uploads=True)
    urls = public_urls(request)
    owner = _owner(request)
    job = await run_in_threadpool(lambda: store.create(params, owner, public_base_url=urls.base))
    if job.phase == "QUEUED":
        _manager(request).wake()
    response = _see(urls.tap_job(job.job_id))
    if owner.token is not None:
        response.set_cookie(COOKIE, owner.token, max_age=store.limits.retention_hard,
                            path=base_path(urls.base) + "/tap/async", httponly=True,
                            samesite="lax", secure=urls.base.startswith("https:"))
    return response


# -- one job ---------------------------------------------------------------------------


@router.get("/tap/async/{job_id}")
async def get_job(request: Request, job_id: str) -> Response:
    """The job document; with WAIT, blocking until its phase changes (UWS 1.1)."""
    job = await _get_job(request, job_id)
    wait = request.query_params.get("WAIT") or request.query_params.get("wait")
    if wait is not None and job.phase in ("PENDING", "QUEUED", "EXECUTING"):
        seconds = jobs.wait_seconds(wait, request.app.state.tap.limits.wait_cap)
        wanted = request.query_params.get("PHASE") or request.query_params.get("phase")
        if wanted is None or wanted.strip().upper() == job.phase:
            job = await _wait(request, job, seconds)
    return _xml(jobs.job_xml(public_urls(request), job))


async def _wait(request: Request, job: Job, seconds: float) -> Job:
    """Block until the phase changes (or ``seconds`` pass)."""
    store = _store(request)
    deadline = time.monotonic() + seconds
    start_phase = job.phase
    delay = 0.02
    while time.monotonic() < deadline:
        if await request.is_disconnected():
            break
        await asyncio.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 1.5, 0.25)
        phase = await run_in_threadpool(store.phase, job.job_id)
        if phase != start_phase:
            break
    return await _get_job(request, job.job_id)


@router.delete("/tap/async/{job_id}")
async def delete_job(request: Request, job_id: str) -> Response:
    """Abort and delete a job; redirects to the job list."""
    await _delete(request, job_id)
    return _see(f"{public_urls(request).tap}/async?LAST=20")


async def _delete(request: Request, job_id: str) -> None:
    store = _store(request)
    await _get_job(request, job_id)  # exists, and is the requester's
    await run_in_threadpool(store.abort, job_id)
    _manager(request).cancel(job_id)
    await run_in_threadpool(store.delete, job_id)


@router.post("/tap/async/{job_id}")
async def post_job(request: Request, job_id: str) -> Response:
    """ACTION=DELETE on a job (the only action POST to a job accepts)."""
    params = await read_params(request)
    action = params.single("ACTION")
    if action is not None and action.strip().upper() == "DELETE":
        await _delete(request, job_id)
        return _see(f"{public_urls(request).tap}/async?LAST=20")
    await _get_job(request, job_id)
    raise DALIError("POST to a job accepts only ACTION=DELETE; send parameters to "
                    f"{public_urls(request).tap_job(job_id)}/parameters and PHASE to "
                    ".../phase")


# -- atomic children -------------------------------------------------------------------


@router.get("/tap/async/{job_id}/phase")
async def get_phase(request: Request, job_id: str) -> Response:
    """A job's phase as plain text."""
    return PlainTextResponse((await _get_job(request, job_id)).phase)


@router.post("/tap/async/{job_id}/phase")
async def post_phase(request: Request, job_id: str) -> Response:
    """PHASE=RUN queues a PENDING job, PHASE=ABORT aborts it."""
    params = await read_params(request)
    wanted = (params.single("PHASE") or "").strip().upper()
    store = _store(request)
    await _get_job(request, job_id)
    if wanted == "RUN":
        phase = await run_in_threadpool(store.run, job_id)
        if phase == "QUEUED":
            _manager(request).wake()
    elif wanted == "ABORT":
        await run_in_threadpool(store.abort, job_id)
        _manager(request).cancel(job_id)
    else:
        raise DALIError(f"PHASE must be RUN or ABORT, got {wanted or 'nothing'!r}")
    return _see(public_urls(request).tap_job(job_id))


@router.get("/tap/async/{job_id}/executionduration")
async def get_duration(request: Request, job_id: str) -> Response:
    """A job's execution duration in seconds, as plain text."""
    return PlainTextResponse(str((await _get_job(request, job_id)).execution_duration))


@router.post("/tap/async/{job_id}/executionduration")
async def post_duration(request: Request, job_id: str) -> Response:
    """Set a PENDING job's execution duration."""
    params = await read_params(request)
    await _get_job(request, job_id)
    await run_in_threadpool(_store(request).set_execution_duration, job_id,
                            params.single("EXECUTIONDURATION"))
    return _see(public_urls(request).tap_job(job_id))


@router.get("/tap/async/{job_id}/destruction")
async def get_destruction(request: Request, job_id: str) -> Response:
    """A job's destruction time, ISO 8601 UTC."""
    return PlainTextResponse(iso_utc((await _get_job(request, job_id)).destruction))


@router.post("/tap/async/{job_id}/destruction")
async def post_destruction(request: Request, job_id: str) -> Response:
    """Set a job's destruction time (at most the retention limit)."""
    params = await read_params(request)
    await _get_job(request, job_id)
    await run_in_threadpool(_store(request).set_destruction, job_id,
                            params.single("DESTRUCTION"))
    return _see(public_urls(request).tap_job(job_id))


@router.get("/tap/async/{job_id}/quote")
async def get_quote(request: Request, job_id: str) -> Response:
    """A job's quote: always empty (no quotes)."""
    await _get_job(request, job_id)
    return PlainTextResponse("")


@router.get("/tap/async/{job_id}/owner")
async def get_owner(request: Request, job_id: str) -> Response:
    """A job's owner: the authenticated user's name, empty for an anonymous owner."""
    return PlainTextResponse((await _get_job(request, job_id)).owner_id or "")


@router.get("/tap/async/{job_id}/error")
async def get_error(request: Request, job_id: str) -> Response:
    """The VOTable error document of a job that ended in ERROR or ABORTED."""
    job = await _get_job(request, job_id)
    if job.phase not in ("ERROR", "ABORTED") or not job.error_message:
        raise DALIError(f"job {job_id} has no error (phase {job.phase})", 404)
    return Response(error_document(job.error_message), media_type=VOTABLE_MIME)


@router.get("/tap/async/{job_id}/parameters")
async def get_parameters(request: Request, job_id: str) -> Response:
    """The ``uws:parameters`` document of a job."""
    job = await _get_job(request, job_id)
    return _xml(jobs.parameters_xml(public_urls(request), job))


@router.post("/tap/async/{job_id}/parameters")
async def post_parameters(request: Request, job_id: str) -> Response:
    """Change a PENDING job's parameters and inline uploads."""
    store = _store(request)
    params = await read_params(request, uploads=True)
    await _get_job(request, job_id)
    await run_in_threadpool(store.set_parameters, job_id, params)
    return _see(public_urls(request).tap_job(job_id))


@router.get("/tap/async/{job_id}/parameters/{name}")
async def get_upload(request: Request, job_id: str, name: str) -> Response:
    """The content of one inline upload of a job (byReference parameters)."""
    await _get_job(request, job_id)
    path = await run_in_threadpool(_store(request).upload_path, job_id, name)
    if path is None:
        raise DALIError(f"job {job_id} has no inline parameter {name}", 404)
    return FileResponse(path, media_type=VOTABLE_MIME)


@router.get("/tap/async/{job_id}/results")
async def get_results(request: Request, job_id: str) -> Response:
    """The ``uws:results`` document of a job."""
    job = await _get_job(request, job_id)
    return _xml(jobs.results_xml(public_urls(request), job))


@router.get("/tap/async/{job_id}/results/result")
async def get_result(request: Request, job_id: str) -> Response:
    """The result file of a COMPLETED job."""
    job = await _get_job(request, job_id)
    path = _store(request).job_dir(job.job_id) / "result"
    if job.phase != "COMPLETED" or not path.exists():
        raise DALIError(f"job {job_id} has no result (phase {job.phase})", 404)
    headers = {}
    if job.overflow is not None:  # DALI's QUERY_STATUS, for the formats that cannot state it
        headers[sync.QUERY_STATUS_HEADER] = "OVERFLOW" if job.overflow else "OK"
    return FileResponse(path, media_type=job.result_mime or VOTABLE_MIME, headers=headers)
