"""Admission of expensive requests without a server: slots, per-client and queue limits."""

from __future__ import annotations

import asyncio
import threading

import pytest

from vo_service.admission import Admission, Overloaded
from vo_service.config import WebSettings


def test_per_client_and_queue_limits():
    async def scenario() -> None:
        admission = Admission(WebSettings(query_slots=1, client_queries=2, queue_waiters=1,
                                          retry_after=7))
        first = admission.admit("a")
        await first.acquire()
        second = admission.admit("a")
        with pytest.raises(Overloaded, match="per client") as refused:
            admission.admit("a")  # a third from the same client
        assert refused.value.status == 503 and refused.value.retry_after == 7
        waiting = asyncio.ensure_future(second.acquire())
        await asyncio.sleep(0.05)
        assert admission.waiting == 1 and admission.busy == 1
        with pytest.raises(Overloaded, match="busy"):
            admission.admit("b")  # the one slot is taken and the queue is full
        first.release()
        await waiting
        assert admission.busy == 1 and admission.waiting == 0
        third = admission.admit("b")  # a free place in the queue again
        second.release()
        third.release()  # released without ever holding a slot
        assert admission.busy == 0
        assert admission.admit("a") and admission.admit("a")  # the client's places are back

    asyncio.run(scenario())


def test_work_runs_in_the_slot_threads_and_abandon_reaches_it():
    async def scenario() -> None:
        admission = Admission(WebSettings(query_slots=2))
        ticket = admission.admit("a")
        await ticket.acquire()
        started, cancelled = threading.Event(), threading.Event()

        def work() -> str:
            ticket.on_abandon(cancelled.set)
            started.set()
            cancelled.wait(10)
            return threading.current_thread().name

        task = asyncio.ensure_future(ticket.run(work))
        await asyncio.get_running_loop().run_in_executor(None, started.wait, 10)
        ticket.abandon()
        assert await task != threading.main_thread().name
        assert cancelled.is_set()
        late: list[str] = []
        ticket.on_abandon(lambda: late.append("at once"))  # already abandoned: called now
        assert late == ["at once"]
        ticket.release()

    asyncio.run(scenario())


def test_requests_admitted_together_count_before_they_take_a_slot():
    """Many requests arriving at once: the queue bound holds before any has a slot."""
    admission = Admission(WebSettings(query_slots=2, queue_waiters=1, client_queries=100))
    tickets = [admission.admit(f"c{i}") for i in range(3)]
    with pytest.raises(Overloaded, match="busy"):
        admission.admit("c3")
    for ticket in tickets:
        ticket.release()
    assert admission.admit("c4")
