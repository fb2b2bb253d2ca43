"""PNG previews drawn in a small pool of separate worker processes.

Why processes: the plot is drawn with matplotlib, and the web service must not
import matplotlib (nor torch, scikit-learn, scipy: ``docs/architecture.md``,
``tests/test_architecture.py``). A web process that drew previews itself would
carry matplotlib's ~40 MB and ~0.4 s import for a feature most requests never
use, and a plot would hold the GIL of the process serving queries. Here each
web process owns at most ``Settings.preview_workers`` worker processes
(``LATENTVO_PREVIEW_WORKERS``, default 1), started with ``spawn`` the first time
a preview is asked for and stopped with the application. The workers import
:mod:`vo_service.getdata.plot` by name (:data:`RENDERER`), so neither it nor
matplotlib is ever in the web process's imports.

What it costs, measured on the shared 2-core development host while other jobs
kept it busy (load average about 7), with 1,500-pixel FITS spectra: drawing in
the web process took 0.53-0.63 s per preview, through a warm worker 0.59-0.66 s
(the request carries only the file path and title, the PNG comes back as bytes:
about 0.05 s more); the first preview costs about 5 s either way (importing
matplotlib and building its font cache), here paid by the worker instead of the
web process. Each preview is drawn once per file and then served from the
getData cache (:class:`vo_service.getdata.convert.Converter`), so the pool works
only on a spectrum's first preview.
"""

from __future__ import annotations

import importlib
import logging
import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from vo_service.getdata.convert import ConversionError

log = logging.getLogger("latentvo.getdata")
RENDERER = "vo_service.getdata.plot"  # imported by the worker processes only
TIMEOUT_S = 120.0


def _load_renderer() -> None:
    importlib.import_module(RENDERER)


def _render(source: str, title: str) -> bytes:
    return importlib.import_module(RENDERER).render_file(source, title)


class PreviewPool:
    """At most ``workers`` preview processes, started on first use.

    Parameters
    ----------
    workers
        Number of worker processes (each draws one preview at a time).
    """

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ValueError("a preview pool needs at least one worker")
        self.workers = workers
        self._executor: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def _pool(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ProcessPoolExecutor(
                    self.workers, mp_context=multiprocessing.get_context("spawn"),
                    initializer=_load_renderer)
            return self._executor

    def render(self, source: Path, title: str) -> bytes:
        """The PNG preview of the spectrum file at ``source``.

        Raises :class:`ConversionError` when the file cannot be read, the drawing
        takes longer than :data:`TIMEOUT_S` or a worker died (it is replaced for
        the next call).
        """
        pool = self._pool()
        try:
            return pool.submit(_render, str(source), title).result(TIMEOUT_S)
        except TimeoutError:
            raise ConversionError(f"the preview took longer than {TIMEOUT_S:g} s") from None
        except BrokenProcessPool:
            log.warning("a preview worker died; starting new ones for the next preview")
            with self._lock:
                if self._executor is pool:
                    self._executor = None
            pool.shutdown(wait=False, cancel_futures=True)
            raise ConversionError("the preview worker stopped while drawing") from None

    def close(self) -> None:
        """Stop the workers (a later :meth:`render` starts new ones)."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
