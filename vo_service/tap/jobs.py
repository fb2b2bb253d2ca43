"""UWS 1.1 documents of TAP asynchronous jobs, and the rules of the job-list filters.

The REST binding (``/tap/async``: the job list, each job and its children
``phase``, ``executionduration``, ``destruction``, ``quote``, ``error``,
``parameters``, ``results``, ``owner``) is served by ``tap/routes.py``; this
module writes what it answers: containers as XML (``text/xml``), with job and
result URLs from :class:`~vo_service.urls.PublicURLs`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from xml.sax.saxutils import escape, quoteattr

from vo_service.dali import DALIError, Params, iso_utc, parse_instant
from vo_service.tap.uws import Job, JobRef
from vo_service.urls import PublicURLs

UWS = "http://www.ivoa.net/xml/UWS/v1.0"
XLINK = "http://www.w3.org/1999/xlink"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
NS = f'xmlns:uws="{UWS}" xmlns:xlink="{XLINK}" xmlns:xsi="{XSI}"'
PHASES = ("PENDING", "QUEUED", "EXECUTING", "COMPLETED", "ERROR", "ABORTED", "UNKNOWN",
          "HELD", "SUSPENDED", "ARCHIVED")
XML_HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n'


def _nil(tag: str, value: str | None) -> str:
    if value in (None, ""):
        return f'<uws:{tag} xsi:nil="true"/>'
    return f"<uws:{tag}>{escape(value)}</uws:{tag}>"


def _parameters(urls: PublicURLs, job: Job) -> str:
    url = urls.tap_job(job.job_id)
    params = [f'<uws:parameter id={quoteattr(name.lower())}>{escape(str(value))}'
              f"</uws:parameter>" for name, value in sorted(job.parameters.items())]
    params += [f'<uws:parameter id={quoteattr(name)} byReference="true">'
               f"{escape(url)}/parameters/{escape(name)}</uws:parameter>"
               for name in job.uploads]
    return "".join(params)


def _results(urls: PublicURLs, job: Job) -> str:
    if job.phase != "COMPLETED":
        return ""
    size = f' size="{job.result_size}"' if job.result_size is not None else ""
    mime = f" mime-type={quoteattr(job.result_mime)}" if job.result_mime else ""
    return (f'<uws:result id="result" xlink:type="simple" '
            f'xlink:href="{escape(urls.tap_job(job.job_id))}/results/result"{size}{mime}/>')


def job_xml(urls: PublicURLs, job: Job) -> str:
    """The ``uws:job`` document of ``job``."""
    error = ""
    if job.phase in ("ERROR", "ABORTED") and job.error_message:
        error = (f'<uws:errorSummary type="{job.error_type or "fatal"}" hasDetail="'
                 f'{"true" if job.phase == "ERROR" else "false"}">'
                 f"<uws:message>{escape(job.error_message)}</uws:message></uws:errorSummary>")
    info = ""
    if job.phase == "COMPLETED" and job.result_rows is not None:
        info = (f"<uws:jobInfo><rows>{job.result_rows}</rows>"
                f"<overflow>{'true' if job.overflow else 'false'}</overflow></uws:jobInfo>")
    return (XML_HEAD + f'<uws:job {NS} version="1.1">'
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
            + f"<uws:parameters>{_parameters(urls, job)}</uws:parameters>"
            + f"<uws:results>{_results(urls, job)}</uws:results>"
            + error + info + "</uws:job>\n")


def parameters_xml(urls: PublicURLs, job: Job) -> str:
    """The ``uws:parameters`` document of ``job``."""
    return XML_HEAD + f"<uws:parameters {NS}>{_parameters(urls, job)}</uws:parameters>\n"


def results_xml(urls: PublicURLs, job: Job) -> str:
    """The ``uws:results`` document of ``job`` (empty until it completes)."""
    return XML_HEAD + f"<uws:results {NS}>{_results(urls, job)}</uws:results>\n"


def job_list_xml(urls: PublicURLs, rows: Iterable[JobRef]) -> str:
    """The ``uws:jobs`` list of the job rows ``JobStore.list`` returned."""
    refs = "".join(
        f'<uws:jobref id="{r.job_id}" xlink:href="{escape(urls.tap_job(r.job_id))}">'
        f"<uws:phase>{r.phase}</uws:phase>"
        + (f"<uws:runId>{escape(r.run_id)}</uws:runId>" if r.run_id else "")
        + _nil("ownerId", r.owner_id)
        + f"<uws:creationTime>{iso_utc(r.creation_time)}</uws:creationTime></uws:jobref>"
        for r in rows)
    return XML_HEAD + f'<uws:jobs {NS} version="1.1">{refs}</uws:jobs>\n'


def list_filters(params: Params) -> tuple[list[str], dt.datetime | None, int | None]:
    """The PHASE, AFTER and LAST filters of a job-list request (UWS 1.1 §2.2.3.1).

    PHASE may repeat (jobs in any of them), AFTER is an ISO 8601 instant (jobs created
    strictly after it), LAST a positive integer (the most recent jobs, newest first).

    Raises
    ------
    DALIError
        400 for an unknown phase, a malformed instant, or LAST not a positive integer.
    """
    phases = [p.strip().upper() for p in params.all("PHASE")]
    for phase in phases:
        if phase not in PHASES:
            raise DALIError(f"unknown PHASE {phase!r}")
    after_text = params.single("AFTER")
    after = parse_instant(after_text) if after_text else None
    last = params.single("LAST")
    if last is None:
        return phases, after, None
    if not last.strip().isdigit() or int(last) < 1:
        raise DALIError(f"LAST must be a positive integer, got {last!r}")
    return phases, after, min(int(last), 2**31 - 1)  # beyond any list, within SQL's LIMIT


def wait_seconds(text: str, cap: int) -> int:
    """A WAIT value in seconds, at most ``cap`` (a negative WAIT means "as long as allowed")."""
    try:
        seconds = int(text)
    except ValueError:
        raise DALIError(f"WAIT must be an integer number of seconds, got {text!r}") from None
    return cap if seconds < 0 else min(seconds, cap)
