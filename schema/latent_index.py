"""The per-model similarity index over ``latentvo.latent.vec`` (pgvector HNSW).

All models share one ``vec`` column of unconstrained dimension, so each model gets a
partial expression index ``latent_hnsw_<model>`` on ``vec::vector(N)`` restricted to
its rows; a top-k query must use the same expression, operator and ``model_id``
predicate (see :func:`top_k_sql`). pgvector's HNSW takes at most 2,000 dimensions for
``vector`` and 4,000 for ``halfvec``; beyond that no index is built and queries scan.
"""

from __future__ import annotations

import hashlib
import re

import sqlalchemy as sa

VECTOR_MAX_DIM = 2000
HALFVEC_MAX_DIM = 4000
OPERATORS = {"l2": ("<->", "l2_ops"), "cosine": ("<=>", "cosine_ops")}


def index_name(model_id: str) -> str:
    """``latent_hnsw_<sanitised id>``, within PostgreSQL's 63-character limit, unique."""
    clean = re.sub(r"[^a-z0-9]+", "_", model_id.lower()).strip("_")
    name = f"latent_hnsw_{clean}"
    if len(name) > 63 or clean != model_id:
        digest = hashlib.sha256(model_id.encode()).hexdigest()[:8]
        name = f"latent_hnsw_{clean[:42]}_{digest}"
    return name


def index_plan(latent_dim: int, metric: str) -> dict:
    """Which index a latent space of this size gets (recorded in the registry)."""
    if latent_dim <= VECTOR_MAX_DIM:
        vtype = "vector"
    elif latent_dim <= HALFVEC_MAX_DIM:
        vtype = "halfvec"
    else:
        return {"type": "none", "reason": f"{latent_dim} dimensions exceed pgvector HNSW's "
                f"limit of {HALFVEC_MAX_DIM} (halfvec)", "metric": metric}
    return {"type": "hnsw", "cast": f"{vtype}({latent_dim})", "metric": metric,
            "operator": OPERATORS[metric][0], "opclass": f"{vtype}_{OPERATORS[metric][1]}"}


def ensure_index(conn: sa.Connection, model_id: str, latent_dim: int, metric: str) -> str | None:
    """Create the model's partial HNSW index if missing; returns its name (None: none)."""
    plan = index_plan(latent_dim, metric)
    if plan["type"] == "none":
        return None
    name = index_name(model_id)
    literal = model_id.replace("'", "''")
    conn.execute(sa.text(
        f'CREATE INDEX IF NOT EXISTS "{name}" ON latentvo.latent USING hnsw '
        f'((vec::{plan["cast"]}) {plan["opclass"]}) WHERE model_id = \'{literal}\''))
    return name


def drop_index(conn: sa.Connection, model_id: str) -> None:
    conn.execute(sa.text(f'DROP INDEX IF EXISTS latentvo."{index_name(model_id)}"'))


def top_k_sql(latent_dim: int, metric: str) -> str:
    """SQL (params :model_id, :query as '[..]' text, :k) that the model's index serves."""
    plan = index_plan(latent_dim, metric)
    cast = plan.get("cast", f"vector({latent_dim})")
    op = OPERATORS[metric][0]
    return (f"SELECT spectrum_id, vec::{cast} {op} CAST(:query AS {cast}) AS distance "
            f"FROM latentvo.latent WHERE model_id = :model_id "
            f"ORDER BY vec::{cast} {op} CAST(:query AS {cast}) LIMIT :k")
