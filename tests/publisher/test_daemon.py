"""The daemon against a real Mosquitto: the four acceptance criteria and the failure modes.

The acceptance criteria run on NATS server's MQTT gateway too (MQTT 3.1.1).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from freezegun import freeze_time

from ledger import Ledger, Receipt, TargetRef, Window
from ledger.values import floor_second
from projections.queries import replay_rows
from publisher.config import BrokerConfig
from publisher.daemon import Daemon, RunSettings
from tests.conftest import ME
from tests.publisher.broker import Mosquitto, Subscriber, retained, wait_for
from tests.publisher.conftest import BROKERS
from tests.publisher.helpers import (
    T0,
    TOPIC,
    SteppedClock,
    VirtualClock,
    acked,
    at,
    check_no_off_gap,
    drive,
    fast,
    make_log,
    running,
    ts,
    virtual_daemon,
    win,
)

pytestmark = pytest.mark.usefixtures("daemon_sessions")  # each kind of broker session


@pytest.mark.parametrize("broker", BROKERS, indirect=True)
def test_adjacent_events_do_not_create_off_gap_intents(
    ledger: Ledger, broker: Mosquitto, subscribe: Callable[..., Subscriber]
) -> None:
    """08-09 and 09-10 (group) and 09:30-10:30 (client), crossed in virtual time: one `on`."""
    clock = VirtualClock(T0)
    with freeze_time(T0):
        ledger.add_client("c1", "lobby", ME)
        ledger.add_event("a", TargetRef("group", "lobby"), win(1, 2), ME)
        ledger.add_event("b", TargetRef("group", "lobby"), win(2, 3), ME)
        ledger.add_event("c", TargetRef("client", "c1"), win(2.5, 3.5), ME)
    sub = subscribe(TOPIC.format("c1"), now=clock.now)
    daemon, capture = virtual_daemon(ledger, broker, clock)
    drive(daemon, clock, at(6), sub, capture)
    expected = len(acked(capture, "c1"))
    sub.wait(lambda s: len(s.on(TOPIC.format("c1"))) == expected, what=f"{expected} messages")
    intents = sub.intents(TOPIC.format("c1"))
    check_no_off_gap(intents, at(3.5))
    ons = {p["intent_id"] for p in intents if p["power"]["desired_state"] == "on"}
    assert ons == {replay_rows(ledger, "c1")[1]["intent_id"]}
    assert [r["desired_state"] for r in replay_rows(ledger, "c1")] == ["off", "on", "off"]


def test_adjacent_events_do_not_create_off_gap_intents_through_the_run_loop(
    ledger: Ledger, mosquitto: Mosquitto, subscribe: Callable[..., Subscriber]
) -> None:
    """The same with windows of two seconds, through `run()` and its sleeps (on a stepped clock)."""
    start = floor_second(datetime.now(UTC)) + timedelta(seconds=2)
    clock = SteppedClock(start - timedelta(seconds=2))

    def w(a: int, b: int) -> Window:
        return Window(start + timedelta(seconds=a), start + timedelta(seconds=b))

    ledger.add_client("c1", "lobby", ME)
    ledger.add_event("a", TargetRef("group", "lobby"), w(0, 2), ME)
    ledger.add_event("b", TargetRef("group", "lobby"), w(2, 4), ME)
    ledger.add_event("c", TargetRef("client", "c1"), w(3, 5), ME)
    sub = subscribe(TOPIC.format("c1"), now=clock.now)
    log, _ = make_log(clock)
    daemon = Daemon(ledger, BrokerConfig.from_url(mosquitto.url), clock=clock, log=log, **fast())
    with running(daemon):
        clock.allow(10)
        sub.wait(
            lambda s: any(
                p["power"]["desired_state"] == "off" and ts(p["issued_at"]) >= w(0, 5).end
                for p in s.intents(TOPIC.format("c1"))
            ),
            timeout=15,
            what="the off after the merged block",
        )
    check_no_off_gap(sub.intents(TOPIC.format("c1")), w(0, 5).end)


@pytest.mark.parametrize("broker", BROKERS, indirect=True)
def test_fresh_client_receives_retained_intent_after_reconnect(ledger: Ledger, broker: Mosquitto) -> None:
    """After the daemon published, after a daemon restart, after a broker restart (SIGKILL)."""
    now = floor_second(datetime.now(UTC))
    ledger.add_client("c1", "lobby", ME)
    ledger.add_event(
        "on-now", TargetRef("group", "lobby"), Window(now - timedelta(hours=1), now + timedelta(hours=1)), ME
    )
    topic = TOPIC.format("c1")
    config = broker.config()

    with running(Daemon(ledger, config, log=make_log()[0], **fast())):
        first = wait_for(lambda: retained(broker.port, topic, v5=broker.v5), what="the first retained intent")
    recorded = replay_rows(ledger, "c1")[-1]
    assert (first.json()["intent_id"], first.json()["power"]["desired_state"]) == (
        recorded["intent_id"],
        "on",
    )

    # A restart with no semantic change: same intent_id, a later issued_at.
    wait_for(lambda: floor_second(datetime.now(UTC)) > ts(first.json()["issued_at"]), what="the next second")
    restarted = Daemon(ledger, config, log=make_log()[0], **fast())
    with running(restarted):
        second = wait_for(
            lambda: (
                (m := retained(broker.port, topic, v5=broker.v5))
                and m.json()["issued_at"] != first.json()["issued_at"]
                and m
            ),
            what="the restarted daemon's publish",
        )
        assert second.json()["intent_id"] == first.json()["intent_id"]
        assert ts(second.json()["issued_at"]) > ts(first.json()["issued_at"])

        # The broker dies without saving; the daemon reconnects and republishes.
        broker.kill()
        broker.start()
        third = wait_for(
            lambda: retained(broker.port, topic, v5=broker.v5), timeout=15, what="republish after restart"
        )
        assert third.json()["intent_id"] == first.json()["intent_id"]
    assert len(replay_rows(ledger, "c1")) == 1


@pytest.mark.parametrize("broker", BROKERS, indirect=True)
def test_payloads_are_schema_valid_utc_with_expiry(
    ledger: Ledger, broker: Mosquitto, subscribe: Callable[..., Subscriber]
) -> None:
    """Every message validates, uses Z, is unexpired at receipt and carries the MQTT 5 expiry."""
    now = floor_second(datetime.now(UTC))
    ledger.add_client("c1", "lobby", ME)
    ledger.add_client("c2", "lobby", ME)
    ledger.add_client("c3", None, ME)
    ledger.add_event(
        "e", TargetRef("group", "lobby"), Window(now - timedelta(minutes=5), now + timedelta(hours=1)), ME
    )
    ledger.add_override(
        "o",
        TargetRef("client", "c2"),
        "off",
        Window(now - timedelta(minutes=1), now + timedelta(hours=1)),
        ME,
    )
    sub = subscribe("infoscreen/#")
    log, _ = make_log()
    daemon = Daemon(
        ledger,
        broker.config(),
        RunSettings(ttl=120, group_topics=True),
        log=log,
        **fast(),
    )
    with running(daemon):
        sub.wait(lambda s: len({m.topic for m in s.messages}) >= 5, what="all topics")
    intents = [m for m in sub.messages if m.topic.endswith("/power/intent")]
    assert {m.topic for m in intents} == {TOPIC.format(c) for c in ("c1", "c2", "c3")} | {
        "infoscreen/groups/lobby/power/intent"
    }
    for m in intents:
        body = m.json()
        # Subscribed before the daemon started: each one arrived live, within its validity.
        assert ts(body["issued_at"]) <= m.received_at < ts(body["expires_at"])
        if broker.v5:
            assert m.expiry is not None
            assert 0 < m.expiry <= 120
        else:  # MQTT 3.1.1: no Message Expiry Interval, the payload's expires_at alone
            assert m.expiry is None
        assert ts(body["expires_at"]) - ts(body["issued_at"]) == timedelta(seconds=120)
    group = sub.intents("infoscreen/groups/lobby/power/intent")[-1]
    assert group["target"] == {"client_id": None, "group_id": "lobby"}
    assert sub.violations == []


@pytest.mark.parametrize("broker", BROKERS, indirect=True)
def test_publish_logs_reconstruct_the_timeline(ledger: Ledger, broker: Mosquitto) -> None:
    """The JSON publish log alone gives each client's intent ids and states, equal to replay."""
    clock = VirtualClock(T0)
    with freeze_time(T0):
        for c, g in (("c1", "lobby"), ("c2", "lobby"), ("c3", "cafe")):
            ledger.add_client(c, g, ME)
        ledger.add_event("a", TargetRef("group", "lobby"), win(1, 3), ME)
        ledger.add_event("b", TargetRef("group", "cafe"), win(2, 4), ME)
        ledger.add_override("o", TargetRef("client", "c2"), "off", win(1.5, 2), ME)
    daemon, capture = virtual_daemon(ledger, broker, clock)
    drive(daemon, clock, at(2.25))
    with freeze_time(clock.t):  # an edit while running: the cafe event is cancelled
        ledger.cancel_event("b", ME)
    drive(daemon, clock, at(8))
    for client in ("c1", "c2", "c3"):
        published: list[tuple[str, str]] = []
        for record in acked(capture, client):
            step = (record["intent_id"], record["desired_state"])
            if not published or published[-1] != step:
                published.append(step)
        replayed = [(r["intent_id"], r["desired_state"]) for r in replay_rows(ledger, client)]
        assert published == replayed, client
    assert len(replay_rows(ledger, "c3")) == 3  # off, on, off after the cancellation


