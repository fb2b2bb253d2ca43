"""DataLink 1.1: ``/datalink/links`` for each spectrum, and the "similar spectra" service.

* ``GET|POST /datalink/links?ID=<publisher DID>&ID=...``: for every ID its
  links, consecutive, in the order asked (see :mod:`vo_service.datalink.links`);
* ``GET|POST /datalink/similar?ID=...[&K=10][&MODEL=...]``: the K nearest
  spectra in a model's latent space, with distances
  (:mod:`vo_service.datalink.similar`); described by a service descriptor in
  every links response.

:func:`install` mounts both routes.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import FastAPI

LINKS_PATH = "/datalink/links"
SIMILAR_PATH = "/datalink/similar"


def install(app: FastAPI, database) -> None:
    from vo_service.datalink import links, similar
    from vo_service.getdata.lookup import SpectrumLookup

    if not hasattr(app.state, "getdata"):
        from vo_service import getdata
        getdata.install(app, database)
    app.state.datalink = links.DataLink(
        database=database, base_url=database.settings.base_url.rstrip("/"),
        lookup=SpectrumLookup(database.reader_engine, ttl=5.0),
        store=app.state.getdata.store, converter=app.state.getdata.converter)
    app.include_router(links.router)
    app.include_router(similar.router)


def links_url(base_url: str, pubdid: str | None = None) -> str:
    url = base_url.rstrip("/") + LINKS_PATH
    return f"{url}?ID={quote(pubdid, safe=':/')}" if pubdid is not None else url
