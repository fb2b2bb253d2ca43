"""TAP 1.1: sync and async (UWS 1.1) queries, uploads, examples, and its VOSI resources.

The HTTP handlers, and the :func:`~vo_service.tap.routes.install`,
:func:`~vo_service.tap.routes.start` and :func:`~vo_service.tap.routes.stop`
that mount them and run the async workers, are in :mod:`vo_service.tap.routes`;
the other modules hold what they call (query, uws, sync, jobs, runner, ...).
"""
