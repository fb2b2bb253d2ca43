"""The single declaration of latentvo's database tables.

Published tables (schema ``latentvo``) carry VO metadata and appear in
TAP_SCHEMA; operational tables (schema ``latentvo_ops``) are for the jobs that
fill the archive and are never visible to the read-only role.

Units follow the VO conventions (VOUnits): angles in deg, wavelengths in m,
times as MJD in d, exposure in s. UCDs are from the UCD1+ controlled list;
``tests/test_schema.py`` checks both.
"""

from __future__ import annotations

import sqlalchemy as sa
from pgvector.sqlalchemy import Vector

from schema.sky_zones import zone_index
from schema.vo import HEALPIX_DEPTH, PositionIndex, VOTable, vo_column, vo_table

PUBLISHED_SCHEMA = "latentvo"
OPS_SCHEMA = "latentvo_ops"

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# --------------------------------------------------------------------------
# spectra: one row per observed spectrum (ObsCore/SSA fields)
# --------------------------------------------------------------------------

spectra = vo_table(
    "spectra",
    metadata,
    vo_column(
        "spectrum_id", sa.BigInteger, sa.Identity(), primary_key=True,
        description="Internal identifier of the spectrum in this service",
        ucd="meta.id;meta.main", principal=True,
    ),
    vo_column(
        "obs_publisher_did", sa.Text, nullable=False, unique=True,
        description="IVOA publisher dataset identifier of the spectrum",
        ucd="meta.ref.ivoid", utype="obscore:Curation.PublisherDID", principal=True, std=True,
    ),
    vo_column(
        "obs_id", sa.Text, nullable=False, unique=True,
        description="Identifier of the observation as given by its file",
        ucd="meta.id", utype="obscore:DataID.observationID", std=True,
    ),
    vo_column(
        "obs_collection", sa.Text, nullable=False,
        description="Name of the data collection the spectrum belongs to",
        ucd="meta.id", utype="obscore:DataID.Collection", std=True,
    ),
    vo_column(
        "target_name", sa.Text, index=True,
        description="Name of the observed target",
        ucd="meta.id;src", utype="obscore:Target.Name", principal=True, std=True,
    ),
    vo_column(
        "s_ra", sa.Double, nullable=False,
        description="Right ascension (ICRS) of the observed position",
        unit="deg", ucd="pos.eq.ra;meta.main",
        utype="obscore:Char.SpatialAxis.Coverage.Location.Coordinates.Position2D.Value2.C1",
        principal=True, std=True,
    ),
    vo_column(
        "s_dec", sa.Double, nullable=False, index=True,
        description="Declination (ICRS) of the observed position",
        unit="deg", ucd="pos.eq.dec;meta.main",
        utype="obscore:Char.SpatialAxis.Coverage.Location.Coordinates.Position2D.Value2.C2",
        principal=True, std=True,
    ),
    vo_column(
        "healpix_index", sa.BigInteger, nullable=False, index=True,
        description=f"NESTED HEALPix index of the position at order {HEALPIX_DEPTH} "
        "(positional search)",
        ucd="pos.healpix",
    ),
    vo_column(
        "t_min", sa.Double,
        description="Start of the exposure (MJD, UTC)",
        unit="d", ucd="time.start;obs.exposure",
        utype="obscore:Char.TimeAxis.Coverage.Bounds.Limits.StartTime", std=True,
    ),
    vo_column(
        "t_max", sa.Double,
        description="End of the exposure (MJD, UTC)",
        unit="d", ucd="time.end;obs.exposure",
        utype="obscore:Char.TimeAxis.Coverage.Bounds.Limits.StopTime", std=True,
    ),
    vo_column(
        "t_exptime", sa.Double,
        description="Total exposure time",
        unit="s", ucd="time.duration;obs.exposure",
        utype="obscore:Char.TimeAxis.Coverage.Support.Extent", std=True,
    ),
    vo_column(
        "em_min", sa.Double, nullable=False,
        description="Shortest wavelength covered by the spectrum",
        unit="m", ucd="em.wl;stat.min",
        utype="obscore:Char.SpectralAxis.Coverage.Bounds.Limits.LoLimit", principal=True, std=True,
    ),
    vo_column(
        "em_max", sa.Double, nullable=False,
        description="Longest wavelength covered by the spectrum",
        unit="m", ucd="em.wl;stat.max",
        utype="obscore:Char.SpectralAxis.Coverage.Bounds.Limits.HiLimit", principal=True, std=True,
    ),
    vo_column(
        "em_res_power", sa.Double,
        description="Spectral resolving power lambda/delta lambda",
        ucd="spect.resolution",
        utype="obscore:Char.SpectralAxis.Resolution.ResolPower.refVal", std=True,
    ),
    vo_column(
        "em_xel", sa.Integer, nullable=False,
        description="Number of pixels along the spectral axis",
        ucd="meta.number", utype="obscore:Char.SpectralAxis.numBins", std=True,
    ),
    vo_column(
        "snr", sa.REAL,
        description="Median signal-to-noise ratio per pixel",
        ucd="stat.snr", principal=True,
    ),
    vo_column(
        "instrument_name", sa.Text,
        description="Name of the instrument that took the spectrum",
        ucd="meta.id;instr", utype="obscore:Provenance.ObsConfig.Instrument.name", std=True,
    ),
    vo_column(
        "facility_name", sa.Text,
        description="Name of the telescope or facility",
        ucd="meta.id;instr.tel", utype="obscore:Provenance.ObsConfig.Facility.name", std=True,
    ),
    vo_column(
        "flux_unit", sa.Text,
        description="Unit of the flux values in the spectrum file",
        ucd="meta.unit",
    ),
    vo_column(
        "spec_frame", sa.Text,
        description="Wavelength frame of the file: air or vacuum",
        ucd="meta.code",
    ),
    vo_column(
        "source_format", sa.Text, nullable=False,
        description="Format of the original file (eso-phase3, fits-1d-wcs, sdss, "
        "spectrum-votable)",
        ucd="meta.code.class",
    ),
    vo_column(
        "access_format", sa.Text, nullable=False,
        description="MIME type of the original file",
        ucd="meta.code.mime", utype="obscore:Access.Format", std=True,
    ),
    vo_column(
        "access_estsize", sa.BigInteger, nullable=False,
        description="Size of the original file",
        unit="kbyte", ucd="phys.size;meta.file", utype="obscore:Access.Size", std=True,
    ),
    vo_column(
        "file_sha256", sa.Text, nullable=False, unique=True,
        description="SHA-256 checksum of the original file (hex)",
        ucd="meta.id;meta.file",
    ),
    vo_column(
        "file_name", sa.Text, nullable=False,
        description="Name of the original file when it was ingested",
        ucd="meta.id;meta.file",
    ),
    vo_column(
        "release", sa.Text, nullable=False,
        description="Data release the spectrum belongs to",
        ucd="meta.version",
    ),
    vo_column(
        "ingested_at", sa.DateTime(timezone=True), nullable=False,
        server_default=sa.func.now(),
        description="When the spectrum was ingested (UTC)",
        ucd="time.creation;meta.dataset",
    ),
    zone_index("spectra", "s_ra", "s_dec"),
    schema=PUBLISHED_SCHEMA,
    vo=VOTable(
        description="Observed 1D spectra: one row per spectrum with its observation and "
        "access metadata",
        position=PositionIndex(ra="s_ra", dec="s_dec", healpix="healpix_index"),
        table_index=10,
    ),
)

