"""An SSA query as SQL over ``latentvo.spectra`` (+ ``latentvo.labels``), and its records.

Positional constraints use the ADQL engine's own geometry
(``vo_service.adql.geometry``): HEALPix ranges of ``healpix_index`` from
``cone_ranges`` to select candidate rows with the btree index, AND-ed with the
exact haversine test of ``within_sql``. An SSA cone (POS, SIZE/2) and the ADQL
``CONTAINS(POINT(s_ra, s_dec), CIRCLE(ra, dec, SIZE/2))`` therefore select
exactly the same spectra.

Interval parameters (BAND, TIME, MTIME, the ML ranges) match when the
spectrum's interval overlaps any of the requested closed intervals (edges
included); a single value matches spectra whose interval contains it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa

from schema.tables import (
    LABEL_QUANTITIES,
    LABEL_REGRESSOR,
    LABEL_VALUES,
    current_model_sql,
    models,
    spectra,
)
from schema.vo import PositionIndex, table_meta
from vo_service.adql import types as T
from vo_service.adql.geometry import Point, cone_ranges, distance_sql, within_sql
from vo_service.adql.values import Value, float_sql
from vo_service.dali import DALIError
from vo_service.getdata.convert import REPRESENTATIONS, estimated_kbytes
from vo_service.ssa.params import MJD_EPOCH, Range, SSAQuery
from vo_service.urls import PublicURLs


def _position_index() -> PositionIndex:
    """The spectra table's declared sky position (cone searches use its HEALPix column)."""
    position = table_meta(spectra).position
    assert position is not None, "latentvo.spectra declares its position"
    return position


POSITION_INDEX = _position_index()
BASE_COLUMNS = ("spectrum_id", "obs_publisher_did", "obs_id", "obs_collection", "target_name",
                "s_ra", "s_dec", "t_min", "t_max", "t_exptime", "em_min", "em_max",
                "em_res_power", "em_xel", "snr", "instrument_name", "facility_name",
                "flux_unit", "access_format", "access_estsize")


def _const(x: float) -> Value:
    return Value(float_sql(x), T.DOUBLE, const=x, unit="deg")


POSITION = Point(Value("s.s_ra", T.DOUBLE), Value("s.s_dec", T.DOUBLE))


class SQLBuilder:
    def __init__(self) -> None:
        self.where: list[str] = []
        self.args: dict[str, object] = {}

    def arg(self, value) -> str:
        name = f"p{len(self.args)}"
        self.args[name] = value
        return f":{name}"

    def overlap(self, lo_col: str, hi_col: str, ranges: list[Range], convert=None) -> None:
        convert = convert or (lambda v: v)
        terms = []
        for lo, hi in ranges:
            parts = []
            if lo is not None:
                parts.append(f"{hi_col} >= {self.arg(convert(lo))}")
            if hi is not None:
                parts.append(f"{lo_col} <= {self.arg(convert(hi))}")
            terms.append("(" + " AND ".join(parts) + ")")
        self.where.append("(" + " OR ".join(terms) + ")")


def _mjd_to_datetime(mjd: float) -> dt.datetime:
    return MJD_EPOCH + dt.timedelta(days=mjd)


