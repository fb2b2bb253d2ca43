"""What the benchmarks that start ``latentvo serve`` share: their home and base URL, a free
port, and a wait for the server.

Each benchmark starts its own server on loopback; these steps are the same for all.
"""

from __future__ import annotations

import os
import socket
import tempfile
import time
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(url: str, timeout: float = 120) -> None:
    """Return once ``url`` answers 200; raise if it does not within ``timeout`` seconds."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


def service_home(home: str | None, prefix: str = "latentvo-bench-") -> tuple[Path, int, str]:
    """(home, port, base URL) of the benchmark's service: ``home`` or a fresh temporary
    directory as LATENTVO_HOME, and a free loopback port as LATENTVO_BASE_URL, both set in
    the environment before the settings are loaded."""
    path = Path(home) if home else Path(tempfile.mkdtemp(prefix=prefix))
    os.environ["LATENTVO_HOME"] = str(path)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    os.environ["LATENTVO_BASE_URL"] = base
    return path, port, base
