"""Small helpers for the VOSI XML documents (escaping, the service's base URL)."""

from __future__ import annotations

from xml.sax.saxutils import escape, quoteattr

from fastapi import Request

XSI = "http://www.w3.org/2001/XMLSchema-instance"
VR = "http://www.ivoa.net/xml/VOResource/v1.0"
VS = "http://www.ivoa.net/xml/VODataService/v1.1"
TR = "http://www.ivoa.net/xml/TAPRegExt/v1.0"


def element(name: str, text, **attrs) -> str:
    if text is None or text == "":
        return ""
    extra = "".join(f" {k.replace('_', '-')}={quoteattr(str(v))}" for k, v in attrs.items()
                    if v is not None)
    return f"<{name}{extra}>{escape(str(text))}</{name}>"


def tap_base(request: Request) -> str:
    """The TAP base URL as the client reached it (no trailing slash).

    Built from the request (Host header, scheme as uvicorn's proxy-header
    handling reports it), so the URLs in capabilities and job documents are the
    ones the client used, behind a reverse proxy too.
    """
    return str(request.base_url).rstrip("/") + "/tap"
