"""UWS job owners and stored bytes; inline uploads move from the database to files

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07

``uws_jobs.owner_key`` files each job under its owner (an authenticated user, or
the hash of an anonymous owner token) for the job list and the quotas;
``upload_bytes`` is what its inline upload files take, so quotas are
sums over the job rows. Inline upload content leaves ``uws_job_uploads`` for
files in the job's folder of the result store: deleted rows left their bytes in
the table's files, and a migration cannot reach that folder to move them, so
unfinished jobs with inline uploads end in ERROR (their owners submit them
again); finished jobs lose only the copies of their uploads. The downgrade does
the same to unfinished jobs whose uploads are files.
"""

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

_UNFINISHED = "('PENDING', 'QUEUED', 'EXECUTING', 'HELD', 'SUSPENDED')"


def _fail_unfinished(which: str, message: str) -> None:
    op.execute(f"UPDATE latentvo_ops.uws_jobs SET phase = 'ERROR', end_time = now(), "
               f"error_type = 'fatal', error_message = '{message}' "
               f"WHERE phase IN {_UNFINISHED} AND {which}")


def upgrade() -> None:
    op.add_column('uws_jobs', sa.Column('owner_key', sa.Text(), nullable=True),
                  schema='latentvo_ops')
    op.add_column('uws_jobs', sa.Column('upload_bytes', sa.BigInteger(), server_default='0',
                                        nullable=False), schema='latentvo_ops')
    op.create_index('ix_uws_jobs_owner_creation', 'uws_jobs', ['owner_key', 'creation_time'],
                    unique=False, schema='latentvo_ops')
    _fail_unfinished("job_id IN (SELECT job_id FROM latentvo_ops.uws_job_uploads)",
                     "the service was upgraded and no longer has this job''s inline upload; "
                     "submit the job again")
    op.drop_table('uws_job_uploads', schema='latentvo_ops')


def downgrade() -> None:
    op.create_table('uws_job_uploads',
    sa.Column('job_id', sa.Text(), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('content', sa.LargeBinary(), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['latentvo_ops.uws_jobs.job_id'], name=op.f('fk_uws_job_uploads_job_id_uws_jobs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('job_id', 'name', name=op.f('pk_uws_job_uploads')),
    schema='latentvo_ops',
    comment='Inline upload content of asynchronous TAP jobs (param: URIs)'
    )
    _fail_unfinished("upload_bytes > 0", "the service was downgraded and no longer has this "
                     "job''s inline upload; submit the job again")
    op.drop_index('ix_uws_jobs_owner_creation', table_name='uws_jobs', schema='latentvo_ops')
    op.drop_column('uws_jobs', 'upload_bytes', schema='latentvo_ops')
    op.drop_column('uws_jobs', 'owner_key', schema='latentvo_ops')