# --------------------------------------------------------------------------
# model registry
# --------------------------------------------------------------------------

AUTOENCODER = "autoencoder"
LABEL_REGRESSOR = "label-regressor"
MODEL_KINDS = (AUTOENCODER, LABEL_REGRESSOR)
"""The values of ``models.kind``: the ML jobs write them, the services select by them."""

models = vo_table(
    "models",
    metadata,
    vo_column(
        "model_id", sa.Text, primary_key=True,
        description="Identifier of the trained model",
        ucd="meta.id;meta.software", principal=True,
    ),
    vo_column(
        "kind", sa.Text, nullable=False,
        description=f"Model kind: {' or '.join(MODEL_KINDS)}",
        ucd="meta.code.class", principal=True,
    ),
    vo_column(
        "architecture", sa.Text, nullable=False,
        description="Network architecture (JSON)", ucd="meta.note",
    ),
    vo_column(
        "hyperparameters", sa.Text, nullable=False,
        description="Training hyperparameters (JSON)", ucd="meta.note",
    ),
    vo_column(
        "latent_dim", sa.Integer,
        description="Size of the latent vector (autoencoders)", ucd="meta.number",
        principal=True,
    ),
    vo_column(
        "wavelength_grid", sa.Text, nullable=False,
        description="Wavelength grid and normalisation the model works on (JSON)",
        ucd="meta.note",
    ),
    vo_column(
        "training_selection", sa.Text, nullable=False,
        description="How the training spectra were selected", ucd="meta.note",
    ),
    vo_column(
        "training_checksum", sa.Text, nullable=False,
        description="SHA-256 over the ordered training spectra identifiers and labels",
        ucd="meta.id",
    ),
    vo_column(
        "training_size", sa.Integer,
        description="Number of training spectra", ucd="meta.number",
    ),
    vo_column(
        "reference_label_source", sa.Text,
        description="Reference-label set the model was trained on", ucd="meta.ref",
    ),
    vo_column(
        "base_model_id", sa.Text,
        description="Model this one builds on (e.g. the autoencoder of a label model)",
        ucd="meta.id",
    ),
    vo_column(
        "code_version", sa.Text, nullable=False,
        description="Version of latentvo that trained the model", ucd="meta.version",
    ),
    vo_column(
        "random_seed", sa.BigInteger, nullable=False,
        description="Random seed of the training run", ucd="meta.code",
    ),
    vo_column(
        "metrics", sa.Text, nullable=False,
        description="Validation metrics (JSON)", ucd="meta.note",
    ),
    vo_column(
        "distance_metric", sa.Text,
        description="Latent-space distance its similarity index uses (cosine or l2)",
        ucd="meta.code",
    ),
    vo_column(
        "artifact_path", sa.Text, nullable=False,
        description="Where the model artifact is stored, relative to the data directory",
        ucd="meta.ref.url",
    ),
    vo_column(
        "artifact_sha256", sa.Text, nullable=False,
        description="SHA-256 checksum of the model artifact", ucd="meta.id;meta.file",
    ),
    vo_column(
        "created_at", sa.DateTime(timezone=True), nullable=False,
        server_default=sa.func.now(),
        description="When the model was registered (UTC)", ucd="time.creation",
    ),
    schema=PUBLISHED_SCHEMA,
    vo=VOTable(
        description="Registry of the trained models with their provenance and metrics",
        table_index=40,
    ),
)

