"""Data releases: frozen, citable states of the archive's spectra and ML products.

``latentvo release create`` copies what a release contains into tables of its own
schema (the release's name) and records a manifest; ``publish`` makes them visible
to TAP at once; ``withdraw`` removes them, leaving a tombstone page and a deleted
registry record. :mod:`vo_service.releases.store` reads the releases.
"""
