"""Fixtures for the MQTT side: a Mosquitto of our own per test, recording subscribers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest

import publisher.daemon
from publisher.mqtt import MqttSession
from publisher.netproc import ProcSession
from publisher.session import SessionFactory
from tests.publisher.broker import Mosquitto, Nats, Subscriber
from tests.publisher.faults import PrivatePostgres

BROKERS = ["mosquitto", pytest.param("nats", id="nats-mqtt-3.1.1")]
SESSIONS = [pytest.param(MqttSession, id="inline"), pytest.param(ProcSession, id="net-process")]


@pytest.fixture(params=SESSIONS)
def session_kind(request: pytest.FixtureRequest) -> SessionFactory:
    """Each kind of broker session in turn: paho in this process, or in a process of its own."""
    kind: SessionFactory = request.param
    return kind


@pytest.fixture
def daemon_sessions(session_kind: SessionFactory, monkeypatch: pytest.MonkeyPatch) -> SessionFactory:
    """The test's daemons open sessions of each kind in turn, whatever their settings say
    (`pytestmark = pytest.mark.usefixtures("daemon_sessions")` runs a module both ways)."""
    monkeypatch.setattr(publisher.daemon, "default_sessions", lambda _net_process: session_kind)
    return session_kind


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
