"""Helpers the publisher tests share: a virtual clock, the daemon's parsed log, a daemon driven
through virtual time, and the check that adjacent windows never produce an `off`."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from paho.mqtt.client import topic_matches_sub

from ledger import Ledger, Window
from publisher.config import BrokerConfig
from publisher.daemon import Backoff, Daemon, RunSettings
from publisher.logs import EventLog
from publisher.observe import Observer
from tests.publisher.broker import Mosquitto, Subscriber


class VirtualClock:
    """Time that moves only when the test says so."""

    def __init__(self, t: datetime) -> None:
        self.t = t

    def now(self) -> datetime:
        return self.t

    def wait(self, wake: threading.Event, _seconds: float) -> None:
        wake.wait(0.001)


class SteppedClock:
    """Virtual time for the daemon's own loop (`run()` in a thread): it moves when the daemon
    sleeps, by as long as it meant to sleep plus the real time its round took, and never past
    `limit`, which the test moves. Boundaries ahead of the limit cannot race the test's steps."""

    def __init__(self, t: datetime) -> None:
        self.t = self.limit = t
        self._round = time.monotonic()

    def now(self) -> datetime:
        return self.t

    def wait(self, wake: threading.Event, seconds: float) -> None:
        worked = time.monotonic() - self._round
        if self.t >= self.limit:
            wake.wait(0.005)  # held at the limit: the loop keeps polling in real time
        else:
            step = timedelta(seconds=max(seconds, 0.0) + worked)
            self.t = min(self.t + max(step, timedelta(milliseconds=1)), self.limit)
        self._round = time.monotonic()

    def allow(self, seconds: float) -> datetime:
        """Let virtual time run `seconds` past now; returns the new limit."""
        self.limit = self.t + timedelta(seconds=seconds)
        return self.limit


class PacedMonotonic:
    """A stand-in for `time` in the publisher's PUBACK bookkeeping (`publisher.mqtt`,
    `publisher.acks`): its `monotonic()` moves by `step` on every read from another thread
    (paho's network thread: a PUBACK, a CONNACK) and by `drift` on a read from the thread that
    made it (the daemon's). Between two PUBACKs only the daemon's own reads move it, a
    twentieth of a step each, whatever the machine's load, while a publish queued behind
    thousands of others waits thousands of steps: timeouts in steps test the rule, not the
    machine's speed."""

    def __init__(self, step: float = 1.0, drift: float = 0.05) -> None:
        self.step, self.drift = step, drift
        self._owner = threading.current_thread()
        self._lock = threading.Lock()
        self._t = 0.0

    def monotonic(self) -> float:
        moved = self.drift if threading.current_thread() is self._owner else self.step
        with self._lock:
            self._t += moved
            return self._t


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


T0 = datetime(2026, 3, 31, 7, tzinfo=UTC)
TOPIC = "infoscreen/{}/power/intent"


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def win(a: float, b: float) -> Window:
    return Window(at(a), at(b))


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def virtual_daemon(
    ledger: Ledger, broker: Mosquitto, clock: VirtualClock, **settings: Any
) -> tuple[Daemon, Any]:
    log, capture = make_log(clock)
    daemon = Daemon(
        ledger,
        broker.config(),
        # The self-check compares with echoes that arrive in real time; virtual time outruns them.
        RunSettings(**{"self_check": False, **settings}),
        clock=clock,
        log=log,
        **fast(),
    )
    return daemon, capture


def drive(
    daemon: Daemon, clock: VirtualClock, until: datetime, sub: Subscriber | None = None, capture: Any = None
) -> None:
    """Jump the virtual clock from timer to timer, letting every publish be acknowledged
    (and, with `sub`, received: so "now at receipt" is the instant it was published)."""
    daemon.tick()
    settle(daemon, sub, capture)
    while (t := daemon.next_timer()) is not None and t <= until:
        clock.t = t
        daemon.tick()
        settle(daemon, sub, capture)


def settle(daemon: Daemon, sub: Subscriber | None = None, capture: Any = None) -> None:
    """Every publish acknowledged and, with `sub`, received too: a PUBACK can reach the daemon
    before the broker's copy reaches a subscriber, whose "now at receipt" a virtual clock moved
    on in between would make an expired intent."""
    assert daemon.settle(10)
    if sub is not None:
        sent = len([r for r in capture.records("publish") if topic_matches_sub(sub.topic, r["topic"])])
        # Its own topic's only: a screen's feed also holds the server's status messages.
        sub.wait(lambda s: s.count(sub.topic) >= sent, what=f"{sent} messages received")


def acked(capture: Any, client_id: str) -> list[dict[str, Any]]:
    return [r for r in capture.records("publish") if r["client_id"] == client_id and r["result"] == "acked"]


def check_no_off_gap(intents: list[dict[str, Any]], block_end: datetime) -> None:
    first_on = next(i for i, p in enumerate(intents) if p["power"]["desired_state"] == "on")
    during = [p for p in intents[first_on:] if ts(p["issued_at"]) < block_end]
    assert {p["power"]["desired_state"] for p in during} == {"on"}, "an off between adjacent windows"
    assert len({p["intent_id"] for p in during}) == 1, "the merged block changed intent_id"
    last = intents[-1]
    assert last["power"]["desired_state"] == "off"
    assert ts(last["issued_at"]) >= block_end


def observer_on(
    ledger: Ledger, mosquitto: Mosquitto, log: EventLog, registry: Any, **options: Any
) -> Observer:
    """An Observer of the test broker's `infoscreen` reports (`options`: the rest of its keywords)."""
    return Observer(
        ledger,
        prefix="infoscreen",
        registry=registry,
        log=log,
        broker=BrokerConfig.from_url(mosquitto.url),
        **options,
    )
