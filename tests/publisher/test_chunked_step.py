"""A boundary of many clients is recorded in chunks and published chunk by chunk (real Mosquitto,
each store): nothing is published before it is recorded, and the first chunk goes out while the
rest is still to be recorded."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from functools import partial
from typing import Any
from unittest.mock import patch

import pytest
from freezegun import freeze_time

from ledger import Ledger, TargetRef
from projections.shard import Shard
from publisher.config import BrokerConfig
from publisher.daemon import Daemon, RunSettings
from publisher.mqtt import Delivery, MqttSession
from publisher.payload import decode_payload
from tests.conftest import ME
from tests.projections.test_prepared import counting
from tests.publisher.broker import Mosquitto, Subscriber
from tests.publisher.helpers import (
    T0,
    TOPIC,
    LogCapture,
    VirtualClock,
    at,
    fast,
    make_log,
    settle,
    virtual_daemon,
    win,
)

CLIENTS = [f"c{i}" for i in range(1, 7)]


def test_a_boundary_is_published_chunk_by_chunk_each_after_it_is_recorded(
    ledger: Ledger, mosquitto: Mosquitto, subscribe: Callable[..., Subscriber]
) -> None:
    """Chunks of 2: at each `on` publish its intent is in the ledger, and only the chunks up to
    its own are; the loop does not wait between chunks; every screen gets its `on`."""
    clock = VirtualClock(T0)
    with freeze_time(T0):
        for client in CLIENTS:
            ledger.add_client(client, "lobby", ME)
        ledger.add_event("a", TargetRef("group", "lobby"), win(1, 2), ME)
    seen: list[tuple[str, bool, int]] = []  # client, recorded before its publish, `on`s recorded then

    class Checking(MqttSession):
        def publish(self, topic: str, payload: bytes, **kwargs: Any) -> Delivery:
            if topic.startswith("infoscreen/c") and payload:
                sent = decode_payload(payload)
                name = str(sent.target.client_id)
                recorded = any(e.intent_id == sent.intent_id for e in ledger.issued(name))
                if sent.power.desired_state == "on":
                    ons = sum(1 for c in CLIENTS for e in ledger.issued(c) if e.desired_state == "on")
                    seen.append((name, recorded, ons))
                assert recorded, f"{name}: {sent.intent_id} published before it was recorded"
            return super().publish(topic, payload, **kwargs)

    sub = subscribe("infoscreen/+/power/intent", now=clock.now)
    log, capture = make_log(clock)
    daemon = Daemon(
        ledger,
        mosquitto.config(),
        RunSettings(self_check=False),
        clock=clock,
        log=log,
        session_factory=Checking,
        **fast(),
    )
    daemon.follower.chunk = 2
    daemon.tick()  # the start: everyone `off`, in chunks too
    while daemon.follower.pending:
        daemon.tick()
    settle(daemon, sub, capture)
    seen.clear()
    clock.t = at(1)
    daemon.tick()
    assert daemon.follower.pending
    assert len(seen) == 2
    assert daemon.next_deadline() <= clock.now()  # the next chunk now, not after a sleep
    while daemon.follower.pending:
        daemon.tick()
    assert daemon.settle(10)
    assert seen == [(c, True, 2 * (1 + i // 2)) for i, c in enumerate(CLIENTS)]
    every_on(sub)
    daemon.connection.close()


def test_run_once_records_a_resumed_step_whole(ledger: Ledger, mosquitto: Mosquitto) -> None:
    """--once after a resume whose boundary passed: every due transition is recorded and published
    in its one burst, chunks or not."""
    with freeze_time(T0):
        for client in CLIENTS:
            ledger.add_client(client, "lobby", ME)
        ledger.add_event("a", TargetRef("group", "lobby"), win(-1, 1), ME)
    first, _ = virtual_daemon(ledger, mosquitto, VirtualClock(T0))
    assert first.run_once(10) == []  # everyone `on`; the checkpoint saved
    daemon, capture = virtual_daemon(ledger, mosquitto, VirtualClock(at(2)))
    daemon.follower.chunk = 2
    assert daemon.run_once(10) == []
    assert next(r["state"] for r in capture.records("checkpoint")) == "resumed"
    offs = {r["client_id"] for r in acked_all(capture) if r["desired_state"] == "off"}
    assert offs == set(CLIENTS)
    assert all([e.desired_state for e in ledger.issued(c)] == ["on", "off"] for c in CLIENTS)


def every_on(sub: Subscriber) -> None:
    """Wait until every client's screen has received an `on`."""
    for client in CLIENTS:
        sub.wait(partial(has_on, TOPIC.format(client)), what=f"{client}'s on")


def has_on(topic: str, sub: Subscriber) -> bool:
    return any(p["power"]["desired_state"] == "on" for p in sub.intents(topic))


def acked_all(capture: LogCapture) -> list[dict[str, Any]]:
    return [r for r in capture.records("publish") if r["result"] == "acked"]


def lobby_on_at_1(
    ledger: Ledger, mosquitto: Mosquitto, subscribe: Callable[..., Subscriber]
) -> tuple[Daemon, LogCapture, VirtualClock, Subscriber]:
    """The clients in the lobby, its event from 1 to 2; a virtual daemon at T0 and a subscriber."""
    with freeze_time(T0):
        for client in CLIENTS:
            ledger.add_client(client, "lobby", ME)
        ledger.add_event("a", TargetRef("group", "lobby"), win(1, 2), ME)
    clock = VirtualClock(T0)
    sub = subscribe("infoscreen/+/power/intent", now=clock.now)
    daemon, capture = virtual_daemon(ledger, mosquitto, clock)
    return daemon, capture, clock, sub


