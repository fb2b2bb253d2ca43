"""The VOTable documents of SSA: queryData results and the FORMAT=METADATA description.

Responses are VOTable 1.4 (TABLEDATA) with ``QUERY_STATUS`` before the table
(``OK``; ``OVERFLOW`` after it when MAXREC cut the result), the
``SERVICE_PROTOCOL`` INFO, echoes of the query parameters, and a DataLink
service descriptor whose ``ID`` input refers to the ``obs_publisher_did``
column. Errors carry :data:`ERROR_INFOS` too (``vo_service.ssa.routes``).
"""

from __future__ import annotations

import logging

import pyarrow as pa
import sqlalchemy as sa

from vo_service.config import SSALimits
from vo_service.dali import DALIError, DatabaseUnavailable, Params
from vo_service.datalink.document import datalink_descriptor
from vo_service.formats.votable import ResultDocument, arrow_table
from vo_service.ssa import query as ssa_query
from vo_service.ssa.fields import COLUMNS, FIELDS, ID_FIELD
from vo_service.ssa.metadata import input_params
from vo_service.ssa.params import SSAQuery, parse_query
from vo_service.urls import PublicURLs

log = logging.getLogger("latentvo.ssa")
SSA_ID = "ivo://ivoa.net/std/SSA"
ERROR_INFOS = (("SERVICE_PROTOCOL", "1.1", "SSAP"),)
ECHOED = ("REQUEST", "POS", "SIZE", "BAND", "TIME", "FORMAT", "MAXREC", "TOP", "TARGETNAME",
          "COLLECTION", "PUBDID", "SPECRP", "SNR", "TEFF", "LOGG", "MH", "ALPHA_M",
          "IN_DOMAIN", "DOMAIN_SCORE_MAX", "MODEL", "RUNID")


def _document(urls: PublicURLs, infos) -> ResultDocument:
    return ResultDocument(
        FIELDS, table_name="results",
        infos=[*ERROR_INFOS, ("standardID", SSA_ID, None), *infos],
        field_ids={ID_FIELD: ID_FIELD},
        descriptors=[datalink_descriptor(urls.links(), ID_FIELD)])


def metadata_document(urls: PublicURLs, limits: SSALimits) -> bytes:
    """FORMAT=METADATA: the columns and every input parameter (with the ``[ssa]`` limits),
    no rows."""
    doc = _document(urls, [("REQUEST", "queryData", None), ("FORMAT", "METADATA", None)])
    doc.params = input_params(limits)
    return doc.render(None)


def query_document(engine: sa.Engine, urls: PublicURLs, q: SSAQuery, echoed,
                   timeout: int, publisher: str) -> bytes:
    """The records of query ``q``, with ``echoed`` parameters as INFOs; the query may run
    ``timeout`` seconds; ``publisher`` (``[service] publisher``) fills Curation.Publisher.

    Raises
    ------
    DALIError
        400 when the query ran out of time, 503 when the database cannot be used.
    """
    doc = _document(urls, echoed)
    if q.maxrec == 0 or not q.formats:
        return doc.render(None, overflow=q.maxrec == 0 and bool(q.formats))
    try:
        rows = ssa_query.run(engine, q, timeout)
    except sa.exc.OperationalError as exc:
        log.warning("SSA query failed: %s", exc)
        if "statement timeout" in str(exc):
            raise DALIError("query exceeded the time limit; narrow the constraints") from None
        raise DatabaseUnavailable() from None
    recs, overflow = ssa_query.records(rows, q, urls, publisher)
    columns = {c.field.name: [c.value(row, ctx) for row, ctx in recs] for c in COLUMNS}
    table: pa.Table = arrow_table(FIELDS, columns)
    return doc.render(table, overflow=overflow)


def respond(engine: sa.Engine, urls: PublicURLs, params: Params, limits: SSALimits,
            publisher: str) -> bytes:
    """The answer to one SSA request (queryData or FORMAT=METADATA) under ``limits``."""
    q = parse_query(params, limits)
    if q.metadata_only:
        return metadata_document(urls, limits)
    echoed = []
    for name in ECHOED:
        value = params.single(name)
        if value is not None:
            echoed.append((name, value, None))
    return query_document(engine, urls, q, echoed, limits.timeout, publisher)
