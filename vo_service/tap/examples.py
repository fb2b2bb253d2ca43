"""``/tap/examples``: the DALI examples document (XHTML with RDFa) of real queries.

The document is ``examples/tap_examples.xhtml`` of the package ``vo_service.resources``
(the repository's top-level ``resources/`` folder, installed as package data); it is
served as ``application/xhtml+xml`` and declared in ``/capabilities``.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from fastapi import APIRouter
from fastapi.responses import Response

router = APIRouter()


@cache
def _document() -> bytes:
    return files("vo_service.resources").joinpath("examples", "tap_examples.xhtml").read_bytes()


@router.get("/tap/examples")
def examples() -> Response:
    return Response(_document(), media_type="application/xhtml+xml")
