"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op
import pgvector.sqlalchemy

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS vector")
    for schema in ("latentvo", "latentvo_ops", "tap_schema"):
        op.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    op.create_table('models',
    sa.Column('model_id', sa.Text(), nullable=False, comment='Identifier of the trained model'),
    sa.Column('kind', sa.Text(), nullable=False, comment='Model kind: autoencoder or label-regressor'),
    sa.Column('architecture', sa.Text(), nullable=False, comment='Network architecture (JSON)'),
    sa.Column('hyperparameters', sa.Text(), nullable=False, comment='Training hyperparameters (JSON)'),
    sa.Column('latent_dim', sa.Integer(), nullable=True, comment='Size of the latent vector (autoencoders)'),
    sa.Column('wavelength_grid', sa.Text(), nullable=False, comment='Wavelength grid and normalisation the model works on (JSON)'),
    sa.Column('training_selection', sa.Text(), nullable=False, comment='How the training spectra were selected'),
    sa.Column('training_checksum', sa.Text(), nullable=False, comment='SHA-256 over the ordered training spectra identifiers and labels'),
    sa.Column('training_size', sa.Integer(), nullable=True, comment='Number of training spectra'),
    sa.Column('reference_label_source', sa.Text(), nullable=True, comment='Reference-label set the model was trained on'),
    sa.Column('base_model_id', sa.Text(), nullable=True, comment='Model this one builds on (e.g. the autoencoder of a label model)'),
    sa.Column('code_version', sa.Text(), nullable=False, comment='Version of latentvo that trained the model'),
    sa.Column('random_seed', sa.BigInteger(), nullable=False, comment='Random seed of the training run'),
    sa.Column('metrics', sa.Text(), nullable=False, comment='Validation metrics (JSON)'),
    sa.Column('distance_metric', sa.Text(), nullable=True, comment='Latent-space distance its similarity index uses (cosine or l2)'),
    sa.Column('artifact_path', sa.Text(), nullable=False, comment='Where the model artifact is stored, relative to the data directory'),
    sa.Column('artifact_sha256', sa.Text(), nullable=False, comment='SHA-256 checksum of the model artifact'),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False, comment='When the model was registered (UTC)'),
    sa.PrimaryKeyConstraint('model_id', name=op.f('pk_models')),
    schema='latentvo',
    comment='Registry of the trained models with their provenance and metrics'
    )
    op.create_table('spectra',
    sa.Column('spectrum_id', sa.BigInteger(), sa.Identity(always=False), nullable=False, comment='Internal identifier of the spectrum in this service'),
    sa.Column('obs_publisher_did', sa.Text(), nullable=False, comment='IVOA publisher dataset identifier of the spectrum'),
    sa.Column('obs_id', sa.Text(), nullable=False, comment='Identifier of the observation as given by its file'),
    sa.Column('obs_collection', sa.Text(), nullable=False, comment='Name of the data collection the spectrum belongs to'),
    sa.Column('target_name', sa.Text(), nullable=True, comment='Name of the observed target'),
    sa.Column('s_ra', sa.Double(), nullable=False, comment='Right ascension (ICRS) of the observed position'),
    sa.Column('s_dec', sa.Double(), nullable=False, comment='Declination (ICRS) of the observed position'),
    sa.Column('healpix_index', sa.BigInteger(), nullable=False, comment='NESTED HEALPix index of the position at order 29 (positional search)'),
    sa.Column('t_min', sa.Double(), nullable=True, comment='Start of the exposure (MJD, UTC)'),
    sa.Column('t_max', sa.Double(), nullable=True, comment='End of the exposure (MJD, UTC)'),
    sa.Column('t_exptime', sa.Double(), nullable=True, comment='Total exposure time'),
    sa.Column('em_min', sa.Double(), nullable=False, comment='Shortest wavelength covered by the spectrum'),
    sa.Column('em_max', sa.Double(), nullable=False, comment='Longest wavelength covered by the spectrum'),
    sa.Column('em_res_power', sa.Double(), nullable=True, comment='Spectral resolving power lambda/delta lambda'),
    sa.Column('em_xel', sa.Integer(), nullable=False, comment='Number of pixels along the spectral axis'),
    sa.Column('snr', sa.REAL(), nullable=True, comment='Median signal-to-noise ratio per pixel'),
    sa.Column('instrument_name', sa.Text(), nullable=True, comment='Name of the instrument that took the spectrum'),
    sa.Column('facility_name', sa.Text(), nullable=True, comment='Name of the telescope or facility'),
    sa.Column('flux_unit', sa.Text(), nullable=True, comment='Unit of the flux values in the spectrum file'),
    sa.Column('spec_frame', sa.Text(), nullable=True, comment='Wavelength frame of the file: air or vacuum'),
    sa.Column('source_format', sa.Text(), nullable=False, comment='Format of the original file (eso-phase3, fits-1d-wcs, sdss, spectrum-votable)'),
    sa.Column('access_format', sa.Text(), nullable=False, comment='MIME type of the original file'),
    sa.Column('access_estsize', sa.BigInteger(), nullable=False, comment='Size of the original file'),
    sa.Column('file_sha256', sa.Text(), nullable=False, comment='SHA-256 checksum of the original file (hex)'),
    sa.Column('file_name', sa.Text(), nullable=False, comment='Name of the original file when it was ingested'),
    sa.Column('release', sa.Text(), nullable=False, comment='Data release the spectrum belongs to'),
    sa.Column('ingested_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False, comment='When the spectrum was ingested (UTC)'),
    sa.PrimaryKeyConstraint('spectrum_id', name=op.f('pk_spectra')),
    sa.UniqueConstraint('file_sha256', name=op.f('uq_spectra_file_sha256')),
    sa.UniqueConstraint('obs_id', name=op.f('uq_spectra_obs_id')),
    sa.UniqueConstraint('obs_publisher_did', name=op.f('uq_spectra_obs_publisher_did')),
    schema='latentvo',
    comment='Observed 1D spectra: one row per spectrum with its observation and access metadata'
    )
    op.create_index(op.f('ix_spectra_healpix_index'), 'spectra', ['healpix_index'], unique=False, schema='latentvo')
    op.create_index(op.f('ix_spectra_target_name'), 'spectra', ['target_name'], unique=False, schema='latentvo')
    op.create_table('ingest_files',
    sa.Column('file_sha256', sa.Text(), nullable=False),
    sa.Column('path', sa.Text(), nullable=False),
    sa.Column('status', sa.Text(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('spectrum_id', sa.BigInteger(), nullable=True),
    sa.Column('recorded_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("status IN ('ingested', 'rejected')", name=op.f('ck_ingest_files_status')),
    sa.PrimaryKeyConstraint('file_sha256', name=op.f('pk_ingest_files')),
    schema='latentvo_ops',
    comment='Every file the ingest has seen, by content checksum, with its outcome'
    )
    op.create_table('reference_label_sets',
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('source_path', sa.Text(), nullable=False),
    sa.Column('source_sha256', sa.Text(), nullable=False),
    sa.Column('key_column', sa.Text(), nullable=False),
    sa.Column('n_rows', sa.Integer(), nullable=False),
    sa.Column('loaded_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_reference_label_sets')),
    schema='latentvo_ops',
    comment='Reference-label tables (classical spectroscopy) attached for training'
    )
    op.create_table('schemas',
    sa.Column('schema_name', sa.Text(), nullable=False, comment='Schema name, as used in queries'),
    sa.Column('utype', sa.Text(), nullable=True, comment='Data model type of the schema'),
    sa.Column('description', sa.Text(), nullable=True, comment='Description of the schema'),
    sa.Column('schema_index', sa.Integer(), nullable=True, comment='Recommended order of the schemas'),
    sa.PrimaryKeyConstraint('schema_name', name=op.f('pk_schemas')),
    schema='tap_schema',
    comment='Schemas published by this service'
    )
    op.create_table('labels',
    sa.Column('spectrum_id', sa.BigInteger(), nullable=False, comment='Spectrum the labels were predicted for'),
    sa.Column('model_id', sa.Text(), nullable=False, comment='Label model that made the prediction'),
    sa.Column('teff', sa.REAL(), nullable=True, comment='Predicted effective temperature'),
    sa.Column('teff_err', sa.REAL(), nullable=True, comment='Uncertainty (1 sigma) of teff'),
    sa.Column('logg', sa.REAL(), nullable=True, comment='Predicted surface gravity log10(g / (cm s-2))'),
    sa.Column('logg_err', sa.REAL(), nullable=True, comment='Uncertainty (1 sigma) of logg'),
    sa.Column('mh', sa.REAL(), nullable=True, comment='Predicted metallicity [M/H] in dex'),
    sa.Column('mh_err', sa.REAL(), nullable=True, comment='Uncertainty (1 sigma) of mh in dex'),
    sa.Column('alpha_m', sa.REAL(), nullable=True, comment='Predicted alpha-element enhancement [alpha/M] in dex'),
    sa.Column('alpha_m_err', sa.REAL(), nullable=True, comment='Uncertainty (1 sigma) of alpha_m in dex'),
    sa.Column('domain_score', sa.REAL(), nullable=True, comment="Distance of the spectrum from the training sample in latent space, in units of the training sample's own spread (larger is further out)"),
    sa.Column('in_domain', sa.Boolean(), nullable=False, comment="True when the spectrum lies within the model's training domain"),
    sa.ForeignKeyConstraint(['model_id'], ['latentvo.models.model_id'], name=op.f('fk_labels_model_id_models')),
    sa.ForeignKeyConstraint(['spectrum_id'], ['latentvo.spectra.spectrum_id'], name=op.f('fk_labels_spectrum_id_spectra'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('spectrum_id', 'model_id', name=op.f('pk_labels')),
    schema='latentvo',
    comment='Stellar labels predicted by the label models, with uncertainties and a training-domain flag'
    )
    op.create_table('latent',
    sa.Column('spectrum_id', sa.BigInteger(), nullable=False, comment='Spectrum the latent vector encodes'),
    sa.Column('model_id', sa.Text(), nullable=False, comment='Autoencoder that produced the vector'),
    sa.Column('vec', pgvector.sqlalchemy.vector.VECTOR(), nullable=False, comment='Latent vector of the spectrum'),
    sa.ForeignKeyConstraint(['model_id'], ['latentvo.models.model_id'], name=op.f('fk_latent_model_id_models')),
    sa.ForeignKeyConstraint(['spectrum_id'], ['latentvo.spectra.spectrum_id'], name=op.f('fk_latent_spectrum_id_spectra'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('spectrum_id', 'model_id', name=op.f('pk_latent')),
    schema='latentvo',
    comment='Latent vectors of the spectra, one per spectrum and autoencoder'
    )
    op.create_table('latent_dimensions',
    sa.Column('model_id', sa.Text(), nullable=False, comment='Autoencoder the statistics belong to'),
    sa.Column('dim', sa.Integer(), nullable=False, comment='Latent dimension (0-based index into vec)'),
    sa.Column('mean', sa.Double(), nullable=True, comment='Mean of the dimension over all encoded spectra'),
    sa.Column('stddev', sa.Double(), nullable=True, comment='Standard deviation of the dimension over all encoded spectra'),
    sa.Column('information', sa.Double(), nullable=True, comment='Information content of the dimension (see the model report)'),
    sa.Column('informative', sa.Boolean(), nullable=False, comment='Whether the dimension carries information'),
    sa.ForeignKeyConstraint(['model_id'], ['latentvo.models.model_id'], name=op.f('fk_latent_dimensions_model_id_models'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('model_id', 'dim', name=op.f('pk_latent_dimensions')),
    schema='latentvo',
    comment='Per-dimension statistics of each latent space'
    )
    op.create_table('latent_mutual_information',
    sa.Column('model_id', sa.Text(), nullable=False, comment='Autoencoder the estimate belongs to'),
    sa.Column('basis', sa.Text(), nullable=False, comment="Which components: 'latent' (the autoencoder) or 'pca' (PCA of the same spectra, for comparison)"),
    sa.Column('component', sa.Integer(), nullable=False, comment='Latent dimension or PCA component (0-based)'),
    sa.Column('quantity', sa.Text(), nullable=False, comment='Physical quantity: teff, logg, mh, alpha_m or rv'),
    sa.Column('mutual_information', sa.Double(), nullable=False, comment='Estimated mutual information between component and quantity, in nats'),
    sa.ForeignKeyConstraint(['model_id'], ['latentvo.models.model_id'], name=op.f('fk_latent_mutual_information_model_id_models'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('model_id', 'basis', 'component', 'quantity', name=op.f('pk_latent_mutual_information')),
    schema='latentvo',
    comment='Mutual information between latent dimensions (or PCA components) and physical quantities'
    )
    op.create_table('reference_labels',
    sa.Column('label_set', sa.Text(), nullable=False),
    sa.Column('key', sa.Text(), nullable=False),
    sa.Column('quantity', sa.Text(), nullable=False),
    sa.Column('value', sa.Double(), nullable=False),
    sa.Column('error', sa.Double(), nullable=True),
    sa.ForeignKeyConstraint(['label_set'], ['latentvo_ops.reference_label_sets.name'], name=op.f('fk_reference_labels_label_set_reference_label_sets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('label_set', 'key', 'quantity', name=op.f('pk_reference_labels')),
    schema='latentvo_ops',
    comment='Reference labels, one row per (object, quantity), keyed as the set says'
    )
    op.create_table('tables',
    sa.Column('schema_name', sa.Text(), nullable=False, comment='Schema the table belongs to'),
    sa.Column('table_name', sa.Text(), nullable=False, comment='Fully qualified table name, as used in queries'),
    sa.Column('table_type', sa.Text(), nullable=False, comment='Either table or view'),
    sa.Column('utype', sa.Text(), nullable=True, comment='Data model type of the table'),
    sa.Column('description', sa.Text(), nullable=True, comment='Description of the table'),
    sa.Column('table_index', sa.Integer(), nullable=True, comment='Recommended order of the tables'),
    sa.ForeignKeyConstraint(['schema_name'], ['tap_schema.schemas.schema_name'], name=op.f('fk_tables_schema_name_schemas')),
    sa.PrimaryKeyConstraint('table_name', name=op.f('pk_tables')),
    schema='tap_schema',
    comment='Tables published by this service'
    )
    op.create_table('columns',
    sa.Column('table_name', sa.Text(), nullable=False, comment="Fully qualified name of the column's table"),
    sa.Column('column_name', sa.Text(), nullable=False, comment='Column name, as used in queries'),
    sa.Column('datatype', sa.Text(), nullable=False, comment='VOTable datatype of the column'),
    sa.Column('arraysize', sa.Text(), nullable=True, comment='VOTable arraysize of the column'),
    sa.Column('xtype', sa.Text(), nullable=True, comment='VOTable/DALI extended type of the column'),
    sa.Column('size', sa.Integer(), nullable=True, comment='Length of a one-dimensional array column (deprecated)'),
    sa.Column('description', sa.Text(), nullable=True, comment='Description of the column'),
    sa.Column('utype', sa.Text(), nullable=True, comment='Data model type of the column'),
    sa.Column('unit', sa.Text(), nullable=True, comment='Unit of the column (VOUnit)'),
    sa.Column('ucd', sa.Text(), nullable=True, comment='Unified content descriptor of the column'),
    sa.Column('indexed', sa.Integer(), nullable=False, comment='1 if the column is indexed, else 0'),
    sa.Column('principal', sa.Integer(), nullable=False, comment='1 if the column is principal, else 0'),
    sa.Column('std', sa.Integer(), nullable=False, comment='1 if the column is defined by a standard, else 0'),
    sa.Column('column_index', sa.Integer(), nullable=True, comment='Recommended order of the columns in the table'),
    sa.ForeignKeyConstraint(['table_name'], ['tap_schema.tables.table_name'], name=op.f('fk_columns_table_name_tables')),
    sa.PrimaryKeyConstraint('table_name', 'column_name', name=op.f('pk_columns')),
    schema='tap_schema',
    comment='Columns of the tables published by this service'
    )
    op.create_table('keys',
    sa.Column('key_id', sa.Text(), nullable=False, comment='Identifier of the foreign key'),
    sa.Column('from_table', sa.Text(), nullable=False, comment='Table holding the foreign key'),
    sa.Column('target_table', sa.Text(), nullable=False, comment='Table the foreign key points to'),
    sa.Column('description', sa.Text(), nullable=True, comment='Description of the foreign key'),
    sa.Column('utype', sa.Text(), nullable=True, comment='Data model type of the foreign key'),
    sa.ForeignKeyConstraint(['from_table'], ['tap_schema.tables.table_name'], name=op.f('fk_keys_from_table_tables')),
    sa.ForeignKeyConstraint(['target_table'], ['tap_schema.tables.table_name'], name=op.f('fk_keys_target_table_tables')),
    sa.PrimaryKeyConstraint('key_id', name=op.f('pk_keys')),
    schema='tap_schema',
    comment='Foreign keys between the published tables'
    )
    op.create_table('key_columns',
    sa.Column('key_id', sa.Text(), nullable=False, comment='Identifier of the foreign key'),
    sa.Column('from_column', sa.Text(), nullable=False, comment='Column in the from_table'),
    sa.Column('target_column', sa.Text(), nullable=False, comment='Column in the target_table'),
    sa.ForeignKeyConstraint(['key_id'], ['tap_schema.keys.key_id'], name=op.f('fk_key_columns_key_id_keys')),
    sa.PrimaryKeyConstraint('key_id', 'from_column', name=op.f('pk_key_columns')),
    schema='tap_schema',
    comment='Columns making up the foreign keys'
    )


def downgrade() -> None:
    op.drop_table('key_columns', schema='tap_schema')
    op.drop_table('keys', schema='tap_schema')
    op.drop_table('columns', schema='tap_schema')
    op.drop_table('tables', schema='tap_schema')
    op.drop_table('reference_labels', schema='latentvo_ops')
    op.drop_table('latent_mutual_information', schema='latentvo')
    op.drop_table('latent_dimensions', schema='latentvo')
    op.drop_table('latent', schema='latentvo')
    op.drop_table('labels', schema='latentvo')
    op.drop_table('schemas', schema='tap_schema')
    op.drop_table('reference_label_sets', schema='latentvo_ops')
    op.drop_table('ingest_files', schema='latentvo_ops')
    op.drop_index(op.f('ix_spectra_target_name'), table_name='spectra', schema='latentvo')
    op.drop_index(op.f('ix_spectra_healpix_index'), table_name='spectra', schema='latentvo')
    op.drop_table('spectra', schema='latentvo')
    op.drop_table('models', schema='latentvo')
