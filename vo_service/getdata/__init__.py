"""getData: the spectra themselves, as stored or converted, and their previews.

``GET|HEAD /getdata?ID=<publisher DID>[&FORMAT=native|votable|fits|png]``:

* ``native`` (default): the original file from the content-addressed store,
  with its MIME type (gzip-compressed FITS files with ``Content-Encoding: gzip``);
* ``votable``: IVOA Spectrum DM VOTable; ``fits``: FITS binary table with
  Spectrum DM utypes; ``png``: a plot (all converted once, then cached on disk).

Every answer has ``Content-Length``, ``Last-Modified``/``ETag`` and supports
HTTP ``Range`` requests (single and multiple ranges, ``If-Range``). Errors are
DALI VOTable error documents (400 bad request, 404 unknown ID).

SSA Access.Reference and DataLink ``#this`` / ``#preview`` links point here
(``vo_service.urls.PublicURLs.getdata``); the handler is in
:mod:`vo_service.getdata.routes`.
"""