# --------------------------------------------------------------------------
# ML products
# --------------------------------------------------------------------------

latent = vo_table(
    "latent",
    metadata,
    vo_column(
        "spectrum_id", sa.BigInteger,
        sa.ForeignKey(spectra.c.spectrum_id, ondelete="CASCADE"), primary_key=True,
        description="Spectrum the latent vector encodes", ucd="meta.id;meta.main",
        principal=True,
    ),
    vo_column(
        "model_id", sa.Text, sa.ForeignKey(models.c.model_id), primary_key=True,
        description="Autoencoder that produced the vector", ucd="meta.id;meta.software",
        principal=True,
    ),
    vo_column(
        "vec", Vector(), nullable=False,
        description="Latent vector of the spectrum",
        ucd="stat.param;meta.modelled", principal=True,
    ),
    schema=PUBLISHED_SCHEMA,
    vo=VOTable(
        description="Latent vectors of the spectra, one per spectrum and autoencoder",
        table_index=30,
    ),
)

latent_dimensions = vo_table(
    "latent_dimensions",
    metadata,
    vo_column(
        "model_id", sa.Text, sa.ForeignKey(models.c.model_id, ondelete="CASCADE"),
        primary_key=True,
        description="Autoencoder the statistics belong to", ucd="meta.id", principal=True,
    ),
    vo_column(
        "dim", sa.Integer, primary_key=True,
        description="Latent dimension (0-based index into vec)", ucd="meta.number",
        principal=True,
    ),
    vo_column(
        "mean", sa.Double,
        description="Mean of the dimension over all encoded spectra", ucd="stat.param;stat.mean",
    ),
    vo_column(
        "stddev", sa.Double,
        description="Standard deviation of the dimension over all encoded spectra",
        ucd="stat.stdev", principal=True,
    ),
    vo_column(
        "information", sa.Double,
        description="Information content of the dimension (see the model report)",
        ucd="stat.value", principal=True,
    ),
    vo_column(
        "informative", sa.Boolean, nullable=False,
        description="Whether the dimension carries information",
        ucd="meta.code", principal=True,
    ),
    schema=PUBLISHED_SCHEMA,
    vo=VOTable(description="Per-dimension statistics of each latent space", table_index=50),
)

