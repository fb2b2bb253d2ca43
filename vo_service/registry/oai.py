"""OAI-PMH 2.0 over the registry store, as IVOA Registry Interfaces 1.1 asks.

Everything here takes plain values (the request's arguments, a database connection,
the public OAI-PMH URL) and returns the XML document: ``routes.py`` only reads the
HTTP request and sends the answer.

The repository: six verbs; metadata formats ``ivo_vor`` (the ``ri:Resource`` record
itself) and ``oai_dc`` (Dublin Core derived from it); one set, ``ivo_managed``, that
every record belongs to; datestamps to the second; deleted records kept for ever as
headers with ``status="deleted"``.

Resumption tokens are stateless: a token carries the list's query (verb, format,
from, until, set), the position of the last record sent (datestamp, identifier),
the cursor and the time it was issued, with a checksum. Any web worker, after any
restart, continues the list; a token older than ``[registry] token_lifetime`` or
with a wrong checksum is a ``badResumptionToken``. Records are ordered by
(datestamp, identifier), so a record changed during a harvest moves behind the
position and is sent again at the end of the list, never lost.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

import sqlalchemy as sa
from lxml import etree

from vo_service.registry.record import ResourceRecord
from vo_service.registry.store import (
    count_records,
    datestamp,
    earliest_datestamp,
    read_record,
    read_records,
    read_registry_record,
)

OAI_NS = "http://www.openarchives.org/OAI/2.0/"
RI_NS = "http://www.ivoa.net/xml/RegistryInterface/v1.0"
OAI_DC_NS = "http://www.openarchives.org/OAI/2.0/oai_dc/"
DC_NS = "http://purl.org/dc/elements/1.1/"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"

# metadataPrefix -> (schema, namespace)
FORMATS = {
    "ivo_vor": ("http://www.ivoa.net/xml/RegistryInterface/RegistryInterface-v1.0.xsd", RI_NS),
    "oai_dc": ("http://www.openarchives.org/OAI/2.0/oai_dc.xsd", OAI_DC_NS),
}
MANAGED_SET = "ivo_managed"
GRANULARITY = "YYYY-MM-DDThh:mm:ssZ"

# verb -> (arguments it requires, arguments it allows besides), resumptionToken aside
_LIST_ARGS = (frozenset({"metadataPrefix"}), frozenset({"from", "until", "set"}))
VERBS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "Identify": (frozenset(), frozenset()),
    "ListMetadataFormats": (frozenset(), frozenset({"identifier"})),
    "ListSets": (frozenset(), frozenset()),
    "GetRecord": (frozenset({"identifier", "metadataPrefix"}), frozenset()),
    "ListIdentifiers": _LIST_ARGS,
    "ListRecords": _LIST_ARGS,
}
_RESUMABLE = {"ListSets", "ListIdentifiers", "ListRecords"}
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_SECOND = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>\s*")
_START_TAG = re.compile(r"(<[^\s>/]+)[^>]*>")
_DEFAULT_NS = re.compile(r"\sxmlns\s*=")
_TOKEN_VERSION = 1


class OAIError(Exception):
    """An OAI-PMH error condition: its ``code`` (badArgument, ...) and a message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class ListQuery:
    """What a ListIdentifiers/ListRecords request asks for, and where its page starts."""

    verb: str
    prefix: str
    from_: dt.datetime | None
    until: dt.datetime | None
    set_: str | None
    after: tuple[dt.datetime, str] | None = None  # position of the last record sent
    cursor: int = 0  # records sent before this page


# -- arguments -------------------------------------------------------------------------


