"""Reports classified and written on a thread of their own, so ingestion never holds the daemon's loop.

The report session's network thread only queues what arrives and wakes this
thread; it classifies the queue (the Observer's rules, through `ingest`), folds
the accepted reports into the `ObservationLog` it owns and writes them in
batches (the log's `batch` of screens a transaction: on SQLite whole
multi-row statements, so a batch's write gives the GIL away a few times, not
once a row), once a second or as soon as a batch is full. Classifying goes in
slices of a millisecond with a pause after each, the GIL free meanwhile: a
burst (every screen at once after a broker restart) delays a thread of the
daemon that wants the GIL by one slice at most, instead of the interpreter's
switch interval. Two write
transactions are `GAP` apart, so the daemon's own writes get SQLite's one
write lock between them. A database that is away only delays the writes: the
log keeps them (bounded) and the thread retries after a backoff, logging once
an episode.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from projections.observations import ObservationLog
from publisher.logs import Episode, EventLog
from publisher.settings import DB_ERRORS, one_line

__all__ = ["GAP", "GATHER", "PAUSE", "SLICE", "ReportWriter"]

SLICE = 0.001  # seconds of work between two pauses
PAUSE = 0.001  # seconds the thread sleeps after a slice, the GIL free for the daemon's threads
GATHER = 0.05  # seconds waited after a wake-up, so one slice classifies many reports
WRITE_EVERY = 1.0  # seconds a report waits at most for its batch to fill
# Seconds between two write transactions. SQLite has one write lock and a waiter polls for it
# (its busy handler sleeps 1, 2, 5, 10, 15, 20, 25 ms ... between attempts): transactions
# back to back would starve the daemon's own writes (the intents it records, the receipts).
GAP = 0.05


class ReportWriter:
    """The owner of an `ObservationLog`, on a thread of its own between `start()` and `close()`."""

    def __init__(
        self,
        log: ObservationLog,
        events: EventLog,
        batch: int | None = None,
        ingest: Callable[[float], bool] = lambda _budget: False,
    ) -> None:
        """`ingest(budget)`: classify waiting reports for about `budget` seconds, adding the
        accepted ones to `log`; True when more are waiting. `batch`: screens a write
        transaction (the log's own `batch` by default)."""
        self.log = log
        self._batch = batch or log.batch
        self._ingest = ingest
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = Episode(events, "reports")
        self._delay = 1.0
        self._retry_at = 0.0  # after a failed write, not before (monotonic)
        self._due_at: float | None = None  # when the oldest unwritten report waits long enough
        self._quiet_until = 0.0  # no write transaction before (monotonic): see GAP
        self._beat: float | None = None  # monotonic: the round in progress last moved on

    def wake(self) -> None:
        """Reports are waiting (any thread; cheap when the thread is awake already)."""
        if not self._wake.is_set():
            self._wake.set()

    @property
    def failures(self) -> int:
        """Failed writes in the current episode (0: the last write succeeded)."""
        return self._failing.failures

    def pending(self) -> int:
        """Accepted reports not yet written (approximate while the thread runs)."""
        return self.log.pending()

    def stalled(self) -> float:
        """Seconds the thread's round has not moved on (0 while it waits for work): a write
        that never returns (a partitioned database) shows as a number that only grows."""
        beat = self._beat
        return 0.0 if beat is None else max(0.0, time.monotonic() - beat)

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="report-writer", daemon=True)
            self._thread.start()

    def close(self, timeout: float = 10.0) -> None:
        """Classify and write what is left (one last attempt) and stop the thread."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        else:
            self._round(final=True)

    def _run(self) -> None:
        while True:
            if self._wake.wait(self._timeout()) and not self._stop.is_set():
                self._stop.wait(GATHER)  # let a burst queue up: fewer, fuller slices
            self._wake.clear()
            final = self._stop.is_set()
            self._beat = time.monotonic()
            self._round(final)
            self._beat = None
            if final:
                return

    def _timeout(self) -> float:
        # The next write: when the oldest report has waited long enough, not before a retry.
        if self._due_at is None:
            return WRITE_EVERY
        return max(0.0, max(self._due_at, self._retry_at) - time.monotonic())

    def _round(self, final: bool) -> None:
        while self._ingest(1e9 if final else SLICE):
            self._beat = time.monotonic()
            if self.log.pending() >= self._batch and time.monotonic() >= max(
                self._retry_at, self._quiet_until
            ):
                self._write(final)  # a long burst: full batches are written as they fill
            time.sleep(PAUSE)
        now = time.monotonic()
        if not self.log.pending():
            self._due_at = None
            return
        if self._due_at is None:
            self._due_at = now + WRITE_EVERY
        full = self.log.pending() >= self._batch
        if not final and (now < self._retry_at or not (full or now >= self._due_at)):
            return
        self._write(final)

    def _write(self, final: bool) -> None:
        try:
            while self.log.pending():
                if not final:
                    time.sleep(max(0.0, self._quiet_until - time.monotonic()))
                self._beat = time.monotonic()
                self.log.flush(self._batch)
                self._quiet_until = time.monotonic() + GAP
        except DB_ERRORS as e:
            self._delay = min(self._delay * 2, 30.0)
            self._retry_at = time.monotonic() + self._delay
            pending = self.log.pending()
            when = "shutdown" if final else "running"
            self._failing.failed("writer", one_line(e)[:300], pending=pending, when=when, retry=self._delay)
            return
        self._failing.ended("writer", pending=0)
        self._delay, self._retry_at, self._due_at = 1.0, 0.0, None
