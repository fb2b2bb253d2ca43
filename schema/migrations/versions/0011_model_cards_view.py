"""model cards: the latentvo.model_cards view, each model with its card's URLs

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07

Hand-written (Alembic does not generate views). ``latentvo.model_cards`` lists every row
of ``latentvo.models`` with ``card_url`` (``<public base URL>/models/<model_id>``, the
HTML model card) and ``card_json_url`` (``.../card.json``). Like
``ivoa.obscore.access_url`` (0005), the base is read per query from the transaction
setting ``latentvo.public_base_url`` that the TAP service sets; without it the URLs
are the paths alone. ``schema.model_cards`` declares the view and says why it is a
view beside ``latentvo.models`` rather than a column of it. Data releases do not
freeze it: a release's models are rows of ``<release>.models``, whose cards are the
live ones at the same ``model_id``.
"""

from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

# Written out rather than imported: a revision must keep creating what it created when
# it was written, whatever the declaration becomes later.
_ESCAPED_ID = ("replace(replace(replace(replace(replace(replace(replace(replace(replace("
               "replace(replace(m.model_id, '%', '%25'), '/', '%2F'), ' ', '%20'), '#', "
               "'%23'), '?', '%3F'), '&', '%26'), '+', '%2B'), '=', '%3D'), '<', '%3C'), "
               "'>', '%3E'), '\"', '%22')")

MODEL_CARDS_VIEW = f"""
CREATE VIEW latentvo.model_cards AS
SELECT m.model_id,
       m.kind,
       coalesce(current_setting('latentvo.public_base_url', true), '') || '/models/'
           || {_ESCAPED_ID} AS card_url,
       coalesce(current_setting('latentvo.public_base_url', true), '') || '/models/'
           || {_ESCAPED_ID} || '/card.json' AS card_json_url
FROM latentvo.models AS m
"""


def upgrade() -> None:
    op.execute(MODEL_CARDS_VIEW)


def downgrade() -> None:
    op.execute("DROP VIEW latentvo.model_cards")
