"""The size of an ADQL syntax tree, to bound the translation work a query may ask for.

A long IN list or a long chain of ORs is cheap to send and costly to translate;
counting the nodes right after parsing (the text's length was checked before)
lets the service refuse such a query before translating it.
"""

from __future__ import annotations

from vo_service.adql import ast


def tree_size(statement: ast.Statement, limit: int) -> int:
    """The number of nodes in ``statement``, counting stops once it passes ``limit``.

    Like :func:`vo_service.adql.parser.iter_calls` it reads the nodes' slots, so
    node types added later are counted without a change here.
    """
    count = 0
    stack: list[object] = [statement]
    while stack and count <= limit:
        item = stack.pop()
        if isinstance(item, (list, tuple)):
            stack.extend(item)
        elif hasattr(item, "__slots__"):  # a node (positions and values are not)
            count += 1
            stack.extend(getattr(item, slot, None) for slot in item.__slots__)
    return count
