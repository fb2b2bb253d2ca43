"""The human-readable page at the TAP base URL (clients never rely on it)."""

from __future__ import annotations

from html import escape

import sqlalchemy as sa

from vo_service.urls import PublicURLs


def root_page(urls: PublicURLs, tables: list[sa.Table], title: str) -> str:
    """An HTML page naming the base URL, the endpoints and the published tables, headed
    by the service's ``title`` (``[service] title``)."""
    base = escape(urls.tap)
    rows = "".join(f"<li><a href=\"{base}/tables/{escape(f'{t.schema}.{t.name}')}\">"
                   f"{escape(f'{t.schema}.{t.name}')}</a>: "
                   f"{escape(t.info['vo'].description)}</li>" for t in tables)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}: TAP</title></head>
<body>
<h1>{escape(title)}: Table Access Protocol (TAP 1.1)</h1>
<p>Give this base URL to TOPCAT, pyvo or STILTS: <code>{base}</code></p>
<ul>
<li>{base}/sync and {base}/async: ADQL 2.1 queries (LANG=ADQL, QUERY=...)</li>
<li><a href="{base}/capabilities">capabilities</a>,
<a href="{base}/availability">availability</a>, <a href="{base}/tables">tables</a>,
<a href="{base}/examples">example queries</a></li>
</ul>
<h2>Tables</h2>
<ul>{rows}</ul>
</body></html>"""
