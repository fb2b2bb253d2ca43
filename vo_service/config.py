"""Service configuration: environment variables over one optional TOML file.

Every setting, limits and worker counts included, lives in the one
:class:`Settings` object, with a documented default (``docs/configuration.md``).
Top-level keys are overridden by ``LATENTVO_<NAME>``; the keys of a section
such as ``[tap]`` by ``LATENTVO_<SECTION>_<NAME>`` (``[tap] sync_timeout`` by
``LATENTVO_TAP_SYNC_TIMEOUT``). The file is ``$LATENTVO_CONFIG`` if set, else
``$LATENTVO_HOME/latentvo.toml`` if it exists. Anything malformed (TOML syntax,
an unknown key, a value of the wrong type or out of range, a hard limit below
its default) raises :class:`ConfigError` naming the key.

The settings are plain frozen dataclasses, one per section, rather than
pydantic-settings: they are read once per process, a few dozen lines of
coercion cover the two sources, and the error messages name the TOML key or
the environment variable the operator wrote, exactly as written, without
another dependency between the service and its configuration.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from vo_service.errors import OperatorError


class ConfigError(OperatorError):
    """An operator mistake in the configuration; the message says what to fix."""


class MetadataError(ConfigError):
    """The published metadata (authority, ``[service]``) is malformed: one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def _limit(default: float, minimum: float = 1, *, maximum: float | None = None) -> Any:
    """A dataclass field for a numeric setting with the range it must lie in."""
    return field(default=default, metadata={"minimum": minimum, "maximum": maximum})


@dataclass(frozen=True)
class TAPLimits:
    """``[tap]``: output rows, run times, retention, uploads and async workers of TAP.

    The service declares the same values in ``/tap/capabilities`` (TAPRegExt
    outputLimit, executionDuration, retentionPeriod, uploadLimit), so clients
    see what is enforced. Times are in seconds.
    """

    maxrec_default: int = _limit(20_000)  # rows when the client sends no MAXREC
    maxrec_hard: int = _limit(16_000_000)  # larger MAXREC values are lowered to this
    sync_timeout: int = _limit(300)  # seconds a sync query may run
    async_duration_default: int = _limit(3_600)  # UWS executionDuration
    async_duration_hard: int = _limit(28_800)
    retention_default: int = _limit(172_800)  # from job creation to destruction
    retention_hard: int = _limit(1_209_600)
    upload_bytes: int = _limit(64_000_000)  # per request (all uploads together)
    upload_rows: int = _limit(2_000_000)  # per uploaded table
    upload_tables: int = _limit(8)  # per query
    upload_fetch_timeout: int = _limit(60)  # seconds to fetch one http(s) upload
    wait_cap: int = _limit(30, 0)  # seconds a UWS WAIT may block
    workers: int = _limit(2, 0)  # async worker threads per web process (0: none here)
    stale_after: int = _limit(30)  # seconds without heartbeat before a job is taken over
    max_attempts: int = _limit(3)  # executions of a job interrupted by restarts
    # uploads: their shape, and where http(s) uploads may be fetched from
    upload_columns: int = _limit(1_000, maximum=1_600)  # per uploaded table (PostgreSQL: 1600)
    upload_fetch_redirects: int = _limit(5, 0)  # redirects followed fetching one upload
    # hosts and networks (CIDR) an upload URL may reach although they are not public
    # (loopback, private, link-local, ...: refused unless listed here)
    upload_fetch_allow: tuple[str, ...] = ()

    # Translation work a query may ask for (checked before and right after parsing).
    query_length: int = _limit(100_000)  # characters of ADQL text
    query_nodes: int = _limit(20_000)  # elements of its syntax tree (IN-list items, ...)

    def __post_init__(self) -> None:
        for entry in self.upload_fetch_allow:
            if not _network_or_host(entry):
                raise ConfigError(f"[tap] upload_fetch_allow: {entry!r} is neither a network "
                                  "(CIDR such as 10.0.0.0/8 or an address) nor a host name")


@dataclass(frozen=True)
class SSALimits:
    """``[ssa]``: records, run time and cone size of SSA queryData.

    Declared in ``/ssa/capabilities`` (maxRecords, defaultMaxRecords,
    maxSearchRadius) and in the FORMAT=METADATA response.
    """

    maxrec_default: int = _limit(1_000)  # records when the client sends no MAXREC
    maxrec_hard: int = _limit(100_000)  # larger MAXREC values are lowered to this
    timeout: int = _limit(30)  # seconds one query may run in the database
    max_size: float = _limit(20.0, 0.001, maximum=360.0)  # largest SIZE (diameter, deg)