def test_an_idle_daemon_evaluates_the_next_boundary_ahead(
    ledger: Ledger, mosquitto: Mosquitto, subscribe: Callable[..., Subscriber]
) -> None:
    """Idle before a boundary, the daemon evaluates it a few targets a round without sleeping
    in between, records nothing ahead, and its step at the boundary builds no timeline; every
    screen gets its `on`."""
    daemon, capture, clock, sub = lobby_on_at_1(ledger, mosquitto, subscribe)
    daemon.tick()  # the start: everyone `off`
    settle(daemon, sub, capture)
    clock.t = at(1) - timedelta(seconds=10)
    head = ledger.max_notification_id()
    rounds = 0
    with patch("publisher.follower.AHEAD_BUDGET", 2):
        for _ in range(10):
            daemon.tick()
            settle(daemon, sub, capture)  # idle: nothing in flight (the refreshes the jump made due)
            if daemon.follower.preparing:
                assert daemon.next_deadline() <= clock.now()  # the rest of it now, not after a sleep
                rounds += 1
    assert rounds == len(CLIENTS) // 2 - 1  # two a round; the last round finishes it
    assert ledger.max_notification_id() == head
    built = counting(daemon.projector)
    clock.t = at(1)
    daemon.tick()
    while daemon.follower.pending:
        daemon.tick()
    assert daemon.settle(10)
    assert built == []
    every_on(sub)
    daemon.connection.close()


def test_the_start_records_in_smaller_chunks_than_a_boundary(
    ledger: Ledger, mosquitto: Mosquitto, subscribe: Callable[..., Subscriber]
) -> None:
    """With START_CHUNK 2 and chunks of 4: the start records 2 clients a round, every one in the
    end; a boundary after it records 4 in its first round."""
    daemon, capture, clock, sub = lobby_on_at_1(ledger, mosquitto, subscribe)
    daemon.follower.chunk = 4

    def recorded(state: str) -> int:
        return sum(1 for c in CLIENTS for e in ledger.issued(c) if e.desired_state == state)

    counts = []
    with patch("publisher.follower.START_CHUNK", 2):
        daemon.tick()  # the start: everyone `off`
        counts.append(recorded("off"))
        while daemon.follower.pending:
            daemon.tick()
            counts.append(recorded("off"))
        settle(daemon, sub, capture)
        clock.t = at(1)
        daemon.tick()
        assert daemon.follower.pending
        assert recorded("on") == 4
        while daemon.follower.pending:
            daemon.tick()
    assert counts == [2, 4, 6]
    assert recorded("on") == len(CLIENTS)
    assert daemon.settle(10)
    every_on(sub)
    daemon.connection.close()


@pytest.mark.parametrize(("share", "expected"), [(3, [2, 4, 6]), (1, [4, 6])])
def test_a_larger_fleets_start_records_a_share_of_it_a_chunk(
    ledger: Ledger,
    mosquitto: Mosquitto,
    subscribe: Callable[..., Subscriber],
    share: int,
    expected: list[int],
) -> None:
    """With START_CHUNK 1, the 6 clients' start records a START_SHARE-th of the fleet a round,
    more than START_CHUNK: 2 with a share of 3; never more than the chunk (4) with a share of 1."""
    daemon, capture, _clock, sub = lobby_on_at_1(ledger, mosquitto, subscribe)
    daemon.follower.chunk = 4
    counts = []
    with patch("publisher.follower.START_CHUNK", 1), patch("publisher.follower.START_SHARE", share):
        daemon.tick()
        counts.append(sum(1 for c in CLIENTS for _ in ledger.issued(c)))
        while daemon.follower.pending:
            daemon.tick()
            counts.append(sum(1 for c in CLIENTS for _ in ledger.issued(c)))
    assert counts == expected
    settle(daemon, sub, capture)
    daemon.connection.close()


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        # 7 targets (6 clients and their group's topic): one chunk of all, not a first of 6.
        (RunSettings(group_topics=True), [7]),
        # The shard's own clients, halved: not half of the 6 in every shard.
        (RunSettings(shard=Shard(0, 2)), None),
    ],
    ids=["group-topics", "shard"],
)
def test_the_starts_chunk_is_a_share_of_the_shards_own_targets(
    ledger: Ledger, settings: RunSettings, expected: list[int] | None
) -> None:
    """START_CHUNK 1, a chunk of 100: the start's chunk is its targets (group topics counted, other
    shards' clients not) over START_SHARE (1 with group topics, 2 for a shard). The follower
    alone: no broker."""
    for client in CLIENTS:
        ledger.add_client(client, "lobby", ME)
    daemon = Daemon(ledger, BrokerConfig(), settings)
    daemon.follower.chunk = 100
    share = 1 if settings.group_topics else 2
    if expected is None:
        owned = sum(1 for c in CLIENTS if settings.shard.owns(c))
        assert 1 < owned < len(CLIENTS) - 1  # else a share of the fleet would chunk it alike
        expected = [*range(owned // share, owned, owned // share), owned]  # recorded after each round
    counts: list[int] = []
    with patch("publisher.follower.START_CHUNK", 1), patch("publisher.follower.START_SHARE", share):
        now = daemon.clock.now()
        counts.append(len(daemon.follower.follow(now, strict=True)))
        while daemon.follower.pending:
            counts.append(counts[-1] + len(daemon.follower.follow(now, strict=True)))
    daemon.follower.close()
    assert counts == expected