def test_broker_killed_while_a_window_ends_keeps_the_current_intent(
    sqlite_ledger: Ledger, mosquitto: Mosquitto, subscribe: Callable[..., Subscriber]
) -> None:
    """The boundary passes during the outage; afterwards the retained intent is the new `off`."""
    end = floor_second(datetime.now(UTC)) + timedelta(seconds=2)
    clock = SteppedClock(end - timedelta(seconds=2))
    sqlite_ledger.add_client("c1", None, ME)
    sqlite_ledger.add_event("e", TargetRef("client", "c1"), Window(end - timedelta(hours=1), end), ME)
    topic = TOPIC.format("c1")
    log, capture = make_log(clock)
    daemon = Daemon(sqlite_ledger, BrokerConfig.from_url(mosquitto.url), clock=clock, log=log, **fast())
    with running(daemon):
        wait_for(lambda: acked(capture, "c1"), what="the on")
        mosquitto.kill()
        clock.allow(5)  # the boundary passes while the broker is away
        wait_for(lambda: len(replay_rows(sqlite_ledger, "c1")) == 2, timeout=10, what="the off recorded")
        mosquitto.start()
        clock.allow(60)
        sub = subscribe(topic, now=clock.now)
        off = replay_rows(sqlite_ledger, "c1")[-1]
        sub.wait(lambda s: any(p["intent_id"] == off["intent_id"] for p in s.intents(topic)), 15, "the off")
    assert off["desired_state"] == "off"
    assert [p["power"]["desired_state"] for p in sub.intents(topic)] == ["off"] * len(sub.intents(topic))
    final = retained(mosquitto.port, topic)
    assert final is not None
    assert final.json()["intent_id"] == off["intent_id"]


