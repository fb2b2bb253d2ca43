"""VOSI tables (VODataService 1.2 ``vs:TableSet``), rendered from the table declarations.

``/tap/tables`` lists every published schema and table (with columns and
foreign keys, or without them for ``detail=min``); ``/tap/tables/{name}``
returns one ``vosi:table`` with full detail (VOSI 1.1); the routes are in
``vo_service/tap/routes.py``. The source is the
same list of declared tables that TAP_SCHEMA is generated from
(``schema.catalogues``), so both always agree.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from schema.tap_schema import SCHEMA_UTYPES, adql_name
from vo_service.dali import DALIError
from vo_service.vosi.xml import VS, XSI, element

VOSI_TABLES = "http://www.ivoa.net/xml/VOSITables/v1.0"


def _column(column: sa.Column[Any]) -> str:
    vo = column.info["vo"]
    attrs = f' arraysize="{vo.arraysize}"' if vo.arraysize else ""
    if vo.xtype:
        attrs += f' extendedType="{vo.xtype}"'
    flags = []
    if vo.indexed:
        flags.append("<flag>indexed</flag>")
    if column.primary_key:
        flags.append("<flag>primary</flag>")
    if column.nullable and not column.primary_key:
        flags.append("<flag>nullable</flag>")
    std = ' std="true"' if vo.std else ""
    return (f"<column{std}>" + element("name", adql_name(column.name))
            + element("description", vo.description) + element("unit", vo.unit)
            + element("ucd", vo.ucd) + element("utype", vo.utype)
            + f'<dataType xsi:type="vs:VOTableType"{attrs}>{vo.datatype}</dataType>'
            + "".join(flags) + "</column>")


def _foreign_keys(table: sa.Table, names: set[str]) -> str:
    parts = []
    for fk in sorted(table.foreign_key_constraints, key=lambda c: tuple(c.column_keys)):
        target = fk.referred_table
        target_name = f"{target.schema}.{target.name}"
        if target_name not in names:
            continue
        cols = "".join(f"<fkColumn>{element('fromColumn', adql_name(e.parent.name))}"
                       f"{element('targetColumn', adql_name(e.column.name))}</fkColumn>"
                       for e in fk.elements)
        parts.append(f"<foreignKey>{element('targetTable', target_name)}{cols}</foreignKey>")
    return "".join(parts)


def table_xml(table: sa.Table, names: set[str], *, detail: bool = True, root: bool = False
              ) -> str:
    """The ``table`` element of ``table`` (``vosi:table`` with namespaces when ``root``).

    Parameters
    ----------
    table
        A published table (its ``info["vo"]`` holds the VO metadata).
    names
        The qualified names of every published table: foreign keys to other tables
        are left out.
    detail
        Include the columns and foreign keys.
    root
        Write the root element of a VOSI 1.1 table document.
    """
    vo = table.info["vo"]
    kind = "view" if vo.table_type == "view" else "table"
    tag = "vosi:table" if root else "table"
    ns = (f' xmlns:vosi="{VOSI_TABLES}" xmlns:vs="{VS}" xmlns:xsi="{XSI}"' if root else "")
    body = element("name", f"{table.schema}.{table.name}") + element("description",
                                                                       vo.description)
    body += element("utype", vo.utype)
    if detail:
        body += "".join(_column(c) for c in table.columns if "vo" in c.info)
        body += _foreign_keys(table, names)
    return f'<{tag}{ns} type="{"base_table" if kind == "table" else "view"}">{body}</{tag}>'


def schemas_xml(tables: list[sa.Table], descriptions: dict[str, str], *,
                detail: bool = True) -> str:
    """The ``schema`` elements of a ``vs:TableSet`` (TAP_SCHEMA last) with their tables.

    ``descriptions`` are the schemas' descriptions by name; ``detail=False``
    (``detail=min``) leaves the columns out. Both ``/tap/tables`` and the TAP
    service's VOResource record (``vo_service.registry``) are made of these.
    """
    names = {f"{t.schema}.{t.name}" for t in tables}
    schemas: dict[str, list[sa.Table]] = {}
    for table in tables:
        schemas.setdefault(table.schema or "", []).append(table)
    parts = []
    order = sorted(schemas, key=lambda s: (s == "tap_schema",
                                           min(t.info["vo"].table_index for t in schemas[s])))
    for schema in order:
        parts.append("<schema>" + element("name", schema)
                     + element("description", descriptions.get(schema))
                     + element("utype", SCHEMA_UTYPES.get(schema)))
        parts += [table_xml(t, names, detail=detail) for t in schemas[schema]]
        parts.append("</schema>")
    return "".join(parts)


def tableset_xml(tables: list[sa.Table], descriptions: dict[str, str], *,
                 detail: bool = True) -> str:
    """The ``vosi:tableset`` document of :func:`schemas_xml`."""
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<vosi:tableset xmlns:vosi="{VOSI_TABLES}" xmlns:vs="{VS}" xmlns:xsi="{XSI}">'
            + schemas_xml(tables, descriptions, detail=detail) + "</vosi:tableset>\n")


def one_table_xml(tables: list[sa.Table], name: str) -> str:
    """The ``vosi:table`` document of the published table ``name`` (case-insensitive).

    Raises
    ------
    DALIError
        404 when no such table is published.
    """
    names = {f"{t.schema}.{t.name}" for t in tables}
    for table in tables:
        if f"{table.schema}.{table.name}".lower() == name.lower():
            return ('<?xml version="1.0" encoding="UTF-8"?>\n'
                    + table_xml(table, names, root=True) + "\n")
    raise DALIError(f"no table named {name!r} is published here", 404)
