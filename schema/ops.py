"""Operational tables of the TAP service: UWS jobs and published catalogues.

Both live in ``latentvo_ops`` and are never visible to the read-only role.

* ``uws_jobs`` holds every asynchronous TAP job (UWS 1.1) with its phase,
  times, parameters, error and result description; ``uws_job_uploads`` keeps
  the inline (multipart) upload content of a job until the job is destroyed,
  so that a job queued on one web worker can run on another, or after a
  restart. Result files live in the result store (``$LATENTVO_HOME/tap-results``).
* ``published_catalogues`` records the declaration of every existing catalogue
  published with ``latentvo publish`` (``vo_service.publish``), from which the
  table's SQLAlchemy declaration (and so TAP_SCHEMA, VOSI and FIELDs) is rebuilt.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from schema.tables import OPS_SCHEMA, metadata

JOB_PHASES = ("PENDING", "QUEUED", "EXECUTING", "COMPLETED", "ERROR", "ABORTED", "UNKNOWN",
              "HELD", "SUSPENDED", "ARCHIVED")

uws_jobs = sa.Table(
    "uws_jobs",
    metadata,
    sa.Column("job_id", sa.Text, primary_key=True),
    sa.Column("run_id", sa.Text),
    sa.Column("owner_id", sa.Text),
    sa.Column("phase", sa.Text, nullable=False),
    sa.Column("creation_time", sa.DateTime(timezone=True), nullable=False,
              server_default=sa.func.now()),
    sa.Column("start_time", sa.DateTime(timezone=True)),
    sa.Column("end_time", sa.DateTime(timezone=True)),
    sa.Column("execution_duration", sa.Integer, nullable=False),  # seconds, 0 = unlimited
    sa.Column("destruction", sa.DateTime(timezone=True), nullable=False),
    # Job parameters, names upper-cased: {"QUERY": "...", "LANG": "ADQL", ...}
    sa.Column("parameters", JSONB, nullable=False),
    sa.Column("error_type", sa.Text),  # transient | fatal
    sa.Column("error_message", sa.Text),
    sa.Column("result_mime", sa.Text),
    sa.Column("result_size", sa.BigInteger),
    sa.Column("result_rows", sa.BigInteger),
    sa.Column("overflow", sa.Boolean),
    sa.Column("worker", sa.Text),  # host:pid:nonce of the worker executing it
    sa.Column("heartbeat", sa.DateTime(timezone=True)),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    # The public base URL the job was created under: its query's ivoa.obscore.access_url
    sa.Column("public_base_url", sa.Text),
    sa.CheckConstraint("phase IN (" + ", ".join(f"'{p}'" for p in JOB_PHASES) + ")",
                       name="phase"),
    sa.Index("ix_uws_jobs_phase_creation", "phase", "creation_time"),
    sa.Index("ix_uws_jobs_destruction", "destruction"),
    schema=OPS_SCHEMA,
    comment="Asynchronous TAP jobs (UWS 1.1)",
)

uws_job_uploads = sa.Table(
    "uws_job_uploads",
    metadata,
    sa.Column("job_id", sa.Text, sa.ForeignKey(uws_jobs.c.job_id, ondelete="CASCADE"),
              primary_key=True),
    sa.Column("name", sa.Text, primary_key=True),  # form-field name of the inline part
    sa.Column("content", sa.LargeBinary, nullable=False),
    schema=OPS_SCHEMA,
    comment="Inline upload content of asynchronous TAP jobs (param: URIs)",
)

published_catalogues = sa.Table(
    "published_catalogues",
    metadata,
    sa.Column("schema_name", sa.Text, primary_key=True),
    sa.Column("table_name", sa.Text, primary_key=True),
    sa.Column("declaration", JSONB, nullable=False),
    sa.Column("source", sa.Text),
    sa.Column("n_rows", sa.BigInteger),
    sa.Column("published_at", sa.DateTime(timezone=True), nullable=False,
              server_default=sa.func.now()),
    schema=OPS_SCHEMA,
    comment="Existing catalogues published with 'latentvo publish', with their declarations",
)
