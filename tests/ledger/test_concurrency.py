"""Concurrent writers lose nothing: stale saves are retried, never dropped."""

from __future__ import annotations

import multiprocessing

import pytest

from ledger import Ledger, Meta, TargetRef, Window
from ledger.events import EventScheduled

PROCESSES, CHANGES = 4, 50


def _append_events(db_url: str, worker: int, start: multiprocessing.synchronize.Event) -> None:
    ledger = Ledger(db_url)
    start.wait(30)  # all processes begin together, to collide as much as possible
    target = TargetRef("client", "hot-1")
    for n in range(CHANGES):
        window = Window.parse(f"2026-04-{1 + n % 28:02d}T08:00:00Z", f"2026-04-{1 + n % 28:02d}T09:00:00Z")
        ledger.add_event(f"w{worker}-e{n}", target, window, Meta(f"worker-{worker}"))
    ledger.close()


@pytest.mark.slow
def test_four_processes_appending_to_one_client_lose_nothing(ledger: Ledger, db_url: str) -> None:
    """4 OS processes x 50 changes to the same client: all 200 are in the ledger."""
    ledger.add_client("hot-1", None, Meta("setup"))
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    workers = [ctx.Process(target=_append_events, args=(db_url, w, start)) for w in range(PROCESSES)]
    for p in workers:
        p.start()
    start.set()
    for p in workers:
        p.join(120)
    assert [p.exitcode for p in workers] == [0] * PROCESSES
    client = ledger.client("hot-1")
    assert len(client.events) == PROCESSES * CHANGES
    scheduled = [e for _, e in ledger.read() if isinstance(e, EventScheduled)]
    assert sorted(e.event_id for e in scheduled) == sorted(
        f"w{w}-e{n}" for w in range(PROCESSES) for n in range(CHANGES)
    )
    # One version per change: no event was written twice or at a reused version.
    assert client.version == 2 + PROCESSES * CHANGES
