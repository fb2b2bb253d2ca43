"""``/tap/async``: the UWS 1.1 REST binding of TAP asynchronous queries.

Resources: the job list (GET with PHASE/AFTER/LAST filters, POST creates a
job and answers 303 to it), the job (GET, with blocking WAIT/PHASE; DELETE or
POST ACTION=DELETE), and its children ``phase``, ``executionduration``,
``destruction``, ``quote``, ``error``, ``parameters`` (and the inline uploads
under ``parameters/<name>``), ``results``, ``results/result`` and ``owner``.
Containers are XML (``text/xml``), atomic values ``text/plain``.
"""

from __future__ import annotations

import asyncio
import time
from xml.sax.saxutils import escape, quoteattr

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, PlainTextResponse, RedirectResponse, Response

from vo_service.dali import DALIError, error_response, iso_utc, parse_instant, read_params
from vo_service.formats.votable import error_document
from vo_service.tap.uws import ACTIVE, FINAL, Job, JobManager, JobStore
from vo_service.vosi.xml import tap_base

router = APIRouter()
UWS = "http://www.ivoa.net/xml/UWS/v1.0"
XLINK = "http://www.w3.org/1999/xlink"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
NS = f'xmlns:uws="{UWS}" xmlns:xlink="{XLINK}" xmlns:xsi="{XSI}"'
PHASES = ("PENDING", "QUEUED", "EXECUTING", "COMPLETED", "ERROR", "ABORTED", "UNKNOWN",
          "HELD", "SUSPENDED", "ARCHIVED")


def _store(request: Request) -> JobStore:
    return request.app.state.job_store


def _manager(request: Request) -> JobManager:
    return request.app.state.jobs


def _xml(body: str, status: int = 200) -> Response:
    return Response('<?xml version="1.0" encoding="UTF-8"?>\n' + body, status_code=status,
                    media_type="text/xml")


def _text(value: str) -> PlainTextResponse:
    return PlainTextResponse(value)


