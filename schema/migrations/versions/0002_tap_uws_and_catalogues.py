"""tap uws jobs and published catalogues

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('published_catalogues',
    sa.Column('schema_name', sa.Text(), nullable=False),
    sa.Column('table_name', sa.Text(), nullable=False),
    sa.Column('declaration', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('source', sa.Text(), nullable=True),
    sa.Column('n_rows', sa.BigInteger(), nullable=True),
    sa.Column('published_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('schema_name', 'table_name', name=op.f('pk_published_catalogues')),
    schema='latentvo_ops',
    comment="Existing catalogues published with 'latentvo publish', with their declarations"
    )
    op.create_table('uws_jobs',
    sa.Column('job_id', sa.Text(), nullable=False),
    sa.Column('run_id', sa.Text(), nullable=True),
    sa.Column('owner_id', sa.Text(), nullable=True),
    sa.Column('phase', sa.Text(), nullable=False),
    sa.Column('creation_time', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('start_time', sa.DateTime(timezone=True), nullable=True),
    sa.Column('end_time', sa.DateTime(timezone=True), nullable=True),
    sa.Column('execution_duration', sa.Integer(), nullable=False),
    sa.Column('destruction', sa.DateTime(timezone=True), nullable=False),
    sa.Column('parameters', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('error_type', sa.Text(), nullable=True),
    sa.Column('error_message', sa.Text(), nullable=True),
    sa.Column('result_mime', sa.Text(), nullable=True),
    sa.Column('result_size', sa.BigInteger(), nullable=True),
    sa.Column('result_rows', sa.BigInteger(), nullable=True),
    sa.Column('overflow', sa.Boolean(), nullable=True),
    sa.Column('worker', sa.Text(), nullable=True),
    sa.Column('heartbeat', sa.DateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.CheckConstraint("phase IN ('PENDING', 'QUEUED', 'EXECUTING', 'COMPLETED', 'ERROR', 'ABORTED', 'UNKNOWN', 'HELD', 'SUSPENDED', 'ARCHIVED')", name=op.f('ck_uws_jobs_phase')),
    sa.PrimaryKeyConstraint('job_id', name=op.f('pk_uws_jobs')),
    schema='latentvo_ops',
    comment='Asynchronous TAP jobs (UWS 1.1)'
    )
    op.create_index('ix_uws_jobs_destruction', 'uws_jobs', ['destruction'], unique=False, schema='latentvo_ops')
    op.create_index('ix_uws_jobs_phase_creation', 'uws_jobs', ['phase', 'creation_time'], unique=False, schema='latentvo_ops')
    op.create_table('uws_job_uploads',
    sa.Column('job_id', sa.Text(), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('content', sa.LargeBinary(), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['latentvo_ops.uws_jobs.job_id'], name=op.f('fk_uws_job_uploads_job_id_uws_jobs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('job_id', 'name', name=op.f('pk_uws_job_uploads')),
    schema='latentvo_ops',
    comment='Inline upload content of asynchronous TAP jobs (param: URIs)'
    )


def downgrade() -> None:
    op.drop_table('uws_job_uploads', schema='latentvo_ops')
    op.drop_index('ix_uws_jobs_phase_creation', table_name='uws_jobs', schema='latentvo_ops')
    op.drop_index('ix_uws_jobs_destruction', table_name='uws_jobs', schema='latentvo_ops')
    op.drop_table('uws_jobs', schema='latentvo_ops')
    op.drop_table('published_catalogues', schema='latentvo_ops')