@dataclass(frozen=True)
class RequestLimits:
    """``[requests]``: the parameters a request body may carry, for every protocol.

    Uploaded files are bounded by ``[tap] upload_bytes`` on top of these; both are
    enforced while the body arrives, so a refused body costs no more than the limit.
    Every name and value, from the query string, the body or the path, is checked
    where the HTTP edge reads it (``vo_service.web``), before any protocol sees it.
    """

    body_bytes: int = _limit(1_000_000)  # parameters (names, values, part headers) per body
    parameters: int = _limit(1_000)  # parameters per request (query string and body together)
    value_chars: int = _limit(16_384)  # characters of one name or value (all but QUERY)


@dataclass(frozen=True)
class IngestSettings:
    """``[ingest]``: how ``latentvo ingest`` reads and writes spectrum files."""

    workers: int = _limit(0, 0)  # reader processes; 0: one per CPU core, at most 8
    chunk_size: int = _limit(400)  # files per transaction

    @property
    def reader_processes(self) -> int:
        """The number of reader processes ``workers`` stands for."""
        return self.workers or max(1, min(os.cpu_count() or 1, 8))


@dataclass(frozen=True)
class DataLinkLimits:
    """``[datalink]``: the similar-spectra service's K (neighbours per request).

    Declared as the K parameter's default and maximum in the service descriptor
    of every ``{links}`` document; a K above the maximum is a UsageFault (400).
    """

    similar_k_default: int = _limit(10)  # neighbours when the client sends no K
    similar_k_max: int = _limit(1_000, maximum=100_000)  # largest K a client may ask


@dataclass(frozen=True)
class UWSSettings:
    """``[uws]``: who owns a TAP async job, and how much one owner and the service keep.

    Without ``owner_header`` every client is anonymous and owns its jobs through an
    unguessable token in a cookie (``docs/tap.md``). The quotas count unfinished
    jobs (PENDING, QUEUED, EXECUTING) and stored bytes (inline uploads, parameters
    and result files) of every job until it is deleted or destroyed; a request
    that would exceed one answers a UWS error (HTTP 403), a result that would
    exceed one ends its job in ERROR.
    """

    # HTTP header carrying the name of the user a reverse proxy authenticated; None:
    # no authentication. Only set it behind a proxy that removes it from client requests.
    owner_header: str | None = None
    owner_jobs: int = _limit(20)  # unfinished jobs of one owner
    owner_bytes: int = _limit(1_000_000_000)  # stored bytes of one owner
    total_jobs: int = _limit(1_000)  # unfinished jobs of every owner together
    total_bytes: int = _limit(20_000_000_000)  # stored bytes of every job together


@dataclass(frozen=True)
class WebSettings:
    """``[web]``: web worker processes and the admission of expensive requests.

    Expensive work (TAP sync queries, SSA queryData, DataLink, getData
    conversions) runs in ``query_slots`` threads of each web process, apart
    from the threads that answer cheap requests (VOSI, job documents, pages),
    so those still answer while every slot is busy. A client (its address, as
    uvicorn reports it: the ``X-Forwarded-For`` of the proxies named by
    ``trusted_proxies`` / ``serve --forwarded-allow-ips``) may hold at most
    ``client_queries`` slots or places in the queue; at most ``queue_waiters``
    requests wait for a slot. Beyond either, the answer is the protocol's error
    document with HTTP 503 and ``Retry-After: retry_after``. All counts are per
    web worker process.
    """

    workers: int = _limit(1)  # web worker processes of ``latentvo serve``
    query_slots: int = _limit(8)  # expensive requests running at once
    client_queries: int = _limit(4)  # of them (running or waiting) per client address
    queue_waiters: int = _limit(32, 0)  # requests waiting for a slot, beyond: 503
    retry_after: int = _limit(5)  # seconds, the Retry-After of a 503
    trusted_proxies: str | None = None  # addresses whose X-Forwarded-For is believed


