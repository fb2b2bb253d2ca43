"""The single declaration of latentvo's tables and its renderings (DDL, TAP_SCHEMA)."""

from schema import obscore, tables, tap_schema, uws  # noqa: F401  (registers every table on the metadata)
