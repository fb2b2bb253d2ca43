"""The landing page: what this service publishes and where its services are."""

from __future__ import annotations

from html import escape

import sqlalchemy as sa

from schema.tables import labels, models, spectra
from vo_service.service_meta import service_meta
from vo_service.urls import PublicURLs


def archive_counts(engine: sa.Engine) -> dict[str, int]:
    """Spectra, models and labelled spectra in the archive."""
    with engine.connect() as conn:
        return {
            "spectra": conn.scalar(sa.select(sa.func.count()).select_from(spectra)),
            "models": conn.scalar(sa.select(sa.func.count()).select_from(models)),
            "labelled spectra": conn.scalar(
                sa.select(sa.func.count(sa.distinct(labels.c.spectrum_id)))),
        }


def landing_page(urls: PublicURLs, counts: dict[str, int]) -> str:
    """The HTML page at the service's root; every link is a public URL."""
    meta = service_meta()
    rows = "".join(f"<tr><th>{escape(k)}</th><td>{v:,}</td></tr>" for k, v in counts.items())
    tap, ssa = escape(urls.tap), escape(urls.ssa)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(meta.title)}</title></head>
<body>
<h1>{escape(meta.title)}</h1>
<p>{escape(meta.description)}</p>
<h2>Archive</h2>
<table>{rows}</table>
<h2>Services</h2>
<ul>
<li><a href="{tap}">TAP</a> (ADQL 2.1, sync and async, uploads): base URL
<code>{tap}</code> for TOPCAT, pyvo and STILTS;
<a href="{tap}/tables">tables</a>, <a href="{tap}/examples">example queries</a>,
<a href="{tap}/capabilities">capabilities</a>, <a href="{tap}/availability">availability</a>;
the ObsCore table is <code>ivoa.obscore</code></li>
<li><a href="{ssa}?FORMAT=METADATA">SSA</a> 1.1 (spectra by position, band, time and ML
labels): <code>{ssa}</code>;
<a href="{ssa}/capabilities">capabilities</a>, <a href="{ssa}/availability">availability</a></li>
<li>DataLink (<code>{escape(urls.links())}?ID=...</code>): each spectrum's file, preview,
ML labels, latent vector, model and similar spectra</li>
</ul>
<p>Publisher: {escape(meta.publisher)} &middot; contact: {escape(meta.contact_email)}
&middot; {escape(meta.rights)}</p>
</body></html>"""
