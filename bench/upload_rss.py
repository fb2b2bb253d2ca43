"""Memory of a rejected oversize upload: the server's RSS around a chunked 600 MB POST.

    python bench/upload_rss.py --url http://127.0.0.1:8000 --pid PID [--megabytes 600]

Sends a ``multipart/form-data`` TAP sync query whose one file part is ``--megabytes``
MiB, chunked (no Content-Length, so the server cannot refuse it up front), to a
running ``latentvo serve`` whose process (and worker children) is ``--pid``. The
server must answer 413 with its DALI error document after reading at most its
upload limit (``[tap] upload_bytes``, 64 MB by default). Prints the status, the
seconds to the answer, and the server's RSS before, at its peak while the upload
ran (sampled every 10 ms) and after, in MiB; the figure for issue 16 is
``peak - before`` (goal: <= 5 MB). :func:`rejected_upload_rss` is the measurement
for ``bench/robustness.py``. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import threading
import time
from collections.abc import Iterator

import httpx
import psutil

BOUNDARY = "latentvo-bench-boundary"
MIB = 2**20


def _body(megabytes: int) -> Iterator[bytes]:
    yield (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"LANG\"\r\n\r\nADQL\r\n"
           f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"QUERY\"\r\n\r\n"
           "SELECT COUNT(*) FROM TAP_UPLOAD.t\r\n"
           f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"UPLOAD\"\r\n\r\n"
           f"t,param:t\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"t\"; "
           f"filename=\"t.vot\"\r\n\r\n").encode()
    block = b"<!-- padding -->" * (MIB // 16)
    for _ in range(megabytes):
        yield block
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


def _rss(process: psutil.Process) -> int:
    return sum(p.memory_info().rss for p in [process, *process.children(recursive=True)])


def rejected_upload_rss(url: str, pid: int, megabytes: int = 600) -> dict[str, float]:
    """RSS (MiB) of server ``pid`` before, at peak during and after a chunked upload of
    ``megabytes`` MiB to ``url``/tap/sync, with the HTTP status and seconds taken."""
    process = psutil.Process(pid)
    before = _rss(process)
    peak = [before]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _rss(process))
            time.sleep(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    response = httpx.post(url.rstrip("/") + "/tap/sync", content=_body(megabytes), timeout=300,
                          headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})
    seconds = time.perf_counter() - start
    done.set()
    sampler.join()
    after = _rss(process)
    return {"status": response.status_code, "seconds": round(seconds, 2),
            "rss_before_mib": before / MIB, "rss_peak_mib": peak[0] / MIB,
            "rss_after_mib": after / MIB, "growth_mib": (peak[0] - before) / MIB}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", required=True, help="base URL of the running service")
    parser.add_argument("--pid", type=int, required=True, help="process id of latentvo serve")
    parser.add_argument("--megabytes", type=int, default=600)
    args = parser.parse_args()
    rejected_upload_rss(args.url, args.pid, 2)  # warm the path up: first requests allocate
    result = rejected_upload_rss(args.url, args.pid, args.megabytes)
    print(f"rejected {args.megabytes} MiB chunked upload: HTTP {result['status']} in "
          f"{result['seconds']} s; server RSS {result['rss_before_mib']:.1f} MiB before, "
          f"{result['rss_peak_mib']:.1f} peak, {result['rss_after_mib']:.1f} after: "
          f"growth {result['growth_mib']:.1f} MiB (goal <= 5)")


if __name__ == "__main__":
    main()
