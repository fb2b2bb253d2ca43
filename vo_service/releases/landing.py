"""The HTML landing pages of data releases: one per release (its VOResource
``referenceURL``, the page a DOI resolves to), a tombstone once it is withdrawn, and the
list of releases.

A landing page says what the release is (title, description, dates, counts, the models
with their provenance, the licence), how to cite it (the BibTeX shown, DataCite XML,
RO-Crate) and how to query it (TAP, SSA, its ObsCore view, example queries as links);
it embeds the schema.org ``Dataset`` JSON-LD and repeats the Signposting links of its
``Link`` header as ``<link>`` elements. A tombstone keeps the identity and the citation
and drops every link to data.
"""

from __future__ import annotations

from html import escape
from typing import Any

from vo_service.releases import contents
from vo_service.releases.citation import cite_as, dataset_jsonld, jsonld_script, release_bibtex
from vo_service.releases.publisher import Publisher, doi_url
from vo_service.releases.signposting import Link, release_links
from vo_service.releases.store import PUBLISHED, WITHDRAWN, Release
from vo_service.urls import PublicURLs

_STYLE = ("<style>body{font-family:sans-serif;max-width:62em;margin:1em auto;padding:0 1em}"
          "th{text-align:left;padding-right:1em}td,th{vertical-align:top}"
          "pre{background:#f4f4f4;padding:.5em;overflow-x:auto}"
          ".withdrawn{color:#a00}</style>")


def _a(href: str, text: str | None = None) -> str:
    return f'<a href="{escape(href)}">{escape(text if text is not None else href)}</a>'


def _head(title: str, extra: str = "") -> str:
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{escape(title)}</title>{_STYLE}\n{extra}</head>\n<body>\n")


def link_elements(links: list[Link]) -> str:
    """Signposting links as HTML ``<link>`` elements (the same as the ``Link`` header)."""
    return "\n".join(
        f'<link rel="{escape(link.rel)}" href="{escape(link.href)}"'
        + (f' type="{escape(link.type)}"' if link.type else "") + ">" for link in links)


def _rows(pairs: list[tuple[str, str]]) -> str:
    """A two-column table; values are HTML already."""
    return "<table>" + "".join(f"<tr><th>{escape(k)}</th><td>{v}</td></tr>"
                               for k, v in pairs) + "</table>"


def _identity(release: Release, pub: Publisher, urls: PublicURLs) -> list[tuple[str, str]]:
    """State, identifiers and dates of a release, as table rows."""
    rows = [("Release", f"<code>{escape(release.name)}</code>"),
            ("State", f'<span class="{escape(release.state)}">{escape(release.state)}</span>')]
    if release.doi:
        rows.append(("DOI", _a(doi_url(release.doi), release.doi)))
    rows += [("IVOA identifier", f"<code>{escape(pub.ids.release(release.name))}</code>"),
             ("Created", escape(contents.instant(release.created)))]
    if release.published:
        rows.append(("Published", escape(contents.instant(release.published))))
    if release.withdrawn:
        rows.append(("Withdrawn", escape(contents.instant(release.withdrawn))))
    return rows


def _citation(release: Release, pub: Publisher, urls: PublicURLs) -> str:
    """The "how to cite" section: the BibTeX shown, the documents linked."""
    return f"""<h2>How to cite</h2>
<p>Cite this release as {_a(cite_as(release, urls))}; in BibTeX:</p>
<pre>{escape(release_bibtex(release, pub, urls))}</pre>
<p>{_a(urls.release_bibtex(release.name), "citation.bib")} &middot;
{_a(urls.release_datacite(release.name), "DataCite XML (4.3)")} &middot;
{_a(urls.voresource(pub.ids.release(release.name)), "VOResource record")}</p>"""


def _model_rows(models: list[dict[str, Any]]) -> str:
    if not models:
        return "<p>This release holds no models.</p>"
    head = ("<tr><th>model</th><th>kind</th><th>artifact SHA-256</th><th>training data</th>"
            "<th>code version</th><th>reference labels</th></tr>")
    rows = []
    for m in models:
        training = (f"{escape(str(m.get('training_size')))} spectra, "
                    f"{escape(str(m.get('training_selection')))}; checksum "
                    f"<code>{escape(str(m.get('training_checksum')))}</code>")
        base = (f" (built on <code>{escape(str(m['base_model_id']))}</code>)"
                if m.get("base_model_id") else "")
        rows.append(f"<tr><td><code>{escape(str(m.get('model_id')))}</code>{base}</td>"
                    f"<td>{escape(str(m.get('kind')))}</td>"
                    f"<td><code>{escape(str(m.get('artifact_sha256')))}</code></td>"
                    f"<td>{training}</td><td>{escape(str(m.get('code_version')))}</td>"
                    f"<td>{escape(str(m.get('reference_label_source') or '-'))}</td></tr>")
    return f"<table>{head}{''.join(rows)}</table>"