def _see(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _nil(tag: str, value: str | None) -> str:
    if value in (None, ""):
        return f'<uws:{tag} xsi:nil="true"/>'
    return f"<uws:{tag}>{escape(value)}</uws:{tag}>"


def job_url(request: Request, job_id: str) -> str:
    return f"{tap_base(request)}/async/{job_id}"


def job_xml(request: Request, job: Job) -> str:
    url = job_url(request, job.job_id)
    params = []
    for name, value in sorted(job.parameters.items()):
        params.append(f'<uws:parameter id={quoteattr(name.lower())}>{escape(str(value))}'
                      f"</uws:parameter>")
    for name in job.uploads:
        params.append(f'<uws:parameter id={quoteattr(name)} byReference="true">'
                      f"{escape(url)}/parameters/{escape(name)}</uws:parameter>")
    results = ""
    if job.phase == "COMPLETED":
        size = f' size="{job.result_size}"' if job.result_size is not None else ""
        mime = f" mime-type={quoteattr(job.result_mime)}" if job.result_mime else ""
        results = (f'<uws:result id="result" xlink:type="simple" '
                   f'xlink:href="{url}/results/result"{size}{mime}/>')
    error = ""
    if job.phase in ("ERROR", "ABORTED") and job.error_message:
        error = (f'<uws:errorSummary type="{job.error_type or "fatal"}" hasDetail="'
                 f'{"true" if job.phase == "ERROR" else "false"}">'
                 f"<uws:message>{escape(job.error_message)}</uws:message></uws:errorSummary>")
    info = ""
    if job.phase == "COMPLETED" and job.result_rows is not None:
        info = (f"<uws:jobInfo><rows>{job.result_rows}</rows>"
                f"<overflow>{'true' if job.overflow else 'false'}</overflow></uws:jobInfo>")
    return (f'<uws:job {NS} version="1.1">'
            f"<uws:jobId>{escape(job.job_id)}</uws:jobId>"
            + (f"<uws:runId>{escape(job.run_id)}</uws:runId>" if job.run_id else "")
            + _nil("ownerId", job.owner_id)
            + f"<uws:phase>{job.phase}</uws:phase>"
            + '<uws:quote xsi:nil="true"/>'
            + f"<uws:creationTime>{iso_utc(job.creation_time)}</uws:creationTime>"
            + _nil("startTime", iso_utc(job.start_time) or None)
            + _nil("endTime", iso_utc(job.end_time) or None)
            + f"<uws:executionDuration>{job.execution_duration}</uws:executionDuration>"
            + _nil("destruction", iso_utc(job.destruction))
            + f"<uws:parameters>{''.join(params)}</uws:parameters>"
            + f"<uws:results>{results}</uws:results>"
            + error + info + "</uws:job>\n")


async def _get_job(request: Request, job_id: str) -> Job:
    job = await run_in_threadpool(_store(request).get, job_id)
    if job is None:
        raise DALIError(f"no job {job_id} (unknown, deleted or expired)", 404)
    return job


def _guard(handler):
    """Turn DALIError into a VOTable error document with its status."""
    import functools

    @functools.wraps(handler)
    async def wrapper(*args, **kwargs):
        try:
            return await handler(*args, **kwargs)
        except DALIError as exc:
            return error_response(exc.message, exc.status)
    return wrapper


# -- the job list ----------------------------------------------------------------------


@router.get("/tap/async")
@_guard
async def job_list(request: Request) -> Response:
    params = await read_params(request, max_body=0)
    phases = [p.strip().upper() for p in params.all("PHASE")]
    for phase in phases:
        if phase not in PHASES:
            raise DALIError(f"unknown PHASE {phase!r}")
    after = parse_instant(params.single("AFTER")) if params.single("AFTER") else None
    last = params.single("LAST")
    if last is not None:
        if not last.strip().isdigit() or int(last) < 0:
            raise DALIError(f"LAST must be a non-negative integer, got {last!r}")
        last = int(last)
    rows = await run_in_threadpool(_store(request).list, phases, after, last)
    base = f"{tap_base(request)}/async"
    refs = "".join(
        f'<uws:jobref id="{r.job_id}" xlink:href="{base}/{r.job_id}">'
        f"<uws:phase>{r.phase}</uws:phase>"
        + (f"<uws:runId>{escape(r.run_id)}</uws:runId>" if r.run_id else "")
        + '<uws:ownerId xsi:nil="true"/>'
        + f"<uws:creationTime>{iso_utc(r.creation_time)}</uws:creationTime></uws:jobref>"
        for r in rows)
    return _xml(f'<uws:jobs {NS} version="1.1">{refs}</uws:jobs>\n')


@router.post("/tap/async")
@_guard
async def create_job(request: Request) -> Response:
    store = _store(request)
    params = await read_params(request, max_body=store.limits.upload_bytes + 1_000_000)
    job = await run_in_threadpool(store.create, params)
    if job.phase == "QUEUED":
        _manager(request).wake()
    return _see(job_url(request, job.job_id))


# -- one job ---------------------------------------------------------------------------


@router.get("/tap/async/{job_id}")
@_guard
async def get_job(request: Request, job_id: str) -> Response:
    job = await _get_job(request, job_id)
    wait = request.query_params.get("WAIT") or request.query_params.get("wait")
    if wait is not None and job.phase in ("PENDING", "QUEUED", "EXECUTING"):
        try:
            seconds = int(wait)
        except ValueError:
            raise DALIError(f"WAIT must be an integer number of seconds, got {wait!r}") \
                from None
        cap = request.app.state.tap.limits.wait_cap
        seconds = cap if seconds < 0 else min(seconds, cap)
        wanted = request.query_params.get("PHASE") or request.query_params.get("phase")
        if wanted is None or wanted.strip().upper() == job.phase:
            job = await _wait(request, job, seconds)
    return _xml(job_xml(request, job))


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
@_guard
async def delete_job(request: Request, job_id: str) -> Response:
    await _delete(request, job_id)
    return _see(f"{tap_base(request)}/async?LAST=20")


async def _delete(request: Request, job_id: str) -> None:
    store = _store(request)
    await _get_job(request, job_id)
    await run_in_threadpool(store.abort, job_id)
    _manager(request).cancel(job_id)
    await run_in_threadpool(store.delete, job_id)


@router.post("/tap/async/{job_id}")
@_guard
async def post_job(request: Request, job_id: str) -> Response:
    params = await read_params(request, max_body=100_000)
    action = params.single("ACTION")
    if action is not None and action.strip().upper() == "DELETE":
        await _delete(request, job_id)
        return _see(f"{tap_base(request)}/async?LAST=20")
    await _get_job(request, job_id)
    raise DALIError("POST to a job accepts only ACTION=DELETE; send parameters to "
                    f"{job_url(request, job_id)}/parameters and PHASE to .../phase")


# -- atomic children -------------------------------------------------------------------


@router.get("/tap/async/{job_id}/phase")
@_guard
async def get_phase(request: Request, job_id: str) -> Response:
    phase = await run_in_threadpool(_store(request).phase, job_id)
    if phase is None:
        raise DALIError(f"no job {job_id}", 404)
    return _text(phase)


@router.post("/tap/async/{job_id}/phase")
@_guard
async def post_phase(request: Request, job_id: str) -> Response:
    params = await read_params(request, max_body=100_000)
    wanted = (params.single("PHASE") or "").strip().upper()
    store = _store(request)
    if wanted == "RUN":
        phase = await run_in_threadpool(store.run, job_id)
        if phase == "QUEUED":
            _manager(request).wake()
    elif wanted == "ABORT":
        await run_in_threadpool(store.abort, job_id)
        _manager(request).cancel(job_id)
    else:
        await _get_job(request, job_id)
        raise DALIError(f"PHASE must be RUN or ABORT, got {wanted or 'nothing'!r}")
    return _see(job_url(request, job_id))


@router.get("/tap/async/{job_id}/executionduration")
@_guard
async def get_duration(request: Request, job_id: str) -> Response:
    return _text(str((await _get_job(request, job_id)).execution_duration))


@router.post("/tap/async/{job_id}/executionduration")
@_guard
async def post_duration(request: Request, job_id: str) -> Response:
    params = await read_params(request, max_body=100_000)
    await run_in_threadpool(_store(request).set_execution_duration, job_id,
                            params.single("EXECUTIONDURATION"))
    return _see(job_url(request, job_id))


@router.get("/tap/async/{job_id}/destruction")
@_guard
async def get_destruction(request: Request, job_id: str) -> Response:
    return _text(iso_utc((await _get_job(request, job_id)).destruction))


@router.post("/tap/async/{job_id}/destruction")
@_guard
async def post_destruction(request: Request, job_id: str) -> Response:
    params = await read_params(request, max_body=100_000)
    await run_in_threadpool(_store(request).set_destruction, job_id,
                            params.single("DESTRUCTION"))
    return _see(job_url(request, job_id))


@router.get("/tap/async/{job_id}/quote")
@_guard
async def get_quote(request: Request, job_id: str) -> Response:
    await _get_job(request, job_id)
    return _text("")


@router.get("/tap/async/{job_id}/owner")
@_guard
async def get_owner(request: Request, job_id: str) -> Response:
    await _get_job(request, job_id)
    return _text("")


@router.get("/tap/async/{job_id}/error")
@_guard
async def get_error(request: Request, job_id: str) -> Response:
    job = await _get_job(request, job_id)
    if job.phase not in ("ERROR", "ABORTED") or not job.error_message:
        raise DALIError(f"job {job_id} has no error (phase {job.phase})", 404)
    return Response(error_document(job.error_message), media_type="application/x-votable+xml")


@router.get("/tap/async/{job_id}/parameters")
@_guard
async def get_parameters(request: Request, job_id: str) -> Response:
    job = await _get_job(request, job_id)
    body = job_xml(request, job)
    start = body.index("<uws:parameters>")
    end = body.index("</uws:parameters>") + len("</uws:parameters>")
    inner = body[start + len("<uws:parameters>"):end - len("</uws:parameters>")]
    return _xml(f"<uws:parameters {NS}>{inner}</uws:parameters>\n")


@router.post("/tap/async/{job_id}/parameters")
@_guard
async def post_parameters(request: Request, job_id: str) -> Response:
    store = _store(request)
    params = await read_params(request, max_body=store.limits.upload_bytes + 1_000_000)
    await run_in_threadpool(store.set_parameters, job_id, params)
    return _see(job_url(request, job_id))


@router.get("/tap/async/{job_id}/parameters/{name}")
@_guard
async def get_upload(request: Request, job_id: str, name: str) -> Response:
    content = await run_in_threadpool(_store(request).upload_content, job_id, name)
    if content is None:
        raise DALIError(f"job {job_id} has no inline parameter {name}", 404)
    return Response(bytes(content), media_type="application/x-votable+xml")


@router.get("/tap/async/{job_id}/results")
@_guard
async def get_results(request: Request, job_id: str) -> Response:
    job = await _get_job(request, job_id)
    body = job_xml(request, job)
    start = body.index("<uws:results>") + len("<uws:results>")
    end = body.index("</uws:results>")
    return _xml(f"<uws:results {NS}>{body[start:end]}</uws:results>\n")


@router.get("/tap/async/{job_id}/results/result")
@_guard
async def get_result(request: Request, job_id: str) -> Response:
    job = await _get_job(request, job_id)
    path = _store(request).result_dir / job.job_id / "result"
    if job.phase != "COMPLETED" or not path.exists():
        raise DALIError(f"job {job_id} has no result (phase {job.phase})", 404)
    return FileResponse(path, media_type=job.result_mime or "application/x-votable+xml")


__all__ = ["router", "ACTIVE", "FINAL"]