@dataclass(frozen=True)
class ServiceSettings:
    """``[service]``: who publishes this service and what it holds.

    The landing page, VOSI, SSA records and every VOResource record of the
    publishing registry (``vo_service.registry``) are rendered from these values,
    so they are written once, here. The defaults describe the demo. The form of
    each value is checked when the settings are read (:meth:`problems`); whether
    the subjects are UAT concepts is checked by ``latentvo registry check``
    against a vocabulary file (``[registry] uat_file``).
    """

    title: str = "latentvo: machine-learning products of stellar spectra"
    short_name: str = "latentvo"  # at most 16 characters (VOResource shortName)
    description: str = (
        "Observed 1D stellar spectra together with machine-learning products derived "
        "from them: latent vectors of an autoencoder trained on the whole archive, "
        "stellar labels (Teff, log g, [M/H], [alpha/M]) predicted with uncertainties "
        "and a training-domain flag, and the registry of the models that made them.")
    publisher: str = "latentvo developers"
    publisher_id: str | None = None  # ivo:// identifier of the publishing organisation
    creators: tuple[str, ...] = ("latentvo developers",)
    contact_name: str = "latentvo operations"
    contact_email: str = "ops@latentvo.example"
    # UAT concepts: IVOA identifiers ("stellar-spectroscopy"), UAT URIs or labels
    subjects: tuple[str, ...] = ("stellar-spectroscopy", "stellar-atmospheres",
                                 "neural-networks", "astronomy-data-analysis")
    reference_url: str | None = None  # None: the landing page
    license: str = "CC-BY-4.0"  # SPDX identifier
    license_url: str = "https://creativecommons.org/licenses/by/4.0/"
    facility: str | None = None
    instrument: str | None = None
    content_levels: tuple[str, ...] = ("Research",)  # VOResource content_level vocabulary
    content_type: str = "Catalog"  # VOResource content_type vocabulary
    wavebands: tuple[str, ...] = ("Optical", "Infrared")  # IVOA messenger vocabulary
    supplement_dois: tuple[str, ...] = ()  # papers the data supplement (IsSupplementTo)

    def __post_init__(self) -> None:
        # a TOML multi-line string keeps its line breaks; records want one paragraph
        object.__setattr__(self, "description", " ".join(self.description.split()))

    def problems(self) -> list[str]:
        """Every value whose form is wrong, one sentence each naming the key."""
        found = []
        for key in ("title", "description", "publisher", "contact_name"):
            if not getattr(self, key).strip():
                found.append(f"[service] {key} must not be empty")
        if not 0 < len(self.short_name) <= SHORT_NAME_MAX:
            found.append(f"[service] short_name must have 1 to {SHORT_NAME_MAX} characters, "
                         f"got {len(self.short_name)} ({self.short_name!r})")
        if not self.creators:
            found.append("[service] creators must name at least one creator")
        if not EMAIL.match(self.contact_email):
            found.append(f"[service] contact_email is not an e-mail address: "
                         f"{self.contact_email!r}")
        if self.publisher_id is not None and not IVO_ID.match(self.publisher_id):
            found.append("[service] publisher_id must be an ivo:// identifier, got "
                         f"{self.publisher_id!r}")
        if not SPDX_ID.match(self.license):
            found.append(f"[service] license must be an SPDX identifier such as CC-BY-4.0, "
                         f"got {self.license!r}")
        for key in ("license_url", "reference_url"):
            value = getattr(self, key)
            if value is not None and not _http_url(value):
                found.append(f"[service] {key} must be an absolute http(s) URL, got {value!r}")
        if not self.subjects:
            found.append("[service] subjects must name at least one UAT concept")
        found += [f"[service] subjects: {s!r} is neither a UAT concept identifier, "
                  "a UAT URI nor a concept label" for s in self.subjects
                  if not UAT_SUBJECT.match(s)]
        found += [f"[service] supplement_dois: {d!r} is not a DOI (10.<prefix>/<suffix>)"
                  for d in self.supplement_dois if not DOI.match(d)]
        return found


