"""Structured logs: one JSON object per line (publishes, transitions, connection, ledger)."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import IO, Any

import msgspec

__all__ = ["Episode", "EventLog"]

_encoder = msgspec.json.Encoder(enc_hook=str)


class EventLog:
    """Writes `{"ts": ..., "event": ..., ...}` lines; safe to call from any thread."""

    def __init__(self, stream: IO[str] | None = None, now: Callable[[], datetime] | None = None) -> None:
        self._stream = stream if stream is not None else sys.stdout
        self._now = now or (lambda: datetime.now(UTC))
        self._lock = threading.Lock()

    def emit(self, event: str, *, flush: bool = True, **fields: Any) -> None:
        """Write one line; `flush=False` leaves it buffered until the next `flush()` (a batch)."""
        self._write({"ts": self._now().isoformat(timespec="milliseconds"), "event": event, **fields}, flush)

    def write(self, event: str, fields: dict[str, Any]) -> None:
        """`emit(event, **fields)` without copying `fields`, buffered until the next `flush()`."""
        self._write({"ts": self._now().isoformat(timespec="milliseconds"), "event": event} | fields, False)

    def _write(self, record: dict[str, Any], flush: bool) -> None:
        line = _encoder.encode(record).decode()
        with self._lock:
            self._stream.write(line + "\n")
            if flush:
                self._stream.flush()

    def flush(self) -> None:
        with self._lock:
            self._stream.flush()


class Episode:
    """A failure that repeats while it lasts (the database away, a full disk): one `error` line
    when it begins, one `ok` line (with the number of failed attempts) when it ends.

    Several parts may share one (the follower and the receipt writer share the database):
    the episode ends when every part that failed has succeeded again.
    """

    def __init__(self, log: EventLog, event: str) -> None:
        self._log, self._event = log, event
        self.failures = 0  # failed attempts in the current episode (0: none going on)
        self._failing: set[str] = set()

    def failed(self, part: str, error: str, **fields: Any) -> None:
        if not self.failures:
            self._log.emit(self._event, state="error", error=error, **fields)
        self.failures += 1
        self._failing.add(part)

    def ended(self, part: str, **fields: Any) -> None:
        self._failing.discard(part)
        if self.failures and not self._failing:
            self._log.emit(self._event, state="ok", failed_attempts=self.failures, **fields)
            self.failures = 0
