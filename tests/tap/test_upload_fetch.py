"""TAP_UPLOAD by http URL: the download (redirects, size limit), without a database."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest

from vo_service.dali import DALIError, Params
from vo_service.tap.upload import Upload, fetch

BODY = b"<VOTABLE/>" * 100


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the http.server interface
        if self.path == "/moved":
            self.send_response(302)
            self.send_header("Location", "/table.vot")
            self.end_headers()
            return
        if self.path != "/table.vot":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


# fetch() reads only these two limits
LIMITS = SimpleNamespace(upload_fetch_timeout=5.0, upload_bytes=10_000)


@pytest.mark.parametrize("path", ["/table.vot", "/moved"])
def test_fetch_by_url_follows_redirects(base_url: str, path: str) -> None:
    budget = [LIMITS.upload_bytes]
    data = fetch(Upload("t", base_url + path), Params(), LIMITS, budget)
    assert data == BODY
    assert budget == [LIMITS.upload_bytes - len(BODY)]


def test_fetch_by_url_enforces_the_size_limit(base_url: str) -> None:
    with pytest.raises(DALIError) as info:
        fetch(Upload("t", base_url + "/table.vot"), Params(), LIMITS, [100])
    assert info.value.status == 413


def test_fetch_by_url_reports_http_errors(base_url: str) -> None:
    with pytest.raises(DALIError, match="gave HTTP 404"):
        fetch(Upload("t", base_url + "/missing"), Params(), LIMITS, [10_000])
