"""VOSI 1.1 documents of TAP and SSA: availability, capabilities, tables.

Written once for both protocols: :mod:`~vo_service.vosi.availability` (one
document, one "up since" clock: the application's start), the capabilities
frame and its VOSI entries (:mod:`~vo_service.vosi.capabilities`), and TAP's
``/tables`` (:mod:`~vo_service.vosi.tables`). Each protocol adds only its own
capability element; the routes are in ``tap/routes.py`` and ``ssa/routes.py``.
"""
