"""What belongs to a spectrum, as the rows of a DataLink 1.1 ``{links}`` table.

This module reads the database and decides the rows; the VOTable around them is
``vo_service.datalink.document``'s, the HTTP handler ``vo_service.datalink.routes``'.

For each known ID, in this order:

* ``#this``: the spectrum as a FITS binary table with Spectrum DM utypes (first,
  so that pyvo's ``getdataset()`` gets a file astropy and specutils load with
  units), as a Spectrum DM VOTable, and as the original file;
* ``#preview-plot``: a PNG plot;
* ``#derivation``: its predicted labels (every label model) and its latent
  vectors (every autoencoder), as TAP queries returning VOTables;
* ``#documentation``: for each model that made those products, its model card
  (HTML, ``/models/<model_id>``; ``card.json`` beside it) and its registry entry
  (provenance, metrics) as a TAP query;
* ``#counterpart``: the K most similar spectra (a fixed link; K is
  ``[datalink] similar_k_default``, 10) and the
  ``similar`` service descriptor for other K or models, when the spectrum has
  a latent vector.

An unknown ID gets one ``#this`` row with ``NotFoundFault`` in error_message.
At most :data:`MAX_IDS` IDs are answered per request; the rest are left out
whole and the response is flagged OVERFLOW (pyvo asks again for the rest).
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from schema.tables import AUTOENCODER, MODEL_RANK
from schema.vo import ColumnMeta
from vo_service.archive.store import FileStore
from vo_service.config import DataLinkLimits
from vo_service.db.database import Database
from vo_service.formats.fields import Field
from vo_service.getdata.convert import REPRESENTATIONS, Converter
from vo_service.getdata.lookup import SpectrumLookup
from vo_service.urls import PublicURLs

MAX_IDS = 1000
VOTABLE = "application/x-votable+xml"


def _field(name: str, datatype: str = "char", **meta) -> Field:
    return Field.of(name, ColumnMeta(datatype, **meta))


FIELDS = [
    _field("ID", ucd="meta.id;meta.main",
           description="Identifier (publisher DID) the link belongs to"),
    _field("access_url", ucd="meta.ref.url", description="URL of the linked resource"),
    _field("service_def", ucd="meta.ref",
           description="ID of the service descriptor to call (RESOURCE below)"),
    _field("error_message", ucd="meta.code.error", description="Why no link could be given"),
    _field("description", ucd="meta.note", description="What the link leads to"),
    _field("semantics", ucd="meta.code",
           description="Relation of the linked resource to the spectrum (DataLink vocabulary)"),
    _field("content_type", ucd="meta.code.mime", description="MIME type of the linked resource"),
    _field("content_length", "long", unit="byte", ucd="phys.size;meta.file",
           description="Size of the linked resource, when known"),
    _field("content_qualifier", ucd="meta.code.class",
           description="Product type of the linked resource (product-type vocabulary)"),
    _field("local_semantics", ucd="meta.id.assoc", description="latentvo's own tag for the link"),
]
NAMES = [f.name for f in FIELDS]


@dataclass
class DataLink:
    """What the DataLink endpoints read: the database, spectra by DID, files, conversions."""

    database: Database
    lookup: SpectrumLookup
    store: FileStore
    converter: Converter
    limits: DataLinkLimits


def _products(engine: sa.Engine, spectrum_ids: list[int]) -> dict[int, list]:
    """(kind, model_id) of the ML products of each spectrum, current model first
    (the order of ``latentvo.model_rank``)."""
    if not spectrum_ids:
        return {}
    sql = sa.text(
        "SELECT p.spectrum_id, p.kind, p.model_id "
        "FROM (SELECT spectrum_id, 'labels' AS kind, model_id FROM latentvo.labels "
        "      WHERE spectrum_id = ANY(:ids) "
        "      UNION ALL "
        "      SELECT spectrum_id, 'latent', model_id FROM latentvo.latent "
        "      WHERE spectrum_id = ANY(:ids)) AS p "
        f"JOIN {MODEL_RANK} AS r USING (model_id) "
        "ORDER BY p.spectrum_id, p.kind, r.rank")
    out: dict[int, list] = {}
    with engine.connect() as conn:
        for row in conn.execute(sql, {"ids": spectrum_ids}):
            out.setdefault(row.spectrum_id, []).append(row)
    return out


def _row(did: str, **values) -> dict:
    row = dict.fromkeys(NAMES)
    row["ID"] = did
    row.update(values)
    return row


def link_rows(dl: DataLink, urls: PublicURLs, dids: list[str]) -> tuple[list[dict], bool]:
    """The rows for ``dids`` (at most MAX_IDS of them) and whether some were left out.

    Parameters
    ----------
    dl
        The service's database, lookup, store and converter.
    urls
        The public URLs of this response (every ``access_url`` is one of them).
    dids
        Publisher DIDs in the order asked; each gets its rows consecutively.
    """
    overflow = len(dids) > MAX_IDS
    dids = dids[:MAX_IDS]
    records = dl.lookup.many(dids)
    products = _products(dl.database.reader_engine,
                         [r.spectrum_id for r in records.values()])
    rows: list[dict] = []
    for did in dids:
        rec = records.get(did)
        if rec is None:
            rows.append(_row(did, semantics="#this",
                             error_message=f"NotFoundFault: no spectrum with ID {did}"))
            continue
        for key in ("fits", "votable"):
            rep = REPRESENTATIONS[key]
            cached = dl.converter.cached_path(rec.file_sha256, key)
            rows.append(_row(
                did, access_url=urls.getdata(did, key), semantics="#this",
                description=f"The spectrum as {rep.description}", content_type=rep.mime,
                content_length=cached.stat().st_size if cached.exists() else None,
                content_qualifier="#spectrum", local_semantics=f"spectrum-{key}"))
        native = dl.store.path_for(rec.file_sha256)
        rows.append(_row(
            did, access_url=urls.getdata(did), semantics="#this",
            description=f"The original file as ingested ({rec.file_name})",
            content_type=rec.access_format,
            content_length=native.stat().st_size if native.exists() else None,
            content_qualifier="#spectrum", local_semantics="spectrum-original"))
        png = dl.converter.cached_path(rec.file_sha256, "png")
        rows.append(_row(
            did, access_url=urls.getdata(did, "png"), semantics="#preview-plot",
            description="Plot of the spectrum (flux against wavelength)",
            content_type="image/png",
            content_length=png.stat().st_size if png.exists() else None,
            local_semantics="preview"))
        mine = products.get(rec.spectrum_id, [])
        label_models = [p.model_id for p in mine if p.kind == "labels"]
        latent = [p for p in mine if p.kind == "latent"]
        sid = rec.spectrum_id
        if label_models:
            rows.append(_row(
                did, access_url=urls.tap_query(
                    f"SELECT * FROM latentvo.labels WHERE spectrum_id = {sid} "
                    "ORDER BY model_id"),
                semantics="#derivation", content_type=VOTABLE, content_qualifier="#measurements",
                description="Stellar labels (Teff, log g, [M/H], [alpha/M] with 1-sigma "
                f"errors and training-domain flag) predicted by {', '.join(label_models)}",
                local_semantics="labels"))
        if latent:
            rows.append(_row(
                did, access_url=urls.tap_query(
                    f"SELECT * FROM latentvo.latent WHERE spectrum_id = {sid} "
                    "ORDER BY model_id"),
                semantics="#derivation", content_type=VOTABLE,
                description="Latent vectors of the spectrum from "
                f"{', '.join(p.model_id for p in latent)}", local_semantics="latent"))
        for model in dict.fromkeys(label_models + [p.model_id for p in latent]):
            rows.append(_row(
                did, access_url=urls.model_card(model), semantics="#documentation",
                content_type="text/html", local_semantics="model-card",
                description=f"Model card of {model}: training data and checksum, label "
                "sets, metrics per S/N bin, calibration, domain definition, intended use and "
                "known limits (also as JSON: card.json)"))
            literal = model.replace("'", "''")
            rows.append(_row(
                did, access_url=urls.tap_query(
                    f"SELECT * FROM latentvo.models WHERE model_id = '{literal}'"),
                semantics="#documentation", content_type=VOTABLE,
                description=f"Registry entry of model {model}: architecture, training data "
                "and checksum, code version, metrics, artifact checksum",
                local_semantics="model"))
        if latent:
            model, k = latent[0].model_id, dl.limits.similar_k_default
            rows.append(_row(
                did, access_url=urls.similar(did, model, k), semantics="#counterpart",
                content_type=VOTABLE, local_semantics="similar",
                description=f"The {k} most similar spectra in the latent space of "
                f"{model}, with distances"))
            rows.append(_row(
                did, service_def="similar", semantics="#counterpart", content_type=VOTABLE,
                local_semantics="similar-service",
                description="Similar spectra: choose how many (K) and the autoencoder "
                "(MODEL)"))
            rows.append(_row(
                did, service_def="similar-search", semantics="#counterpart",
                content_type=VOTABLE, local_semantics="similar-search",
                description="Similar spectra with their labels, filtered by predicted Teff, "
                "log g, [M/H] and domain flag (/similar; POST your own spectrum as UPLOAD "
                "to search with it)"))
            rows.append(_row(
                did, access_url=urls.explore_spectrum(did, model), semantics="#auxiliary",
                content_type="text/html", local_semantics="explorer",
                description=f"Interactive page: the spectrum, its reconstruction by {model}, "
                "its latent dimensions as sliders and the spectra nearest to each point"))
    return rows, overflow


def autoencoders(engine: sa.Engine) -> list[str]:
    """The autoencoders a similar-spectra search may use, current first."""
    with engine.connect() as conn:
        return list(conn.scalars(sa.text(
            f"SELECT r.model_id FROM {MODEL_RANK} AS r JOIN latentvo.models AS m "
            "USING (model_id) WHERE r.kind = :kind AND m.latent_dim IS NOT NULL "
            "ORDER BY r.rank"), {"kind": AUTOENCODER}))
