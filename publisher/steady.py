"""A clock that never goes back: the daemon's view of time across wall-clock steps.

A wall clock stepped back (NTP correcting a fast clock, an operator's mistake)
would have the daemon evaluate schedules at an instant it has already passed:
a window already begun would look not yet begun, and an edit meanwhile would
record an `off` in the middle of it. So the daemon's time holds at the latest
instant it has seen until the wall clock catches up, and says so once per step.
A step forward needs nothing: every boundary up to the new time is due, and the
projector records each (at its own instant where it is the current state).
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any

from publisher.logs import EventLog
from publisher.settings import Clock

__all__ = ["NeverBack"]

STEP = timedelta(seconds=1)  # a step back by less is jitter, not worth a log line


class NeverBack:
    """Wraps a `Clock`: `now()` is the latest instant the inner clock has shown."""

    def __init__(self, inner: Clock, log: EventLog) -> None:
        self.inner = inner
        self._log = log
        self._high: datetime | None = None
        self._holding = False
        self._lock = threading.Lock()  # now() is also called from the log's and paho's threads

    def now(self) -> datetime:
        t = self.inner.now()
        with self._lock:
            high = self._high
            if high is None or t >= high:
                self._high, caught_up, self._holding = t, self._holding, False
                message: dict[str, Any] | None = {"state": "caught_up"} if caught_up else None
            else:
                report = not self._holding and high - t >= STEP
                self._holding = self._holding or report
                message = {"state": "stepped_back", "by_s": round((high - t).total_seconds(), 3)}
                message = message if report else None
                t = high
        if message is not None:
            self._log.emit("clock", **message, at=t.isoformat())  # the instant the daemon uses
        return t

    def wait(self, wake: threading.Event, seconds: float) -> None:
        self.inner.wait(wake, seconds)
