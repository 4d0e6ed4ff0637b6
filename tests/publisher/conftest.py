"""Fixtures for the MQTT side: a Mosquitto of our own per test, recording subscribers."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from publisher.daemon import Backoff, Daemon
from publisher.logs import EventLog
from tests.publisher.broker import Mosquitto, Nats, Subscriber
from tests.publisher.faults import PrivatePostgres

BROKERS = ["mosquitto", pytest.param("nats", id="nats-mqtt-3.1.1")]


@pytest.fixture
def broker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Mosquitto]:
    """A broker of our own: Mosquitto, or with `parametrize("broker", BROKERS, indirect=True)`
    also NATS server's MQTT gateway (3.1.1 only)."""
    kind = getattr(request, "param", "mosquitto")
    folder = tmp_path / "broker"
    folder.mkdir()
    server = Nats(folder) if kind == "nats" else Mosquitto(folder)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def mosquitto(broker: Mosquitto) -> Mosquitto:
    return broker


@pytest.fixture
def private_pg() -> Iterator[PrivatePostgres]:
    """A PostgreSQL cluster of the test's own, to stop and start (never the shared one)."""
    cluster = PrivatePostgres()
    cluster.start()
    yield cluster
    cluster.destroy()


@pytest.fixture
def subscribe(broker: Mosquitto) -> Iterator[Callable[..., Subscriber]]:
    """Start recording subscribers; at teardown every intent they saw must have been valid."""
    started: list[Subscriber] = []

    def start(topic: str = "#", now: Callable[[], datetime] | None = None) -> Subscriber:
        sub = Subscriber(broker.port, topic, now, v5=broker.v5)
        started.append(sub)
        return sub

    yield start
    for sub in started:
        sub.close()
    violations = [v for sub in started for v in sub.violations]
    assert violations == [], violations


class VirtualClock:
    """Time that moves only when the test says so."""

    def __init__(self, t: datetime) -> None:
        self.t = t

    def now(self) -> datetime:
        return self.t

    def wait(self, wake: threading.Event, seconds: float) -> None:
        wake.wait(0.001)


class LogCapture(io.StringIO):
    """The daemon's JSON log, parsed."""

    def records(self, event: str | None = None) -> list[dict[str, Any]]:
        lines = [json.loads(line) for line in self.getvalue().splitlines() if line]
        return [r for r in lines if event is None or r["event"] == event]


def fast() -> dict[str, Any]:
    """Backoffs that keep tests quick."""
    return {"connect_backoff": Backoff(0.05, 0.2), "db_backoff": Backoff(0.05, 0.2)}


def make_log(clock: Any = None) -> tuple[EventLog, LogCapture]:
    capture = LogCapture()
    return EventLog(capture, now=(clock.now if clock else (lambda: datetime.now(UTC)))), capture


@contextmanager
def running(daemon: Daemon) -> Iterator[Daemon]:
    """The daemon's loop in a thread (real clock), stopped cleanly at the end."""
    thread = threading.Thread(target=daemon.run, name="daemon")
    thread.start()
    try:
        yield daemon
    finally:
        daemon.stop()
        thread.join(15)
        assert not thread.is_alive(), "daemon did not stop"
