"""The daemon's role under its lease: a standby until the lease is ours, active while it stays so.

`take` waits (polling the lease every `standby_poll` seconds) until the lease is
acquired or the daemon stops; `still_ours` looks at most once a second whether it
is held, taken again after its connection dropped, or lost to another instance.
Each change of role is one log line.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

from publisher.lease import Lease
from publisher.logs import EventLog
from publisher.settings import Clock

__all__ = ["Role"]

CHECK_EVERY = timedelta(seconds=1)  # between two looks at a held lease


class Role:
    """The lease as one daemon (of one shard) holds it."""

    def __init__(self, clock: Clock, log: EventLog, shard: str, started_at: datetime) -> None:
        self.clock, self.log, self.shard = clock, log, shard
        self.lease: Lease | None = None  # ours once taken (None: none asked for, or not yet)
        self.lost = False  # another instance may be active now
        self._next_check = started_at

    def take(self, lease: Lease, stopping: threading.Event, wake: threading.Event, poll: float) -> bool:
        """Wait as a standby until the lease is ours (True), or until `stopping` is set (False)."""
        announced = False
        while not stopping.is_set():
            if lease.try_acquire():
                self.lease = lease
                self.log.emit("role", role="active", shard=self.shard)
                return True
            if not announced:
                self.log.emit("role", role="standby", shard=self.shard)
                announced = True
            self.clock.wait(wake, poll)
        return False

    def still_ours(self) -> bool:
        """Whether the taken lease is still held (taken again if its connection dropped)."""
        assert self.lease is not None
        if self.clock.now() < self._next_check:
            return True
        self._next_check = self.clock.now() + CHECK_EVERY
        retakes = self.lease.retakes
        if self.lease.held():  # lost with its connection and free: taken again
            if self.lease.retakes > retakes:
                self.log.emit("role", role="active", shard=self.shard, lease="retaken")
            return True
        # Somebody else may be active now: leave quietly, the supervisor restarts us as a standby.
        self.log.emit("role", role="lost", shard=self.shard)
        self.lost = True
        return False
