"""The daemon's log: one line per record, JSON for machines or short text for a terminal.

Every record is `(event, fields)`: a transition, a publish outcome, the
connection, the ledger, checkpoints. `json` writes `{"ts": ..., "event": ...,
...}` (the format log shippers read); `text` writes one short line an operator
reads at a glance, e.g. `08:05:00 lobby-1 ON event_window_active until 08:10Z`
for a transition and `08:05:00 lobby-1 ON transition acked 1.1 ms` for its
publish. `run` picks text on a terminal, JSON otherwise (`--log-format`).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import IO, Any, Literal

import msgspec

__all__ = ["LOG_FORMATS", "Episode", "EventLog", "LogFormat", "default_format", "render_text"]

LogFormat = Literal["json", "text"]
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")
_encoder = msgspec.json.Encoder(enc_hook=str)
_MILLIS = tuple(f".{ms:03d}" for ms in range(1000))


def default_format(stream: IO[str]) -> LogFormat:
    """Text for a person at a terminal, JSON for a file, a pipe or the journal."""
    try:
        return "text" if stream.isatty() else "json"
    except (AttributeError, ValueError):
        return "json"


class EventLog:
    """Writes one line per record (JSON by default); safe to call from any thread."""

    def __init__(
        self,
        stream: IO[str] | None = None,
        now: Callable[[], datetime] | None = None,
        log_format: LogFormat = "json",
    ) -> None:
        self._stream = stream if stream is not None else sys.stdout
        self._now = now or (lambda: datetime.now(UTC))
        self._lock = threading.Lock()
        self._text = log_format == "text"
        self._heads: dict[str, str] = {}  # event -> its encoded '","event":"..."' part
        # The second of the last line's UTC `ts` and its text up to the seconds: one tuple,
        # replaced whole (threads log too). isoformat is much of a line's cost, and a burst
        # logs thousands of lines within a second.
        self._second: tuple[tuple[int, ...], str] = ((), "")

    def emit(self, event: str, *, flush: bool = True, **fields: Any) -> None:
        """Write one line; `flush=False` leaves it buffered until the next `flush()` (a batch)."""
        self._write(event, fields, flush)

    def write(self, event: str, fields: dict[str, Any]) -> None:
        """`emit(event, **fields)` without copying `fields`, buffered until the next `flush()`."""
        self._write(event, fields, False)

    def write_all(self, records: list[tuple[str, dict[str, Any]]]) -> None:
        """`write` of each `(event, fields)`, in order, stamped with one instant (a batch
        settled together), buffered until the next `flush()`."""
        if not records:
            return
        now = self._now()
        stamp = None if self._text else '{"ts":"' + self._ts(now)
        lines = [self._line(now, stamp, event, fields) for event, fields in records]
        write = self._stream.write
        with self._lock:
            for line in lines:  # one write a line, as `write`
                write(line)

    def _write(self, event: str, fields: dict[str, Any], flush: bool) -> None:
        now = self._now()
        line = self._line(now, None if self._text else '{"ts":"' + self._ts(now), event, fields)
        with self._lock:  # one write a line: readers of the stream take each write as a line
            self._stream.write(line)
            if flush:
                self._stream.flush()

    def _line(self, now: datetime, stamp: str | None, event: str, fields: dict[str, Any]) -> str:
        """The line of a record; `stamp`: its JSON start up to the `ts` text (None: text format)."""
        if stamp is None:
            return render_text(now, event, fields) + "\n"
        # {"ts": ..., "event": ..., **fields}, spliced from the encoded fields: no merged copy.
        head = self._heads.get(event)
        if head is None:
            head = self._heads[event] = '","event":' + _encoder.encode(event).decode()
        body = _encoder.encode(fields).decode()
        return stamp + head + ("," + body[1:] if len(body) > 2 else "}") + "\n"

    def _ts(self, now: datetime) -> str:
        """`now.isoformat(timespec="milliseconds")`, its second's part formatted once a second."""
        if now.tzinfo is not UTC:
            return now.isoformat(timespec="milliseconds")
        key = (now.second, now.minute, now.hour, now.day, now.month, now.year)
        second = self._second
        if second[0] != key:
            second = self._second = (key, now.replace(microsecond=0).isoformat()[:-6])
        return second[1] + _MILLIS[now.microsecond // 1000] + "+00:00"

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


def render_text(now: datetime, event: str, fields: dict[str, Any]) -> str:
    """The one-line text form of a record (no secrets: the fields carry none)."""
    render = _TEXT.get(event, _generic)
    return f"{now.astimezone(UTC):%H:%M:%S} {render(event, fields)}"


def _who(f: dict[str, Any]) -> str:
    client = f.get("client_id")
    return str(client) if client else f"groups/{f.get('group_id')}"


def _short(stamp: str | None, now: str | None = None) -> str:
    # "2026-03-31T08:10:00Z" -> "08:10Z" (seconds when they are not zero), the date if another day.
    if not stamp or len(stamp) < 20:
        return str(stamp)
    clock = stamp[11:16] if stamp[17:19] == "00" else stamp[11:19]
    return f"{clock}Z" if now is None or now[:10] == stamp[:10] else f"{stamp[:10]} {clock}Z"


def _transition(_event: str, f: dict[str, Any]) -> str:
    window = f.get("event_window")
    until = f" until {_short(window['end'], f.get('effective_at'))}" if isinstance(window, dict) else ""
    cause = f.get("cause")
    kind = cause.get("kind") if isinstance(cause, dict) else None
    extra = f"seq {f.get('seq')}" + (f", {kind}" if kind else "")
    return f"{_who(f)} {str(f.get('desired_state')).upper()} {f.get('reason')}{until} ({extra})"


def _publish(event: str, f: dict[str, Any]) -> str:
    what = "cleared" if event == "clear" else f"{str(f.get('desired_state')).upper()} {f.get('kind')}"
    if f.get("result") == "acked":
        latency = f.get("latency_ms")
        outcome = "acked" + (f" {latency:.1f} ms" if isinstance(latency, int | float) else "")
    else:
        outcome = f"FAILED: {f.get('error') or f.get('result')}"
    expires = f" (expires {_short(f['expires_at'], f.get('issued_at'))})" if f.get("expires_at") else ""
    return f"{_who(f)} {what} {outcome}{expires if event != 'clear' else ''}"


def _start(_event: str, f: dict[str, Any]) -> str:
    groups = ", group topics" if f.get("group_topics") else ""
    return (
        f"started: broker {f.get('broker')} (MQTT {f.get('mqtt_version')}), prefix {f.get('prefix')}, "
        f"ttl {f.get('ttl')} s, refresh every {f.get('refresh')} s{groups}"
    )


def _state(event: str, f: dict[str, Any]) -> str:
    state = f.get("state") or f.get("role") or f.get("status")
    rest = {k: v for k, v in f.items() if k not in ("state", "role", "status") and v is not None}
    error = rest.pop("error", None)
    detail = " ".join(str(v) if k == event else f"{k} {v}" for k, v in rest.items())
    return f"{event} {state}" + (f" {detail}" if detail else "") + (f": {error}" if error else "")


def _mismatch(_event: str, f: dict[str, Any]) -> str:
    held = f.get("held") or "nothing"
    return f"mismatch on {f.get('topic')}: held {held}, expected {f.get('expected')}; repaired"


def _notice(_event: str, f: dict[str, Any]) -> str:
    return f"notice: {f.get('message')}"


def _generic(event: str, f: dict[str, Any]) -> str:
    return " ".join([event, *(f"{k}={v}" for k, v in f.items() if v is not None)])


_TEXT: dict[str, Callable[[str, dict[str, Any]], str]] = {
    "transition": _transition,
    "publish": _publish,
    "clear": _publish,
    "start": _start,
    "role": _state,
    "status": _state,
    "broker": _state,
    "ledger": _state,
    "checkpoint": _state,
    "receipts": _state,
    "mismatch": _mismatch,
    "notice": _notice,
}
