"""The VOTable documents of DataLink: ``{links}`` tables, similar spectra, service descriptors.

The rows come from :mod:`vo_service.datalink.links` and
:mod:`vo_service.datalink.similar`; the VOTable layout is the result writers'
(:class:`vo_service.formats.votable.ResultDocument`). What is DataLink's own is
here: the ``adhoc:service`` descriptors (the DataLink descriptor that makes any
result table DataLink-aware for pyvo and TOPCAT, and the similar-spectra service
with its inputs) and the order of a ``{links}`` document.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

from schema.latent_index import MAX_INDEX_TOP
from vo_service.config import DataLinkLimits, SimilarSettings
from vo_service.dali import DALIError, Params
from vo_service.datalink import links, similar
from vo_service.datalink.links import FIELDS, NAMES, VOTABLE, DataLink
from vo_service.formats.votable import Param, ResultDocument, arrow_table
from vo_service.urls import PublicURLs

DATALINK_MIME = "application/x-votable+xml;content=datalink"
DATALINK_STANDARD = "ivo://ivoa.net/std/DataLink#links-1.1"


@dataclass(frozen=True)
class ServiceDescriptor:
    """A DataLink 1.1 service descriptor (``RESOURCE type="meta" utype="adhoc:service"``)."""

    ident: str
    access_url: str
    description: str
    input_params: Sequence[Param]
    standard_id: str | None = None
    content_type: str | None = None

    def xml(self) -> str:
        """The descriptor's ``RESOURCE`` element, with its ``inputParams`` group."""
        parts = [f'<RESOURCE type="meta" utype="adhoc:service" ID={quoteattr(self.ident)} '
                 f'name={quoteattr(self.ident)}>\n',
                 f"<DESCRIPTION>{escape(self.description)}</DESCRIPTION>\n",
                 Param("accessURL", self.access_url, ucd="meta.ref.url").xml()]
        if self.standard_id:
            parts.append(Param("standardID", self.standard_id, ucd="meta.ref.ivoid").xml())
        if self.content_type:
            parts.append(Param("contentType", self.content_type, ucd="meta.code.mime").xml())
        parts.append('<GROUP name="inputParams">\n')
        parts += [p.xml() for p in self.input_params]
        parts.append("</GROUP>\n</RESOURCE>\n")
        return "".join(parts)


def datalink_descriptor(links_url: str, id_field: str) -> ServiceDescriptor:
    """The descriptor that makes a result table DataLink-aware (pyvo, TOPCAT)."""
    return ServiceDescriptor(
        ident="datalink", access_url=links_url, standard_id=DATALINK_STANDARD,
        content_type=DATALINK_MIME,
        description="DataLink: files in every format, preview, machine-learning products "
        "and similar spectra of a spectrum",
        input_params=[Param("ID", "", ref=id_field, ucd="meta.id;meta.main",
                            description="Publisher DID of the spectrum")])


def similar_descriptor(urls: PublicURLs, models: list[str], limits: DataLinkLimits
                       ) -> ServiceDescriptor:
    """The similar-spectra service, with its inputs ID, K (its default and maximum from
    ``limits``) and MODEL."""
    return ServiceDescriptor(
        ident="similar", access_url=urls.similar(), content_type=VOTABLE,
        description="Spectra most similar to this one: the K nearest neighbours in an "
        "autoencoder's latent space, with their distances (K below "
        f"{MAX_INDEX_TOP}: from the pgvector HNSW index, approximate; larger K: exact)",
        input_params=[
            Param("ID", "", ref="ID", ucd="meta.id;meta.main",
                  description="Publisher DID of the spectrum"),
            Param("K", "", datatype="int", ucd="meta.number", minimum="1",
                  maximum=str(limits.similar_k_max),
                  description=f"Number of neighbours (default {limits.similar_k_default})"),
            Param("MODEL", "", ucd="meta.id;meta.software", options=tuple(models),
                  description="Autoencoder whose latent space is searched (default: the "
                  "newest one that encoded the spectrum)"),
        ])


