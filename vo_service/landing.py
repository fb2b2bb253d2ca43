"""The landing page: what this service publishes, where its services are, which
background jobs (the demo's archive build and ML training) still run or failed, its data
releases and how to cite the service (BibTeX, schema.org ``DataCatalog`` JSON-LD, and the
FAIR Signposting links that the handler also sends as the ``Link`` header)."""

from __future__ import annotations

from datetime import datetime
from html import escape

import sqlalchemy as sa

from schema.tables import labels, models, spectra
from vo_service.archive.background import DONE, FAILED, JobStatus
from vo_service.releases.citation import catalog_jsonld, jsonld_script, service_bibtex
from vo_service.releases.landing import link_elements, releases_list
from vo_service.releases.publisher import Publisher
from vo_service.releases.signposting import service_links
from vo_service.releases.store import PUBLISHED, WITHDRAWN, Release, read_releases
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


def citable_releases(engine: sa.Engine) -> list[Release]:
    """The published and withdrawn releases, newest first (read as the owner: the
    releases table is hidden from the read-only role)."""
    with engine.connect() as conn:
        return [r for r in reversed(read_releases(conn)) if r.state in (PUBLISHED, WITHDRAWN)]


def releases_section(releases: list[Release] | None, urls: PublicURLs) -> str:
    """HTML for the data releases (None while the database cannot be reached)."""
    if releases is None:
        return ""
    return (f'<h2>Data releases</h2>\n{releases_list(releases, urls)}\n'
            f'<p><a href="{escape(urls.releases)}">All releases</a></p>')


def citation_section(pub: Publisher, urls: PublicURLs, today: datetime) -> str:
    """HTML for how to cite the service itself."""
    return (f"<h2>How to cite this service</h2>\n<p>Cite data releases by their own pages "
            f"(above); the service itself as:</p>\n"
            f"<pre>{escape(service_bibtex(pub, urls, today))}</pre>")


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
                 jobs: list[JobStatus], pub: Publisher, releases: list[Release] | None,
                 today: datetime) -> str:
    """The HTML page at the service's root; every link is a public URL. While a background
    job runs (``jobs``, from :func:`vo_service.archive.background.read_statuses`), the page
    says how far it got and reloads itself to show its progress and the new products.
    ``counts`` and ``releases`` are None while the database cannot be reached: the page
    says so. ``today`` dates the service's citation. ``pub`` (from the ``[service]`` settings)
    gives the title, description, publisher and license, and the IVOA authority of this
    site's identifiers, which its publishing registry (OAI-PMH) manages."""
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
<html lang="en"><head><meta charset="utf-8">{refresh}<title>{escape(pub.service.title)}</title>
{jsonld_script(catalog_jsonld(pub, urls, releases or []))}
{link_elements(service_links(pub, urls))}
</head>
<body>
<h1>{escape(pub.service.title)}</h1>
<p>{escape(pub.service.description)}</p>
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
<li><a href="{escape(urls.models)}">Models</a>: the model card of every model that made
the latent vectors and labels (training data, metrics per S/N bin, calibration, domain,
intended use and limits), as HTML and JSON</li>
<li>Publishing registry (OAI-PMH 2.0, IVOA Registry Interfaces 1.1) of the authority
<code>{escape(pub.ids.authority)}</code>: <code>{escape(urls.oai)}</code>;
<a href="{escape(urls.oai)}?verb=Identify">Identify</a>,
<a href="{escape(urls.oai)}?verb=ListRecords&amp;metadataPrefix=ivo_vor">all records</a></li>
<li><a href="{escape(urls.explore)}">Latent-space explorer</a>: a map of each autoencoder's
latent space, reconstructions, one slider per informative dimension with the nearest real
spectra, and similarity by uploaded spectrum</li>
</ul>
{releases_section(releases, urls)}
{citation_section(pub, urls, today)}
<p>Publisher: {escape(pub.service.publisher)} &middot; contact: {escape(pub.service.contact_email)}
&middot; license: <a href="{escape(pub.service.license_url)}">{escape(pub.service.license)}</a></p>
</body></html>"""