def test_an_outage_longer_than_the_ttl_never_publishes_an_expired_intent(
    sqlite_ledger: Ledger, mosquitto: Mosquitto, subscribe: Callable[..., Subscriber]
) -> None:
    """ttl 3 s, broker away 5 s: everything delivered afterwards is fresh (checked at receipt)."""
    sqlite_ledger.add_client("c1", None, ME)
    clock = SteppedClock(floor_second(datetime.now(UTC)))
    log, capture = make_log(clock)
    settings = RunSettings(ttl=3, refresh=1)
    broker = BrokerConfig.from_url(mosquitto.url)
    with running(Daemon(sqlite_ledger, broker, settings, clock=clock, log=log, **fast())):
        wait_for(lambda: acked(capture, "c1"), what="the first publish")
        mosquitto.kill()
        outage_end = clock.allow(5)
        wait_for(lambda: clock.now() >= outage_end, timeout=10, what="the outage to outlast the ttl")
        mosquitto.start()
        clock.allow(60)
        sub = subscribe(TOPIC.format("c1"), now=clock.now)
        sub.wait(lambda s: len(s.intents(TOPIC.format("c1"))) >= 3, 15, "refreshes after the outage")
    assert sub.violations == []
    assert all(m.expiry is not None and m.expiry <= 3 for m in sub.on(TOPIC.format("c1")))