def similar_search_inputs(models: list[str], limits: SimilarSettings) -> list[Param]:
    """The inputs of ``/similar`` (``vo_service.similar``) a client fills in; an upload
    (multipart ``UPLOAD``) is described in the text, as forms cannot fill it."""
    ranges = {"TEFF": ("K", "Teff"), "LOGG": ("log(cm.s**-2)", "log g"),
              "MH": ("dex", "[M/H]")}
    return [
        Param("ID", "", ref="ID", ucd="meta.id;meta.main",
              description="Publisher DID of the spectrum (or UPLOAD a file instead, "
              "multipart POST)"),
        Param("K", "", datatype="int", ucd="meta.number", minimum="1",
              maximum=str(limits.k_max),
              description=f"Number of neighbours (default {limits.k_default})"),
        Param("MODEL", "", ucd="meta.id;meta.software", options=tuple(models),
              description="Autoencoder (or label model) to search with (default: the "
              "current autoencoder and its label model)"),
        *(Param(name, "", datatype="double", arraysize="2", xtype="interval", unit=unit,
                ucd="phys;meta.modelled", description=f"Interval of the neighbours' "
                f"predicted {label} ('low high', -Inf/+Inf open)")
          for name, (unit, label) in ranges.items()),
        Param("IN_DOMAIN", "", datatype="boolean", ucd="meta.code.qual",
              description="Only neighbours in (true) or out of (false) the label model's "
              "training domain"),
    ]


def similar_search_descriptor(urls: PublicURLs, models: list[str], limits: SimilarSettings
                              ) -> ServiceDescriptor:
    """The DataLink service descriptor of ``/similar`` for a spectrum's ``{links}``."""
    return ServiceDescriptor(
        ident="similar-search", access_url=urls.similar_search(), content_type=VOTABLE,
        description="Similar spectra with label filters: the K archive spectra nearest in "
        "latent space, with their labels, errors and domain flags; POST a spectrum file as "
        "UPLOAD (multipart) instead of ID to search with your own spectrum",
        input_params=similar_search_inputs(models, limits))


def check_response_format(params: Params) -> None:
    """Refuse a RESPONSEFORMAT other than VOTable (the only form of DataLink responses)."""
    fmt = params.single("RESPONSEFORMAT")
    if fmt is None or not fmt.strip():
        return
    base = fmt.split(";")[0].strip().lower()
    if base in ("votable", "application/x-votable+xml", "text/xml"):
        return
    raise DALIError(f"unsupported RESPONSEFORMAT {fmt!r}; DataLink responses are VOTables "
                    f"({DATALINK_MIME})")


def links_document(dl: DataLink, urls: PublicURLs, dids: list[str]) -> bytes:
    """The ``{links}`` document for ``dids`` (OVERFLOW when some were left out)."""
    rows, overflow = links.link_rows(dl, urls, dids)
    table = arrow_table(FIELDS, {n: [r[n] for r in rows] for n in NAMES})
    descriptors = []
    if any(r["service_def"] == "similar" for r in rows):
        descriptors.append(similar_descriptor(
            urls, links.autoencoders(dl.database.reader_engine), dl.limits))
    if any(r["service_def"] == "similar-search" for r in rows):
        descriptors.append(similar_search_descriptor(
            urls, links.autoencoders(dl.database.reader_engine), dl.database.settings.similar))
    doc = ResultDocument(FIELDS, infos=[("standardID", DATALINK_STANDARD, None)],
                         field_ids={"ID": "ID"}, descriptors=descriptors, table_name="links")
    return doc.render(table, overflow=overflow)


def similar_document(dl: DataLink, urls: PublicURLs, did: str, k: int,
                     model: str | None) -> bytes:
    """The ``k`` spectra most similar to ``did``, DataLink-aware through their DIDs."""
    model_id, metric, rows = similar.neighbours(dl.database.reader_engine, did, k, model)
    columns = {
        "rank": list(range(1, len(rows) + 1)),
        "obs_publisher_did": [r.obs_publisher_did for r in rows],
        "distance": [float(r.distance) for r in rows],
        "spectrum_id": [r.spectrum_id for r in rows],
        "target_name": [r.target_name for r in rows],
        "s_ra": [r.s_ra for r in rows], "s_dec": [r.s_dec for r in rows],
        "snr": [r.snr for r in rows], "instrument_name": [r.instrument_name for r in rows],
    }
    doc = ResultDocument(
        similar.FIELDS, table_name="similar",
        infos=[("ID", did, None), ("MODEL", model_id, None), ("K", str(k), None),
               ("metric", metric,
                f"{similar.METRICS[metric]} in the latent space of {model_id}")],
        field_ids={"obs_publisher_did": "obs_publisher_did"},
        descriptors=[datalink_descriptor(urls.links(), "obs_publisher_did")])
    return doc.render(arrow_table(similar.FIELDS, columns))
