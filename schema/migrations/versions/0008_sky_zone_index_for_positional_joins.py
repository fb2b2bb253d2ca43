"""sky zone index for positional joins

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07

Hand-written (the index is on expressions). ADQL positional joins
(``CONTAINS(POINT(b..), CIRCLE(a.., r))``, ``DISTANCE(..) < r``) probe each
table's (declination zone, RA) index, ``schema.sky_zones``, so that a
cross-match costs n log n instead of reading a declination strip per row.
Catalogues published before this revision get the index too; those published
later get it from their declaration.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.schema import CreateIndex

from schema.catalogues import catalogue_tables
from schema.sky_zones import ra_key_sql, zone_sql

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_spectra_sky_zone", "spectra",
                    [sa.text(zone_sql('"s_dec"')), sa.text(ra_key_sql('"s_ra"'))],
                    schema="latentvo", if_not_exists=True)
    for table in catalogue_tables(op.get_bind()):
        for index in table.indexes:
            if index.name == f"ix_{table.name}_sky_zone":
                op.execute(CreateIndex(index, if_not_exists=True))


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS latentvo.ix_spectra_sky_zone")
    for table in catalogue_tables(op.get_bind()):
        op.execute(f'DROP INDEX IF EXISTS "{table.schema}"."ix_{table.name}_sky_zone"')
