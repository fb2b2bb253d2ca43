"""The publishing registry: VOResource records of this site, OAI-PMH and RegTAP over them.

Every record is generated from the service settings (``[service]``) and the
database (published tables, catalogues, releases); :mod:`vo_service.registry.record`
holds the two shapes a record takes: a draft (what the site says now) and a stored
record (dated, possibly deleted), which the OAI-PMH interface and the ``rr``
tables serve.
"""
