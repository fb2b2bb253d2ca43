"""Every public URL the service hands out, built in one place.

The rule, for TAP, SSA, DataLink, getData, ObsCore and the landing pages alike:

* with ``base_url`` configured (``Settings.base_url``, ``LATENTVO_BASE_URL``), every
  URL starts with it, path included: ``https://host/archive/latentvo`` gives
  ``https://host/archive/latentvo/tap/sync``. The application then also answers
  requests whose path starts with that prefix (a proxy that passes the path on
  unchanged) as well as requests without it (a proxy that strips it);
* without it, every URL starts with the scheme, host and port the request was
  made to: the ``Host`` header, and the scheme uvicorn reports, which follows
  ``X-Forwarded-Proto`` from the proxies trusted by ``latentvo serve
  --forwarded-allow-ips``. Such a service is assumed to sit at the root of its
  host: a proxy that serves it under a sub-path needs ``base_url``.

:class:`PublicURLs` is the one builder; route handlers get theirs from the request
(``vo_service.web.public_urls``), and everything that writes a URL into a document
receives a :class:`PublicURLs` (or its base) from there.
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit

from schema.model_cards import CARD_JSON_NAME, MODELS_PATH


def base_path(base: str) -> str:
    """The path part of a base URL (``""`` at the root of its host, else ``/a/b``)."""
    return urlsplit(base).path.rstrip("/")


def public_base(configured: str | None, request_base: str) -> str:
    """The base of every URL of one response: the configured one, else the request's."""
    return configured if configured else request_base.rstrip("/")


def quote_id(pubdid: str) -> str:
    """A publisher DID as the value of an ``ID=`` query parameter."""
    return quote(pubdid, safe=":/")


class PublicURLs:
    """The service's URLs under one base (no trailing slash).

    Parameters
    ----------
    base
        What :func:`public_base` returns for the request being answered.
    """

    def __init__(self, base: str) -> None:
        self.base = base.rstrip("/")

    def __repr__(self) -> str:
        return f"PublicURLs({self.base!r})"

    @property
    def landing(self) -> str:
        """The landing page (the base with a trailing slash)."""
        return self.base + "/"

    # -- TAP ----------------------------------------------------------------------------

    @property
    def tap(self) -> str:
        """The TAP base URL clients are given (pyvo appends ``/sync``, ``/async``, ...)."""
        return self.base + "/tap"

    def tap_job(self, job_id: str) -> str:
        """The UWS job ``job_id`` of TAP's ``/async``."""
        return f"{self.tap}/async/{job_id}"

    def tap_query(self, adql: str) -> str:
        """A synchronous ADQL query as one GET URL (DataLink ``#derivation`` links)."""
        return f"{self.tap}/sync?REQUEST=doQuery&LANG=ADQL&QUERY={quote(adql, safe='')}"

    # -- SSA, getData, DataLink -------------------------------------------------------

    @property
    def ssa(self) -> str:
        """The SSA base URL (queryData requests go to it directly)."""
        return self.base + "/ssa"

    def getdata(self, pubdid: str, fmt: str | None = None) -> str:
        """The spectrum ``pubdid`` as stored (``fmt`` None) or converted to ``fmt``."""
        url = f"{self.base}/getdata?ID={quote_id(pubdid)}"
        return f"{url}&FORMAT={quote(fmt, safe='')}" if fmt else url

    def links(self, pubdid: str | None = None) -> str:
        """The DataLink ``{links}`` endpoint, or one spectrum's links."""
        url = self.base + "/datalink/links"
        return f"{url}?ID={quote_id(pubdid)}" if pubdid is not None else url

    def similar(self, pubdid: str | None = None, model: str | None = None,
                k: int | None = None) -> str:
        """The similar-spectra service, or one call of it."""
        url = self.base + "/datalink/similar"
        if pubdid is None:
            return url
        url += f"?ID={quote_id(pubdid)}"
        if model is not None:
            url += f"&MODEL={quote(model, safe='')}"
        return url + (f"&K={k}" if k is not None else "")

    def similar_search(self) -> str:
        """Similarity by uploaded spectrum (or by ID, with label filters): ``/similar``."""
        return self.base + "/similar"

    # -- registry, releases and citation ----------------------------------------------

    @property
    def oai(self) -> str:
        """The OAI-PMH publishing registry."""
        return self.base + "/oai"

    def voresource(self, identifier: str) -> str:
        """The VOResource record of ``identifier`` (an ``ivo://`` URI) from the registry."""
        return (f"{self.oai}?verb=GetRecord&metadataPrefix=ivo_vor"
                f"&identifier={quote(identifier, safe='')}")

    @property
    def releases(self) -> str:
        """The list of data releases."""
        return self.base + "/releases"

    def release_page(self, name: str) -> str:
        """The landing page of the data release ``name`` (its VOResource referenceURL)."""
        return f"{self.releases}/{quote(name, safe='')}"

    def release_datacite(self, name: str) -> str:
        """The release's DataCite 4.3 XML."""
        return self.release_page(name) + "/datacite.xml"

    def release_bibtex(self, name: str) -> str:
        """The release's BibTeX entry."""
        return self.release_page(name) + "/citation.bib"

    def release_crate(self, name: str) -> str:
        """The release's RO-Crate metadata document."""
        return self.release_page(name) + "/ro-crate-metadata.json"

    # -- model cards ------------------------------------------------------------------

    @property
    def models(self) -> str:
        """The list of registered models and their model cards."""
        return self.base + MODELS_PATH

    def model_card(self, model_id: str) -> str:
        """The HTML model card of ``model_id`` (``latentvo.model_cards.card_url``)."""
        return f"{self.models}/{quote(model_id, safe='')}"

    def model_card_json(self, model_id: str) -> str:
        """The JSON model card of ``model_id`` (``latentvo.model_cards.card_json_url``)."""
        return f"{self.model_card(model_id)}/{CARD_JSON_NAME}"

    # -- the latent-space explorer -------------------------------------------------------

    @property
    def explore(self) -> str:
        """The latent-space explorer page."""
        return self.base + "/explore"

    def explore_spectrum(self, pubdid: str, model: str | None = None) -> str:
        """The explorer page opened on one spectrum (and model)."""
        url = f"{self.explore}?ID={quote_id(pubdid)}"
        return f"{url}&MODEL={quote(model, safe='')}" if model is not None else url
