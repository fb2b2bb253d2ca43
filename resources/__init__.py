"""Service metadata and TAP examples, installed as the package ``vo_service.resources``.

The folder stays at the top of the repository (see DESIGN.md); ``pyproject.toml`` maps it
into the package so that a wheel ships it and the service reads it with
:mod:`importlib.resources`, not from a path beside the source checkout. This file makes
the folder a regular package, which an editable install needs to import it.
"""
