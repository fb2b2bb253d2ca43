"""SSA 1.1 (Simple Spectral Access): ``/ssa`` queryData, FORMAT=METADATA, and VOSI.

* ``GET|POST /ssa?REQUEST=queryData&POS=...&SIZE=...&BAND=...&TIME=...`` (see
  :mod:`vo_service.ssa.params` for every parameter and ``docs/ssa-datalink-obscore.md``);
* ``/ssa/capabilities`` (SimpleDALRegExt ``ssa:SimpleSpectralAccess``) and
  ``/ssa/availability``.

Records point to ``/getdata`` (Access.Reference) and carry a DataLink service
descriptor. The documents are written by :mod:`vo_service.ssa.document`, the
HTTP handlers are in :mod:`vo_service.ssa.routes`.
"""
