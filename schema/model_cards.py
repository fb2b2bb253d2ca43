"""``latentvo.model_cards``: each registered model with the URLs of its model card.

The card itself is a page of the web service (``vo_service.model_cards``); this view
makes its address queryable next to ``latentvo.models`` (join on ``model_id``), so a
TAP user who finds a model in the registry or in a product row finds its card.

Why a view beside ``latentvo.models`` rather than a column of it: the URL starts with
the public base URL of the request, which is not data (see ``schema.obscore``). A
generated column cannot read the per-query setting (generation expressions must be
immutable), and turning ``latentvo.models`` itself into a view would take away the
table that the ML jobs write, that foreign keys and data releases copy, and that
operators and tests truncate. So the view reads the transaction setting
:data:`schema.obscore.PUBLIC_BASE_SETTING`, which the TAP service sets for every query,
exactly like ``ivoa.obscore.access_url``; without it (psql, exports) the URLs are the
paths alone. The DDL is hand-written in migration ``0011``.
"""

from __future__ import annotations

import sqlalchemy as sa

from schema.obscore import PUBLIC_BASE_SETTING
from schema.tables import PUBLISHED_SCHEMA, metadata, models
from schema.vo import VOTable, column_meta, vo_column, vo_table

MODELS_PATH = "/models"
"""Where the model cards live under the service's base URL: ``/models/<model_id>``."""
CARD_JSON_NAME = "card.json"
"""The machine-readable card: ``/models/<model_id>/card.json``."""

# Characters of a model id escaped in the card URLs ('%' first). Model ids written by the
# ML jobs are letters, digits, '.', '_' and '-' (ml.model_registry.MODEL_ID_PATTERN), which
# need none; a row written by hand may hold others.
URL_ESCAPES = (("%", "%25"), ("/", "%2F"), (" ", "%20"), ("#", "%23"), ("?", "%3F"),
               ("&", "%26"), ("+", "%2B"), ("=", "%3D"), ("<", "%3C"), (">", "%3E"),
               ('"', "%22"))


def escaped_id_sql(column: str) -> str:
    """SQL escaping ``column`` (a model id) for a URL path segment, as :data:`URL_ESCAPES`."""
    sql = column
    for char, code in URL_ESCAPES:
        sql = f"replace({sql}, '{char}', '{code}')"
    return sql


def view_sql() -> str:
    """``CREATE VIEW latentvo.model_cards`` (migration 0011)."""
    card = (f"coalesce(current_setting('{PUBLIC_BASE_SETTING}', true), '') || "
            f"'{MODELS_PATH}/' || {escaped_id_sql('m.model_id')}")
    return f"""
CREATE VIEW {PUBLISHED_SCHEMA}.model_cards AS
SELECT m.model_id,
       m.kind,
       {card} AS card_url,
       {card} || '/{CARD_JSON_NAME}' AS card_json_url
FROM {PUBLISHED_SCHEMA}.models AS m
"""


model_cards = vo_table(
    "model_cards",
    metadata,
    vo_column(
        "model_id", sa.Text, description="Identifier of the model (latentvo.models.model_id)",
        ucd="meta.id;meta.software", principal=True,
    ),
    vo_column(
        "kind", sa.Text, description=str(column_meta(models.c.kind).description),
        ucd="meta.code.class", principal=True,
    ),
    vo_column(
        "card_url", sa.Text,
        description="Model card of the model (HTML): training data and checksum, label "
        "sets, metrics per S/N bin, calibration, domain definition, intended use and limits",
        ucd="meta.ref.url", principal=True,
    ),
    vo_column(
        "card_json_url", sa.Text,
        description="The same model card as JSON (documented in the service's docs/ml.md)",
        ucd="meta.ref.url", principal=True,
    ),
    schema=PUBLISHED_SCHEMA,
    vo=VOTable(
        description="The model card of each model in latentvo.models (join on model_id): "
        "what it was trained on, how well it does, and where it may be used",
        table_type="view",
        table_index=45,
    ),
)
