"""ObsCore 1.1: what the TAP service adds to the ``ivoa.obscore`` view.

The view is declared in ``schema.obscore`` and TAP serves it like any published
table (TAP_SCHEMA, ``/tables``, ADQL with HEALPix cones on ``s_ra``/``s_dec``).
Its ``access_url`` is ``<public base URL>/datalink/links?ID=<obs_publisher_did>``,
where the base is read from the transaction setting
``schema.obscore.PUBLIC_BASE_SETTING``: :func:`access_url_setup` is the statement
every TAP query runs first, with the base of the request that asked for it
(``vo_service.urls``), so the URLs are those of the request and never stale, in
the select list as in WHERE clauses.

:data:`DATA_MODEL` is the ObsCore data-model IVOID the TAP capability must
declare (``<dataModel ivo-id=...>``).
"""

from __future__ import annotations

from schema.obscore import OBSCORE_DATA_MODEL, PUBLIC_BASE_SETTING

DATA_MODEL = OBSCORE_DATA_MODEL
DATA_MODEL_NAME = "ObsCore-1.1"


def data_model_xml() -> str:
    """The TAPRegExt element for the TAP capability (taplint's OBS stage needs it)."""
    return f'<dataModel ivo-id="{DATA_MODEL}">{DATA_MODEL_NAME}</dataModel>'


def access_url_setup(base: str) -> str:
    """The SQL that makes ``ivoa.obscore.access_url`` start with ``base`` in this transaction.

    ``base`` comes from configuration or from the request's Host header, so it is
    written as a properly quoted literal (standard_conforming_strings: only the
    quote is special); a NUL cannot be in a PostgreSQL string and is refused.
    """
    if "\x00" in base:
        raise ValueError("a base URL cannot contain NUL")
    literal = "'" + base.replace("'", "''") + "'"
    return f"SET LOCAL {PUBLIC_BASE_SETTING} = {literal}"
