"""getData: the spectra themselves, as stored or converted, and their previews.

``GET|HEAD /getdata?ID=<publisher DID>[&FORMAT=native|votable|fits|png]``:

* ``native`` (default): the original file from the content-addressed store,
  with its MIME type (gzip-compressed FITS files with ``Content-Encoding: gzip``);
* ``votable``: IVOA Spectrum DM VOTable; ``fits``: FITS binary table with
  Spectrum DM utypes; ``png``: a plot (all converted once, then cached on disk).

Every answer has ``Content-Length``, ``Last-Modified``/``ETag`` and supports
HTTP ``Range`` requests (single and multiple ranges, ``If-Range``). Errors are
DALI VOTable error documents (400 bad request, 404 unknown ID).

:func:`install` mounts the route; SSA Access.Reference and DataLink ``#this`` /
``#preview`` links point here.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import FastAPI


def install(app: FastAPI, database) -> None:
    from vo_service.archive.store import FileStore
    from vo_service.getdata import routes
    from vo_service.getdata.convert import Converter
    from vo_service.getdata.lookup import SpectrumLookup

    settings = database.settings
    store = FileStore(settings.store_dir)
    app.state.getdata = routes.GetData(
        store=store, lookup=SpectrumLookup(database.reader_engine),
        converter=Converter(store, settings.home / "cache" / "getdata"))
    app.include_router(routes.router)


def getdata_url(base_url: str, pubdid: str, fmt: str | None = None) -> str:
    url = f"{base_url.rstrip('/')}/getdata?ID={quote(pubdid, safe=':/')}"
    return f"{url}&FORMAT={fmt}" if fmt else url