def test_edits_and_cancellations_while_running_give_fresh_ids(
    ledger: Ledger, db_url: str, mosquitto: Mosquitto, subscribe: Callable[..., Subscriber]
) -> None:
    """Another process's edit reaches the broker as a new intent_id (its speed: bench_daemon, part 2)."""
    now = floor_second(datetime.now(UTC))
    ledger.add_client("c1", "lobby", ME)
    ledger.add_event(
        "e", TargetRef("group", "lobby"), Window(now - timedelta(minutes=1), now + timedelta(hours=1)), ME
    )
    topic = TOPIC.format("c1")
    sub = subscribe(topic)
    other = Ledger(db_url)  # stands for the CLI: its own connection, its own commits
    log, _ = make_log()
    try:
        with running(Daemon(ledger, BrokerConfig.from_url(mosquitto.url), log=log, **fast())):
            sub.wait(lambda s: s.intents(topic), what="the first intent")
            seen = {p["intent_id"] for p in sub.intents(topic)}
            edits: tuple[Callable[[], Receipt], ...] = (
                lambda: other.move_event(
                    "e", Window(now - timedelta(minutes=1), now + timedelta(hours=2)), ME
                ),
                lambda: other.cancel_event("e", ME),
                lambda: other.move_event(
                    "e", Window(now - timedelta(minutes=1), now + timedelta(hours=3)), ME
                ),
            )
            for edit in edits:
                edit()
                fresh = sub.wait(
                    lambda s: [p for p in s.intents(topic) if p["intent_id"] not in seen],
                    timeout=10,
                    what="a fresh intent_id",
                )
                seen.add(fresh[0]["intent_id"])
    finally:
        other.close()
    states = [p["power"]["desired_state"] for p in sub.intents(topic)]
    assert states[-1] == "on"
    assert "off" in states


def test_client_removal_clears_the_retained_topic(
    sqlite_ledger: Ledger, mosquitto: Mosquitto, subscribe: Callable[..., Subscriber]
) -> None:
    """A removed client gets its final `off`, then an empty retained payload: no ghost intent."""
    sqlite_ledger.add_client("c1", None, ME)
    topic = TOPIC.format("c1")
    sub = subscribe(topic)
    log, capture = make_log()
    with running(Daemon(sqlite_ledger, BrokerConfig.from_url(mosquitto.url), log=log, **fast())):
        sub.wait(lambda s: s.intents(topic), what="the first intent")
        sqlite_ledger.remove_client("c1", ME)
        sub.wait(lambda s: s.on(topic)[-1].payload == b"", what="the empty retained payload")
    final_off = sub.intents(topic)[-1]
    assert (final_off["power"]["desired_state"], final_off["power"]["reason"]) == (
        "off",
        "client_deregistered",
    )
    assert retained(mosquitto.port, topic) is None
    assert capture.records("clear")[-1]["result"] == "acked"


def test_removed_client_stays_cleared_after_a_restart(sqlite_ledger: Ledger, mosquitto: Mosquitto) -> None:
    """A restart republishes the living, and clears (never re-announces) the removed."""
    sqlite_ledger.add_client("c1", None, ME)
    sqlite_ledger.add_client("gone", None, ME)
    config = BrokerConfig.from_url(mosquitto.url)
    with running(Daemon(sqlite_ledger, config, log=make_log()[0], **fast())):
        wait_for(lambda: retained(mosquitto.port, TOPIC.format("gone")), what="gone's intent")
        sqlite_ledger.remove_client("gone", ME)
        wait_for(lambda: retained(mosquitto.port, TOPIC.format("gone")) is None, what="gone cleared")
    log, capture = make_log()
    with running(Daemon(sqlite_ledger, config, log=log, **fast())):
        wait_for(lambda: capture.records("clear"), what="the restart's clear")
        wait_for(lambda: acked(capture, "c1"), what="c1 republished")
    assert retained(mosquitto.port, TOPIC.format("gone")) is None
    assert [r["client_id"] for r in capture.records("publish")] == ["c1"]


