"""The tables of a data release, declared from the live tables' declarations.

A release called ``dr1`` is a PostgreSQL schema ``dr1`` holding frozen copies of
``latentvo.spectra``, ``models``, ``latent``, ``labels``, ``latent_dimensions`` and
``latent_mutual_information`` (only the rows of the release's models), and a view
``dr1.obscore`` with the columns of ``ivoa.obscore`` over them. The copies are
declared here by re-targeting the live declarations to the release's schema, so
their columns, VO metadata, sky position and indexes (HEALPix, declination, sky
zones: cones and cross-matches stay fast) are the live tables' own; only the table
descriptions change, to name the release.

The release's name is also its ADQL schema, so it must be a plain lower-case
identifier that is no schema of the service, of PostgreSQL or of ADQL.

Because the frozen tables are described by the live declarations, a migration that
adds, drops or retypes a column of a frozen table must do the same to every release
schema (``SELECT name FROM latentvo_ops.releases WHERE state = 'published'``), e.g. add
the column holding NULL: TAP_SCHEMA would otherwise list a column a release lacks.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime

import sqlalchemy as sa

from schema.adql_reserved import RESERVED_WORDS
from schema.catalogue_declaration import RESERVED_SCHEMAS
from schema.obscore import DATALINK_LINKS_PATH, PUBLIC_BASE_SETTING, URL_ESCAPES, obscore
from schema.tables import (
    LABEL_REGRESSOR,
    PUBLISHED_SCHEMA,
    labels,
    latent,
    latent_dimensions,
    latent_mutual_information,
    metadata,
    models,
    spectra,
)
from schema.vo import table_meta

FROZEN_TABLES: tuple[sa.Table, ...] = (spectra, models, latent, labels, latent_dimensions,
                                       latent_mutual_information)
"""The live tables a release copies, parents before the tables referring to them."""

RELEASE_TABLE_INDEX = 200
"""Added to a table's ``table_index``: TAP_SCHEMA and VOSI list releases after the live data."""

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
RESERVED_RELEASE_NAMES = frozenset(RESERVED_SCHEMAS | {"rr", "tap_upload", "pg_toast"})


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a release (as a schema), or None when it can.

    Existing schemas and releases are the database's business (the caller checks them).
    """
    if not NAME_PATTERN.match(name):
        return ("a release name is a lower-case SQL identifier: a letter, then letters, "
                "digits or '_' (at most 63)")
    if name in RESERVED_RELEASE_NAMES or name.startswith("pg_"):
        return f"{name!r} is a schema of the service or of PostgreSQL"
    if name.upper() in RESERVED_WORDS:
        return f"{name!r} is an ADQL reserved word: queries could not name its tables"
    return None


def schema_description(name: str, title: str, created: datetime) -> str:
    """What TAP_SCHEMA.schemas says about the release's schema."""
    return (f"Data release {name}: {title}. Spectra, ML products and models frozen on "
            f"{created:%Y-%m-%d}: later ingests, inference or models do not change them "
            f"(the current data are in {PUBLISHED_SCHEMA} and ivoa.obscore)")


def _release_copy(table: sa.Table, frozen: sa.MetaData, name: str) -> sa.Table:
    """``table`` declared in schema ``name``, its description naming the release."""
    copy = table.to_metadata(frozen, schema=name)
    vo = table_meta(table)
    copy.info = {"vo": replace(
        vo, description=f"Data release {name}: {vo.description} (frozen copy of "
        f"{table.schema}.{table.name})", table_index=RELEASE_TABLE_INDEX + vo.table_index)}
    copy.comment = copy.info["vo"].description
    return copy


def frozen_tables(name: str) -> dict[str, sa.Table]:
    """The release's copies of :data:`FROZEN_TABLES`, by table name, in that order."""
    frozen = sa.MetaData(naming_convention=metadata.naming_convention)
    return {t.name: _release_copy(t, frozen, name) for t in FROZEN_TABLES}


def release_tables(name: str) -> list[sa.Table]:
    """Everything release ``name`` publishes: its frozen tables and its ObsCore view.

    Each carries the live table's VO metadata (columns, sky position) with a description
    naming the release, and is listed after the live tables (:data:`RELEASE_TABLE_INDEX`).
    """
    tables = list(frozen_tables(name).values())
    view = _release_copy(obscore, tables[0].metadata, name)
    return [*tables, view]


def _escaped_did(column: str) -> str:
    """SQL escaping a publisher DID for a URL query value, as ``ivoa.obscore`` does."""
    sql = column
    for char, code in URL_ESCAPES:
        sql = f"replace({sql}, '{char}', '{code}')"
    return sql


def obscore_view_sql(name: str) -> str:
    """``CREATE VIEW <name>.obscore``: ``ivoa.obscore``'s columns over the frozen tables.

    ``obs_collection`` is the release's name; the label columns hold the predictions of
    the release's newest label model (its own rank 1, by the rule of
    :data:`schema.tables.MODEL_RANK`). ``access_url`` is built per query like the live
    view's (:data:`schema.obscore.PUBLIC_BASE_SETTING`).
    """
    problem = name_problem(name)
    if problem:  # the name is written into the SQL
        raise ValueError(problem)
    label_model = (f"(SELECT m.model_id FROM {name}.models AS m WHERE m.kind = "
                   f"'{LABEL_REGRESSOR}' ORDER BY m.created_at DESC, m.model_id DESC LIMIT 1)")
    return f"""
CREATE VIEW {name}.obscore AS
SELECT
    'spectrum'::text AS dataproduct_type,
    2 AS calib_level,
    '{name}'::text AS obs_collection,
    s.obs_id,
    s.obs_publisher_did,
    coalesce(current_setting('{PUBLIC_BASE_SETTING}', true), '')
        || '{DATALINK_LINKS_PATH}?ID=' || {_escaped_did('s.obs_publisher_did')} AS access_url,
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
FROM {name}.spectra AS s
LEFT JOIN {name}.labels AS l
    ON l.spectrum_id = s.spectrum_id
   AND l.model_id = {label_model}
"""
