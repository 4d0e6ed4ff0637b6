"""Report ingestion as the daemon runs it: a child process of its own (publisher.reportchild), supervised.

A bulkhead: the child subscribes, classifies, buffers and writes the reports
in its own interpreter, so a burst of 10,000 reports never competes with a
transition for the daemon's GIL. The daemon's side (this module) keeps the
metrics on the daemon's registry (the names and meanings of
publisher.reportmetrics, fed by the child's tallies), writes the child's log
records through the daemon's log, and restarts the child after a backoff when
it dies (one log line), never failing the daemon; a child that says nothing for
`HANG_AFTER` that it is alive (it says so every second while its loop runs and
its writer is not stuck in one write: a stopped process, a call that never
returns) is killed and restarted the same way. `close()` stops it (its
buffered reports written first); a parent killed outright leaves no child:
the child stops when its pipe closes.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry

from publisher.logs import EventLog
from publisher.reportchild import ChildSpec, serve
from publisher.reportmetrics import RESULTS, ReportMetrics, ScreensGauge, ages_of
from publisher.settings import Backoff, one_line

__all__ = ["ReportProcess"]

RECEIVE_EVERY = 0.1  # seconds between two looks at the pipe (the daemon's rounds are more frequent)
RECEIVE_AT_MOST = 2  # tally messages taken a look: a burst's tallies are spread over the rounds
# Log records taken a look besides, at most: a burst of rejections on thousands of topics (one
# record a topic a minute) must not queue the tallies behind it, nor fill the pipe and block the
# child's writer thread, which sends from under the channel's lock.
LOGS_AT_MOST = 500
# Screens compared with their intent a round for the screens gauge: a short hold of the loop
# (a PUBACK waits for the GIL as long as the daemon's thread computes).
COUNT_CHUNK = 500
STEADY = 60.0  # seconds a child must have run for its restart backoff to start over
STOP_WAIT = 20.0  # seconds the child has at close to write what it buffered
# Seconds without an "alive" from the child before it counts as hung (it says so every
# `reportchild.ALIVE_EVERY` while its loop runs and its writer is not stuck); its first may
# take `START_WITHIN`: a spawn imports, opens the ledger, reads the roster and subscribes
# first, at nice 19 while a first start may keep both cores busy.
HANG_AFTER = 30.0
START_WITHIN = 120.0


class ReportProcess:
    """The report process, started by `start()`, supervised by `tick()`, stopped by `close()`."""

    def __init__(
        self,
        spec: ChildSpec,
        *,
        registry: CollectorRegistry,
        log: EventLog,
        intended: Callable[[], Iterable[tuple[str, str, datetime, int]]] = lambda: (),
        backoff: Backoff | None = None,
    ) -> None:
        """`intended`: as for `Observer` (the screens-by-match gauge is counted here, where the
        intents are)."""
        self.spec = spec
        self._log = log
        self._backoff = backoff or Backoff(1.0, 60.0)
        # Per screen: (reported_at as epoch seconds, tv_state, 0), as the child's tallies say.
        self._latest: dict[str, tuple[int, str, int]] = {}
        self.metrics = ReportMetrics(registry, self.ages)
        self._result = {r: self.metrics.reports.labels(r) for r in RESULTS}
        gauge = self.metrics.screens
        self.screens = ScreensGauge(gauge, intended, self._latest, spec.stale, chunk=COUNT_CHUNK)
        self.subscribed = False  # the child's broker session is subscribed (as it last said)
        self.process: Any = None  # the running child (multiprocessing.Process)
        self._conn: Any = None
        self._started_at = 0.0
        self._restart_at: float | None = None  # monotonic
        self._heard = 0.0  # monotonic: the child's last "alive" (or its start)
        self._spoken = False  # this child has said it is alive
        self.hang_after = HANG_AFTER
        self._next_receive = 0.0
        self._now: datetime | None = None
        self._closed = False
        self.restarts = 0

    def start(self) -> None:
        """Start the child (once; later calls do nothing)."""
        if self.process is None and self._restart_at is None and not self._closed:
            self._spawn()

    def _spawn(self) -> None:
        self._restart_at = None
        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe()
        process = context.Process(target=serve, args=(theirs, self.spec), name="intent-ledger-reports")
        process.daemon = True  # terminated at the parent's exit should close() not be reached
        try:
            process.start()
        except (OSError, RuntimeError) as e:  # no process to be had: try again later
            ours.close()
            self._started_at = time.monotonic()  # a failed start is no steady run: the backoff grows
            self._died(f"could not start: {one_line(e)}")
            return
        finally:
            theirs.close()  # only the child holds its end: the pipe closes when either dies
        self.process, self._conn = process, ours
        self._started_at = self._heard = time.monotonic()
        self._spoken = False

    def tick(self, now: datetime) -> None:
        """Take the child's tallies and log records, restart it when due, count the screens."""
        self._now = now
        mono = time.monotonic()
        if self.process is not None and mono >= self._next_receive:
            self._next_receive = mono + RECEIVE_EVERY
            drained = self._receive(RECEIVE_AT_MOST)
            allowed = self.hang_after if self._spoken else START_WITHIN
            if self.process.exitcode is not None:
                self._receive(None)  # its last words
                self._died(f"exited with code {self.process.exitcode}")
            elif drained and time.monotonic() - self._heard > allowed:
                # Judged only with the pipe read to its end: after a long hold of the daemon's
                # loop, the child's "alive" may wait behind its tallies.
                self._kill()
                self._died(f"not alive for {allowed:.0f} s: killed")
        elif self._restart_at is not None and mono >= self._restart_at and not self._closed:
            self.restarts += 1
            self._spawn()
        self.screens.tick(now)

    @property
    def said_alive(self) -> bool:
        """The running child has said it is alive (from then on `hang_after` applies)."""
        return self._spoken

    def _died(self, why: str) -> None:
        self.subscribed = False
        if self._conn is not None:
            self._conn.close()
        self.process = self._conn = None
        if time.monotonic() - self._started_at >= STEADY:
            self._backoff.reset()
        delay = self._backoff.next()
        self._restart_at = time.monotonic() + delay
        self._log.emit("reports_process", state="exited", error=why, restart_in=delay)

    def _kill(self) -> None:
        self.process.kill()
        self.process.join(5)

    def _receive(self, limit: int | None) -> bool:
        """Take up to `limit` messages (and logs); True when none is left waiting."""
        conn, n, logs = self._conn, 0, 0
        try:
            while True:
                if not conn.poll():
                    return True
                if limit is not None and (n >= limit or logs >= LOGS_AT_MOST):
                    return False
                message = conn.recv()
                if message[0] == "alive":
                    self._heard, self._spoken = time.monotonic(), True
                self._apply(message)
                if message[0] == "log":
                    logs += 1
                else:
                    n += 1
        except (OSError, EOFError):
            return True  # the child is gone: its exit code says so next

    def _apply(self, message: tuple[Any, ...]) -> None:
        if message[0] == "tally":
            _, counts, seen = message
            for result, n in counts.items():
                self._result[result].inc(n)
            latest = self._latest
            for client_id, reported, tv_state in seen:
                latest[client_id] = (reported, tv_state, 0)
        elif message[0] == "log":
            self._log.emit(message[1], **message[2])
        elif message[0] == "subscribed":
            self.subscribed = message[1]

    def next_deadline(self) -> datetime | None:
        """When `tick()` has work next: the child's tallies, its restart, the screens' count."""
        if self._now is None:
            return None
        due = [self.screens.next_at]
        if self.process is not None or self._restart_at is not None:
            due.append(self._now + timedelta(seconds=RECEIVE_EVERY))
        if self.screens.counting:
            due.append(self._now)
        return min((t for t in due if t is not None), default=None)

    def close(self) -> None:
        """Stop the child: it writes what it buffered; its last tallies are taken."""
        self._closed = True
        process, conn = self.process, self._conn
        if process is None:
            return
        with contextlib.suppress(OSError):  # gone already: its exit is waited for all the same
            conn.send(("stop",))
        deadline = time.monotonic() + STOP_WAIT
        while process.exitcode is None and time.monotonic() < deadline:
            process.join(0.05)
            self._receive(None)
        self._receive(None)
        if process.exitcode is None:
            self._kill()
        conn.close()
        self.process = self._conn = None

    def ages(self) -> Iterator[tuple[str, float]]:
        """(client_id, seconds since its latest report) for every screen that reported."""
        return ages_of(self._latest, self._now)
