"""Structured logs: one JSON object per line (publishes, transitions, connection, ledger)."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import IO, Any

import msgspec

__all__ = ["EventLog"]

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
