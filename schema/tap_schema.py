"""TAP_SCHEMA 1.1: declared like every other table, filled from the declarations.

The five TAP_SCHEMA tables describe themselves (they are published tables
too), and their rows are generated from ``Table.info["vo"]`` /
``Column.info["vo"]`` and the tables' foreign keys, so TAP_SCHEMA can never
disagree with the schema the service actually has.
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa

from schema.adql_reserved import RESERVED_WORDS
from schema.regtap import RR_DESCRIPTION, RR_SCHEMA, RR_UTYPE
from schema.tables import metadata
from schema.vo import SQLType, VOTable, column_meta, table_meta, vo_column, vo_table

TAP_SCHEMA = "tap_schema"


def _std(name: str, sqltype: SQLType, description: str, ucd: str, *args: sa.schema.SchemaItem,
         **kw: Any) -> sa.Column[Any]:
    """A TAP_SCHEMA column: principal and defined by the TAP standard."""
    return vo_column(name, sqltype, *args, description=description, ucd=ucd, std=True,
                     principal=True, **kw)


schemas = vo_table(
    "schemas", metadata,
    _std("schema_name", sa.Text, "Schema name, as used in queries", "meta.id", primary_key=True),
    _std("utype", sa.Text, "Data model type of the schema", "meta.ref"),
    _std("description", sa.Text, "Description of the schema", "meta.note"),
    _std("schema_index", sa.Integer, "Recommended order of the schemas", "meta.number"),
    schema=TAP_SCHEMA,
    vo=VOTable(description="Schemas published by this service", table_index=900),
)

tables = vo_table(
    "tables", metadata,
    _std("schema_name", sa.Text, "Schema the table belongs to", "meta.id",
         sa.ForeignKey(schemas.c.schema_name), nullable=False),
    _std("table_name", sa.Text, "Fully qualified table name, as used in queries",
         "meta.id;meta.table", primary_key=True),
    _std("table_type", sa.Text, "Either table or view", "meta.code", nullable=False),
    _std("utype", sa.Text, "Data model type of the table", "meta.ref"),
    _std("description", sa.Text, "Description of the table", "meta.note"),
    _std("table_index", sa.Integer, "Recommended order of the tables", "meta.number"),
    schema=TAP_SCHEMA,
    vo=VOTable(description="Tables published by this service", table_index=901),
)

columns = vo_table(
    "columns", metadata,
    _std("table_name", sa.Text, "Fully qualified name of the column's table",
         "meta.id;meta.table", sa.ForeignKey(tables.c.table_name), primary_key=True),
    _std("column_name", sa.Text, "Column name, as used in queries", "meta.id",
         primary_key=True),
    _std("datatype", sa.Text, "VOTable datatype of the column", "meta.code",
         nullable=False),
    _std("arraysize", sa.Text, "VOTable arraysize of the column", "meta.number"),
    _std("xtype", sa.Text, "VOTable/DALI extended type of the column", "meta.code"),
    _std("size", sa.Integer, "Length of a one-dimensional array column (deprecated)",
         "meta.number", key="size_"),
    _std("description", sa.Text, "Description of the column", "meta.note"),
    _std("utype", sa.Text, "Data model type of the column", "meta.ref"),
    _std("unit", sa.Text, "Unit of the column (VOUnit)", "meta.unit"),
    _std("ucd", sa.Text, "Unified content descriptor of the column", "meta.ucd"),
    _std("indexed", sa.Integer, "1 if the column is indexed, else 0", "meta.code",
         nullable=False),
    _std("principal", sa.Integer, "1 if the column is principal, else 0", "meta.code",
         nullable=False),
    _std("std", sa.Integer, "1 if the column is defined by a standard, else 0", "meta.code",
         nullable=False),
    _std("column_index", sa.Integer, "Recommended order of the columns in the table",
         "meta.number"),
    schema=TAP_SCHEMA,
    vo=VOTable(description="Columns of the tables published by this service", table_index=902),
)

keys = vo_table(
    "keys", metadata,
    _std("key_id", sa.Text, "Identifier of the foreign key", "meta.id", primary_key=True),
    _std("from_table", sa.Text, "Table holding the foreign key", "meta.id;meta.table",
         sa.ForeignKey(tables.c.table_name), nullable=False),
    _std("target_table", sa.Text, "Table the foreign key points to", "meta.id;meta.table",
         sa.ForeignKey(tables.c.table_name), nullable=False),
    _std("description", sa.Text, "Description of the foreign key", "meta.note"),
    _std("utype", sa.Text, "Data model type of the foreign key", "meta.ref"),
    schema=TAP_SCHEMA,
    vo=VOTable(description="Foreign keys between the published tables", table_index=903),
)

key_columns = vo_table(
    "key_columns", metadata,
    _std("key_id", sa.Text, "Identifier of the foreign key", "meta.id",
         sa.ForeignKey(keys.c.key_id), primary_key=True),
    _std("from_column", sa.Text, "Column in the from_table", "meta.id", primary_key=True),
    _std("target_column", sa.Text, "Column in the target_table", "meta.id", nullable=False),
    schema=TAP_SCHEMA,
    vo=VOTable(description="Columns making up the foreign keys", table_index=904),
)

SCHEMA_DESCRIPTIONS = {
    "latentvo": "Spectra and their machine-learning products: latent vectors, predicted "
    "stellar labels with uncertainties and training-domain flags, and the model registry",
    "ivoa": "IVOA data-model tables (ObsCore)",
    TAP_SCHEMA: "Metadata of the tables published through TAP (TAP 1.1 TAP_SCHEMA)",
    RR_SCHEMA: RR_DESCRIPTION,
}

SCHEMA_UTYPES = {RR_SCHEMA: RR_UTYPE}
"""Data models that whole schemas implement (TAP_SCHEMA.schemas.utype, VOSI tables)."""


def qualified_name(table: sa.Table) -> str:
    """``schema.table``, the name TAP_SCHEMA and ADQL queries use for ``table``."""
    return f"{table.schema}.{table.name}"


def adql_name(name: str) -> str:
    """A column name as a query must write it: delimited when it is an ADQL reserved word.

    TAP 1.1 (and taplint, E-TMS-CRSV) wants TAP_SCHEMA and VOSI to show such names
    with their quotes, e.g. ``"size"``.
    """
    return f'"{name}"' if name.upper() in RESERVED_WORDS else name


def _size(arraysize: str | None) -> int | None:
    """TAP_SCHEMA's deprecated ``size``: the integer part of a 1-D arraysize."""
    if arraysize is None or "x" in arraysize:
        return None
    match = re.match(r"\d+", arraysize)
    return int(match.group()) if match else None


