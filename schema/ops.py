"""Operational tables: UWS jobs, published catalogues, data releases, registry records.

All live in ``latentvo_ops`` and are never visible to the read-only role.

* ``uws_jobs`` holds every asynchronous TAP job (UWS 1.1) with its owner, phase,
  times, parameters, error and result description, and the bytes it stores, so
  that quotas are sums over its rows. Inline (multipart) uploads and result files
  are files of the job's folder in the result store
  (``$LATENTVO_HOME/tap-results/<job id>/``), removed with the job: bytes kept in
  the database would stay in its files after the job is gone.
* ``published_catalogues`` records the declaration of every existing catalogue
  published with ``latentvo publish`` (``vo_service.publish``), from which the
  table's SQLAlchemy declaration (and so TAP_SCHEMA, VOSI and FIELDs) is rebuilt.
* ``releases`` holds every data release (``latentvo release``): its state and the
  manifest of what it froze (``vo_service.releases``).
* ``registry_records`` holds the publishing registry's VOResource records with their
  OAI-PMH datestamps; a record whose resource is gone stays as a deleted header
  (``vo_service.registry``).
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

RELEASE_STATES = ("draft", "published", "withdrawn")

releases = sa.Table(
    "releases",
    metadata,
    # the release's name is also the ADQL schema its frozen tables are published under
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("doi", sa.Text),
    sa.Column("state", sa.Text, nullable=False, server_default="draft"),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False,
              server_default=sa.func.now()),
    sa.Column("published_at", sa.DateTime(timezone=True)),
    sa.Column("withdrawn_at", sa.DateTime(timezone=True)),
    # what the release froze: counts, checksums, models with their provenance, label
    # sets and catalogues (vo_service.releases.store.Release.manifest)
    sa.Column("manifest", JSONB, nullable=False),
    sa.CheckConstraint("state IN ('draft', 'published', 'withdrawn')", name="state"),
    schema=OPS_SCHEMA,
    comment="Data releases made with 'latentvo release': frozen contents and their state",
)

REGISTRY_STATUSES = ("active", "deleted")

registry_records = sa.Table(
    "registry_records",
    metadata,
    sa.Column("identifier", sa.Text, primary_key=True),  # ivo://authority/path
    sa.Column("resource_type", sa.Text, nullable=False),  # xsi:type, e.g. vs:CatalogService
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),  # OAI datestamp
    sa.Column("fingerprint", sa.Text, nullable=False),  # sha256 of the undated record
    sa.Column("xml", sa.Text, nullable=False),  # the ri:Resource element ("" once deleted)
    sa.CheckConstraint("status IN ('active', 'deleted')", name="status"),
    sa.Index("ix_registry_records_updated_at", "updated_at"),
    schema=OPS_SCHEMA,
    comment="VOResource records of the publishing registry, deleted ones kept as headers",
)
