"""The report process: report ingestion (publisher.observe) in a process of its own, beside the daemon.

Started by publisher.reportproc (multiprocessing, spawn) with a `ChildSpec`.
It opens the ledger on its own connection (on SQLite its commits do not wait
for the disk: `relax_commits`), reads who is registered
(publisher.roster), subscribes on its own broker session, classifies,
buffers and writes the observations exactly as the in-process `Observer`
does: its own interpreter, so a burst of reports never takes the GIL the
daemon's transitions need. Over the pipe it sends the parent its log records
(written in the daemon's log format), whether its session is subscribed, and,
every `TALLY_EVERY`, the reports counted by result since the last tally and
the screens whose latest report changed (the parent keeps the metrics), and
every `ALIVE_EVERY` that it is alive: its loop runs and its writer's round is
not stuck (a child that stops saying so is killed and restarted by the parent).
It stops at a `stop` message, at SIGTERM, or as soon as the parent is gone (the pipe closes when the parent
dies, even by SIGKILL), writing what it buffered first.
"""

from __future__ import annotations

import collections
import contextlib
import io
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry
from sqlalchemy import event

from ledger.app import Ledger
from ledger.persistence import engine_of
from projections.shard import Shard
from publisher.config import BrokerConfig
from publisher.logs import EventLog
from publisher.observe import Observer
from publisher.reportmetrics import RESULTS
from publisher.roster import Roster
from publisher.settings import one_line
from publisher.stopsignal import stop_on_signals

__all__ = ["SEEN_CHUNK", "TALLY_EVERY", "ChildSpec", "relax_commits", "serve"]

TALLY_EVERY = 0.25  # seconds between two tallies sent to the parent
SEEN_CHUNK = 250  # screens in one tally message at most: the parent's loop takes it in a fraction of a ms
ROSTER_EVERY = 1.0  # seconds between two reads of the ledger's membership events
ALIVE_EVERY = 1.0  # seconds between two "alive" messages from the main loop
# Seconds the writer's round may stand still (one write transaction) before the child stops
# saying it is alive: a write that never returns is a hang the parent must see.
WRITER_STALLED = 15.0
# The child's scheduling priority below the daemon's: with both cores busy (a burst of reports
# while the broker and the daemon work) a report can wait, a transition cannot.
NICENESS = 19


@dataclass(frozen=True)
class ChildSpec:
    """What the report process needs (pickled to it at start)."""

    db_url: str
    env: dict[str, str] = field(repr=False)
    broker: BrokerConfig
    prefix: str
    shard: Shard
    stale: int


class _Channel:
    """The child's end of the pipe: sends from any thread, one message at a time."""

    def __init__(self, conn: Any, stop: threading.Event) -> None:
        self._conn, self._stop = conn, stop
        self._lock = threading.Lock()

    def send(self, message: tuple[Any, ...]) -> None:
        try:
            with self._lock:
                self._conn.send(message)
        except (OSError, EOFError, ValueError):
            self._stop.set()  # the parent is gone

    def wait(self, seconds: float) -> None:
        """Wait up to `seconds` for a message from the parent: `stop`, or the pipe closing."""
        try:
            if self._conn.poll(seconds) and self._conn.recv() == ("stop",):
                self._stop.set()
        except (OSError, EOFError):
            self._stop.set()


class _PipeLog(EventLog):
    """An EventLog whose records go to the parent, which writes them in the daemon's format."""

    def __init__(self, channel: _Channel) -> None:
        super().__init__(io.StringIO())
        self._channel = channel

    def _write(self, event: str, fields: dict[str, Any], flush: bool) -> None:  # noqa: ARG002
        self._channel.send(("log", event, dict(fields)))

    def flush(self) -> None:
        pass