def parse_arguments(pairs: Iterable[tuple[str, str]]) -> tuple[str, dict[str, str]]:
    """The verb and its arguments; OAI-PMH names are case-sensitive.

    Raises
    ------
    OAIError
        badVerb for a missing, repeated or unknown verb; badArgument for an argument
        the verb does not take, a repeated or missing one, or a resumptionToken with
        other arguments.
    """
    verbs: list[str] = []
    args: dict[str, str] = {}
    repeated: set[str] = set()
    for name, value in pairs:
        if name == "verb":
            verbs.append(value)
        elif name in args:
            repeated.add(name)
        else:
            args[name] = value
    if not verbs:
        raise OAIError("badVerb", "the request has no verb")
    if len(verbs) > 1:
        raise OAIError("badVerb", "the verb argument is repeated")
    verb = verbs[0]
    if verb not in VERBS:
        raise OAIError("badVerb", f"{verb!r} is not an OAI-PMH verb; the verbs are "
                       + ", ".join(VERBS))
    if repeated:
        raise OAIError("badArgument", f"repeated argument(s): {', '.join(sorted(repeated))}")
    required, optional = VERBS[verb]
    allowed = required | optional | ({"resumptionToken"} if verb in _RESUMABLE else set())
    illegal = sorted(set(args) - allowed)
    if illegal:
        raise OAIError("badArgument", f"{verb} does not take the argument(s) "
                       f"{', '.join(illegal)}")
    if "resumptionToken" in args:
        if len(args) > 1:
            raise OAIError("badArgument", "resumptionToken is an exclusive argument: "
                           "no other argument may accompany it")
        return verb, args
    missing = sorted(required - set(args))
    if missing:
        raise OAIError("badArgument", f"{verb} requires the argument(s) {', '.join(missing)}")
    return verb, args


def parse_datestamp(text: str, name: str) -> tuple[dt.datetime, str]:
    """A from/until argument: the instant it stands for and its granularity.

    A day stands for its first second as ``from`` and its last as ``until``.

    Raises
    ------
    OAIError
        badArgument for anything but YYYY-MM-DD or YYYY-MM-DDThh:mm:ssZ (finer
        granularities included) and for dates that do not exist.
    """
    try:
        if _DAY.match(text):
            day = dt.datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=dt.UTC)
            return (day if name == "from" else day + dt.timedelta(days=1, seconds=-1)), "day"
        if _SECOND.match(text):
            return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC), \
                "second"
    except ValueError:
        raise OAIError("badArgument", f"{name}={text!r} is not a valid date") from None
    raise OAIError("badArgument", f"{name}={text!r} is neither YYYY-MM-DD nor "
                   "YYYY-MM-DDThh:mm:ssZ (this repository's granularity is the second)")


def list_query(verb: str, args: dict[str, str]) -> ListQuery:
    """The query of a ListIdentifiers/ListRecords request given with arguments.

    Raises
    ------
    OAIError
        cannotDisseminateFormat for an unknown metadataPrefix; badArgument for bad
        dates, from/until of different granularities or from after until.
    """
    prefix = args["metadataPrefix"]
    if prefix not in FORMATS:
        raise OAIError("cannotDisseminateFormat", f"no metadata format {prefix!r} here; "
                       f"the formats are {', '.join(FORMATS)}")
    from_ = until = None
    if "from" in args:
        from_, from_grain = parse_datestamp(args["from"], "from")
    if "until" in args:
        until, until_grain = parse_datestamp(args["until"], "until")
    if from_ is not None and until is not None:
        if from_grain != until_grain:
            raise OAIError("badArgument", "from and until must have the same granularity")
        if from_ > until:
            raise OAIError("badArgument", "from is later than until")
    return ListQuery(verb, prefix, from_, until, args.get("set"))


# -- resumption tokens -----------------------------------------------------------------


