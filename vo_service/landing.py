"""The landing page: what this service publishes and where its services are."""

from __future__ import annotations

from html import escape

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from schema.tables import labels, models, spectra
from vo_service.service_meta import service_meta

router = APIRouter()


def archive_counts(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            "spectra": conn.scalar(sa.select(sa.func.count()).select_from(spectra)),
            "models": conn.scalar(sa.select(sa.func.count()).select_from(models)),
            "labelled spectra": conn.scalar(
                sa.select(sa.func.count(sa.distinct(labels.c.spectrum_id)))),
        }


@router.get("/", response_class=HTMLResponse)
def landing_page(request: Request) -> str:
    meta = service_meta()
    counts = archive_counts(request.app.state.database.reader_engine)
    rows = "".join(f"<tr><th>{escape(k)}</th><td>{v:,}</td></tr>" for k, v in counts.items())
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(meta.title)}</title></head>
<body>
<h1>{escape(meta.title)}</h1>
<p>{escape(meta.description)}</p>
<h2>Archive</h2>
<table>{rows}</table>
<h2>Services</h2>
<ul>
<li><a href="/tap">TAP</a> (ADQL 2.1, sync and async, uploads): base URL
<code>{escape(str(request.base_url).rstrip("/"))}/tap</code> for TOPCAT, pyvo and STILTS;
<a href="/tap/tables">tables</a>, <a href="/tap/examples">example queries</a>,
<a href="/tap/capabilities">capabilities</a>, <a href="/tap/availability">availability</a>;
the ObsCore table is <code>ivoa.obscore</code></li>
<li><a href="/ssa?FORMAT=METADATA">SSA</a> 1.1 (spectra by position, band, time and ML labels):
<code>{escape(str(request.base_url).rstrip("/"))}/ssa</code>;
<a href="/ssa/capabilities">capabilities</a>, <a href="/ssa/availability">availability</a></li>
<li>DataLink (<code>/datalink/links?ID=...</code>): each spectrum's file, preview, ML labels,
latent vector, model and similar spectra</li>
</ul>
<p>Publisher: {escape(meta.publisher)} &middot; contact: {escape(meta.contact_email)}
&middot; {escape(meta.rights)}</p>
</body></html>"""