latent_mutual_information = vo_table(
    "latent_mutual_information",
    metadata,
    vo_column(
        "model_id", sa.Text, sa.ForeignKey(models.c.model_id, ondelete="CASCADE"),
        primary_key=True,
        description="Autoencoder the estimate belongs to", ucd="meta.id", principal=True,
    ),
    vo_column(
        "basis", sa.Text, primary_key=True,
        description="Which components: 'latent' (the autoencoder) or 'pca' (PCA of the "
        "same spectra, for comparison)",
        ucd="meta.code", principal=True,
    ),
    vo_column(
        "component", sa.Integer, primary_key=True,
        description="Latent dimension or PCA component (0-based)", ucd="meta.number",
        principal=True,
    ),
    vo_column(
        "quantity", sa.Text, primary_key=True,
        description="Physical quantity: teff, logg, mh, alpha_m or rv",
        ucd="meta.id", principal=True,
    ),
    vo_column(
        "mutual_information", sa.Double, nullable=False,
        description="Estimated mutual information between component and quantity, in nats",
        ucd="stat.value", principal=True,
    ),
    schema=PUBLISHED_SCHEMA,
    vo=VOTable(
        description="Mutual information between latent dimensions (or PCA components) and "
        "physical quantities",
        table_index=60,
    ),
)

latent_map = vo_table(
    "latent_map",
    metadata,
    vo_column(
        "model_id", sa.Text, sa.ForeignKey(models.c.model_id, ondelete="CASCADE"),
        primary_key=True,
        description="Autoencoder whose latent space the map shows", ucd="meta.id",
        principal=True,
    ),
    vo_column(
        "spectrum_id", sa.BigInteger,
        sa.ForeignKey(spectra.c.spectrum_id, ondelete="CASCADE"), primary_key=True,
        description="Spectrum the point stands for", ucd="meta.id;meta.main", principal=True,
    ),
    vo_column(
        "x", sa.REAL, nullable=False,
        description="First coordinate of the spectrum in the 2-D map (t-SNE embedding of "
        "the latent vectors; arbitrary units)", ucd="pos.cartesian.x", principal=True,
    ),
    vo_column(
        "y", sa.REAL, nullable=False,
        description="Second coordinate of the spectrum in the 2-D map (t-SNE embedding of "
        "the latent vectors; arbitrary units)", ucd="pos.cartesian.y", principal=True,
    ),
    schema=PUBLISHED_SCHEMA,
    vo=VOTable(
        description="Two-dimensional map of each autoencoder's latent space (a seeded "
        "sample of its spectra), written by 'latentvo ml analyse' for the explorer page",
        table_index=65,
    ),
)

labels = vo_table(
    "labels",
    metadata,
    vo_column(
        "spectrum_id", sa.BigInteger,
        sa.ForeignKey(spectra.c.spectrum_id, ondelete="CASCADE"), primary_key=True,
        description="Spectrum the labels were predicted for", ucd="meta.id;meta.main",
        principal=True,
    ),
    vo_column(
        "model_id", sa.Text, sa.ForeignKey(models.c.model_id), primary_key=True,
        description="Label model that made the prediction", ucd="meta.id;meta.software",
        principal=True,
    ),
    vo_column(
        "teff", sa.REAL, description="Predicted effective temperature",
        unit="K", ucd="phys.temperature.effective;meta.modelled", principal=True,
    ),
    vo_column(
        "teff_err", sa.REAL, description="Uncertainty (1 sigma) of teff",
        unit="K", ucd="stat.error;phys.temperature.effective", principal=True,
    ),
    vo_column(
        "logg", sa.REAL, description="Predicted surface gravity log10(g / (cm s-2))",
        unit="log(cm.s**-2)", ucd="phys.gravity;meta.modelled", principal=True,
    ),
    vo_column(
        "logg_err", sa.REAL, description="Uncertainty (1 sigma) of logg",
        unit="log(cm.s**-2)", ucd="stat.error;phys.gravity", principal=True,
    ),
    vo_column(
        "mh", sa.REAL, description="Predicted metallicity [M/H] in dex",
        ucd="phys.abund.Z;meta.modelled", principal=True,
    ),
    vo_column(
        "mh_err", sa.REAL, description="Uncertainty (1 sigma) of mh in dex",
        ucd="stat.error;phys.abund.Z", principal=True,
    ),
    vo_column(
        "alpha_m", sa.REAL, description="Predicted alpha-element enhancement [alpha/M] in dex",
        ucd="phys.abund;meta.modelled",
    ),
    vo_column(
        "alpha_m_err", sa.REAL, description="Uncertainty (1 sigma) of alpha_m in dex",
        ucd="stat.error;phys.abund",
    ),
    vo_column(
        "domain_score", sa.REAL,
        description="Distance of the spectrum from the training sample in latent space, "
        "in units of the training sample's own spread (larger is further out)",
        ucd="stat.value;meta.modelled", principal=True,
    ),
    vo_column(
        "in_domain", sa.Boolean, nullable=False,
        description="True when the spectrum lies within the model's training domain",
        ucd="meta.code.qual", principal=True,
    ),
    schema=PUBLISHED_SCHEMA,
    vo=VOTable(
        description="Stellar labels predicted by the label models, with uncertainties and "
        "a training-domain flag",
        table_index=20,
    ),
)

