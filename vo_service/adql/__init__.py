"""latentvo's ADQL 2.1 engine: parse, resolve against the published schema, translate.

Public API::

    from vo_service.adql import parse, translate, Catalog, ADQLError

    catalog = Catalog.from_tables(published_tables(), latent_index=ModelIndexes(engine))
    t = translate("SELECT TOP 5 * FROM latentvo.spectra", catalog, maxrec=1000)
    t.sql                # one PostgreSQL SELECT, safe to execute read-only
    t.columns            # CatalogColumn: name, ADQL type, ColumnMeta (datatype, unit, ucd...)
    t.setup_sql(ms)      # SET LOCAL these first in the query's transaction

Errors are :class:`ADQLSyntaxError` or :class:`ADQLSemanticError`, both
:class:`ADQLError` with ``line``, ``column`` and ``token``.
"""

from __future__ import annotations

from vo_service.adql.ast import Statement
from vo_service.adql.catalog import Catalog, CatalogColumn, CatalogTable
from vo_service.adql.errors import ADQLError, ADQLSemanticError, ADQLSyntaxError
from vo_service.adql.latent import ModelIndexes
from vo_service.adql.parser import parse
from vo_service.adql.translate import Translation, Translator


def translate(query: str | Statement, catalog: Catalog, *, maxrec: int | None = None
              ) -> Translation:
    """Translate ADQL (text or a parsed statement) into PostgreSQL for ``catalog``.

    With ``maxrec``, the SQL returns at most ``maxrec + 1`` rows so that the
    caller can tell an overflow (more than ``maxrec`` rows) from a full result.
    """
    statement = parse(query) if isinstance(query, str) else query
    if maxrec is not None and maxrec < 0:
        raise ValueError("maxrec must be >= 0")
    try:
        return Translator(catalog, maxrec).statement(statement)
    except RecursionError:
        raise ADQLSemanticError("query nested too deeply") from None


__all__ = [
    "ADQLError", "ADQLSemanticError", "ADQLSyntaxError", "Catalog", "CatalogColumn",
    "CatalogTable", "ModelIndexes", "Translation", "parse", "translate",
]