def tap_schema_rows(published: list[sa.Table], descriptions: dict[str, str] | None = None
                    ) -> dict[sa.Table, list[dict[str, Any]]]:
    """The rows of each TAP_SCHEMA table describing ``published``.

    Generated, never written by hand, so TAP_SCHEMA cannot disagree with the
    declarations.

    Parameters
    ----------
    published
        The tables to describe, each carrying :class:`~schema.vo.VOTable` and
        :class:`~schema.vo.ColumnMeta` metadata, in TAP_SCHEMA order.
    descriptions
        Schema descriptions added to :data:`SCHEMA_DESCRIPTIONS` (those of published
        catalogues, which live in the database); the declared ones win.

    Returns
    -------
    dict
        For each of :data:`schemas`, :data:`tables`, :data:`columns`, :data:`keys` and
        :data:`key_columns`, its rows as insert parameters (keyed by column key).
        Foreign keys to tables outside ``published`` are left out.
    """
    described = {**(descriptions or {}), **SCHEMA_DESCRIPTIONS}
    names = {qualified_name(t) for t in published}
    schema_names = sorted({t.schema for t in published},
                          key=lambda s: (s == TAP_SCHEMA, s))
    rows: dict[sa.Table, list[dict[str, Any]]] = {schemas: [], tables: [], columns: [], keys: [],
                                        key_columns: []}
    for index, name in enumerate(schema_names):
        rows[schemas].append({"schema_name": name, "utype": SCHEMA_UTYPES.get(name or ""),
                              "description": described.get(name) if name is not None else None,
                              "schema_index": index})
    for table in published:
        tmeta = table_meta(table)
        rows[tables].append({
            "schema_name": table.schema, "table_name": qualified_name(table),
            "table_type": tmeta.table_type, "utype": tmeta.utype,
            "description": tmeta.description, "table_index": tmeta.table_index,
        })
        for index, column in enumerate(table.columns):
            cmeta = column_meta(column)
            rows[columns].append({
                "table_name": qualified_name(table), "column_name": adql_name(column.name),
                "datatype": cmeta.datatype, "arraysize": cmeta.arraysize,
                "xtype": cmeta.xtype, "size_": _size(cmeta.arraysize),
                "description": cmeta.description, "utype": cmeta.utype, "unit": cmeta.unit,
                "ucd": cmeta.ucd, "indexed": int(cmeta.indexed),
                "principal": int(cmeta.principal), "std": int(cmeta.std),
                "column_index": index,
            })
        for fk in sorted(table.foreign_key_constraints, key=lambda c: list(c.column_keys)):
            target = fk.referred_table
            if qualified_name(target) not in names:
                continue
            key_id = f"{qualified_name(table)}.{'_'.join(c.name for c in fk.columns)}"
            rows[keys].append({
                "key_id": key_id, "from_table": qualified_name(table),
                "target_table": qualified_name(target),
                "description": f"{qualified_name(table)} refers to {qualified_name(target)}",
                "utype": None,
            })
            for element in fk.elements:
                rows[key_columns].append({"key_id": key_id,
                                          "from_column": adql_name(element.parent.name),
                                          "target_column": adql_name(element.column.name)})
    return rows


def refresh(connection: sa.Connection, published: list[sa.Table],
            descriptions: dict[str, str] | None = None) -> None:
    """Replace TAP_SCHEMA's content with the description of ``published``.

    Runs inside the caller's transaction, so readers see either the old or
    the new metadata, never a mix.
    """
    rows = tap_schema_rows(published, descriptions)
    for table in (key_columns, keys, columns, tables, schemas):
        connection.execute(table.delete())
    for table in (schemas, tables, columns, keys, key_columns):
        if rows[table]:
            connection.execute(table.insert(), rows[table])
