"""The ``/similar`` response in VOTable, CSV/TSV or JSON, and the service's description.

One row per neighbour, nearest first: rank, publisher DID, distance, the spectrum's
position, S/N and instrument, its labels with 1-sigma errors and domain flag from
the label model, and its getData and DataLink URLs. The VOTable is DataLink-aware
(a service descriptor on ``obs_publisher_did``), so TOPCAT and pyvo go on from any
neighbour to its files. The query spectrum's own encoding and predicted labels are
PARAMs of the result RESOURCE (``query_*``: TOPCAT shows them as table parameters,
astropy and pyvo as ``resources[0].params``), beside INFOs naming the models, K, the metric and how
the neighbours were found; in JSON they are the object ``"query"``; CSV and TSV hold
the rows only.
"""

from __future__ import annotations

import json
from xml.sax.saxutils import escape

from schema.tables import LABEL_QUANTITIES, labels
from schema.vo import ColumnMeta, column_meta
from vo_service.config import SimilarSettings
from vo_service.datalink import similar as neighbours
from vo_service.datalink.document import datalink_descriptor, similar_search_inputs
from vo_service.datalink.links import VOTABLE
from vo_service.formats.fields import Field
from vo_service.formats.votable import Param, ResultDocument, arrow_table
from vo_service.similar.request import SimilarRequest
from vo_service.similar.search import SimilarResult
from vo_service.urls import PublicURLs
from vo_service.vosi.capabilities import capabilities_document, vosi_capability

lab = labels.c
FIELDS = [
    *neighbours.FIELDS,  # the columns of /datalink/similar, then the label model's
    *(Field.from_column(lab[name]) for q in LABEL_QUANTITIES for name in (q, f"{q}_err")),
    Field.from_column(lab.in_domain), Field.from_column(lab.domain_score),
    Field.of("access_url", ColumnMeta("char", ucd="meta.ref.url", description="getData URL "
                                      "of the spectrum's file as ingested")),
    Field.of("datalink_url", ColumnMeta("char", ucd="meta.ref.url", description="DataLink "
                                        "{links} of the spectrum (files, products, similar)")),
]
NAMES = [f.name for f in FIELDS]
SIMILAR_STANDARD = "/std/similar"  # after the service's authority: a custom capability


def _columns(result: SimilarResult, urls: PublicURLs) -> dict[str, list]:
    rows = result.rows
    columns: dict[str, list] = {"rank": list(range(1, len(rows) + 1))}
    for name in NAMES[1:]:
        if name == "access_url":
            columns[name] = [urls.getdata(r.obs_publisher_did) for r in rows]
        elif name == "datalink_url":
            columns[name] = [urls.links(r.obs_publisher_did) for r in rows]
        else:
            columns[name] = [getattr(r, name) for r in rows]
    columns["distance"] = [float(d) for d in columns["distance"]]
    return columns


def _query_params(result: SimilarResult) -> list[Param]:
    q = result.query
    vector = " ".join(f"{v:.9g}" for v in q.latent)
    params = [Param("query_latent", vector, datatype="float", arraysize=str(len(q.latent)),
                    ucd="meta.code", description=f"Latent vector of the query spectrum in "
                    f"model {result.model_id}")]
    if q.rv_kms is not None:
        params.append(Param("query_rv", f"{q.rv_kms:.6g}", datatype="double", unit="km/s",
                            ucd="spect.dopplerVeloc", description="Radial velocity of the "
                            "uploaded spectrum against the model's template"))
    if q.snr is not None:
        params.append(Param("query_snr", f"{q.snr:.6g}", datatype="double",
                            ucd="stat.snr", description="Median S/N of the query spectrum"))
    for quantity, value in q.labels.items():
        meta = column_meta(labels.c[quantity])
        params.append(Param(f"query_{quantity}", f"{value:.7g}", datatype="double",
                            unit=meta.unit, ucd=meta.ucd, description=f"{meta.description} "
                            "of the query spectrum"))
        if quantity in q.sigma:
            params.append(Param(f"query_{quantity}_err", f"{q.sigma[quantity]:.7g}",
                                datatype="double", unit=meta.unit, ucd="stat.error",
                                description="Its calibrated 1-sigma error"))
    if q.in_domain is not None:
        params.append(Param("query_in_domain", "true" if q.in_domain else "false",
                            datatype="boolean", ucd="meta.code.qual",
                            description="Whether the query spectrum lies in the label "
                            "model's training domain"))
    if q.domain_score is not None:
        params.append(Param("query_domain_score", f"{q.domain_score:.6g}", datatype="double",
                            ucd="stat.value", description="Its latent distance to the "
                            "training spectra (1 = typical)"))
    return params