@dataclass(frozen=True)
class RegistrySettings:
    """``[registry]``: the publishing registry (VOResource records, OAI-PMH at ``/oai``).

    ListIdentifiers and ListRecords answer ``page_size`` records per response and a
    resumption token for the rest; a token is stateless (any worker, after any
    restart, continues the list) and valid ``token_lifetime`` seconds, after which
    the harvester starts the list again (``badResumptionToken``).
    ``latentvo registry check`` validates every record against the XML schemas in
    ``schema_dir`` (never fetched from the network) and the ``[service]`` subjects
    against the UAT vocabulary in ``uat_file`` (the IVOA ``desise`` JSON of
    https://www.ivoa.net/rdf/uat); without them it says which check it skipped.
    """

    schema_dir: Path | None = None  # folder with the IVOA and OAI-PMH XSD files
    uat_file: Path | None = None  # the UAT vocabulary as IVOA desise JSON
    page_size: int = _limit(100)  # records per ListRecords/ListIdentifiers response
    token_lifetime: int = _limit(86_400)  # seconds a resumption token stays valid


@dataclass(frozen=True)
class SimilarSettings:
    """``[similar]``: similarity by uploaded spectrum (``/similar``) and the networks the
    web process runs for it (ONNX Runtime, ``vo_service.inference``).

    The upload is one spectrum file; the request body's other limits are
    ``[requests]``'s, and the search runs in ``[web]``'s query slots.
    """

    upload_bytes: int = _limit(20_000_000)  # bytes of the uploaded spectrum file
    k_default: int = _limit(10)  # neighbours when the client sends no K
    k_max: int = _limit(1_000, maximum=100_000)  # largest K a client may ask
    timeout: int = _limit(30)  # seconds the neighbour search may run in the database
    runtimes: int = _limit(4)  # models whose networks one web process keeps loaded
    inference_threads: int = _limit(1)  # ONNX Runtime threads per network call


@dataclass(frozen=True)
class ExploreSettings:
    """``[explore]``: what one request of the explorer page's JSON API (``/explore/api``)
    may ask. A request over a limit is answered 400 with a VOTable error document.
    """

    map_points: int = _limit(20_000)  # points of the 2-D map sent to the page
    decode_batch: int = _limit(16, maximum=1_000)  # latent vectors decoded per request
    neighbours: int = _limit(10, maximum=500)  # nearest archive spectra listed per point
    search_results: int = _limit(50, maximum=10_000)  # spectra a name search lists


# Pairs (default, hard) of a section: the hard limit may not lie below the default.
_ORDERED = {
    "tap": (("maxrec_default", "maxrec_hard"), ("async_duration_default", "async_duration_hard"),
            ("retention_default", "retention_hard")),
    "ssa": (("maxrec_default", "maxrec_hard"),),
    "datalink": (("similar_k_default", "similar_k_max"),),
    "similar": (("k_default", "k_max"),),
}


@dataclass(frozen=True)
class Settings:
    """Every setting of one latentvo process; :func:`load_settings` reads them.

    Top-level fields are the keys of ``latentvo.toml``; the other fields are its
    sections (``SECTIONS``).
    """

    home: Path
    database_url: str | None = None  # external PostgreSQL (owner role); None = embedded
    reader_database_url: str | None = None  # read-only role; derived when None
    reader_role: str = "latentvo_reader"
    embedded_port: int = 0  # 0 = choose a free port on first start
    authority: str = "ivo://latentvo.example"  # IVOA authority of publisher DIDs
    base_url: str | None = None  # public URL of the web service; None = from each request
    preview_workers: int = 1  # PNG preview processes per web process
    collection: str = "latentvo"  # obs_collection of ingested spectra
    release: str = "dr1"  # data release new spectra are ingested into
    tap: TAPLimits = field(default_factory=TAPLimits)
    ssa: SSALimits = field(default_factory=SSALimits)
    ingest: IngestSettings = field(default_factory=IngestSettings)
    requests: RequestLimits = field(default_factory=RequestLimits)
    datalink: DataLinkLimits = field(default_factory=DataLinkLimits)
    uws: UWSSettings = field(default_factory=UWSSettings)
    web: WebSettings = field(default_factory=WebSettings)
    service: ServiceSettings = field(default_factory=ServiceSettings)
    registry: RegistrySettings = field(default_factory=RegistrySettings)
    similar: SimilarSettings = field(default_factory=SimilarSettings)
    explore: ExploreSettings = field(default_factory=ExploreSettings)

    @property
    def tmp_dir(self) -> Path:
        """Temporary files of the web processes (request bodies while they arrive)."""
        return self.home / "tmp"

    @property
    def store_dir(self) -> Path:
        """Content-addressed store of original spectrum files."""
        return self.home / "store"

    @property
    def pgdata(self) -> Path:
        return self.home / "pgdata"

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def embedded(self) -> bool:
        return self.database_url is None


