"""The daemon's log in both formats: short text lines for a terminal, JSON lines otherwise."""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from click.testing import CliRunner

from cli.main import cli
from ledger import Ledger, TargetRef, Window
from publisher.logs import EventLog, LogFormat, default_format
from tests.conftest import ME
from tests.publisher.broker import Mosquitto

T = datetime(2026, 3, 31, 8, 5, 0, 250_000, tzinfo=UTC)
TRANSITION = {
    "client_id": "lobby-1",
    "group_id": "lobby",
    "intent_id": "9c0d",
    "seq": 3,
    "desired_state": "on",
    "reason": "event_window_active",
    "effective_at": "2026-03-31T08:05:00Z",
    "event_window": {"start": "2026-03-31T08:00:00Z", "end": "2026-03-31T08:10:00Z"},
    "cause": {"kind": "ledger"},
}
PUBLISH = {
    "kind": "transition",
    "topic": "infoscreen/lobby-1/power/intent",
    "client_id": "lobby-1",
    "group_id": "lobby",
    "intent_id": "9c0d",
    "seq": 3,
    "desired_state": "on",
    "reason": "event_window_active",
    "issued_at": "2026-03-31T08:05:00Z",
    "expires_at": "2026-03-31T08:15:00Z",
    "result": "acked",
    "latency_ms": 1.123,
}


def _lines(log_format: str, *records: tuple[str, dict[str, Any]]) -> list[str]:
    out = io.StringIO()
    log = EventLog(out, now=lambda: T, log_format="text" if log_format == "text" else "json")
    for event, fields in records:
        log.emit(event, **fields)
    return out.getvalue().splitlines()


def test_text_is_one_short_line_per_transition_and_per_publish_outcome() -> None:
    failed = {**PUBLISH, "result": "failed", "latency_ms": None, "error": "Not authorized"}
    group = {**TRANSITION, "client_id": None, "desired_state": "off", "event_window": None}
    assert _lines(
        "text", ("transition", TRANSITION), ("publish", PUBLISH), ("publish", failed), ("transition", group)
    ) == [
        "08:05:00 lobby-1 ON event_window_active until 08:10Z (seq 3, ledger)",
        "08:05:00 lobby-1 ON transition acked 1.1 ms (expires 08:15Z)",
        "08:05:00 lobby-1 ON transition FAILED: Not authorized (expires 08:15Z)",
        "08:05:00 groups/lobby OFF event_window_active (seq 3, ledger)",
    ]


def test_text_names_the_day_of_a_window_that_ends_on_another_day() -> None:
    later = {**TRANSITION, "event_window": {"start": "2026-03-31T08:00:00Z", "end": "2026-04-01T06:30:15Z"}}
    assert "until 2026-04-01 06:30:15Z" in _lines("text", ("transition", later))[0]


def test_text_lines_for_the_connection_ledger_and_unknown_records() -> None:
    lines = _lines(
        "text",
        ("broker", {"state": "connected", "broker": "mqtt://intent-server:***@broker:1883"}),
        ("ledger", {"state": "error", "error": "database is locked", "retry_at": "2026-03-31T08:05:02Z"}),
        ("something", {"a": 1, "b": None}),
    )
    assert lines == [
        "08:05:00 broker connected mqtt://intent-server:***@broker:1883",
        "08:05:00 ledger error retry_at 2026-03-31T08:05:02Z: database is locked",
        "08:05:00 something a=1",
    ]


def test_json_keeps_every_field_with_ts_and_event_first() -> None:
    (line,) = _lines("json", ("publish", PUBLISH))
    record = json.loads(line)
    assert list(record)[:2] == ["ts", "event"]
    assert record["ts"] == "2026-03-31T08:05:00.250+00:00"
    assert record == {"ts": record["ts"], "event": "publish", **PUBLISH}


def test_json_lines_keep_their_order_and_an_event_without_fields() -> None:
    out = io.StringIO()
    log = EventLog(out, now=lambda: T)
    log.write("publish", PUBLISH)
    log.emit("status", status="online", result="acked", flush=False)
    log.emit("nothing")
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["event"] for r in records] == ["publish", "status", "nothing"]
    assert records[2] == {"ts": "2026-03-31T08:05:00.250+00:00", "event": "nothing"}
    assert records[0] == {"ts": records[0]["ts"], "event": "publish", **PUBLISH}


