"""The single declaration of latentvo's tables and its renderings (DDL, TAP_SCHEMA)."""

from schema import model_cards, obscore, ops, regtap, tables, tap_schema  # noqa: F401  (registers every table on the metadata)