SECTIONS: dict[str, type] = {"tap": TAPLimits, "ssa": SSALimits, "ingest": IngestSettings,
                             "requests": RequestLimits, "datalink": DataLinkLimits,
                             "uws": UWSSettings, "web": WebSettings,
                             "service": ServiceSettings, "registry": RegistrySettings,
                             "similar": SimilarSettings,
                             "explore": ExploreSettings}
_TYPES = {f.name: str(f.type) for f in fields(Settings) if f.name not in SECTIONS}
_KINDS = {"int": "an integer", "float": "a number", "Path": "a path", "Path | None": "a path",
          "tuple[str, ...]": "a list of strings (comma-separated in the environment)"}
_HOST = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                   r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$")


def _network_or_host(entry: str) -> bool:
    """Whether ``entry`` is an IP network (CIDR, or one address) or a DNS host name."""
    try:
        ipaddress.ip_network(entry, strict=False)
    except ValueError:
        return bool(_HOST.match(entry))
    return True


def _coerce(name: str, kind: str, value: object, origin: str) -> object:
    """``value`` (from TOML or the environment) as a setting of type ``kind``."""
    wrong = ConfigError(f"{origin}: {name} must be {_KINDS.get(kind, 'a string')}, "
                        f"got {value!r}")
    if kind in ("Path", "Path | None"):
        if not isinstance(value, str):
            raise wrong
        if kind == "Path | None" and not value.strip():
            return None
        return Path(value).expanduser().resolve()
    if kind == "tuple[str, ...]":
        if isinstance(value, str):
            return tuple(item.strip() for item in value.split(",") if item.strip())
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise wrong
        return tuple(item.strip() for item in value if item.strip())
    if kind in ("int", "float"):
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise wrong
        try:
            number = float(value) if kind == "float" else int(value)
        except ValueError:
            raise wrong from None
        if kind == "int" and isinstance(value, float) and value != number:
            raise wrong
        return number
    if value in ("", None):
        return None
    if not isinstance(value, str):
        raise wrong
    return value


def _in_range(section: str, name: str, value: float, origin: str) -> None:
    meta = next(f.metadata for f in fields(SECTIONS[section]) if f.name == name)
    if "minimum" not in meta:  # not a number
        return
    low, high = meta["minimum"], meta["maximum"]
    if value < low or (high is not None and value > high):
        bound = f"at least {low:g}" + (f" and at most {high:g}" if high is not None else "")
        raise ConfigError(f"{origin}: [{section}] {name} must be {bound}, got {value:g}")


def _section(section: str, values: dict[str, object]) -> object:
    cls = SECTIONS[section]
    for low, high in _ORDERED.get(section, ()):
        lo = values.get(low, getattr(cls, low))
        hi = values.get(high, getattr(cls, high))
        if hi < lo:  # type: ignore[operator]
            raise ConfigError(f"[{section}] {high} ({hi}) must be at least {low} ({lo}): "
                              "a hard limit cannot lie below its default")
    return cls(**values)


