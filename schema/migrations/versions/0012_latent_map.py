"""the 2-D map of each latent space: latentvo.latent_map

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07

One row per (autoencoder, mapped spectrum): the t-SNE coordinates that ``latentvo ml
analyse`` computes from a seeded sample of the model's latent vectors and the explorer
page (``/explore``) draws. A published table rather than a file beside the artifact: the
web process reads it as the read-only role like the other analysis tables, it follows the
model's deletion (ON DELETE CASCADE) and TAP users can join it to labels.
"""

import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('latent_map',
    sa.Column('model_id', sa.Text(), nullable=False,
              comment='Autoencoder whose latent space the map shows'),
    sa.Column('spectrum_id', sa.BigInteger(), nullable=False,
              comment='Spectrum the point stands for'),
    sa.Column('x', sa.REAL(), nullable=False,
              comment='First coordinate of the spectrum in the 2-D map (t-SNE embedding of '
                      'the latent vectors; arbitrary units)'),
    sa.Column('y', sa.REAL(), nullable=False,
              comment='Second coordinate of the spectrum in the 2-D map (t-SNE embedding of '
                      'the latent vectors; arbitrary units)'),
    sa.ForeignKeyConstraint(['model_id'], ['latentvo.models.model_id'],
                            name=op.f('fk_latent_map_model_id_models'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['spectrum_id'], ['latentvo.spectra.spectrum_id'],
                            name=op.f('fk_latent_map_spectrum_id_spectra'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('model_id', 'spectrum_id', name=op.f('pk_latent_map')),
    schema='latentvo',
    comment="Two-dimensional map of each autoencoder's latent space (a seeded sample of its "
            "spectra), written by 'latentvo ml analyse' for the explorer page"
    )


def downgrade() -> None:
    op.drop_table('latent_map', schema='latentvo')
