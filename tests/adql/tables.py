"""Scratch tables for the ADQL tests, declared like the published ones.

``adql_test.points`` is a sky catalogue (with a HEALPix index column and a
declination index and a zone index, as cross-match joins use) whose
rows include the geometric edge cases: both poles, RA 0/360, points on the
date line; ``adql_test.vectors`` holds latent vectors of two models with a
partial HNSW index each, as the ML job builds them for ``latentvo.latent``.
"""

from __future__ import annotations

import sqlalchemy as sa
from pgvector.sqlalchemy import Vector

from schema.latent_index import IndexPlan, index_plan
from schema.sky_zones import zone_index
from schema.vo import PositionIndex, VOTable, vo_column, vo_table

SCHEMA = "adql_test"
metadata = sa.MetaData()

points = vo_table(
    "points", metadata,
    vo_column("id", sa.Integer, primary_key=True, description="Row id", ucd="meta.id"),
    vo_column("ra", sa.Double, nullable=False, description="RA", unit="deg", ucd="pos.eq.ra"),
    vo_column("dec", sa.Double, nullable=False, index=True, description="Dec", unit="deg",
              ucd="pos.eq.dec"),
    vo_column("hpx", sa.BigInteger, nullable=False, index=True, description="HEALPix 29",
              ucd="pos.healpix"),
    vo_column("mag", sa.REAL, description="Magnitude", unit="mag", ucd="phot.mag"),
    vo_column("n", sa.Integer, description="A small integer", ucd="meta.number"),
    vo_column("big", sa.BigInteger, description="A large integer", ucd="meta.number"),
    vo_column("flag", sa.Boolean, nullable=False, description="A flag", ucd="meta.code"),
    vo_column("name", sa.Text, description="A name", ucd="meta.id"),
    vo_column("cat", sa.Text, description="A category", ucd="meta.code"),
    zone_index("adql_test_points", "ra", "dec"),
    schema=SCHEMA,
    vo=VOTable(description="Test sky catalogue",
               position=PositionIndex(ra="ra", dec="dec", healpix="hpx")),
)

vectors = vo_table(
    "vectors", metadata,
    vo_column("id", sa.Integer, primary_key=True, description="Row id", ucd="meta.id"),
    vo_column("model_id", sa.Text, primary_key=True, description="Model", ucd="meta.id"),
    vo_column("vec", Vector(), nullable=False, description="Latent vector", ucd="src.var"),
    schema=SCHEMA,
    vo=VOTable(description="Test latent vectors"),
)

# model -> the plan of its partial HNSW index
MODELS = {"m8": index_plan(8, "l2"), "m4": index_plan(4, "cosine")}


def latent_index(model_id: str) -> IndexPlan | None:
    """The catalog's latent-index lookup for the test models."""
    return MODELS.get(model_id)
