"""Form bodies read chunk by chunk: each limit holds at its byte, file parts spool to disk.

Through a real server: tests/tap/test_upload_limits.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vo_service.dali import DALIError
from vo_service.request_body import SPOOL_MEMORY, BodyLimits, FormReader, too_large

BOUNDARY = "b0undary"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"
URLENCODED = "application/x-www-form-urlencoded"


def _limits(tmp_path: Path, **changes: int) -> BodyLimits:
    values = {"parameter_bytes": 1_000, "parameters": 10, "files": 2, "file_bytes": 5_000,
              **changes}
    return BodyLimits(spool_dir=tmp_path / "spool", **values)


def _part(name: str, content: bytes, filename: str | None = None) -> bytes:
    disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
    return (f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\n".encode()
            + content + b"\r\n")


def _multipart(*parts: bytes) -> bytes:
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


def _read(content_type: str, body: bytes, limits: BodyLimits, chunk: int = 7
          ) -> tuple[list[tuple[str, str]], dict[str, bytes]]:
    reader = FormReader(content_type, limits)
    try:
        for i in range(0, len(body), chunk):
            reader.feed(body[i:i + chunk])
        return reader.finish()
    finally:
        reader.close()


def test_urlencoded_parameters(tmp_path):
    items, files = _read(URLENCODED, b"QUERY=SELECT+%2A+FROM+t&LANG=ADQL&ID=caf%C3%A9",
                         _limits(tmp_path))
    assert items == [("QUERY", "SELECT * FROM t"), ("LANG", "ADQL"), ("ID", "café")]
    assert files == {}


def test_multipart_parameters_and_files(tmp_path):
    body = _multipart(_part("LANG", b"ADQL"), _part("t", b"<VOTABLE/>", "t.vot"))
    items, files = _read(MULTIPART, body, _limits(tmp_path))
    assert items == [("LANG", "ADQL")] and files == {"t": b"<VOTABLE/>"}


def test_parameter_bytes_hold_at_the_byte(tmp_path):
    limits = _limits(tmp_path, parameter_bytes=10)
    assert _read(URLENCODED, b"A=12345678", limits)[0] == [("A", "12345678")]  # 9 bytes
    with pytest.raises(DALIError, match="limit of 10 bytes") as info:
        _read(URLENCODED, b"A=1234567890", limits)
    assert info.value.status == 413


def test_file_bytes_hold_at_the_byte_across_files(tmp_path):
    limits = _limits(tmp_path, file_bytes=100)
    body = _multipart(_part("a", b"x" * 60, "a"), _part("b", b"y" * 40, "b"))
    assert _read(MULTIPART, body, limits)[1] == {"a": b"x" * 60, "b": b"y" * 40}
    body = _multipart(_part("a", b"x" * 60, "a"), _part("b", b"y" * 41, "b"))
    with pytest.raises(DALIError, match="uploads exceed") as info:
        _read(MULTIPART, body, limits)
    assert info.value.status == 413


@pytest.mark.parametrize(("body", "message"), [
    (_multipart(*[_part(f"P{i}", b"1") for i in range(11)]), "more than 10 parameters"),
    (_multipart(*[_part(f"f{i}", b"1", "f") for i in range(3)]), "more than 2 files"),
])
def test_counts_are_bounded(tmp_path, body, message):
    with pytest.raises(DALIError, match=message) as info:
        _read(MULTIPART, body, _limits(tmp_path))
    assert info.value.status == 413


def test_no_files_where_none_are_taken(tmp_path):
    with pytest.raises(DALIError, match="takes no file uploads") as info:
        _read(MULTIPART, _multipart(_part("t", b"1", "t.vot")), _limits(tmp_path, files=0))
    assert info.value.status == 400


def test_the_whole_body_is_bounded(tmp_path):
    limits = _limits(tmp_path)
    reader = FormReader(URLENCODED, limits)
    with pytest.raises(DALIError, match="request body exceeds") as info:
        reader.feed(b"&" * (limits.body_bytes + 1))  # empty parameters: no other limit
    assert info.value.status == 413
    assert too_large(limits.body_bytes, limits) is None
    assert too_large(limits.body_bytes + 1, limits).status == 413  # type: ignore[union-attr]


@pytest.mark.parametrize(("content_type", "body", "message"), [
    (URLENCODED, b"ID=%FF", "parameter ID is not valid UTF-8"),
    (MULTIPART, _multipart(_part("ID", b"\xff")), "parameter ID is not valid UTF-8"),
    (MULTIPART, _part("LANG", b"ADQL"), "closing boundary"),
    (MULTIPART, b"--" + BOUNDARY.encode() + b"\r\nContent-Disposition: form-data\r\n\r\n1\r\n",
     "has no name"),
    ("multipart/form-data", b"", "needs a boundary"),
])
def test_malformed_bodies_are_400(tmp_path, content_type, body, message):
    with pytest.raises(DALIError, match=message) as info:
        _read(content_type, body, _limits(tmp_path))
    assert info.value.status == 400


def test_file_parts_larger_than_memory_spool_are_read_back_whole(tmp_path):
    """(That they do not stay in memory is measured through a server, by its RSS.)"""
    limits = _limits(tmp_path, file_bytes=4 * SPOOL_MEMORY)
    reader = FormReader(MULTIPART, limits)
    reader.feed(_part("t", b"z" * (2 * SPOOL_MEMORY), "t.vot"))
    assert limits.spool_dir.is_dir()
    reader.feed(f"--{BOUNDARY}--\r\n".encode())
    assert reader.finish()[1]["t"] == b"z" * (2 * SPOOL_MEMORY)
    reader.close()
    assert reader.files == {}


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content_type=st.sampled_from([URLENCODED, MULTIPART, "multipart/form-data; boundary=",
                                     "multipart/form-data; boundary=\"\xff\""]),
       head=st.sampled_from([b"", _part("LANG", b"ADQL"), _part("t", b"x", "t.vot"),
                             f"--{BOUNDARY}\r\n".encode()]),
       noise=st.binary(max_size=300), chunk=st.integers(1, 64))
def test_any_bytes_give_parameters_or_a_dali_error(tmp_path, content_type, head, noise, chunk):
    try:
        _read(content_type, head + noise, _limits(tmp_path, parameter_bytes=200), chunk)
    except DALIError as error:
        assert error.status in (400, 413)
