"""DALI 1.1 rules shared by the protocols: parameters, literals, errors.

* :class:`DALIError` is a user error with its HTTP status; the one handler of
  ``vo_service.web`` turns it into a VOTable error document
  (``QUERY_STATUS=ERROR`` plus the message), which is what pyvo and taplint read.
* :class:`Params` holds request parameters with case-insensitive names,
  single-valued checks and multi-valued accumulation; given the ``[requests]``
  limits it refuses (400) names and values that are not text or too long, and
  too many parameters, before any protocol sees them (:func:`check_parameter`,
  :func:`parse_query_string`).
* Literals: booleans (true/false/1/0), ISO-8601 instants.
"""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import parse_qsl

from vo_service.config import RequestLimits

VOTABLE_MIME = "application/x-votable+xml"
# What a parameter may not hold: control characters but TAB, LF and CR (C0, DEL, C1:
# not text, and XML 1.0, into which every protocol echoes parameters, cannot carry
# most of them; PostgreSQL refuses NUL), lone surrogates, U+FFFE/U+FFFF, and U+FFFD,
# which is what the web framework makes of invalid UTF-8 in percent-escapes and forms.
NOT_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffd-\uffff]")
# Parameters whose length another limit bounds (the ADQL query's own length limit).
UNCAPPED = frozenset({"QUERY"})


class DALIError(Exception):
    """A request the service refuses; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class DatabaseUnavailable(DALIError):
    """The database cannot be reached (down, restarting): 503 with ``Retry-After``.

    Not the client's fault and usually brief (web processes reconnect by themselves once
    the database is back), so clients are told when to try again rather than given a 500.
    """

    retry_after = 10

    def __init__(self, detail: str = "") -> None:
        reason = f" ({detail})" if detail else ""
        super().__init__(f"the database of this service is unavailable{reason}; "
                         f"try again in {self.retry_after} s", 503)


class Params:
    """Request parameters; names are case-insensitive (stored upper-case)."""

    def __init__(self, items: list[tuple[str, str]] | None = None,
                 files: dict[str, bytes] | None = None, *,
                 limits: RequestLimits | None = None) -> None:
        """Hold ``items`` and ``files``; with ``limits`` (a request's parameters), check them.

        Raises
        ------
        DALIError
            400 with ``limits``, for more than ``limits.parameters`` parameters or one that
            :func:`check_parameter` refuses.
        """
        self.values: dict[str, list[str]] = {}
        self.files: dict[str, bytes] = dict(files or {})
        items = items or []
        # as given, names in their case: OAI-PMH arguments are case-sensitive
        self.pairs: list[tuple[str, str]] = list(items)
        if limits is not None:
            if len(items) + len(self.files) > limits.parameters:
                raise DALIError(f"{len(items) + len(self.files):,} parameters exceed this "
                                f"service's limit of {limits.parameters:,} per request")
            for name, value in items:
                check_parameter(name, value, limits)
            for name in self.files:
                check_parameter(name, "", limits)
        for name, value in items:
            self.add(name, value)

    def add(self, name: str, value: str) -> None:
        """Add one value of ``name`` (repeated names accumulate)."""
        self.values.setdefault(name.upper(), []).append(value)

    def __contains__(self, name: str) -> bool:
        return name.upper() in self.values

    def single(self, name: str, default: str | None = None) -> str | None:
        """The value of a single-valued parameter, ``default`` when it is absent.

        Raises
        ------
        DALIError
            When the parameter was given several times with different values
            (repeating the same value is tolerated).
        """
        values = self.values.get(name.upper())
        if not values:
            return default
        if len(values) > 1 and len(set(values)) > 1:
            raise DALIError(f"parameter {name} may be given only once")
        return values[0]

    def all(self, name: str) -> list[str]:
        """Every value of ``name``, in the order given."""
        return list(self.values.get(name.upper(), []))

    def file(self, name: str) -> bytes | None:
        """The uploaded multipart file ``name`` (exact name first, then case-insensitive)."""
        if name in self.files:
            return self.files[name]
        lowered = {k.lower(): v for k, v in self.files.items()}
        return lowered.get(name.lower())


def check_parameter(name: str, value: str, limits: RequestLimits) -> None:
    """Refuse a parameter whose name or value is not text (:data:`NOT_TEXT`) or too long.

    Raises
    ------
    DALIError
        400, naming the parameter (escaped) and the first offending character.
    """
    shown = ascii(name[:40]) + ("..." if len(name) > 40 else "")
    for part, text in (("name", name), ("value", value)):
        bad = NOT_TEXT.search(text)
        if bad is not None:
            raise DALIError(f"parameter {shown}: its {part} holds {ascii(bad.group())} at "
                            f"character {bad.start() + 1}; parameters must be valid UTF-8 "
                            "text without control characters (TAB, LF and CR allowed) or "
                            "U+FFFD")
    if len(name) > limits.value_chars:
        raise DALIError(f"a parameter name of {len(name):,} characters exceeds this "
                        f"service's limit of {limits.value_chars:,}")
    if len(value) > limits.value_chars and name.upper() not in UNCAPPED:
        raise DALIError(f"parameter {shown}: its value of {len(value):,} characters exceeds "
                        f"this service's limit of {limits.value_chars:,}")


def parse_query_string(raw: bytes, limits: RequestLimits) -> list[tuple[str, str]]:
    """The ``(name, value)`` pairs of a raw URL query string, decoded as strict UTF-8.

    Unlike the web framework's reading, which turns invalid UTF-8 into U+FFFD or
    Latin-1, a query string that is not UTF-8 is refused; the pairs are not checked
    here (:class:`Params` does that).

    Raises
    ------
    DALIError
        400 for invalid UTF-8, raw or percent-escaped, or more than ``limits.parameters``
        parameters.
    """
    try:
        return parse_qsl(raw.decode("utf-8"), keep_blank_values=True, errors="strict",
                         max_num_fields=limits.parameters)
    except UnicodeDecodeError:
        raise DALIError("the query string is not valid UTF-8 (percent-escapes included)") \
            from None
    except ValueError:  # parse_qsl: more fields than max_num_fields
        raise DALIError(f"the query string has more than this service's limit of "
                        f"{limits.parameters:,} parameters") from None


def parse_bool(value: str) -> bool:
    """A DALI boolean: true/false/1/0, case-insensitive; :class:`DALIError` otherwise."""
    low = value.strip().lower()
    if low in ("true", "1"):
        return True
    if low in ("false", "0"):
        return False
    raise DALIError(f"not a boolean (true, false, 1, 0): {value!r}")


_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$")


def parse_instant(value: str) -> dt.datetime:
    """An ISO-8601 instant (UTC unless it names an offset), as aware UTC.

    Raises
    ------
    DALIError
        When ``value`` is not an ISO-8601 date or timestamp.
    """
    text = value.strip()
    if not _ISO.match(text):
        raise DALIError(f"not an ISO-8601 timestamp: {value!r}")
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        raise DALIError(f"not an ISO-8601 timestamp: {value!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


def iso_utc(value: dt.datetime | None, *, z: bool = True) -> str:
    """``YYYY-MM-DDThh:mm:ss.sssZ`` (UWS instants); empty for None."""
    if value is None:
        return ""
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    text = value.isoformat(timespec="milliseconds")
    return text + "Z" if z else text


def now_utc() -> dt.datetime:
    """The current instant, timezone-aware UTC."""
    return dt.datetime.now(dt.UTC)
