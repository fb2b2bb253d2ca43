"""``latentvo registry check``: the published metadata and every record, one line per problem.

Three checks, each saying when it cannot run rather than passing silently:

* the form of the ``[service]`` values and the authority
  (:func:`vo_service.config.metadata_problems`, also enforced at start-up);
* the subjects against the UAT vocabulary in ``[registry] uat_file`` (the IVOA
  ``desise`` JSON of https://www.ivoa.net/rdf/uat: ``{"terms": {identifier:
  {"label": ...}}}``);
* every record against the XML schemas in ``[registry] schema_dir``, with lxml,
  offline: a wrapper schema imports each namespace from its local file, and every
  ``schemaLocation`` the schemas name (web addresses) resolves to the file of the
  same name in that folder; nothing is fetched from the network.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from lxml import etree

from vo_service.config import Settings, metadata_problems
from vo_service.registry.record import ResourceDraft
from vo_service.registry.vor import RI, VG
from vo_service.ssa.vosi import SSA_NS
from vo_service.vosi.xml import TR, VR, VS

# namespace -> schema file, in import order (each after those it imports)
SCHEMA_FILES = {
    "http://www.w3.org/XML/1998/namespace": "xml.xsd",
    "http://www.w3.org/1999/xlink": "xlink.xsd",
    VR: "VOResource.xsd",
    "http://www.ivoa.net/xml/STC/stc-v1.30.xsd": "stc.xsd",
    VS: "VODataService.xsd",
    VG: "VORegistry.xsd",
    TR: "TAPRegExt.xsd",
    SSA_NS: "SSA.xsd",
    RI: "RegistryInterface.xsd",
}
UAT_URI_PREFIXES = ("http://www.ivoa.net/rdf/uat#", "https://www.ivoa.net/rdf/uat#")


@dataclass
class CheckReport:
    """What ``registry check`` found: ``problems`` (one sentence each) and ``skipped``
    checks (why each could not run), over ``checked`` records."""

    checked: int = 0
    problems: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


class _LocalSchemas(etree.Resolver):
    """Resolves every schema location to the file of the same name in one folder."""

    def __init__(self, folder: Path) -> None:
        super().__init__()
        self.folder = folder

    def resolve(self, url, pubid, context):  # type: ignore[no-untyped-def]
        local = self.folder / str(url).rstrip("/").rsplit("/", 1)[-1]
        return self.resolve_filename(str(local), context) if local.is_file() else None


def record_schema(folder: Path) -> etree.XMLSchema:
    """One schema validating ``ri:Resource`` records of every type this site writes.

    Raises
    ------
    ValueError
        When a schema file is missing from ``folder`` or does not compile.
    """
    missing = [name for name in SCHEMA_FILES.values() if not (folder / name).is_file()]
    if missing:
        raise ValueError(f"{folder} lacks {', '.join(missing)}")
    imports = "".join(f'<xs:import namespace="{ns}" schemaLocation="{(folder / name).as_uri()}"/>'
                      for ns, name in SCHEMA_FILES.items())
    wrapper = ('<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">' + imports
               + "</xs:schema>")
    parser = etree.XMLParser(no_network=True, resolve_entities=False)
    parser.resolvers.add(_LocalSchemas(folder))
    try:
        return etree.XMLSchema(etree.fromstring(wrapper.encode(), parser,
                                                base_url=(folder / "wrapper.xsd").as_uri()))
    except etree.XMLSchemaParseError as exc:
        raise ValueError(f"the schemas in {folder} do not compile: {exc}") from None


def record_problems(schema: etree.XMLSchema, draft: ResourceDraft, xml: str) -> list[str]:
    """The schema violations of one rendered record, each naming the record and line."""
    parser = etree.XMLParser(no_network=True, resolve_entities=False)
    try:
        document = etree.fromstring(xml.encode(), parser)
    except etree.XMLSyntaxError as exc:
        return [f"{draft.identifier}: not well-formed XML: {exc}"]
    if schema.validate(document):
        return []
    return [f"{draft.identifier}: line {e.line}: {e.message}"
            for e in schema.error_log]  # type: ignore[attr-defined]  # lxml-stubs lack __iter__


def uat_terms(path: Path) -> dict[str, str]:
    """Identifier -> label of every concept of a desise vocabulary file.

    Raises
    ------
    ValueError
        When the file cannot be read or is not desise JSON.
    """
    try:
        terms = json.loads(path.read_text(encoding="utf-8"))["terms"]
        return {ident: str(term.get("label", "")) for ident, term in terms.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"{path} is not an IVOA vocabulary in desise JSON "
                         f'({{"terms": {{...}}}}): {exc}') from None


def subject_problems(subjects: Sequence[str], terms: dict[str, str]) -> list[str]:
    """Subjects that name no concept of the vocabulary ``terms`` (by identifier, IVOA
    URI or label, ignoring case)."""
    labels = {label.casefold() for label in terms.values()}
    found = []
    for subject in subjects:
        ident = subject
        for prefix in UAT_URI_PREFIXES:
            ident = ident.removeprefix(prefix)
        if ident not in terms and subject.casefold() not in labels:
            found.append(f"[service] subjects: {subject!r} is not a concept of the UAT "
                         "vocabulary in [registry] uat_file")
    return found


def check(settings: Settings, drafts: Sequence[ResourceDraft]) -> CheckReport:
    """Every check of the metadata and of ``drafts``, rendered with today's dates."""
    report = CheckReport(checked=len(drafts), problems=metadata_problems(settings))
    ids = [d.identifier for d in drafts]
    report.problems += [f"{i}: more than one record has this identifier"
                        for i in sorted({i for i in ids if ids.count(i) > 1})]
    registry = settings.registry
    if registry.uat_file is None:
        report.skipped.append("subjects not checked against the UAT: [registry] uat_file "
                              "is not set (the IVOA desise JSON of https://www.ivoa.net/rdf/uat)")
    else:
        try:
            report.problems += subject_problems(settings.service.subjects,
                                                uat_terms(registry.uat_file))
        except ValueError as exc:
            report.problems.append(f"[registry] uat_file: {exc}")
    if registry.schema_dir is None:
        report.skipped.append("XSD validation skipped: [registry] schema_dir is not set "
                              "(a folder with the VOResource, VODataService, VORegistry, "
                              "TAPRegExt, SSA and RegistryInterface schemas)")
        return report
    try:
        schema = record_schema(registry.schema_dir)
    except ValueError as exc:
        report.problems.append(f"[registry] schema_dir: {exc}")
        return report
    now = datetime.now(UTC)
    for draft in drafts:
        report.problems += record_problems(schema, draft, draft.render(now, now))
    return report
