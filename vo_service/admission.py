"""Admission of expensive requests: bounded query slots, per-client and queue limits.

One anonymous client must not be able to take a web process down by sending many
expensive requests, or by abandoning them. So every expensive request (a TAP sync
query, SSA queryData, DataLink, a getData conversion) runs in one of a bounded
number of *query slots*, whose threads are apart from those that answer cheap
requests (VOSI availability and capabilities, tables, job documents, pages):
those keep answering while every slot is busy. A client may hold only a few
slots or places in the queue, and the queue itself is bounded; a request beyond
either limit is refused at once (:class:`Overloaded`: HTTP 503 with
``Retry-After``) instead of waiting for ever.

A request whose client goes away is :meth:`Ticket.abandon`-ed: the work it
started is told through the hooks registered with :meth:`Ticket.on_abandon`
(a running query is cancelled in PostgreSQL), and work not started yet is not
started. This module knows nothing of HTTP: :mod:`vo_service.web` watches the
connection and identifies the client.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from functools import partial
from typing import TypeVar

import anyio
import anyio.to_thread

from vo_service.config import WebSettings
from vo_service.dali import DALIError

T = TypeVar("T")


class Overloaded(DALIError):
    """Refused for now (HTTP 503); the client may try again after ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message, 503)
        self.retry_after = retry_after


class Abandoned(DALIError):
    """The client went away before its work ended (499, the status nginx logs for it)."""

    def __init__(self) -> None:
        super().__init__("the client closed the connection", 499)


class Admission:
    """The query slots of one web process, with the per-client and queue limits.

    Used from the event loop only (the counters need no lock there); the work
    itself runs in the slots' own threads (:meth:`Ticket.run`).
    """

    def __init__(self, settings: WebSettings) -> None:
        self.settings = settings
        self._clients: Counter[str] = Counter()  # admitted tickets (waiting or running)
        self._admitted = 0  # all clients' tickets, not released yet
        self._slots: anyio.CapacityLimiter | None = None  # made in the event loop
        self._threads: anyio.CapacityLimiter | None = None

    def _limiters(self) -> tuple[anyio.CapacityLimiter, anyio.CapacityLimiter]:
        if self._slots is None or self._threads is None:
            self._slots = anyio.CapacityLimiter(self.settings.query_slots)
            self._threads = anyio.CapacityLimiter(self.settings.query_slots)
        return self._slots, self._threads

    @property
    def busy(self) -> int:
        """Slots taken now."""
        return self._limiters()[0].borrowed_tokens

    @property
    def waiting(self) -> int:
        """Admitted requests not holding a slot (waiting for one, or about to take one)."""
        return self._admitted - self.busy

    def admit(self, client: str) -> Ticket:
        """A ticket for one expensive request of ``client`` (not holding a slot yet).

        Raises
        ------
        Overloaded
            When ``client`` already has ``client_queries`` requests admitted, or every
            slot is busy and ``queue_waiters`` requests already wait for one.
        """
        limits = self.settings
        if self._clients[client] >= limits.client_queries:
            raise Overloaded(
                f"too many concurrent requests from {client}: this service runs at most "
                f"{limits.client_queries} expensive requests (queries) per client at once; "
                f"retry after {limits.retry_after} s", limits.retry_after)
        # Counted at admission, not at the slot: requests admitted together have not
        # taken their slots yet.
        if self._admitted >= limits.query_slots + limits.queue_waiters:
            raise Overloaded(
                f"the service is busy: all {limits.query_slots} query slots are taken and "
                f"{self.waiting} requests wait for one; retry after {limits.retry_after} s",
                limits.retry_after)
        self._clients[client] += 1
        self._admitted += 1
        return Ticket(self, client)

    def _leave(self, client: str) -> None:
        self._admitted -= 1
        self._clients[client] -= 1
        if self._clients[client] <= 0:
            del self._clients[client]


class Ticket:
    """One admitted request: wait for a slot, run work in it, release it (always)."""

    def __init__(self, admission: Admission, client: str) -> None:
        self.admission = admission
        self.client = client
        self._holding = False
        self._released = False
        self._lock = threading.Lock()  # guards the abandon hooks (work threads add them)
        self._hooks: list[Callable[[], None]] = []
        self.abandoned = False

    @property
    def holding(self) -> bool:
        """Whether the ticket holds a slot (its work may be running in a thread)."""
        return self._holding

    async def acquire(self) -> None:
        """Wait for a free slot (cancellable: the caller gives up when its client goes)."""
        slots, _ = self.admission._limiters()
        await slots.acquire_on_behalf_of(self)
        self._holding = True

    async def run(self, func: Callable[..., T], *args: object) -> T:
        """``func(*args)`` in a thread of the slots (not the shared thread pool).

        Cancelling the caller does not stop the thread; abandon the ticket to stop
        what it started, and this returns when the thread is done.
        """
        if not self._holding:
            raise RuntimeError("Ticket.run() before acquire()")
        _, threads = self.admission._limiters()
        return await anyio.to_thread.run_sync(partial(func, *args), limiter=threads)

    def release(self) -> None:
        """Give the slot (and the client's place) back; idempotent. Event loop only."""
        if self._released:
            return
        self._released = True
        if self._holding:
            self._holding = False
            self.admission._limiters()[0].release_on_behalf_of(self)
        self.admission._leave(self.client)

    def on_abandon(self, hook: Callable[[], None]) -> None:
        """Call ``hook`` when the client goes away (at once if it has gone already).

        Called from work threads, e.g. with a query's cancel function just before the
        query is sent.
        """
        with self._lock:
            if not self.abandoned:
                self._hooks.append(hook)
                return
        hook()

    def abandon(self) -> None:
        """The client went away: stop what the work started, start nothing more."""
        with self._lock:
            if self.abandoned:
                return
            self.abandoned = True
            hooks, self._hooks = self._hooks, []
        for hook in hooks:
            hook()
