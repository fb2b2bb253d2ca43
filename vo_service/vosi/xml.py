"""Small helpers for the VOSI XML documents: namespaces and escaped elements."""

from __future__ import annotations

from xml.sax.saxutils import escape, quoteattr

XSI = "http://www.w3.org/2001/XMLSchema-instance"
VR = "http://www.ivoa.net/xml/VOResource/v1.0"
VS = "http://www.ivoa.net/xml/VODataService/v1.1"
TR = "http://www.ivoa.net/xml/TAPRegExt/v1.0"


def element(name: str, text: object, **attrs: object) -> str:
    """``<name attrs>text</name>`` escaped, or nothing when ``text`` is None or empty.

    Attribute names are keyword names with ``_`` written as ``-`` (``ivo_id`` ->
    ``ivo-id``); attributes whose value is None are left out.
    """
    if text is None or text == "":
        return ""
    extra = "".join(f" {k.replace('_', '-')}={quoteattr(str(v))}" for k, v in attrs.items()
                    if v is not None)
    return f"<{name}{extra}>{escape(str(text))}</{name}>"
