"""Fetching an upload given by http(s) URL without lending the server to its network.

A URL upload makes the service send a request where the client says: to its own
loopback, its private network or a cloud metadata address (169.254.169.254), a
server-side request forgery. So each URL, the first and every redirect target, is
checked *after* DNS resolution: every address the name resolves to must be public
(not loopback, private, link-local, multicast, reserved or unspecified) unless the
host or its network is in ``[tap] upload_fetch_allow``. The connection then goes
to the address that was checked (the request keeps the URL's Host header and TLS
server name), so a name that resolves differently a moment later (DNS rebinding)
cannot slip through. Redirects are followed by hand, at most
``[tap] upload_fetch_redirects`` of them; the body is bounded in bytes while it
arrives (past :data:`~vo_service.request_body.SPOOL_MEMORY` it waits in an
anonymous temporary file, so a refused download costs no memory) and the whole
fetch in time (``[tap] upload_fetch_timeout``).
"""

from __future__ import annotations

import ipaddress
import socket
import tempfile
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit

from vo_service.config import TAPLimits
from vo_service.dali import DALIError
from vo_service.request_body import SPOOL_MEMORY

if TYPE_CHECKING:
    import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
REDIRECTS = (301, 302, 303, 307, 308)


@dataclass(frozen=True)
class Target:
    """Where one URL is fetched from: a checked address, and the name it stands for."""

    url: str
    host: str
    netloc: str
    address: IPAddress


def refusal(address: IPAddress) -> str | None:
    """Why the service does not fetch from ``address`` by default; None when public."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    for kind, test in (("unspecified", address.is_unspecified),
                       ("loopback", address.is_loopback),
                       ("link-local", address.is_link_local),
                       ("multicast", address.is_multicast),
                       ("reserved", address.is_reserved),
                       ("private", address.is_private)):
        if test:
            return f"a {kind} address"
    if not address.is_global:
        return "not a public address"
    return None


def _allowed(host: str, address: IPAddress, allow: tuple[str, ...]) -> bool:
    for entry in allow:
        try:
            if address in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:  # a host name (the settings accept nothing else)
            if host.rstrip(".").lower() == entry.rstrip(".").lower():
                return True
    return False


def resolve(name: str, url: str, allow: tuple[str, ...]) -> Target:
    """The checked address to fetch ``url`` from.

    Raises
    ------
    DALIError
        When the URL is not http(s), its host does not resolve, or one of its
        addresses is not public and not allowed (400).
    """
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise DALIError(f"upload {name}: {url} is not an http:// or https:// URL")
    host = parts.hostname
    try:
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except ValueError:
        raise DALIError(f"upload {name}: {url} has an invalid port") from None
    except OSError as exc:
        raise DALIError(f"upload {name}: cannot resolve the host of {url}: {exc}") from None
    addresses = list(dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%")[0])
                                   for info in infos))
    if not addresses:
        raise DALIError(f"upload {name}: the host of {url} has no address")
    for address in addresses:
        reason = refusal(address)
        if reason and not _allowed(host, address, allow):
            raise DALIError(f"upload {name}: {url} resolves to {address}, {reason}; this "
                            "service fetches uploads only from public addresses")
    address = addresses[0]
    literal = f"[{address}]" if address.version == 6 else str(address)
    userinfo, _, netloc = parts.netloc.rpartition("@")
    pinned = parts._replace(netloc=f"{userinfo}@{literal}:{port}" if userinfo
                            else f"{literal}:{port}").geturl()
    return Target(pinned, host, netloc, address)


def download(name: str, uri: str, limits: TAPLimits, allowed: int) -> bytes:
    """The body of ``uri``, at most ``allowed`` bytes, fetched as the module says.

    Raises
    ------
    DALIError
        400 for a refused address, too many redirects, a failed or slow fetch or an
        HTTP error status; 413 when the body is larger than ``allowed``.
    """
    import httpx

    deadline = time.monotonic() + limits.upload_fetch_timeout
    url = uri
    try:
        with httpx.Client(timeout=limits.upload_fetch_timeout, follow_redirects=False,
                          trust_env=False) as client:
            for _ in range(limits.upload_fetch_redirects + 1):
                target = resolve(name, url, limits.upload_fetch_allow)
                request = client.build_request(
                    "GET", target.url, headers={"Host": target.netloc},
                    extensions={"sni_hostname": target.host})
                response = client.send(request, stream=True)
                try:
                    location = response.headers.get("location")
                    if response.status_code in REDIRECTS and location:
                        url = urljoin(url, location)
                        continue
                    if response.status_code != 200:
                        raise DALIError(f"upload {name}: fetching {url} gave HTTP "
                                        f"{response.status_code}")
                    return _body(name, url, response, limits, allowed, deadline)
                finally:
                    response.close()
    except httpx.HTTPError as exc:
        raise DALIError(f"upload {name}: cannot fetch {url}: {exc}") from None
    raise DALIError(f"upload {name}: fetching {uri} needs more than "
                    f"{limits.upload_fetch_redirects} redirects, this service's limit")


def _body(name: str, url: str, response: httpx.Response, limits: TAPLimits, allowed: int,
          deadline: float) -> bytes:
    too_large = DALIError(f"upload {name}: {url} is larger than this service's upload limit "
                          f"of {limits.upload_bytes:,} bytes", 413)
    length = response.headers.get("content-length", "")
    if length.isdigit() and int(length) > allowed:
        raise too_large
    size = 0
    # spooled as multipart uploads are: a body refused near the limit costs no memory
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY) as spool:
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > allowed:
                raise too_large
            if time.monotonic() > deadline:
                raise DALIError(f"upload {name}: fetching {url} took longer than this "
                                f"service's limit of {limits.upload_fetch_timeout} s")
            spool.write(chunk)
        spool.seek(0)
        return spool.read()
