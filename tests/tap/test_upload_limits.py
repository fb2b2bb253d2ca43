"""Upload limits against a real server: bodies bounded while they arrive, URL uploads.

* Request bodies (issue 16, finding 3): a chunked body (no Content-Length) far over
  a limit is refused with the DALI error document (413) after at most the limit was
  read, and the server's memory does not grow with what was sent; over-wide tables,
  too many parameters and file parts where none are taken answer their errors.
* URL uploads (finding 10): fetched from a real local HTTP server when its address
  is allowed; refused by default for a loopback address, also behind a redirect;
  redirect chains bounded.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import psutil
import pytest
from astropy.io.votable import parse_single_table

from tests.conftest import start_server, stop_server
from tests.tap.test_robustness import error_text

ROWS = 5
TABLE = ("<?xml version='1.0'?><VOTABLE version='1.4' "
         "xmlns='http://www.ivoa.net/xml/VOTable/v1.3'><RESOURCE><TABLE>"
         "<FIELD name='x' datatype='int'/><DATA><TABLEDATA>"
         + "".join(f"<TR><TD>{i}</TD></TR>" for i in range(ROWS))
         + "</TABLEDATA></DATA></TABLE></RESOURCE></VOTABLE>").encode()
ALLOWED_HOST = "127.0.0.2"  # the files' server; the upload server allows only this address
REDIRECT_LIMIT = 3
COUNT = "SELECT COUNT(*) AS n FROM TAP_UPLOAD.t"


class _Files(BaseHTTPRequestHandler):
    """``/table.vot``; ``/hops/N``: N redirects before it; ``/to-loopback``: a redirect
    to the same server by its 127.0.0.1 address; ``/endless``: 600 MB of no length."""

    def do_GET(self) -> None:  # noqa: N802 - the http.server interface
        port = self.server.server_address[1]
        if self.path.startswith("/hops/"):
            n = int(self.path.rsplit("/", 1)[1])
            self._redirect(f"/hops/{n - 1}" if n > 1 else "/table.vot")
        elif self.path == "/to-loopback":
            self._redirect(f"http://127.0.0.1:{port}/table.vot")
        elif self.path == "/endless":
            self.send_response(200)
            self.end_headers()
            block = b"<!-- padding -->" * 65_536
            try:
                for _ in range(600):
                    self.wfile.write(block)
            except OSError:  # the service hung up at its limit
                pass
        elif self.path == "/table.vot":
            self.send_response(200)
            self.send_header("Content-Length", str(len(TABLE)))
            self.end_headers()
            self.wfile.write(TABLE)
        else:
            self.send_error(404)

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def files() -> Iterator[str]:
    """Base URL of a local HTTP server on 127.0.0.2 serving a VOTable and redirects."""
    server = ThreadingHTTPServer(("0.0.0.0", 0), _Files)  # noqa: S104 - 127.0.0.1 and .2
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://{ALLOWED_HOST}:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def upload_server(tap_data, tap_env) -> Iterator[tuple[str, psutil.Process]]:
    """A server with the default upload limit (64 MB) that may fetch from 127.0.0.2."""
    env = {**tap_env, "LATENTVO_TAP_UPLOAD_BYTES": "64000000",
           "LATENTVO_TAP_UPLOAD_FETCH_ALLOW": f"{ALLOWED_HOST}/32",
           "LATENTVO_TAP_UPLOAD_FETCH_REDIRECTS": str(REDIRECT_LIMIT)}
    proc, url = start_server(env)
    yield url + "/tap", psutil.Process(proc.pid)
    stop_server(proc)


def _query(tap: str, upload: str, **extra: object) -> httpx.Response:
    return httpx.post(tap + "/sync", data={"LANG": "ADQL", "QUERY": COUNT, "UPLOAD": upload},
                      timeout=60, **extra)  # type: ignore[arg-type]


def _count(response: httpx.Response) -> int:
    assert response.status_code == 200, response.text
    return int(parse_single_table(io.BytesIO(response.content)).array["n"][0])


def _rss(process: psutil.Process) -> int:
    return sum(p.memory_info().rss for p in [process, *process.children(recursive=True)])


# -- bodies bounded while they arrive ---------------------------------------------------

BOUNDARY = "latentvo-test-boundary"


def _chunked_multipart(megabytes: int) -> Iterator[bytes]:
    """A multipart body with one file part of ``megabytes`` MB, sent without a length."""
    yield (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"LANG\"\r\n\r\nADQL\r\n"
           f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"QUERY\"\r\n\r\n{COUNT}\r\n"
           f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"UPLOAD\"\r\n\r\n"
           f"t,param:t\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"t\"; "
           f"filename=\"t.vot\"\r\n\r\n").encode()
    block = b"<!-- padding -->" * 65_536  # 1 MiB
    for _ in range(megabytes):
        yield block
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


def test_chunked_upload_far_over_the_limit_is_refused_without_growing_memory(upload_server):
    tap, process = upload_server
    warm = httpx.post(tap + "/sync", content=_chunked_multipart(2), timeout=60,
                      headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})
    assert warm.status_code == 400  # (padding is no VOTable) the path is warm
    before = _rss(process)
    response = httpx.post(tap + "/sync", content=_chunked_multipart(600), timeout=120,
                          headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})
    grown = _rss(process) - before
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("application/x-votable+xml")
    assert "64,000,000 bytes" in error_text(response)
    assert grown < 10 * 2**20, f"server RSS grew by {grown / 2**20:.1f} MiB"


def test_chunked_parameters_over_the_limit_are_refused(upload_server):
    tap, _ = upload_server

    def body() -> Iterator[bytes]:
        yield b"LANG=ADQL&QUERY="
        for _ in range(50):
            yield b"1%2B" * 65_536  # 50 x 256 KiB: past the 1 MB limit of parameters

    response = httpx.post(tap + "/sync", content=body(), timeout=60, headers={
        "Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 413
    assert "parameters of this request exceed" in error_text(response)


def test_announced_oversize_body_is_refused_before_it_is_read(upload_server):
    tap, _ = upload_server
    response = httpx.post(tap.removesuffix("/tap") + "/ssa", content=b"x" * 1_000_001,
                          headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 413
    assert "QUERY_STATUS" in response.text


def test_too_many_parameters_are_refused(upload_server):
    tap, _ = upload_server
    response = httpx.post(tap + "/sync", content="&".join(f"P{i}=1" for i in range(1_001)),
                          headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 413
    assert "more than 1,000 parameters" in error_text(response)


def test_file_part_where_no_upload_is_taken_is_refused(upload_server):
    tap, _ = upload_server
    response = httpx.post(tap + "/async/none/phase", data={"PHASE": "RUN"},
                          files={"t": ("t.vot", TABLE)})
    assert response.status_code == 400
    assert "takes no file uploads" in error_text(response)


def test_truncated_multipart_body_is_refused(upload_server):
    tap, _ = upload_server
    body = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"LANG\"\r\n\r\nADQL\r\n"
            f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"QUERY\"\r\n\r\nSEL")
    response = httpx.post(tap + "/sync", content=body, headers={
        "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})
    assert response.status_code == 400
    assert "closing boundary" in error_text(response)


def test_inline_upload_within_the_limits_is_read(upload_server):
    tap, _ = upload_server
    assert _count(_query(tap, "t,param:t", files={"t": ("t.vot", TABLE)})) == ROWS


def test_over_wide_upload_is_a_400(upload_server):
    tap, _ = upload_server
    fields = "".join(f"<FIELD name='c{i}' datatype='short'/>" for i in range(10_000))
    wide = ("<?xml version='1.0'?><VOTABLE version='1.4'><RESOURCE><TABLE>" + fields
            + "<DATA><TABLEDATA><TR>" + "<TD>1</TD>" * 10_000
            + "</TR></TABLEDATA></DATA></TABLE></RESOURCE></VOTABLE>").encode()
    response = _query(tap, "t,param:t", files={"t": ("t.vot", wide)})
    assert response.status_code == 400
    assert "more than 1,000 columns" in error_text(response)


# -- URL uploads -------------------------------------------------------------------------


def test_url_upload_from_an_allowed_address_works(upload_server, files):
    tap, _ = upload_server
    assert _count(_query(tap, f"t,{files}/table.vot")) == ROWS


def test_url_upload_follows_redirects_within_the_limit(upload_server, files):
    tap, _ = upload_server
    assert _count(_query(tap, f"t,{files}/hops/{REDIRECT_LIMIT}")) == ROWS


def test_url_upload_with_too_many_redirects_is_refused(upload_server, files):
    tap, _ = upload_server
    response = _query(tap, f"t,{files}/hops/{REDIRECT_LIMIT + 1}")
    assert response.status_code == 400
    assert f"more than {REDIRECT_LIMIT} redirects" in error_text(response)


def test_url_upload_redirected_to_loopback_is_refused(upload_server, files):
    tap, _ = upload_server
    response = _query(tap, f"t,{files}/to-loopback")
    assert response.status_code == 400
    assert "127.0.0.1, a loopback address" in error_text(response)


def test_url_upload_far_over_the_limit_is_refused_without_growing_memory(upload_server, files):
    tap, process = upload_server
    assert _count(_query(tap, f"t,{files}/table.vot")) == ROWS  # the fetch path is warm
    before = _rss(process)
    response = _query(tap, f"t,{files}/endless")
    grown = _rss(process) - before
    assert response.status_code == 413
    assert "larger than this service's upload limit" in error_text(response)
    assert grown < 10 * 2**20, f"server RSS grew by {grown / 2**20:.1f} MiB"


def test_url_upload_from_loopback_is_refused_by_default(tap_server, archive, files):
    response = _query(tap_server, f"t,{files}/table.vot")
    assert response.status_code == 400
    assert f"{ALLOWED_HOST}, a loopback address" in error_text(response)
