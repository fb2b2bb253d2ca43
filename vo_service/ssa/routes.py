"""``/ssa``: SSA 1.1 queryData and FORMAT=METADATA; ``/ssa/capabilities``, ``/ssa/availability``.

Responses are VOTable 1.4 (TABLEDATA) with ``QUERY_STATUS`` before the table
(``OK``; ``OVERFLOW`` after it when MAXREC cut the result), the
``SERVICE_PROTOCOL`` INFO, echoes of the query parameters, and a DataLink
service descriptor whose ``ID`` input refers to the ``obs_publisher_did``
column. Errors are the SSA error form: ``QUERY_STATUS=ERROR`` with the message,
no table, HTTP 400 (500 for the service's own failures).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import pyarrow as pa
import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from vo_service.config import SSALimits
from vo_service.dali import DALIError, error_response, read_params
from vo_service.datalink import links_url
from vo_service.datalink.document import ResultDocument, arrow_table, datalink_descriptor
from vo_service.service_meta import service_meta
from vo_service.ssa import query as ssa_query
from vo_service.ssa import vosi
from vo_service.ssa.fields import COLUMNS, FIELDS, ID_FIELD
from vo_service.ssa.metadata import input_params
from vo_service.ssa.params import SSAQuery, parse_query

log = logging.getLogger("latentvo.ssa")
router = APIRouter()
MIME = "application/x-votable+xml"
SSA_ID = "ivo://ivoa.net/std/SSA"
ECHOED = ("REQUEST", "POS", "SIZE", "BAND", "TIME", "FORMAT", "MAXREC", "TOP", "TARGETNAME",
          "COLLECTION", "PUBDID", "SPECRP", "SNR", "TEFF", "LOGG", "MH", "ALPHA_M",
          "IN_DOMAIN", "DOMAIN_SCORE_MAX", "MODEL", "RUNID")


@dataclass
class SSA:
    database: object
    base_url: str
    limits: SSALimits


def _document(ssa: SSA, infos) -> ResultDocument:
    return ResultDocument(
        FIELDS, table_name="results",
        infos=[("SERVICE_PROTOCOL", "1.1", "SSAP"), ("standardID", SSA_ID, None), *infos],
        field_ids={ID_FIELD: ID_FIELD},
        descriptors=[datalink_descriptor(links_url(ssa.base_url), ID_FIELD)])


def metadata_document(ssa: SSA) -> bytes:
    doc = _document(ssa, [("REQUEST", "queryData", None), ("FORMAT", "METADATA", None)])
    doc.params = input_params(ssa.limits)
    return doc.render(None)


def query_document(ssa: SSA, q: SSAQuery, echoed) -> bytes:
    doc = _document(ssa, echoed)
    if q.maxrec == 0 or not q.formats:
        return doc.render(None, overflow=q.maxrec == 0 and bool(q.formats))
    rows, _ = ssa_query.run(ssa.database.reader_engine, q, ssa.limits.timeout)
    recs, overflow = ssa_query.records(rows, q, ssa.base_url, service_meta().publisher)
    columns = {c.field.name: [c.value(row, ctx) for row, ctx in recs] for c in COLUMNS}
    table: pa.Table = arrow_table(FIELDS, columns)
    return doc.render(table, overflow=overflow)


def _respond(ssa: SSA, params) -> bytes:
    q = parse_query(params, ssa.limits)
    if q.metadata_only:
        return metadata_document(ssa)
    echoed = []
    for name in ECHOED:
        value = params.single(name)
        if value is not None:
            echoed.append((name, value, None))
    return query_document(ssa, q, echoed)


@router.api_route("/ssa", methods=["GET", "POST"])
async def ssa_endpoint(request: Request) -> Response:
    ssa: SSA = request.app.state.ssa
    try:
        params = await read_params(request, max_body=1_000_000)
        body = await run_in_threadpool(_respond, ssa, params)
    except DALIError as exc:
        return error_response(exc.message, exc.status,
                              infos=[("SERVICE_PROTOCOL", "1.1", "SSAP")])
    except sa.exc.OperationalError as exc:
        log.warning("SSA query failed: %s", exc)
        if "statement timeout" in str(exc):
            return error_response("query exceeded the time limit; narrow the constraints", 400)
        return error_response("the database is not available; try again later", 503)
    return Response(body, media_type=MIME)


@router.api_route("/ssa/capabilities", methods=["GET", "HEAD"])
def capabilities(request: Request) -> Response:
    ssa: SSA = request.app.state.ssa
    return Response(vosi.capabilities_document(ssa.base_url, ssa.limits), media_type="text/xml")


_started = time.time()


@router.get("/ssa/availability")
async def availability(request: Request) -> Response:
    ssa: SSA = request.app.state.ssa
    ok, note = await run_in_threadpool(vosi.check, ssa.database.reader_engine)
    return Response(vosi.availability_document(ok, note, _started), media_type="text/xml")
