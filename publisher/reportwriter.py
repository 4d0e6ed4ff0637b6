"""Accepted reports written on a thread of their own, so a write never holds the daemon's loop.

The daemon's thread hands each accepted report over (`add`, a deque append);
this thread folds them into the `ObservationLog` it owns and writes them in
batches, once a second or as soon as a batch is full. A database that is away
only delays the writes: the log keeps them (bounded) and the thread retries
after a backoff. Database I/O gives the GIL away, so the daemon's thread runs
meanwhile.
"""

from __future__ import annotations

import collections
import threading

from projections.observations import ObservationLog, Seen
from publisher.logs import EventLog
from publisher.settings import DB_ERRORS, one_line

__all__ = ["ReportWriter"]


class ReportWriter:
    """The owner of an `ObservationLog`, on a thread of its own between `start()` and `close()`."""

    def __init__(self, log: ObservationLog, events: EventLog, batch: int = 250) -> None:
        self.log = log
        self._events = events
        self._batch = batch
        self._queue: collections.deque[Seen] = collections.deque()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._delay = 1.0

    def add(self, seen: Seen) -> None:
        """Hand one accepted report over (any thread)."""
        self._queue.append(seen)
        if len(self._queue) >= self._batch:
            self._wake.set()

    def pending(self) -> int:
        """Reports handed over and not yet written (approximate while the thread runs)."""
        return len(self._queue) + self.log.pending()

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="report-writer", daemon=True)
            self._thread.start()

    def close(self, timeout: float = 10.0) -> None:
        """Write what is left (one last attempt) and stop the thread."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        else:
            self._round(final=True)

    def _run(self) -> None:
        while True:
            if self._delay > 1.0:
                self._stop.wait(self._delay)  # the backoff: not cut short by a full batch
            else:
                self._wake.wait(1.0)
            self._wake.clear()
            final = self._stop.is_set()
            self._round(final)
            if final:
                return

    def _round(self, final: bool) -> None:
        while self._queue:
            self.log.add(self._queue.popleft())
        try:
            while self.log.pending():
                self.log.flush(self._batch)
        except DB_ERRORS as e:
            self._delay = min(self._delay * 2, 30.0)
            pending = self.log.pending()
            when = "shutdown" if final else "running"
            self._events.emit("reports", state="error", error=one_line(e), pending=pending, when=when)
            return
        if self._delay > 1.0:
            self._events.emit("reports", state="ok", pending=0)
        self._delay = 1.0
