"""``/tap/examples``: the DALI examples document (XHTML with RDFa) of real queries.

The document lives in ``resources/examples/tap_examples.xhtml``; it is served
as ``application/xhtml+xml`` and declared in ``/capabilities``.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import Response

router = APIRouter()
EXAMPLES = Path(__file__).resolve().parents[2] / "resources" / "examples" / "tap_examples.xhtml"


@cache
def _document() -> bytes:
    return EXAMPLES.read_bytes()


@router.get("/tap/examples")
def examples() -> Response:
    return Response(_document(), media_type="application/xhtml+xml")