# str(): SQLAlchemy's names are a str subclass that torch.load (weights only) refuses
# in model artifacts, which record the quantities.
LABEL_QUANTITIES = tuple(str(c.name) for c in labels.c if f"{c.name}_err" in labels.c)
"""The quantities a label model predicts: the ``labels`` columns with a ``<name>_err``."""
LABEL_VALUES = tuple(str(c.name) for c in labels.c if not c.primary_key)
"""What a label model writes for a spectrum: quantities, errors and the domain flags."""

MODEL_RANK = f"{PUBLISHED_SCHEMA}.model_rank"
"""View ranking the models of each kind, newest first (migration 0006).

``rank`` 1 is the kind's *current* model, the one SSA, ObsCore and DataLink serve
when a request names none: the latest ``created_at``, ties broken by the greater
``model_id``. Every query that needs "the current model", or models in that order,
reads this view, so the rule has one home.
"""


def current_model_sql(kind: str) -> str:
    """A scalar SQL subquery: the current model of ``kind`` (NULL when there is none)."""
    if kind not in MODEL_KINDS:
        raise ValueError(f"unknown model kind {kind!r}")
    return f"(SELECT model_id FROM {MODEL_RANK} WHERE kind = '{kind}' AND rank = 1)"


# --------------------------------------------------------------------------
# operational tables (not published)
# --------------------------------------------------------------------------

ingest_files = sa.Table(
    "ingest_files",
    metadata,
    sa.Column("file_sha256", sa.Text, primary_key=True),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),  # ingested | rejected
    sa.Column("reason", sa.Text),
    sa.Column("spectrum_id", sa.BigInteger),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False,
              server_default=sa.func.now()),
    sa.CheckConstraint("status IN ('ingested', 'rejected')", name="status"),
    schema=OPS_SCHEMA,
    comment="Every file the ingest has seen, by content checksum, with its outcome",
)

reference_label_sets = sa.Table(
    "reference_label_sets",
    metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("source_path", sa.Text, nullable=False),
    sa.Column("source_sha256", sa.Text, nullable=False),
    sa.Column("key_column", sa.Text, nullable=False),  # target_name or obs_id
    sa.Column("n_rows", sa.Integer, nullable=False),
    sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=False,
              server_default=sa.func.now()),
    schema=OPS_SCHEMA,
    comment="Reference-label tables (classical spectroscopy) attached for training",
)

reference_labels = sa.Table(
    "reference_labels",
    metadata,
    sa.Column("label_set", sa.Text,
              sa.ForeignKey(reference_label_sets.c.name, ondelete="CASCADE"), primary_key=True),
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("quantity", sa.Text, primary_key=True),
    sa.Column("value", sa.Double, nullable=False),
    sa.Column("error", sa.Double),
    schema=OPS_SCHEMA,
    comment="Reference labels, one row per (object, quantity), keyed as the set says",
)


def published_tables() -> list[sa.Table]:
    """The tables visible to users, in TAP_SCHEMA order."""
    tables = [t for t in metadata.sorted_tables if "vo" in t.info]
    return sorted(tables, key=lambda t: (t.info["vo"].table_index, t.name))