def _contents(release: Release) -> str:
    """Counts, tables, models, label sets, catalogues and coverage of a release."""
    parts = [_rows([(what, f"{n:,}") for what, n in contents.counts(release)])]
    tables = contents.frozen_tables(release)
    if tables:
        parts.append("<h3>Tables</h3>" + _rows([
            (t.qualified, (f"rows: {t.rows:,}" if t.rows is not None else "")
             + (f"; SHA-256 of its ordered rows <code>{escape(t.sha256)}</code>"
                if t.sha256 else "")) for t in tables]))
    parts.append("<h3>Models and their provenance</h3>" + _model_rows(contents.models(release)))
    label_sets = release.manifest.get("label_sets") or []
    if label_sets:
        parts.append("<h3>Reference label sets</h3>" + _rows([
            (str(s.get("name")), f"{escape(str(s.get('n_rows')))} rows; SHA-256 "
                                 f"<code>{escape(str(s.get('source_sha256')))}</code>")
            for s in label_sets]))
    catalogues = release.manifest.get("catalogues") or []
    if catalogues:
        parts.append("<h3>Published catalogues</h3>" + _rows([
            (f"{c.get('schema')}.{c.get('table')}", f"{escape(str(c.get('rows')))} rows")
            for c in catalogues]))
    coverage = release.manifest.get("coverage") or {}
    if coverage:
        parts.append("<h3>Coverage</h3>" + _rows([(k, escape(str(v)))
                                                  for k, v in coverage.items()]))
    return "\n".join(parts)


def _access(release: Release, urls: PublicURLs) -> str:
    """TAP, SSA and ObsCore, and the example queries as TAP links."""
    examples = "".join(f"<li>{escape(what)}: {_a(urls.tap_query(adql), adql)}</li>"
                       for what, adql in contents.example_queries(release))
    return f"""<h2>Access</h2>
<ul>
<li>TAP (ADQL): {_a(urls.tap)}; the release's tables are in the schema
<code>{escape(release.name)}</code> ({_a(urls.tap + "/tables", "table metadata")})</li>
<li>ObsCore: the view <code>{escape(release.name)}.obscore</code> (its
<code>obs_collection</code> names the release); the archive's current state is
<code>ivoa.obscore</code></li>
<li>SSA (the archive's current spectra by position and band): {_a(urls.ssa)}</li>
<li>RO-Crate (files with checksums): {_a(urls.release_crate(release.name),
                                          "ro-crate-metadata.json")}</li>
</ul>
<h3>Example queries</h3>
<ul>{examples}</ul>"""


def release_page(release: Release, pub: Publisher, urls: PublicURLs) -> str:
    """The landing page of a published release."""
    head = (jsonld_script(dataset_jsonld(release, pub, urls)) + "\n"
            + link_elements(release_links(release, pub, urls)))
    return (_head(release.title, head)
            + f"""<p>{_breadcrumb(pub, urls)}</p>
<h1>{escape(release.title)}</h1>
<p>{escape(release.description)}</p>
{_rows(_identity(release, pub, urls))}
<h2>Contents</h2>
{_contents(release)}
<h2>Licence</h2>
<p>{_a(pub.service.license_url, pub.service.license)} (<code>{escape(pub.service.license)}</code>);
published by {escape(pub.service.publisher)} ({escape(pub.service.contact_email)}).</p>
{_citation(release, pub, urls)}
{_access(release, urls)}
</body></html>
""")


def tombstone_page(release: Release, pub: Publisher, urls: PublicURLs) -> str:
    """The page of a withdrawn release: what it was and how it was cited, no data."""
    reason = contents.withdrawal_reason(release)
    why = f"<p>Reason: {escape(reason)}</p>" if reason else ""
    head = (jsonld_script(dataset_jsonld(release, pub, urls)) + "\n"
            + link_elements(release_links(release, pub, urls)))
    return (_head(f"Withdrawn: {release.title}", head)
            + f"""<p>{_breadcrumb(pub, urls)}</p>
<h1>{escape(release.title)}</h1>
<p class="withdrawn">This data release has been withdrawn: its data are no longer
served.</p>
{why}
<p>{escape(release.description)}</p>
{_rows(_identity(release, pub, urls))}
{_citation(release, pub, urls)}
</body></html>
""")


def releases_page(releases: list[Release], pub: Publisher, urls: PublicURLs) -> str:
    """The list of published and withdrawn releases, newest first."""
    shown = [r for r in reversed(releases) if r.state in (PUBLISHED, WITHDRAWN)]
    return (_head(f"Data releases of {pub.service.title}")
            + f"""<p>{_a(urls.landing, pub.service.title)}</p>
<h1>Data releases</h1>
{releases_list(shown, urls)}
</body></html>
""")


def releases_list(releases: list[Release], urls: PublicURLs) -> str:
    """An HTML list of ``releases`` (published and withdrawn ones), with links."""
    if not releases:
        return "<p>No data release has been published yet.</p>"
    items = []
    for r in releases:
        when = (f"withdrawn {contents.day(r.withdrawn)}" if r.state == WITHDRAWN and r.withdrawn
                else f"published {contents.day(contents.issued(r))}")
        doi = f", DOI {_a(doi_url(r.doi), r.doi)}" if r.doi else ""
        items.append(f'<li class="{escape(r.state)}">{_a(urls.release_page(r.name), r.title)}'
                     f" (<code>{escape(r.name)}</code>, {escape(when)}{doi})</li>")
    return "<ul>" + "".join(items) + "</ul>"


def _breadcrumb(pub: Publisher, urls: PublicURLs) -> str:
    """Links back to the service's landing page and the list of releases."""
    return f"{_a(urls.landing, pub.service.title)} &rsaquo; {_a(urls.releases, 'Releases')}"

