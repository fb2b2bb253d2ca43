"""TAP_UPLOAD by http URL: the download (redirects, size limit, which addresses may be
fetched), without a database; tests/tap/test_upload_limits.py does it through a server."""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest

from vo_service.dali import DALIError, Params
from vo_service.tap.upload import Upload, fetch
from vo_service.tap.upload_fetch import refusal, resolve

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


# fetch() reads only these limits; the test server is on loopback, so it is allowed
LIMITS = SimpleNamespace(upload_fetch_timeout=5.0, upload_bytes=10_000,
                         upload_fetch_redirects=2, upload_fetch_allow=("127.0.0.1/32",))


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


def test_fetch_by_url_refuses_loopback_unless_allowed(base_url: str) -> None:
    limits = SimpleNamespace(**{**vars(LIMITS), "upload_fetch_allow": ()})
    with pytest.raises(DALIError, match="127.0.0.1, a loopback address") as info:
        fetch(Upload("t", base_url + "/table.vot"), Params(), limits, [10_000])
    assert info.value.status == 400


@pytest.mark.parametrize(("address", "kind"), [
    ("127.0.0.1", "loopback"), ("::1", "loopback"), ("::ffff:127.0.0.1", "loopback"),
    ("10.1.2.3", "private"), ("192.168.0.1", "private"), ("fd00::1", "private"),
    ("169.254.169.254", "link-local"), ("fe80::1", "link-local"),
    ("224.0.0.1", "multicast"), ("ff02::1", "multicast"), ("0.0.0.0", "unspecified"),
    ("240.0.0.1", "reserved"), ("100.64.0.1", "not a public"),
])
def test_addresses_that_are_not_public_are_refused(address: str, kind: str) -> None:
    assert kind in (refusal(ipaddress.ip_address(address)) or "")


@pytest.mark.parametrize("address", ["8.8.8.8", "193.48.0.1", "2001:4860:4860::8888"])
def test_public_addresses_are_fetched(address: str) -> None:
    assert refusal(ipaddress.ip_address(address)) is None


def test_the_checked_address_is_the_one_connected_to() -> None:
    target = resolve("t", "http://localhost:8080/a/b?c=d", ("localhost",))
    assert target.address.is_loopback
    literal = f"[{target.address}]" if target.address.version == 6 else str(target.address)
    assert target.url == f"http://{literal}:8080/a/b?c=d"
    assert (target.host, target.netloc) == ("localhost", "localhost:8080")


def test_allow_list_by_network_and_by_host_name() -> None:
    assert resolve("t", "http://127.0.0.5/", ("127.0.0.0/8",)).address == \
        ipaddress.ip_address("127.0.0.5")
    with pytest.raises(DALIError, match="loopback"):
        resolve("t", "http://127.0.0.5/", ("127.0.0.1/32", "localhost"))
