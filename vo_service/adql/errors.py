"""Errors a user can cause with an ADQL query.

Every error names where it happened (line and column, 1-based) and the
offending token, so that the TAP layer can put one informative sentence into
the error VOTable. Syntax errors are what the ADQL grammar rejects; semantic
errors are well-formed queries that do not fit the schema or the functions
this service offers.
"""

from __future__ import annotations

from typing import TypedDict


class ADQLError(Exception):
    """Base class: a query this service cannot run, with its position."""

    kind = "error"

    def __init__(
        self,
        message: str,
        line: int | None = None,
        column: int | None = None,
        token: str | None = None,
    ) -> None:
        self.message = message
        self.line = line
        self.column = column
        self.token = token
        super().__init__(str(self))

    def __str__(self) -> str:
        where = ""
        if self.line is not None:
            where = f" at line {self.line}, column {self.column}"
            if self.token:
                where += f" near {self.token!r}"
        return f"ADQL {self.kind}{where}: {self.message}"


class ADQLSyntaxError(ADQLError):
    """The query text does not follow the ADQL 2.1 grammar."""

    kind = "syntax error"


class ADQLSemanticError(ADQLError):
    """Unknown or ambiguous names, wrong types, unsupported constructs."""

    kind = "error"


class Where(TypedDict, total=False):
    """The ``line``/``column`` keyword arguments of an :class:`ADQLError`."""

    line: int
    column: int


def at(pos: tuple[int, int] | None) -> Where:
    """Keyword arguments that place an error at ``pos`` (none for an unknown place)."""
    if pos is None:
        return {}
    return {"line": pos[0], "column": pos[1]}