def _like_prefix(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def build_sql(q: SSAQuery, limit: int) -> tuple[str, dict]:
    b = SQLBuilder()
    score = "NULL::float8"
    order = "s.spectrum_id"
    if q.pos is not None:
        ra, dec = q.pos
        assert q.size is not None  # parse_query gives a position its default size
        radius = q.size / 2.0
        center = Point(_const(ra), _const(dec))
        ranges = cone_ranges(round(ra, 12), round(dec, 12), round(radius, 12),
                             POSITION_INDEX.depth)
        b.where.append("(" + " OR ".join(f"s.{POSITION_INDEX.healpix} BETWEEN {lo} AND {hi}"
                                         for lo, hi in ranges) + ")")
        b.where.append(within_sql(POSITION, center, _const(radius)))
        distance = distance_sql(POSITION, center)
        score = f"(1 - {distance} / {float_sql(radius)})"
        order = f"{distance}, s.spectrum_id"
    if q.band:
        b.overlap("s.em_min", "s.em_max", q.band)
    if q.time:
        # an exposure with one known end is the instant of that end
        b.overlap("coalesce(s.t_min, s.t_max)", "coalesce(s.t_max, s.t_min)", q.time)
    if q.mtime:
        b.overlap("s.ingested_at", "s.ingested_at", q.mtime, _mjd_to_datetime)
    if q.targetname:
        b.where.append("lower(s.target_name) IN (" + ", ".join(
            b.arg(n.lower()) for n in q.targetname) + ")")
    if q.targetclass and "star" not in q.targetclass:
        b.where.append("FALSE")  # every target of this archive is a star
    if q.collection:
        b.where.append("(" + " OR ".join(
            f"s.obs_collection ILIKE {b.arg(_like_prefix(c))}" for c in q.collection) + ")")
    if q.pubdid:
        b.where.append(f"s.obs_publisher_did = {b.arg(q.pubdid[0])}")
    if q.redshift and not any((lo is None or lo <= 0) and (hi is None or hi >= 0)
                              for lo, hi in q.redshift):
        b.where.append("FALSE")  # stars: redshift 0 at the precision of this archive
    if q.specrp is not None:
        b.where.append(f"s.em_res_power >= {b.arg(q.specrp)}")
    if q.snr is not None:
        b.where.append(f"s.snr >= {b.arg(q.snr)}")
    for name in LABEL_QUANTITIES:
        ranges = getattr(q, name)
        if ranges:
            b.overlap(f"l.{name}", f"l.{name}", ranges)
    if q.domain_score is not None:
        b.where.append(f"l.domain_score <= {b.arg(q.domain_score)}")
    if q.in_domain is not None:
        b.where.append(f"l.in_domain = {b.arg(q.in_domain)}")
    model = b.arg(q.model) if q.model else current_model_sql(LABEL_REGRESSOR)
    select = ", ".join([f"s.{c}" for c in BASE_COLUMNS]
                       + ["l.model_id AS label_model_id"] + [f"l.{c}" for c in LABEL_VALUES]
                       + [f"{score} AS score"])
    sql = (f"SELECT {select} FROM latentvo.spectra AS s "
           f"LEFT JOIN latentvo.labels AS l ON l.spectrum_id = s.spectrum_id "
           f"AND l.model_id = {model}")
    if b.where:
        sql += " WHERE " + " AND ".join(b.where)
    sql += f" ORDER BY {order} LIMIT {int(limit)}"
    return sql, b.args


def run(engine: sa.Engine, q: SSAQuery, timeout: int) -> list[dict]:
    """The matching spectra: at most what MAXREC/TOP allow, plus one row to tell an
    overflow (:func:`records` cuts them and says whether MAXREC did).

    The query runs under a statement timeout of ``timeout`` seconds (``[ssa] timeout``).
    """
    per_dataset = max(1, len(q.formats))
    wanted = q.maxrec // per_dataset + (1 if q.maxrec % per_dataset else 0)
    limit = wanted + 1
    if q.top is not None:
        limit = min(limit, q.top)
    sql, args = build_sql(q, limit)
    with engine.connect() as conn:
        known = sa.select(sa.func.count()).select_from(models).where(
            models.c.model_id == q.model)
        if q.model is not None and conn.scalar(known) == 0:
            raise DALIError(f"MODEL: no model {q.model!r} in latentvo.models")
        conn.execute(sa.text(f"SET LOCAL statement_timeout = {int(timeout) * 1000}"))
        return [dict(r) for r in conn.execute(sa.text(sql), args).mappings()]


@dataclass
class RecordContext:
    """What the computed SSA columns need besides the database row."""

    url: str
    mime: str
    size_kb: int
    title: str
    data_model: str
    publisher: str
    score: float | None


def records(rows: list[dict], q: SSAQuery, urls: PublicURLs, publisher: str
            ) -> tuple[list[tuple[dict, RecordContext]], bool]:
    """One record per (spectrum, representation asked), cut at MAXREC.

    Each record's access reference is the getData URL of its representation
    (``urls.getdata``).
    """
    out = []
    for row in rows:
        did = row["obs_publisher_did"]
        title = " ".join(x for x in (row["target_name"] or row["obs_id"],
                                     row["instrument_name"], "spectrum", row["obs_id"]) if x)
        for rep in q.formats:
            if rep == "native":
                ctx = RecordContext(urls.getdata(did), row["access_format"],
                                    row["access_estsize"], title, "native",
                                    publisher, row["score"])
            else:
                r = REPRESENTATIONS[rep]
                ctx = RecordContext(
                    urls.getdata(did, rep), r.mime,
                    estimated_kbytes(rep, row["em_xel"], row["access_estsize"]), title,
                    "Spectrum-1.1" if rep in ("votable", "fits") else "preview",
                    publisher, row["score"])
            out.append((row, ctx))
    overflow = len(out) > q.maxrec
    if q.top is not None and len(rows) >= q.top and len(out) <= q.maxrec:
        overflow = False
    return out[:q.maxrec], overflow