def test_start_publishes_each_client_once(sqlite_ledger: Ledger, mosquitto: Mosquitto) -> None:
    """The start's transitions are not published a second time by the start's republish."""
    for c in ("c1", "c2", "c3"):
        sqlite_ledger.add_client(c, None, ME)
    clock = VirtualClock(T0)
    daemon, capture = virtual_daemon(sqlite_ledger, mosquitto, clock)
    daemon.tick()
    assert daemon.settle(10)
    records = capture.records("publish")
    assert sorted(r["client_id"] for r in records) == ["c1", "c2", "c3"]
    assert {r["kind"] for r in records} == {"transition"}


def test_a_start_larger_than_the_window_still_publishes_each_client_once(
    sqlite_ledger: Ledger, mosquitto: Mosquitto
) -> None:
    """Transitions spread over several rounds (window 2) are not repeated by the republish after them."""
    clients = [f"c{i}" for i in range(7)]
    for c in clients:
        sqlite_ledger.add_client(c, None, ME)
    daemon, capture = virtual_daemon(sqlite_ledger, mosquitto, VirtualClock(T0), window=2)
    daemon.tick()  # 2 published, 5 waiting
    daemon.tick()  # another round while they are in flight
    assert daemon.settle(10)
    records = capture.records("publish")
    assert sorted(r["client_id"] for r in records) == clients
    assert {r["kind"] for r in records} == {"transition"}


def test_a_database_hiccup_keeps_refreshing_and_records_the_boundary_afterwards(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    """With the ledger locked, refreshes go on from memory; the missed boundary follows later."""
    path = tmp_path / "ledger.db"
    ledger = Ledger(f"sqlite:///{path}?timeout=0.2")
    start = floor_second(datetime.now(UTC)) + timedelta(seconds=2)
    clock = SteppedClock(start - timedelta(seconds=2))
    ledger.add_client("c1", None, ME)
    ledger.add_event("e", TargetRef("client", "c1"), Window(start, start + timedelta(hours=1)), ME)
    log, capture = make_log(clock)
    settings = RunSettings(ttl=10, refresh=1)
    broker = BrokerConfig.from_url(mosquitto.url)
    blocker = sqlite3.connect(path)
    try:
        with running(Daemon(ledger, broker, settings, clock=clock, log=log, **fast())):
            wait_for(lambda: acked(capture, "c1"), what="the first publish")
            blocker.execute("BEGIN EXCLUSIVE")
            clock.allow(3)  # the boundary passes while the ledger is locked: recording it fails
            wait_for(lambda: capture.records("ledger"), timeout=10, what="the ledger error")
            refreshed = len([r for r in acked(capture, "c1") if r["kind"] == "refresh"])
            clock.allow(3)
            wait_for(
                lambda: len([r for r in acked(capture, "c1") if r["kind"] == "refresh"]) >= refreshed + 2,
                timeout=10,
                what="refreshes while the ledger is locked",
            )
            assert all(r["desired_state"] == "off" for r in acked(capture, "c1"))
            blocker.rollback()
            clock.allow(60)
            wait_for(lambda: any(r["desired_state"] == "on" for r in acked(capture, "c1")), 10, "the on")
    finally:
        blocker.close()
    rows = replay_rows(ledger, "c1")
    assert [(r["seq"], r["desired_state"]) for r in rows] == [(1, "off"), (2, "on")]
    assert capture.records("ledger")[0]["state"] == "error"
    assert capture.records("ledger")[-1]["state"] == "ok"
    ledger.close()
