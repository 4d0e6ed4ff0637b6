"""Fixtures for the MQTT side: a Mosquitto of our own per test, recording subscribers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest

from tests.publisher.broker import Mosquitto, Subscriber


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    folder = tmp_path / "broker"
    folder.mkdir()
    broker = Mosquitto(folder)
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def subscribe(mosquitto: Mosquitto) -> Iterator[Callable[..., Subscriber]]:
    """Start recording subscribers; at teardown every intent they saw must have been valid."""
    started: list[Subscriber] = []

    def start(topic: str = "#", now: Callable[[], datetime] | None = None) -> Subscriber:
        sub = Subscriber(mosquitto.port, topic, now)
        started.append(sub)
        return sub

    yield start
    for sub in started:
        sub.close()
    violations = [v for sub in started for v in sub.violations]
    assert violations == [], violations
