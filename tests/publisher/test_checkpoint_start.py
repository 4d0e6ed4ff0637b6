"""The daemon's restart from the projector checkpoint, against a real Mosquitto, on each store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy.exc

from ledger import Ledger, TargetRef, Window
from tests.conftest import ME
from tests.publisher.broker import Mosquitto, retained
from tests.publisher.helpers import VirtualClock, virtual_daemon

T0 = datetime(2026, 3, 31, 7, tzinfo=UTC)
LOBBY = TargetRef("group", "lobby")


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def once(ledger: Ledger, mosquitto: Mosquitto, t: datetime) -> list[dict[str, object]]:
    daemon, capture = virtual_daemon(ledger, mosquitto, VirtualClock(t))
    assert daemon.run_once(10) == []
    records: list[dict[str, object]] = capture.records()
    return records


def test_a_second_run_once_publishes_from_the_checkpoint_with_the_same_ids(
    ledger: Ledger, mosquitto: Mosquitto
) -> None:
    """Restart: resumed (no fold of the schedule), every client republished, nothing recorded twice."""
    for c in ("c1", "c2", "c3"):
        ledger.add_client(c, "lobby", ME)
    ledger.add_event("a", LOBBY, Window(at(-1), at(1)), ME)
    first = once(ledger, mosquitto, T0)
    assert [r["state"] for r in first if r["event"] == "checkpoint"] == ["saved"]
    head = ledger.max_notification_id()

    second = once(ledger, mosquitto, T0 + timedelta(minutes=5))
    assert [r["state"] for r in second if r["event"] == "checkpoint"] == ["resumed"]
    ids = {r["client_id"]: r["intent_id"] for r in first if r["event"] == "publish"}
    again = {
        r["client_id"]: r["intent_id"] for r in second if r["event"] == "publish" and r["result"] == "acked"
    }
    assert again == ids
    assert len(ids) == 3
    assert ledger.max_notification_id() == head  # nothing new recorded
    held = retained(mosquitto.port, "infoscreen/c2/power/intent")
    assert held is not None
    assert held.json()["intent_id"] == ids["c2"]
    assert held.json()["issued_at"] == "2026-03-31T07:05:00Z"


def test_a_resumed_daemon_follows_changes_and_boundaries(ledger: Ledger, mosquitto: Mosquitto) -> None:
    """After a resume, a new event and a window's end are still published promptly, with fresh ids."""
    ledger.add_client("c1", "lobby", ME)
    ledger.add_client("c2", None, ME)
    ledger.add_event("a", LOBBY, Window(at(-1), at(1)), ME)
    once(ledger, mosquitto, T0)
    clock = VirtualClock(T0 + timedelta(minutes=1))
    daemon, capture = virtual_daemon(ledger, mosquitto, clock)
    daemon.tick()
    assert daemon.settle(10)
    assert daemon.projector.partial
    daemon.tick()  # idle: the schedule is folded now, before anything needs it
    assert not daemon.projector.partial

    ledger.add_event("b", TargetRef("client", "c2"), Window(at(0), at(2)), ME)
    daemon.tick()
    clock.t = at(1)
    daemon.tick()
    assert daemon.settle(10)
    transitions = [(r["client_id"], r["desired_state"], r["seq"]) for r in capture.records("transition")]
    assert transitions == [("c2", "on", 2), ("c1", "off", 2)]


def test_a_resumed_start_whose_first_step_fails_retries_from_the_checkpoint(
    ledger: Ledger, mosquitto: Mosquitto
) -> None:
    """The database fails while the resumed start folds the schedule: the retry goes on, nothing lost."""
    ledger.add_client("c1", "lobby", ME)
    ledger.add_event("a", LOBBY, Window(at(1), at(2)), ME)
    once(ledger, mosquitto, T0)  # c1 off until 08:00; the checkpoint says so
    clock = VirtualClock(at(1.5))
    daemon, capture = virtual_daemon(ledger, mosquitto, clock)
    complete = daemon.projector.complete
    failures: list[int] = []

    def failing_once() -> None:
        if not failures:
            failures.append(1)
            raise sqlalchemy.exc.OperationalError("SELECT", {}, Exception("database is locked"))
        complete()

    daemon.projector.complete = failing_once  # type: ignore[method-assign]
    daemon.tick()
    assert [r["state"] for r in capture.records("ledger")] == ["error"]
    clock.t += timedelta(seconds=5)  # past the retry backoff
    daemon.tick()
    assert daemon.settle(10)
    # At the 08:00 boundary it missed (a full start would record "start" at 08:30 instead).
    assert [
        (r["client_id"], r["desired_state"], r["seq"], r["effective_at"], r["cause"]["kind"])
        for r in capture.records("transition")
    ] == [("c1", "on", 2, "2026-03-31T08:00:00Z", "boundary")]
    assert [r["state"] for r in capture.records("checkpoint")][:1] == ["resumed"]
