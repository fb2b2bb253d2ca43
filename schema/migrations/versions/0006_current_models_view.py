"""current models: the latentvo.model_rank view, read by ivoa.obscore

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06

Hand-written (Alembic does not generate views). ``latentvo.model_rank`` ranks
the models of each kind, newest first: the latest ``created_at``, ties broken
by the greater ``model_id``; rank 1 is the kind's current model
(``schema.tables.MODEL_RANK``). SSA, DataLink and ``ivoa.obscore`` read "the
current label model" and "models newest first" from it instead of each writing
its own ORDER BY. ``ivoa.obscore`` is re-created with the same columns, its
label join now reading the view (the rule is unchanged for the view: 0003 and 0005 had
the same order written inline).
"""

from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

MODEL_RANK_VIEW = """
CREATE VIEW latentvo.model_rank AS
SELECT m.model_id,
       m.kind,
       row_number() OVER (PARTITION BY m.kind
                          ORDER BY m.created_at DESC, m.model_id DESC) AS rank
FROM latentvo.models AS m
"""

_ESCAPED_DID = ("replace(replace(replace(replace(replace(replace(replace("
                "s.obs_publisher_did, '%', '%25'), ' ', '%20'), '#', '%23'), '&', '%26'), "
                "'+', '%2B'), '?', '%3F'), '=', '%3D')")

# The current label model: the view's rank 1 (upgrade), the inline rule of 0003 and 0005
# (downgrade).
_RANKED = ("(SELECT r.model_id FROM latentvo.model_rank AS r "
           "WHERE r.kind = 'label-regressor' AND r.rank = 1)")
_INLINE = ("(SELECT m.model_id FROM latentvo.models AS m WHERE m.kind = 'label-regressor' "
           "ORDER BY m.created_at DESC, m.model_id DESC LIMIT 1)")


def _obscore_view(current_label_model: str) -> str:
    """0005's ``ivoa.obscore`` (access_url from the per-query public base) with its label
    join on ``current_label_model``."""
    return f"""
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
   AND l.model_id = {current_label_model}
"""


def upgrade() -> None:
    op.execute(MODEL_RANK_VIEW)
    op.execute("COMMENT ON VIEW latentvo.model_rank IS 'The models of each kind, newest "
               "first (latest created_at, then greater model_id); rank 1 is the current "
               "model that services use when a request names none'")
    op.execute(_obscore_view(_RANKED))


def downgrade() -> None:
    op.execute(_obscore_view(_INLINE))
    op.execute("DROP VIEW latentvo.model_rank")