def _stamp(moment: dt.datetime) -> str:
    return datestamp(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def _moment(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)


def _instant(text: str | None) -> dt.datetime | None:
    return None if text is None else _moment(text)


def _checksum(payload: bytes) -> str:
    return hashlib.sha256(b"latentvo-oai-token:" + payload).hexdigest()[:16]


def encode_token(query: ListQuery, issued: dt.datetime) -> str:
    """A resumption token continuing ``query`` after ``query.after``."""
    assert query.after is not None
    payload = json.dumps({
        "v": _TOKEN_VERSION, "verb": query.verb, "prefix": query.prefix,
        "from": _stamp(query.from_) if query.from_ else None,
        "until": _stamp(query.until) if query.until else None,
        "set": query.set_, "after": [_stamp(query.after[0]), query.after[1]],
        "cursor": query.cursor, "issued": _stamp(issued),
    }, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(payload).decode().rstrip("=") + "." + _checksum(payload)


def decode_token(token: str, verb: str, now: dt.datetime, lifetime: int) -> ListQuery:
    """The query and position a token of :func:`encode_token` carries.

    Raises
    ------
    OAIError
        badResumptionToken when the token is garbled, was issued for another verb,
        or is older than ``lifetime`` seconds.
    """
    bad = OAIError("badResumptionToken", "the resumption token is not one of this "
                   "repository's (garbled or truncated)")
    data, _, checksum = token.partition(".")
    try:
        payload = base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
    except (binascii.Error, ValueError):
        raise bad from None
    if checksum != _checksum(payload):
        raise bad
    try:
        fields = json.loads(payload)
        if fields["v"] != _TOKEN_VERSION:
            raise bad
        issued = _moment(fields["issued"])
        query = ListQuery(fields["verb"], fields["prefix"], _instant(fields["from"]),
                          _instant(fields["until"]), fields["set"],
                          (_moment(fields["after"][0]), str(fields["after"][1])),
                          int(fields["cursor"]))
    except (ValueError, KeyError, TypeError, IndexError):
        raise bad from None
    if query.verb != verb:
        raise OAIError("badResumptionToken", f"this resumption token continues a "
                       f"{query.verb} list, not {verb}")
    if (now - issued).total_seconds() > lifetime:
        raise OAIError("badResumptionToken", f"the resumption token expired (issued "
                       f"{_stamp(issued)}, valid for {lifetime} s): start the list again")
    return query


# -- documents -------------------------------------------------------------------------


def _element(name: str, text: str) -> str:
    return f"<{name}>{escape(text)}</{name}>"


def document(now: dt.datetime, oai_url: str, body: str,
             request: dict[str, str] | None = None) -> str:
    """An OAI-PMH response: ``body`` (a verb's element or errors) with its ``<request>``.

    ``request`` holds the arguments to echo; None (badVerb, badArgument) echoes none.
    """
    attrs = "".join(f" {name}={quoteattr(value)}" for name, value in (request or {}).items())
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<OAI-PMH xmlns="{OAI_NS}" xmlns:xsi="{XSI_NS}" xsi:schemaLocation="{OAI_NS} '
            'http://www.openarchives.org/OAI/2.0/OAI-PMH.xsd">'
            f"<responseDate>{_stamp(now)}</responseDate>"
            f"<request{attrs}>{escape(oai_url)}</request>{body}</OAI-PMH>\n")


def error_body(error: OAIError) -> str:
    """The ``<error>`` element of ``error``."""
    return f"<error code={quoteattr(error.code)}>{escape(error.message)}</error>"


def _resource(xml: str) -> str:
    """A stored ``ri:Resource`` element to embed: without an XML declaration, and
    undeclaring the OAI-PMH default namespace for its unqualified VOResource elements."""
    xml = _DECLARATION.sub("", xml, count=1)
    start = _START_TAG.match(xml)
    if start is None or _DEFAULT_NS.search(start.group(0)):
        return xml
    return f'{start.group(1)} xmlns=""{xml[start.end(1):]}'



def identify_body(registry: ResourceRecord | None, oai_url: str,
                  earliest: dt.datetime) -> str:
    """Identify: names and email from this registry's own ``vg:Registry`` record, which
    the ``<description>`` carries (Registry Interfaces 1.1, section 2.3)."""
    name, email, description = "latentvo publishing registry", None, ""
    if registry is not None and registry.xml:
        root = etree.fromstring(registry.xml.encode())
        name = (root.findtext("title") or registry.title).strip()
        email = (root.findtext("curation/contact/email") or "").strip() or None
        description = f"<description>{_resource(registry.xml)}</description>"
    return ("<Identify>" + _element("repositoryName", name) + _element("baseURL", oai_url)
            + "<protocolVersion>2.0</protocolVersion>"
            + (_element("adminEmail", email) if email else "")
            + f"<earliestDatestamp>{_stamp(earliest)}</earliestDatestamp>"
            + "<deletedRecord>persistent</deletedRecord>"
            + f"<granularity>{GRANULARITY}</granularity>" + description + "</Identify>")


def formats_body() -> str:
    """ListMetadataFormats: ``ivo_vor`` and ``oai_dc``, for every record alike."""
    return "<ListMetadataFormats>" + "".join(
        f"<metadataFormat>{_element('metadataPrefix', prefix)}{_element('schema', schema)}"
        f"{_element('metadataNamespace', namespace)}</metadataFormat>"
        for prefix, (schema, namespace) in FORMATS.items()) + "</ListMetadataFormats>"


def sets_body() -> str:
    """ListSets: the one set, ``ivo_managed``."""
    return ("<ListSets><set><setSpec>ivo_managed</setSpec><setName>Resources managed by "
            "this publishing registry</setName></set></ListSets>")


def header(record: ResourceRecord) -> str:
    """A record's OAI-PMH ``<header>`` (``status="deleted"`` once withdrawn)."""
    status = ' status="deleted"' if record.deleted else ""
    return (f"<header{status}>{_element('identifier', record.identifier)}"
            f"<datestamp>{_stamp(record.updated)}</datestamp>"
            f"<setSpec>{MANAGED_SET}</setSpec></header>")


def record_xml(record: ResourceRecord, prefix: str) -> str:
    """A ``<record>``: header and, unless deleted, its metadata in ``prefix``."""
    if record.deleted:
        return f"<record>{header(record)}</record>"
    metadata = _resource(record.xml) if prefix == "ivo_vor" else dublin_core(record)
    return f"<record>{header(record)}<metadata>{metadata}</metadata></record>"


def dublin_core(record: ResourceRecord) -> str:
    """The ``oai_dc`` form of a VOResource record (title, creator, subject, description,
    publisher, contributor, date, type, identifier, rights)."""
    root = etree.fromstring(record.xml.encode())

    def texts(path: str) -> list[str]:
        return [element.text for element in root.findall(path) if element.text]

    fields: list[tuple[str, str]] = [("title", root.findtext("title") or record.title)]
    fields += [("creator", t) for t in texts("curation/creator/name")]
    fields += [("subject", t) for t in texts("content/subject")]
    fields += [("description", t) for t in texts("content/description")]
    fields += [("publisher", t) for t in texts("curation/publisher")]
    fields += [("contributor", t) for t in texts("curation/contributor")]
    fields += [("date", t) for t in texts("curation/date")]
    fields.append(("date", _stamp(record.updated)))
    fields += [("type", t) for t in texts("content/type")] or [("type", record.resource_type)]
    fields.append(("identifier", record.identifier))
    fields += [("identifier", t) for t in texts("content/referenceURL")]
    fields += [("identifier", t) for t in texts("altIdentifier")]
    for rights in root.findall("rights"):
        fields += [("rights", t) for t in (rights.text, rights.get("rightsURI")) if t]
    body = "".join(f"<dc:{name}>{escape(' '.join(text.split()))}</dc:{name}>"
                   for name, text in fields if text.strip())
    return (f'<oai_dc:dc xmlns:oai_dc="{OAI_DC_NS}" xmlns:dc="{DC_NS}" xmlns:xsi="{XSI_NS}" '
            f'xsi:schemaLocation="{OAI_DC_NS} http://www.openarchives.org/OAI/2.0/oai_dc.xsd">'
            f"{body}</oai_dc:dc>")


# -- answering a request ---------------------------------------------------------------


@dataclass(frozen=True)
class Paging:
    """How lists are cut into pages: ``[registry] page_size`` and ``token_lifetime``."""

    page_size: int
    token_lifetime: int


def answer(conn: sa.Connection, pairs: Iterable[tuple[str, str]], oai_url: str,
           paging: Paging, now: dt.datetime) -> str:
    """The OAI-PMH response document to a request with the arguments ``pairs``.

    Protocol errors are answered as ``<error>`` documents (OAI-PMH has no HTTP error
    codes of its own); the caller sends every document with HTTP 200.
    """
    now = datestamp(now)
    try:
        verb, args = parse_arguments(pairs)
    except OAIError as error:
        return document(now, oai_url, error_body(error))
    echo = {"verb": verb, **args}
    try:
        return document(now, oai_url, _verb_body(conn, verb, args, oai_url, paging, now), echo)
    except OAIError as error:
        return document(now, oai_url, error_body(error),
                        None if error.code == "badArgument" else echo)


def _verb_body(conn: sa.Connection, verb: str, args: dict[str, str], oai_url: str,
               paging: Paging, now: dt.datetime) -> str:
    if verb == "Identify":
        return identify_body(read_registry_record(conn), oai_url,
                             earliest_datestamp(conn) or now)
    if verb == "ListSets":
        if "resumptionToken" in args:
            raise OAIError("badResumptionToken", "ListSets is never split: there is no list "
                           "to resume")
        return sets_body()
    if verb == "ListMetadataFormats":
        if "identifier" in args:
            _existing(conn, args["identifier"], for_formats=True)
        return formats_body()
    if verb == "GetRecord":
        record = _existing(conn, args["identifier"])
        prefix = args["metadataPrefix"]
        if prefix not in FORMATS:
            raise OAIError("cannotDisseminateFormat", f"no metadata format {prefix!r} here; "
                           f"the formats are {', '.join(FORMATS)}")
        return f"<GetRecord>{record_xml(record, prefix)}</GetRecord>"
    query = (decode_token(args["resumptionToken"], verb, now, paging.token_lifetime)
             if "resumptionToken" in args else list_query(verb, args))
    return _list_body(conn, query, paging, now, resumed="resumptionToken" in args)


def _existing(conn: sa.Connection, identifier: str, *, for_formats: bool = False
              ) -> ResourceRecord:
    record = read_record(conn, identifier)
    if record is None:
        raise OAIError("idDoesNotExist", f"no record has the identifier {identifier!r}")
    if for_formats and record.deleted:
        raise OAIError("noMetadataFormats", f"{identifier} was deleted: only its header "
                       "remains, in no metadata format")
    return record


def _list_body(conn: sa.Connection, query: ListQuery, paging: Paging, now: dt.datetime,
               *, resumed: bool) -> str:
    """One page of ListIdentifiers/ListRecords, with the token that continues it."""
    if query.set_ is not None and query.set_ != MANAGED_SET:
        raise OAIError("noRecordsMatch", f"there is no set {query.set_!r}; the only set "
                       f"is {MANAGED_SET}")
    records = read_records(conn, from_=query.from_, until=query.until, after=query.after,
                           limit=paging.page_size + 1, with_xml=query.verb == "ListRecords")
    if not records:
        raise OAIError("noRecordsMatch", "no record matches the arguments")
    page, more = records[:paging.page_size], len(records) > paging.page_size
    token = ""
    if more or resumed:
        total = count_records(conn, from_=query.from_, until=query.until)
        value = ""
        if more:
            last = page[-1]
            value = escape(encode_token(ListQuery(
                query.verb, query.prefix, query.from_, query.until, query.set_,
                (last.updated, last.identifier), query.cursor + len(page)), now))
        expires = (f' expirationDate="{_stamp(now + dt.timedelta(seconds=paging.token_lifetime))}"'
                   if more else "")
        token = (f'<resumptionToken{expires} completeListSize="{total}" '
                 f'cursor="{query.cursor}">{value}</resumptionToken>')
    if query.verb == "ListIdentifiers":
        items = "".join(header(record) for record in page)
    else:
        items = "".join(record_xml(record, query.prefix) for record in page)
    return f"<{query.verb}>{items}{token}</{query.verb}>"


def respond(engine: sa.Engine, pairs: Iterable[tuple[str, str]], oai_url: str,
            paging: Paging) -> str:
    """:func:`answer` in one read-only transaction of ``engine``, dated now."""
    with engine.connect() as conn, conn.begin():
        conn.execute(sa.text("SET TRANSACTION READ ONLY"))
        return answer(conn, pairs, oai_url, paging, dt.datetime.now(dt.UTC))