def load_settings(env: dict[str, str] | None = None) -> Settings:
    """Read the settings from the environment and the configuration file.

    Parameters
    ----------
    env
        The environment to read (default: ``os.environ``).

    Returns
    -------
    Settings
        The validated settings, sections included.

    Raises
    ------
    ConfigError
        For a missing or malformed file, an unknown key, or a value of the wrong
        type or out of its range; the message names the file or variable and key.
    """
    env = dict(os.environ if env is None else env)
    home = Path(env.get("LATENTVO_HOME") or default_home()).expanduser().resolve()
    values: dict[str, object] = {"home": home}
    sections: dict[str, dict[str, object]] = {name: {} for name in SECTIONS}

    config_path = env.get("LATENTVO_CONFIG")
    path = Path(config_path).expanduser() if config_path else home / "latentvo.toml"
    if config_path and not path.is_file():
        raise ConfigError(f"LATENTVO_CONFIG points to {path}, which is not a file")
    if path.is_file():
        try:
            data = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
        unknown = sorted(set(data) - set(_TYPES) - set(SECTIONS))
        if unknown:
            raise ConfigError(
                f"{path}: unknown setting(s) {', '.join(unknown)}; known: "
                f"{', '.join(sorted(set(_TYPES) - {'home'}))} and the sections "
                f"{', '.join(f'[{s}]' for s in SECTIONS)}")
        for key, value in data.items():
            if key in SECTIONS:
                sections[key] = _from_file(key, value, path)
            else:
                values[key] = _coerce(key, _TYPES[key], value, str(path))

    for name, kind in _TYPES.items():
        var = f"LATENTVO_{name.upper()}"
        if var in env and name != "home":
            values[name] = _coerce(name, kind, env[var], var)
    for section, cls in SECTIONS.items():
        for f in fields(cls):
            var = f"LATENTVO_{section.upper()}_{f.name.upper()}"
            if env.get(var, "").strip():
                value = _coerce(f"[{section}] {f.name}", str(f.type), env[var].strip(), var)
                _in_range(section, f.name, value, var)  # type: ignore[arg-type]
                sections[section][f.name] = value

    settings = Settings(**values, **{name: _section(name, v)  # type: ignore[arg-type]
                                     for name, v in sections.items()})
    if settings.database_url and not settings.database_url.startswith("postgresql"):
        raise ConfigError(
            f"LATENTVO_DATABASE_URL must be a postgresql:// URL, got {settings.database_url!r}"
        )
    problems = metadata_problems(settings)
    if problems:
        raise MetadataError(problems)
    if settings.base_url is not None:
        settings = replace(settings, base_url=parse_base_url(settings.base_url))
    return settings


SHORT_NAME_MAX = 16
AUTHORITY = re.compile(r"^ivo://[\w][\w\-.!~*'()+=]{2,}$")
IVO_ID = re.compile(r"^ivo://[\w][\w\-.!~*'()+=]{2,}(/[^\s#?]*)?([?#]\S*)?$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
SPDX_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+-]*$")
DOI = re.compile(r"^10\.\d{4,9}/\S+$")
# A UAT concept as an IVOA vocabulary identifier, a URI of the UAT or of its IVOA
# rendering, or a label (words, digits, hyphens, commas, parentheses)
UAT_SUBJECT = re.compile(r"^([a-z0-9]+(-[a-z0-9]+)*"
                         r"|https?://(astrothesaurus\.org/uat/\d+|www\.ivoa\.net/rdf/uat#\S+)"
                         r"|[A-Za-z0-9][A-Za-z0-9 ,()'/-]*)$")


def _http_url(text: str) -> bool:
    parts = urlsplit(text)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def metadata_problems(settings: Settings) -> list[str]:
    """What is wrong with the published metadata's form: the authority and ``[service]``.

    One sentence per problem; :func:`load_settings` refuses settings with any, and
    ``latentvo registry check`` prints them one a line.
    """
    found = []
    if not AUTHORITY.match(settings.authority):
        found.append("authority must start with ivo:// followed by an authority name "
                     f"(at least 3 characters, no path), got {settings.authority!r}")
    return found + settings.service.problems()


def default_home() -> str:
    """``~/.latentvo``; for root ``/var/lib/latentvo``, since root's own home is private
    and the embedded PostgreSQL, which refuses to run as root, runs as a system user
    that must reach its data directory."""
    return "/var/lib/latentvo" if os.geteuid() == 0 else "~/.latentvo"


def parse_base_url(text: str) -> str:
    """A configured base URL, checked and without its trailing slash.

    Raises
    ------
    ConfigError
        When it is not an absolute http(s) URL, or has a query or fragment.
    """
    parts = urlsplit(text.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"base_url must be an absolute http:// or https:// URL, got {text!r}")
    if parts.query or parts.fragment:
        raise ConfigError(f"base_url must not have a query or fragment, got {text!r}")
    return text.strip().rstrip("/")


def _from_file(section: str, table: object, path: Path) -> dict[str, object]:
    """The values of one ``[section]`` table of the file, coerced and range-checked."""
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: {section} must be a table ([{section}]), got {table!r}")
    known = {f.name: str(f.type) for f in fields(SECTIONS[section])}
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise ConfigError(f"{path}: unknown setting(s) in [{section}]: {', '.join(unknown)}; "
                          f"known: {', '.join(known)}")
    out = {}
    for key, value in table.items():
        out[key] = _coerce(f"[{section}] {key}", known[key], value, str(path))
        _in_range(section, key, out[key], str(path))  # type: ignore[arg-type]
    return out