def _infos(result: SimilarResult, request: SimilarRequest) -> list[tuple[str, str, str | None]]:
    how = ("exact scan" if result.exact else "pgvector HNSW index (approximate"
           + (", iterative scan through the label filters)" if request.filtered else ")"))
    infos: list[tuple[str, str, str | None]] = [
        ("QUERY", result.query.source, "The spectrum searched with: 'upload', or the ID"),
        ("MODEL", result.model_id, "Autoencoder whose latent space was searched"),
        ("K", str(request.k), None),
        ("metric", result.metric, f"{neighbours.METRICS[result.metric]} in the latent space of "
         f"{result.model_id}"),
        ("search", "exact" if result.exact else "index", how)]
    if result.label_model_id:
        infos.insert(2, ("LABEL_MODEL", result.label_model_id,
                         "Label model of the labels, errors and domain flags"))
    return infos


def render(result: SimilarResult, request: SimilarRequest, urls: PublicURLs) -> bytes:
    """The response body in the requested format."""
    table = arrow_table(FIELDS, _columns(result, urls))
    fmt = request.response_format
    if fmt is None or fmt.key.startswith("votable"):
        doc = ResultDocument(FIELDS, infos=_infos(result, request),
                             params=_query_params(result), table_name="similar",
                             field_ids={"obs_publisher_did": "obs_publisher_did"},
                             descriptors=[datalink_descriptor(urls.links(),
                                                              "obs_publisher_did")])
        return doc.render(table)
    writer = fmt.writer(FIELDS)
    body = writer.header() + b"".join(writer.rows(table.to_batches())) + writer.footer()
    if fmt.key != "json":
        return body
    document = json.loads(body)
    q = result.query
    document["query"] = {
        "source": q.source, "model": result.model_id, "label_model": result.label_model_id,
        "metric": result.metric, "latent": [float(v) for v in q.latent], "rv": q.rv_kms,
        "snr": q.snr, "labels": q.labels, "errors": q.sigma, "in_domain": q.in_domain,
        "domain_score": q.domain_score, "search": "exact" if result.exact else "index"}
    return (json.dumps(document) + "\n").encode()


def capabilities(urls: PublicURLs, authority: str, limits: SimilarSettings) -> str:
    """VOSI capabilities of ``/similar``: a custom capability (not an IVOA standard) with
    a ParamHTTP interface declaring its parameters, then the VOSI endpoints."""
    described = [(p.name, p.datatype if p.datatype != "boolean" else "char",
                  p.description or "") for p in similar_search_inputs([], limits)]
    described += [("UPLOAD", "char", "A spectrum file (multipart/form-data part), in any "
                   "format the archive ingests: FITS (SDSS, ESO Phase 3, 1D WCS) or "
                   "Spectrum-DM VOTable"),
                  ("RESPONSEFORMAT", "char", "votable (default), csv, tsv or json")]
    params = "".join(
        f'<param std="false"><name>{escape(name)}</name>'
        f"<description>{escape(text)}</description>"
        f"<dataType>{escape(datatype)}</dataType></param>"
        for name, datatype, text in described)
    capability = (
        f'<capability standardID="{escape(authority + SIMILAR_STANDARD)}">'
        "<description>Similarity by spectrum: the archive spectra nearest to an uploaded "
        "spectrum (or an archive one) in an autoencoder's latent space</description>"
        '<interface xsi:type="vs:ParamHTTP" role="std">'
        f'<accessURL use="base">{escape(urls.similar_search())}</accessURL>'
        "<queryType>GET</queryType><queryType>POST</queryType>"
        f"<resultType>{VOTABLE}</resultType>{params}</interface></capability>")
    return capabilities_document([capability, vosi_capability(
        "ivo://ivoa.net/std/VOSI#capabilities", f"{urls.similar_search()}/capabilities")])
