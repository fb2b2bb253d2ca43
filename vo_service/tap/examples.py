"""The DALI examples document (XHTML with RDFa) of real queries, served at ``/tap/examples``.

The document is ``examples/tap_examples.xhtml`` of the package ``vo_service.resources``
(the repository's top-level ``resources/`` folder, installed as package data); it is
served as ``application/xhtml+xml`` and declared in ``/capabilities``.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files


@cache
def document() -> bytes:
    """The examples document, read once."""
    return files("vo_service.resources").joinpath("examples", "tap_examples.xhtml").read_bytes()
