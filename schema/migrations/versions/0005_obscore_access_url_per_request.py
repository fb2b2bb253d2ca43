"""obscore access_url from the request: ivoa.obscore reads the public base URL per query

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07

``ivoa.obscore.access_url`` used to start with a base URL stored in
``latentvo_ops.service_settings`` by the last web process that started, which went
stale whenever processes disagreed or the service was reached under another name.
The view now reads the transaction setting ``latentvo.public_base_url``, which the
TAP service sets for every query to the public base URL of that request
(``vo_service.urls``); without it (psql, exports) access_url is the path alone.
``uws_jobs.public_base_url`` keeps that base for an async job, whose query runs
later in a worker. ``service_settings`` had no other use and goes.
"""

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

# access_url: <public base URL>/datalink/links?ID=<publisher DID with the characters of
# schema.obscore.URL_ESCAPES escaped, '%' first>.
_ESCAPED_DID = ("replace(replace(replace(replace(replace(replace(replace("
                "s.obs_publisher_did, '%', '%25'), ' ', '%20'), '#', '%23'), '&', '%26'), "
                "'+', '%2B'), '?', '%3F'), '=', '%3D')")

OBSCORE_VIEW = f"""
CREATE OR REPLACE VIEW ivoa.obscore AS
SELECT
    'spectrum'::text AS dataproduct_type,
    2 AS calib_level,
    s.obs_collection,
    s.obs_id,
    s.obs_publisher_did,
    coalesce(current_setting('latentvo.public_base_url', true), '')
        || '/datalink/links?ID=' || {_ESCAPED_DID} AS access_url,
    'application/x-votable+xml;content=datalink'::text AS access_format,
    s.access_estsize,
    s.target_name,
    s.s_ra,
    s.s_dec,
    NULL::double precision AS s_fov,
    NULL::text AS s_region,
    NULL::double precision AS s_resolution,
    1::bigint AS s_xel1,
    1::bigint AS s_xel2,
    s.t_min,
    s.t_max,
    s.t_exptime,
    NULL::double precision AS t_resolution,
    1::bigint AS t_xel,
    s.em_min,
    s.em_max,
    s.em_res_power,
    s.em_xel::bigint AS em_xel,
    CASE WHEN lower(coalesce(s.flux_unit, '')) IN ('adu', 'ct', 'count', 'counts', 'electron')
         THEN 'phot.count' ELSE 'phot.flux.density;em.wl' END AS o_ucd,
    NULL::text AS pol_states,
    NULL::bigint AS pol_xel,
    s.facility_name,
    s.instrument_name,
    concat_ws(' ', coalesce(s.target_name, s.obs_id), s.instrument_name, 'spectrum',
              s.obs_id) AS obs_title,
    s.spectrum_id,
    s.healpix_index,
    s.snr,
    l.model_id AS label_model_id,
    l.teff,
    l.teff_err,
    l.logg,
    l.logg_err,
    l.mh,
    l.mh_err,
    l.alpha_m,
    l.alpha_m_err,
    l.domain_score,
    l.in_domain
FROM latentvo.spectra AS s
LEFT JOIN latentvo.labels AS l
    ON l.spectrum_id = s.spectrum_id
   AND l.model_id = (SELECT m.model_id FROM latentvo.models AS m
                     WHERE m.kind = 'label-regressor'
                     ORDER BY m.created_at DESC, m.model_id DESC LIMIT 1)
"""

_STORED_BASE_VIEW = f"""
CREATE OR REPLACE VIEW ivoa.obscore AS
SELECT
    'spectrum'::text AS dataproduct_type,
    2 AS calib_level,
    s.obs_collection,
    s.obs_id,
    s.obs_publisher_did,
    coalesce((SELECT value FROM latentvo_ops.service_settings WHERE name = 'base_url'), '')
        || '/datalink/links?ID=' || {_ESCAPED_DID} AS access_url,
    'application/x-votable+xml;content=datalink'::text AS access_format,
    s.access_estsize,
    s.target_name,
    s.s_ra,
    s.s_dec,
    NULL::double precision AS s_fov,
    NULL::text AS s_region,
    NULL::double precision AS s_resolution,
    1::bigint AS s_xel1,
    1::bigint AS s_xel2,
    s.t_min,
    s.t_max,
    s.t_exptime,
    NULL::double precision AS t_resolution,
    1::bigint AS t_xel,
    s.em_min,
    s.em_max,
    s.em_res_power,
    s.em_xel::bigint AS em_xel,
    CASE WHEN lower(coalesce(s.flux_unit, '')) IN ('adu', 'ct', 'count', 'counts', 'electron')
         THEN 'phot.count' ELSE 'phot.flux.density;em.wl' END AS o_ucd,
    NULL::text AS pol_states,
    NULL::bigint AS pol_xel,
    s.facility_name,
    s.instrument_name,
    concat_ws(' ', coalesce(s.target_name, s.obs_id), s.instrument_name, 'spectrum',
              s.obs_id) AS obs_title,
    s.spectrum_id,
    s.healpix_index,
    s.snr,
    l.model_id AS label_model_id,
    l.teff,
    l.teff_err,
    l.logg,
    l.logg_err,
    l.mh,
    l.mh_err,
    l.alpha_m,
    l.alpha_m_err,
    l.domain_score,
    l.in_domain
FROM latentvo.spectra AS s
LEFT JOIN latentvo.labels AS l
    ON l.spectrum_id = s.spectrum_id
   AND l.model_id = (SELECT m.model_id FROM latentvo.models AS m
                     WHERE m.kind = 'label-regressor'
                     ORDER BY m.created_at DESC, m.model_id DESC LIMIT 1)
"""


def upgrade() -> None:
    op.execute(OBSCORE_VIEW)
    op.drop_table('service_settings', schema='latentvo_ops')
    op.add_column('uws_jobs', sa.Column('public_base_url', sa.Text(), nullable=True),
                  schema='latentvo_ops')


def downgrade() -> None:
    op.drop_column('uws_jobs', 'public_base_url', schema='latentvo_ops')
    op.create_table('service_settings',
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_service_settings')),
    schema='latentvo_ops',
    comment='Service configuration that views need, e.g. the public base URL in ivoa.obscore.access_url; written by the web service when it starts'
    )
    op.execute(_STORED_BASE_VIEW)
