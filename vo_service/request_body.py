"""Form bodies read as they arrive, every limit checked at the byte that crosses it.

A request body (``application/x-www-form-urlencoded`` or ``multipart/form-data``)
is fed to a :class:`FormReader` chunk by chunk as the network delivers it;
python-multipart's streaming parsers split it into parameters and file parts. No
limit waits for the whole body: the first byte over the body, parameter or upload
limit raises :class:`~vo_service.dali.DALIError` (413), so a client sending
600 MB costs the service at most the limit, not 600 MB. File parts are spooled to
a temporary file under the service's own folder once they pass
:data:`SPOOL_MEMORY`, so even an upload refused near its limit takes disk for a
moment rather than memory, and an accepted one is read back once.

HTTP-free: :func:`vo_service.web.read_params` feeds it from the ASGI stream.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from urllib.parse import unquote_to_bytes

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, QuerystringParser, parse_options_header

from vo_service.config import Settings
from vo_service.dali import DALIError

SPOOL_MEMORY = 1024 * 1024  # bytes of one file part kept in memory before it goes to disk
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


@dataclass(frozen=True)
class BodyLimits:
    """What one request body may hold.

    Attributes
    ----------
    parameter_bytes
        Names and values of the parameters, and multipart part headers.
    parameters
        Number of parameters (and parts).
    files
        Number of file parts (multipart parts with a ``filename``); 0 where the
        endpoint takes no uploads.
    file_bytes
        All file parts together (and so each of them).
    spool_dir
        Where file parts larger than :data:`SPOOL_MEMORY` are written while they arrive.
    """

    parameter_bytes: int
    parameters: int
    files: int
    file_bytes: int
    spool_dir: Path

    @classmethod
    def of(cls, settings: Settings, *, uploads: bool) -> BodyLimits:
        """The limits of a request to an endpoint that takes TAP uploads or none."""
        tap = settings.tap
        return cls(parameter_bytes=settings.requests.body_bytes,
                   parameters=settings.requests.parameters,
                   files=tap.upload_tables if uploads else 0,
                   file_bytes=tap.upload_bytes if uploads else 0,
                   spool_dir=settings.tmp_dir)

    @property
    def body_bytes(self) -> int:
        """The largest body: parameters and files (multipart framing fits in the
        parameter allowance of any body that uses less than all of it)."""
        return self.parameter_bytes + self.file_bytes


def is_form(content_type: str) -> bool:
    """Whether a body of ``content_type`` holds parameters (a form)."""
    return content_type.split(";", 1)[0].strip().lower() in FORM_TYPES


def too_large(length: int, limits: BodyLimits) -> DALIError | None:
    """The error for a body announced (Content-Length) as ``length`` bytes, if too large."""
    if length <= limits.body_bytes:
        return None
    return DALIError(f"request body of {length:,} bytes exceeds this service's limit of "
                     f"{limits.body_bytes:,} bytes", 413)


def _text(raw: bytes | bytearray, what: str) -> str:
    try:
        return bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        raise DALIError(f"{what} is not valid UTF-8") from None


class FormReader:
    """Parameters and file parts of one form body, fed chunk by chunk.

    ``feed`` each chunk as it arrives, then ``finish``; ``close`` (always, also
    after an error) removes what was spooled to disk.
    """

    def __init__(self, content_type: str, limits: BodyLimits) -> None:
        self.limits = limits
        self.received = 0
        self.parameter_bytes = 0
        self.file_bytes = 0
        self.items: list[tuple[str, str]] = []
        self.files: dict[str, IO[bytes]] = {}
        self._name = bytearray()
        self._value = bytearray()
        self._header = bytearray()
        self._disposition = b""
        self._spool: IO[bytes] | None = None
        self._ended = False
        media, options = parse_options_header(content_type)
        self.parser: MultipartParser | QuerystringParser
        if media == b"multipart/form-data":
            boundary = options.get(b"boundary")
            if not boundary:
                raise DALIError("a multipart/form-data body needs a boundary "
                                "(Content-Type: multipart/form-data; boundary=...)")
            try:
                self.parser = MultipartParser(boundary, {
                    "on_part_begin": self._part_begin, "on_part_data": self._part_data,
                    "on_part_end": self._part_end, "on_header_field": self._header_bytes,
                    "on_header_value": self._header_value, "on_header_end": self._header_end,
                    "on_headers_finished": self._headers_finished, "on_end": self._end})
            except FormParserError as exc:
                raise DALIError(f"cannot read the multipart body: {exc}") from None
        else:
            self.parser = QuerystringParser({
                "on_field_start": self._part_begin, "on_field_name": self._name_bytes,
                "on_field_data": self._value_bytes, "on_field_end": self._field_end,
                "on_end": self._end})

    # -- feeding -------------------------------------------------------------------

    def feed(self, chunk: bytes) -> None:
        """Parse the next ``chunk`` of the body.

        Raises
        ------
        DALIError
            413 at the first byte over a limit, 400 for a malformed body.
        """
        self.received += len(chunk)
        if self.received > self.limits.body_bytes:
            raise DALIError(f"request body exceeds this service's limit of "
                            f"{self.limits.body_bytes:,} bytes", 413)
        try:
            self.parser.write(chunk)
        except FormParserError as exc:
            raise DALIError(f"cannot read the request body: {exc}") from None

    def finish(self) -> tuple[list[tuple[str, str]], dict[str, bytes]]:
        """The parameters, and the content of each file part, of the complete body."""
        self.parser.finalize()
        if isinstance(self.parser, MultipartParser) and not self._ended:
            raise DALIError("the multipart body ends before its closing boundary")
        files = {}
        for name, spool in self.files.items():
            spool.seek(0)
            files[name] = spool.read()
        return self.items, files

    def close(self) -> None:
        """Drop the spooled file parts (their disk space included)."""
        for spool in self.files.values():
            spool.close()
        self.files.clear()

    # -- bounds --------------------------------------------------------------------

    def _count_parameter(self, n: int) -> None:
        self.parameter_bytes += n
        if self.parameter_bytes > self.limits.parameter_bytes:
            raise DALIError(f"the parameters of this request exceed this service's limit of "
                            f"{self.limits.parameter_bytes:,} bytes", 413)

    def _count_file(self, n: int) -> None:
        self.file_bytes += n
        if self.file_bytes > self.limits.file_bytes:
            raise DALIError(f"uploads exceed this service's limit of "
                            f"{self.limits.file_bytes:,} bytes per request", 413)

    # -- parser callbacks (both parsers) ---------------------------------------------

    def _part_begin(self) -> None:
        if len(self.items) + len(self.files) >= self.limits.parameters:
            raise DALIError(f"more than {self.limits.parameters:,} parameters in one request",
                            413)
        self._name.clear()
        self._value.clear()
        self._disposition = b""
        self._spool = None

    def _end(self) -> None:
        self._ended = True

    # -- urlencoded ------------------------------------------------------------------

    def _name_bytes(self, data: bytes, start: int, end: int) -> None:
        self._count_parameter(end - start)
        self._name += data[start:end]

    def _value_bytes(self, data: bytes, start: int, end: int) -> None:
        self._count_parameter(end - start)
        self._value += data[start:end]

    def _field_end(self) -> None:
        name = _text(unquote_to_bytes(bytes(self._name).replace(b"+", b" ")), "a parameter name")
        value = _text(unquote_to_bytes(bytes(self._value).replace(b"+", b" ")),
                      f"parameter {name}")
        self.items.append((name, value))

    # -- multipart -------------------------------------------------------------------

    def _header_bytes(self, data: bytes, start: int, end: int) -> None:
        self._count_parameter(end - start)
        self._header += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._count_parameter(end - start)
        if bytes(self._header).lower() == b"content-disposition":
            self._disposition += data[start:end]

    def _header_end(self) -> None:
        self._header.clear()

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        if b"name" not in options:
            raise DALIError("a multipart part has no name (Content-Disposition: form-data; "
                            "name=...)")
        self._name[:] = options[b"name"]
        if b"filename" not in options:
            return
        name = _text(self._name, "a part name")
        if len(self.files) >= self.limits.files:
            if not self.limits.files:
                raise DALIError(f"this endpoint takes no file uploads (part {name})")
            raise DALIError(f"more than {self.limits.files} files in one request "
                            "(uploaded tables per query)", 413)
        self.limits.spool_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY,
                                                    dir=str(self.limits.spool_dir))
        previous = self.files.pop(name, None)  # a repeated name: the last part wins
        if previous is not None:
            previous.close()
        self.files[name] = self._spool

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._spool is None:
            self._count_parameter(end - start)
            self._value += data[start:end]
        else:
            self._count_file(end - start)
            self._spool.write(data[start:end])

    def _part_end(self) -> None:
        if self._spool is None:
            name = _text(self._name, "a part name")
            self.items.append((name, _text(self._value, f"parameter {name}")))
        self._spool = None
