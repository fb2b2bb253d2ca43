"""The DALI examples document (XHTML with RDFa) of real queries, served at ``/tap/examples``.

The document lives in ``resources/examples/tap_examples.xhtml``; it is served
as ``application/xhtml+xml`` and declared in ``/capabilities``.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "resources" / "examples" / "tap_examples.xhtml"


@cache
def document() -> bytes:
    """The examples document, read once."""
    return EXAMPLES.read_bytes()
