"""The outbox against a real Mosquitto: what waits for the window goes out as what it is."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from ledger import Ledger
from ledger.values import floor_second
from publisher.outbox import SLOTS, Kind, Outbox
from publisher.payload import decode_payload
from publisher.settings import RunSettings
from tests.conftest import ME
from tests.publisher.broker import Mosquitto, retained
from tests.publisher.helpers import TOPIC, VirtualClock, drive, virtual_daemon


def test_a_removal_queued_behind_its_refresh_still_publishes_the_final_off(
    sqlite_ledger: Ledger, mosquitto: Mosquitto
) -> None:
    """Window of one: c's refresh waits in the backlog when c is removed. Its final `off` goes out
    as a transition (not as a refresh, which would skip it), and only then is the topic cleared."""
    for client_id in ("a", "b", "c"):
        sqlite_ledger.add_client(client_id, None, ME)
    clock = VirtualClock(floor_second(datetime.now(UTC)))
    daemon, capture = virtual_daemon(sqlite_ledger, mosquitto, clock, window=1)
    daemon.tick()
    assert daemon.settle(10)
    # Refreshes are spread: the one refreshed last is the one whose refresh waits in the backlog.
    due = {n: daemon.outbox.refresh_at(n) for n in ("a", "b", "c")}
    last = max(due, key=lambda n: (due[n], n))
    clock.t = clock.t + timedelta(seconds=daemon.settings.refresh_every)  # every refresh is due
    daemon.tick()  # one refresh in flight, the other two in the backlog
    sqlite_ledger.remove_client(last, ME)
    daemon.tick()  # the removal is recorded while its refresh still waits
    assert daemon.settle(10)
    published = [(r["kind"], r["reason"]) for r in capture.records("publish") if r["client_id"] == last]
    assert published[-1] == ("transition", "client_deregistered")
    cleared = capture.records("clear")
    assert [r["client_id"] for r in cleared] == [last]
    assert cleared[0]["result"] == "acked"
    assert retained(mosquitto.port, TOPIC.format(last)) is None
    daemon.shutdown()


def test_refreshes_are_spread_over_the_interval_each_in_time_and_once_a_round(
    sqlite_ledger: Ledger, mosquitto: Mosquitto
) -> None:
    """40 clients published together at the start are not refreshed together: their refreshes
    fall on many seconds of the 10 s interval, each 1 to 10 s after the start's publish, then
    every 10 s exactly (never later, never twice in a round)."""
    clients = [f"c{i:02d}" for i in range(40)]
    for client_id in clients:
        sqlite_ledger.add_client(client_id, None, ME)
    start = floor_second(datetime.now(UTC))
    clock = VirtualClock(start)
    daemon, capture = virtual_daemon(sqlite_ledger, mosquitto, clock, ttl=20, refresh=10)
    drive(daemon, clock, start + timedelta(seconds=45))
    issued: dict[str, list[datetime]] = {c: [] for c in clients}
    for r in capture.records("publish"):
        assert r["result"] == "acked"
        issued[r["client_id"]].append(datetime.fromisoformat(r["issued_at"].replace("Z", "+00:00")))
    first_refresh = {times[1] for times in issued.values()}
    assert len(first_refresh) >= 6, "the start's publishes were refreshed together"
    for client_id, times in issued.items():
        assert times[0] == start
        gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
        assert 1 <= gaps[0] <= 10, client_id
        assert gaps[1:] == [10.0] * (len(gaps) - 1), client_id
        assert len(times) >= 4
    # A long interval: at most SLOTS refresh instants however many targets, each in time.
    long = Outbox(
        RunSettings(ttl=2000, refresh=1000), daemon.topics, daemon.projector, daemon.connection, start
    )
    latest = start + timedelta(seconds=1000)
    due = [long.refresh_slot(f"screen-{i}", latest) for i in range(5000)]
    assert len(set(due)) == SLOTS
    assert all(start + timedelta(seconds=1) <= t <= latest for t in due)
    # Each slot's instant is computed once for a stamp: another stamp gets its own ones.
    later = latest + timedelta(seconds=7)
    fresh = Outbox(
        RunSettings(ttl=2000, refresh=1000), daemon.topics, daemon.projector, daemon.connection, start
    )
    assert [long.refresh_slot(f"screen-{i}", later) for i in range(50)] == [
        fresh.refresh_slot(f"screen-{i}", later) for i in range(50)
    ]
    assert [long.refresh_slot(f"screen-{i}", latest) for i in range(50)] == due[:50]
    daemon.shutdown()


def test_a_transition_publishes_the_current_intents_id_whatever_id_it_was_handed(
    sqlite_ledger: Ledger, mosquitto: Mosquitto
) -> None:
    """The id a transition's publish is handed (the recorded event's) is used only for the seq it
    is of: for any other (an intent issued since, a chunk ahead) the current intent's own id goes."""
    sqlite_ledger.add_client("a", None, ME)
    clock = VirtualClock(floor_second(datetime.now(UTC)))
    daemon, capture = virtual_daemon(sqlite_ledger, mosquitto, clock)
    daemon.tick()
    assert daemon.settle(10)
    current = daemon.projector.current("a")
    assert current is not None
    daemon.outbox.publish("a", clock.t, Kind.TRANSITION, (current.seq + 1, "not-its-id"))
    daemon.outbox.publish("a", clock.t, Kind.TRANSITION, (current.seq, current.intent_id))
    assert daemon.settle(10)
    published = [r["intent_id"] for r in capture.records("publish") if r["client_id"] == "a"]
    assert published == [current.intent_id] * 3
    held = retained(mosquitto.port, TOPIC.format("a"))
    assert held is not None
    assert decode_payload(held.payload).intent_id == current.intent_id
    daemon.shutdown()
