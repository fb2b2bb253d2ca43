"""The landing page: what this service publishes, where its services are, and which
background jobs (the demo's archive build and ML training) still run or failed."""

from __future__ import annotations

from html import escape

import sqlalchemy as sa

from schema.tables import labels, models, spectra
from vo_service.archive.background import DONE, FAILED, JobStatus
from vo_service.config import ServiceSettings
from vo_service.urls import PublicURLs


def archive_counts(engine: sa.Engine) -> dict[str, int]:
    """Spectra, models and labelled spectra in the archive."""
    with engine.connect() as conn:
        return {
            "spectra": conn.scalar(sa.select(sa.func.count()).select_from(spectra)) or 0,
            "models": conn.scalar(sa.select(sa.func.count()).select_from(models)) or 0,
            "labelled spectra": conn.scalar(
                sa.select(sa.func.count(sa.distinct(labels.c.spectrum_id)))) or 0,
        }


def jobs_section(jobs: list[JobStatus]) -> str:
    """HTML for the background jobs: state and progress, finished steps, and for a job
    that failed or vanished its reason and log. Empty when no job ever ran."""
    parts = []
    for job in jobs:
        steps = "".join(f"<li>{escape(s.phase)} ({s.seconds:.0f} s): {escape(s.summary)}</li>"
                        for s in job.steps)
        broken = job.state == FAILED or job.vanished
        log = f" Log: <code>{escape(job.log)}</code>." if broken else ""
        parts.append(f"""<h3>{escape(job.name)}</h3>
<p class="job-{'failed' if broken else job.state}">{escape(job.describe())}.{log}</p>
<ul>{steps}</ul>""")
    if not parts:
        return ""
    return "<h2>Background jobs</h2>\n" + "\n".join(parts)


def landing_page(urls: PublicURLs, counts: dict[str, int] | None,
                 jobs: list[JobStatus], meta: ServiceSettings, authority: str) -> str:
    """The HTML page at the service's root; every link is a public URL. While a background
    job runs (``jobs``, from :func:`vo_service.archive.background.read_statuses`), the page
    says how far it got and reloads itself to show its progress and the new products.
    ``counts`` is None while the database cannot be reached: the page says so. ``meta``
    (the ``[service]`` settings) gives the title, description, publisher and license.
    ``authority`` is the IVOA authority of this site's identifiers, which its publishing
    registry (OAI-PMH) manages."""
    if counts is None:
        archive = ('<p class="outage">The database cannot be reached at the moment (down or '
                   "restarting); the services answer 503 until it is back, then resume by "
                   "themselves.</p>")
    else:
        archive = "<table>" + "".join(f"<tr><th>{escape(k)}</th><td>{v:,}</td></tr>"
                                      for k, v in counts.items()) + "</table>"
    tap, ssa = escape(urls.tap), escape(urls.ssa)
    refresh = ('<meta http-equiv="refresh" content="5">'
               if any(j.state not in (DONE, FAILED) and not j.vanished for j in jobs) else "")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">{refresh}<title>{escape(meta.title)}</title></head>
<body>
<h1>{escape(meta.title)}</h1>
<p>{escape(meta.description)}</p>
<h2>Archive</h2>
{archive}
{jobs_section(jobs)}
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
<li>Publishing registry (OAI-PMH 2.0, IVOA Registry Interfaces 1.1) of the authority
<code>{escape(authority)}</code>: <code>{escape(urls.oai)}</code>;
<a href="{escape(urls.oai)}?verb=Identify">Identify</a>,
<a href="{escape(urls.oai)}?verb=ListRecords&amp;metadataPrefix=ivo_vor">all records</a></li>
</ul>
<p>Publisher: {escape(meta.publisher)} &middot; contact: {escape(meta.contact_email)}
&middot; license: <a href="{escape(meta.license_url)}">{escape(meta.license)}</a></p>
</body></html>"""
