"""data releases and the publishing registry's records

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07

``latentvo_ops.releases`` holds each data release's state and manifest;
``latentvo_ops.registry_records`` the VOResource records the OAI-PMH interface
serves, with their datestamps, deleted records kept as headers.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'releases',
        sa.Column('name', sa.Text(), nullable=False),
        sa.Column('title', sa.Text(), nullable=False),
        sa.Column('description', sa.Text(), server_default='', nullable=False),
        sa.Column('doi', sa.Text(), nullable=True),
        sa.Column('state', sa.Text(), server_default='draft', nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'),
                  nullable=False),
        sa.Column('published_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('withdrawn_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('manifest', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.CheckConstraint("state IN ('draft', 'published', 'withdrawn')",
                           name=op.f('ck_releases_state')),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_releases')),
        schema='latentvo_ops',
        comment="Data releases made with 'latentvo release': frozen contents and their state")
    op.create_table(
        'registry_records',
        sa.Column('identifier', sa.Text(), nullable=False),
        sa.Column('resource_type', sa.Text(), nullable=False),
        sa.Column('title', sa.Text(), nullable=False),
        sa.Column('status', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('fingerprint', sa.Text(), nullable=False),
        sa.Column('xml', sa.Text(), nullable=False),
        sa.CheckConstraint("status IN ('active', 'deleted')",
                           name=op.f('ck_registry_records_status')),
        sa.PrimaryKeyConstraint('identifier', name=op.f('pk_registry_records')),
        schema='latentvo_ops',
        comment='VOResource records of the publishing registry, deleted ones kept as headers')
    op.create_index('ix_registry_records_updated_at', 'registry_records', ['updated_at'],
                    unique=False, schema='latentvo_ops')


def downgrade() -> None:
    op.drop_index('ix_registry_records_updated_at', table_name='registry_records',
                  schema='latentvo_ops')
    op.drop_table('registry_records', schema='latentvo_ops')
    op.drop_table('releases', schema='latentvo_ops')
