"""Operational tables of the TAP service: UWS jobs and published catalogues.

Both live in ``latentvo_ops`` and are never visible to the read-only role.

* ``uws_jobs`` holds every asynchronous TAP job (UWS 1.1) with its owner, phase,
  times, parameters, error and result description, and the bytes it stores, so
  that quotas are sums over its rows. Inline (multipart) uploads and result files
  are files of the job's folder in the result store
  (``$LATENTVO_HOME/tap-results/<job id>/``), removed with the job: bytes kept in
  the database would stay in its files after the job is gone.
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
    sa.Column("owner_id", sa.Text),  # the authenticated owner's name (UWS ownerId)
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
    # Whose job it is, for the job list and quotas: "user:<name>" when authenticated,
    # "token:<SHA-256 of the anonymous owner token>" otherwise (the token is never stored)
    sa.Column("owner_key", sa.Text),
    # Bytes of its inline upload files (result_size holds its result file's)
    sa.Column("upload_bytes", sa.BigInteger, nullable=False, server_default="0"),
    sa.CheckConstraint("phase IN (" + ", ".join(f"'{p}'" for p in JOB_PHASES) + ")",
                       name="phase"),
    sa.Index("ix_uws_jobs_phase_creation", "phase", "creation_time"),
    sa.Index("ix_uws_jobs_destruction", "destruction"),
    sa.Index("ix_uws_jobs_owner_creation", "owner_key", "creation_time"),
    schema=OPS_SCHEMA,
    comment="Asynchronous TAP jobs (UWS 1.1)",
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
