"""The LISTEN thread: stopping it, joining it, asking whether it is alive."""

from __future__ import annotations

import threading

from publisher.watch import PgWatcher

# Nothing listens on port 1: every connection attempt is refused at once.
UNREACHABLE = "postgresql+psycopg://nobody@127.0.0.1:1/none"


def test_a_stopped_watcher_can_be_joined_and_asked_whether_it_is_alive() -> None:
    """Thread.join() and is_alive() after the thread ended (its own `_stop` must not be shadowed)."""
    wake, stop = threading.Event(), threading.Event()
    watcher = PgWatcher(UNREACHABLE, "ledger_events", wake, stop)
    watcher.start()
    stop.set()
    watcher.join(10)
    assert not watcher.is_alive()
    watcher.join()  # a second join of an ended thread returns at once
    assert not watcher.connected.is_set()