def _tallies(observer: Observer, sent: dict[str, int], every: bool) -> list[tuple[Any, ...]]:
    """The tally messages due: the counts since `sent` (updated) and the changed screens."""
    assert observer.changed is not None
    counts = {r: observer.counted[r] - sent[r] for r in RESULTS if observer.counted[r] != sent[r]}
    sent.update((r, sent[r] + n) for r, n in counts.items())
    messages: list[tuple[Any, ...]] = []
    changed = observer.changed
    while changed and (every or len(messages) < 16):
        seen = [changed.popleft() for _ in range(min(SEEN_CHUNK, len(changed)))]
        messages.append(("tally", counts if not messages else {}, seen))
    if counts and not messages:
        messages.append(("tally", counts, []))
    return messages


def serve(conn: Any, spec: ChildSpec) -> None:
    """The report process's main function (its parent's pipe end `conn`)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the daemon, which stops us
    with contextlib.suppress(OSError):
        os.nice(NICENESS)
    stop = threading.Event()
    stop_on_signals(stop.set, [signal.SIGTERM])
    channel = _Channel(conn, stop)
    log = _PipeLog(channel)
    parent = os.getppid()
    ledger: Ledger | None = None
    try:
        ledger = Ledger(spec.db_url, spec.env, create=False)
        relax_commits(ledger)
        _ingest(ledger, spec, channel, log, stop, parent)
    except Exception as e:  # said in one line (no traceback on the daemon's stderr); started again
        log.emit("reports_process", state="failed", error=one_line(e)[:300])
        raise SystemExit(1) from None
    finally:
        if ledger is not None:
            ledger.close()


def relax_commits(ledger: Ledger) -> None:
    """On SQLite in WAL mode, this process's commits do not wait for the disk (synchronous=NORMAL).

    SQLite has one write lock, held by a report batch until its commit returns: a commit that
    waits for fsync on a busy disk keeps the daemon from recording a transition that long. The
    daemon's connections are not touched: each of its commits syncs the whole log, the reports'
    earlier transactions with it (docs/decisions.md: what a power loss may cost).
    """
    engine = engine_of(ledger)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _normal_in_wal)
        engine.dispose()  # a connection opened before is opened again, with it


def _normal_in_wal(dbapi: Any, _record: Any) -> None:
    if dbapi.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
        dbapi.execute("PRAGMA synchronous = NORMAL")


def _ingest(
    ledger: Ledger, spec: ChildSpec, channel: _Channel, log: EventLog, stop: threading.Event, parent: int
) -> None:
    roster = Roster(ledger)
    roster.refresh()
    observer = Observer(
        ledger,
        prefix=spec.prefix,
        registry=CollectorRegistry(),
        log=log,
        stale=spec.stale,
        owns=spec.shard.owns,
        registered=roster.registered,
        broker=spec.broker,
        background=True,
    )
    observer.changed = collections.deque()
    observer.tick(datetime.now(UTC))  # the clock the first reports are judged by
    observer.start()
    sent = dict.fromkeys(RESULTS, 0)
    subscribed = False
    next_roster = next_alive = time.monotonic() + ROSTER_EVERY
    while not stop.is_set():
        channel.wait(TALLY_EVERY)
        if os.getppid() != parent:
            break  # the parent died (its pipe end should have closed already)
        writer = observer.background
        if time.monotonic() >= next_alive and (writer is None or writer.stalled() < WRITER_STALLED):
            channel.send(("alive",))
            next_alive = time.monotonic() + ALIVE_EVERY
        observer.tick(datetime.now(UTC))
        if time.monotonic() >= next_roster:
            roster.refresh()
            next_roster = time.monotonic() + ROSTER_EVERY
        for message in _tallies(observer, sent, every=False):
            channel.send(message)
        assert observer.link is not None
        if observer.link.subscribed.is_set() != subscribed:
            subscribed = not subscribed
            channel.send(("subscribed", subscribed))
    observer.close()  # classifies and writes what is left
    for message in _tallies(observer, sent, every=True):
        channel.send(message)
