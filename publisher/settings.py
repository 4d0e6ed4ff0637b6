"""How the daemon runs: its settings, its clock and the backoff between retries."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

import sqlalchemy.exc
from eventsourcing.persistence import PersistenceError

from projections.shard import Shard

__all__ = ["DB_ERRORS", "Backoff", "Clock", "RunSettings", "SystemClock", "one_line"]

# What a lost or failing database raises; the daemon retries after a backoff.
DB_ERRORS = (PersistenceError, sqlalchemy.exc.SQLAlchemyError, OSError)


@dataclass(frozen=True)
class RunSettings:
    """The options of `intent-ledger run` (docs/commands.md), with their defaults."""

    prefix: str = "infoscreen"
    ttl: int = 600
    refresh: int | None = None  # default ttl // 2
    group_topics: bool = False
    poll_interval: float = 0.01  # SQLite; PostgreSQL wakes on NOTIFY and polls every 0.5 s
    ack_timeout: float = 10.0
    inflight: int = 20
    self_check: bool = True  # sweep our own retained topics (QoS 0) and repair what differs
    check_every: float | None = None  # default max(5 s, refresh / 2)
    shard: Shard = field(default_factory=Shard)
    # Publishes awaiting their PUBACK at most: paho's message ids are 16-bit (65,535 in
    # flight at the most), and each message paho queues costs memory: a window keeps a
    # burst of a whole fleet within a few MB (docs/performance.md).
    window: int = 1_000
    standby_poll: float = 0.5  # how often a standby tries to take the lease
    # The projector's checkpoint (for fast restarts) is saved at shutdown, after --once, and
    # while running at most this often, after a quiet spell without transitions: a save
    # holds the loop for a time that grows with the fleet (docs/performance.md).
    checkpoint_every: float = 600.0
    observe: bool = True  # ingest the screens' reports ({prefix}/+/power/state); --no-observe
    report_stale: int = 900  # seconds after a screen's last report from which it counts as unknown
    # Reports ingested in a child process of its own (publisher.reportproc): what `run` does.
    report_process: bool = False
    # The daemon's broker session in a child process of its own (publisher.netproc), so paho's
    # CPU is the other core's: what `run` does.
    net_process: bool = False

    @property
    def refresh_every(self) -> int:
        return self.refresh if self.refresh is not None else max(1, self.ttl // 2)

    @property
    def check_period(self) -> float:
        """Seconds between two self-check sweeps."""
        return self.check_every or max(5, self.refresh_every // 2)


class Clock(Protocol):
    def now(self) -> datetime: ...

    def wait(self, wake: threading.Event, seconds: float) -> None: ...


class SystemClock:
    """Wall-clock UTC; waits on the wake event so new work interrupts a sleep."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def wait(self, wake: threading.Event, seconds: float) -> None:
        wake.wait(max(0.0, seconds))


class Backoff:
    """Exponential delays between attempts: `initial`, doubling, capped at `maximum`."""

    def __init__(self, initial: float = 0.2, maximum: float = 15.0) -> None:
        self.initial, self.maximum = initial, maximum
        self._next = initial

    def next(self) -> float:
        delay, self._next = self._next, min(self._next * 2, self.maximum)
        return delay

    def reset(self) -> None:
        self._next = self.initial


# SQLAlchemy wraps the driver's message: "(sqlite3.OperationalError) database or disk is full
# [SQL: ...] (Background on this error at: https://...)". The operator needs the middle.
_WRAPPING = re.compile(r"^\((?:\w+\.)+\w+\)\s*|\s*\[SQL: .*|\s*\(Background on this error at: [^)]*\)", re.S)


def one_line(e: BaseException) -> str:
    """An error's message on one line for the JSON log, without library class names or links."""
    text = " ".join(str(e).split())
    while (cleaned := _WRAPPING.sub("", text, count=1)) != text:
        text = cleaned
    return text or type(e).__name__