def test_text_on_a_terminal_json_otherwise() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert default_format(Tty()) == "text"
    assert default_format(io.StringIO()) == "json"


def _once(url: str, mosquitto: Mosquitto, *extra: str) -> list[str]:
    ledger = Ledger(url)
    now = datetime.now(UTC).replace(microsecond=0)
    ledger.add_client("hall-1", "hall", ME)
    ledger.add_event(
        "e1",
        TargetRef("group", "hall"),
        Window(now - timedelta(days=1), now + timedelta(days=1)),
        ME,
    )
    ledger.close()
    result = CliRunner().invoke(cli, ["--db", url, "--mqtt-url", mosquitto.url, "run", "--once", *extra])
    assert result.exit_code == 0, result.stderr
    return result.stdout.splitlines()


def test_run_logs_text_when_asked(sqlite_url: str, mosquitto: Mosquitto) -> None:
    lines = _once(sqlite_url, mosquitto, "--log-format", "text")
    clock = r"\d\d:\d\d:\d\d "
    assert any(
        re.fullmatch(clock + r"hall-1 ON event_window_active until [^(]+ \(seq 1, start\)", x) for x in lines
    )
    assert any(
        re.fullmatch(clock + r"hall-1 ON transition acked \d+\.\d ms \(expires \S+\)", x) for x in lines
    )
    assert not any(x.startswith("{") for x in lines)


def test_run_logs_json_when_stdout_is_not_a_terminal(sqlite_url: str, mosquitto: Mosquitto) -> None:
    records = [json.loads(x) for x in _once(sqlite_url, mosquitto)]
    assert {"start", "transition", "publish"} <= {r["event"] for r in records}


def test_json_ts_is_the_instant_s_isoformat_to_the_millisecond() -> None:
    """Lines within one second and across seconds, minutes, days and years (and another zone):
    each `ts` is `isoformat(timespec="milliseconds")` of its own instant."""
    start = datetime(2026, 12, 31, 23, 59, 58, 999_999, tzinfo=UTC)
    steps = [timedelta(microseconds=us) for us in (0, 1, 999, 1000, 400_001, 600_000, 1)]
    instants = [start]
    for step in steps * 3:
        instants.append(instants[-1] + step)
    instants += [datetime(999, 1, 1, tzinfo=UTC), start.astimezone(timezone(timedelta(hours=2)))]
    stream = io.StringIO()
    clock = iter(instants)
    log = EventLog(stream, now=lambda: next(clock))
    for _ in instants:
        log.emit("notice", message="m")
    got = [json.loads(line)["ts"] for line in stream.getvalue().splitlines()]
    assert got == [t.isoformat(timespec="milliseconds") for t in instants]


class _Writes(io.StringIO):
    """A stream that keeps each write apart (readers take a write as a line)."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return len(text)


def test_a_batch_of_records_is_the_lines_of_each_written_alone_one_write_a_line() -> None:
    failed = {**PUBLISH, "result": "failed", "latency_ms": None, "error": "Not authorized"}
    records: list[tuple[str, dict[str, Any]]] = [
        ("publish", PUBLISH),
        ("clear", {"kind": "clear", "client_id": "x"}),
        ("publish", failed),
    ]
    formats: tuple[LogFormat, ...] = ("json", "text")
    for log_format in formats:
        one, batch = _Writes(), _Writes()
        alone, together = (
            EventLog(one, now=lambda: T, log_format=log_format),
            EventLog(batch, now=lambda: T, log_format=log_format),
        )
        for event, fields in records:
            alone.write(event, fields)
        together.write_all(records)
        assert batch.writes == one.writes
        assert len(batch.writes) == 3
        if log_format == "json":
            assert [json.loads(line) for line in batch.writes] == [
                {"ts": "2026-03-31T08:05:00.250+00:00", "event": event, **fields} for event, fields in records
            ]
