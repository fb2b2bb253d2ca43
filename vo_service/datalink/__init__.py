"""DataLink 1.1: ``/datalink/links`` for each spectrum, and the "similar spectra" service.

* ``GET|POST /datalink/links?ID=<publisher DID>&ID=...``: for every ID its
  links, consecutive, in the order asked (rows: :mod:`vo_service.datalink.links`);
* ``GET|POST /datalink/similar?ID=...[&K=10][&MODEL=...]``: the K nearest
  spectra in a model's latent space, with distances
  (:mod:`vo_service.datalink.similar`); described by a service descriptor in
  every links response.

The documents are written by :mod:`vo_service.datalink.document`; the HTTP
handlers are in :mod:`vo_service.datalink.routes`.
"""
