"""SSA 1.1 (Simple Spectral Access): ``/ssa`` queryData, FORMAT=METADATA, and VOSI.

* ``GET|POST /ssa?REQUEST=queryData&POS=...&SIZE=...&BAND=...&TIME=...`` (see
  :mod:`vo_service.ssa.params` for every parameter and ``docs/ssa-datalink-obscore.md``);
* ``/ssa/capabilities`` (SimpleDALRegExt ``ssa:SimpleSpectralAccess``) and
  ``/ssa/availability``.

Records point to ``/getdata`` (Access.Reference) and carry a DataLink service
descriptor; :func:`install` mounts getData and DataLink too when they are not
installed yet.
"""

from __future__ import annotations

from fastapi import FastAPI


def install(app: FastAPI, database) -> None:
    from vo_service.ssa import routes

    app.state.ssa = routes.SSA(database=database,
                               base_url=database.settings.base_url.rstrip("/"),
                               limits=database.settings.ssa)
    app.include_router(routes.router)
