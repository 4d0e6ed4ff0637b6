"""Clock steps (an injected clock): back an hour, forward a day.

`issued_at` never goes backwards, nothing is published already expired, and no
boundary is lost or undone.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from freezegun import freeze_time

from ledger import Ledger, TargetRef, Window
from projections.queries import replay_rows
from tests.conftest import ME
from tests.publisher.broker import Mosquitto
from tests.publisher.helpers import LogCapture, VirtualClock, drive, virtual_daemon

T0 = datetime(2026, 3, 31, 7, tzinfo=UTC)


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def publishes(capture: LogCapture) -> list[dict[str, Any]]:
    return [r for r in capture.records("publish") if r["result"] == "acked"]


def check_stamps(capture: LogCapture) -> None:
    """issued_at never decreases; every intent is unexpired when published (by the clock of the moment)."""
    stamps = [ts(r["issued_at"]) for r in publishes(capture)]
    assert stamps == sorted(stamps), "issued_at went backwards"
    for r in publishes(capture):
        assert ts(r["expires_at"]) > ts(r["ts"]), f"published expired: {r}"


def test_a_clock_stepped_back_an_hour(sqlite_ledger: Ledger, mosquitto: Mosquitto) -> None:
    """Back an hour after a window began: no `off` recorded for the past, not even when the client's
    schedule changes meanwhile; stamps keep rising; the window's end is recorded once it is reached."""
    clock = VirtualClock(T0)
    with freeze_time(T0):
        sqlite_ledger.add_client("c1", None, ME)
        sqlite_ledger.add_event("e1", TargetRef("client", "c1"), Window(at(1), at(3)), ME)
    daemon, capture = virtual_daemon(sqlite_ledger, mosquitto, clock, ttl=600, refresh=300)
    drive(daemon, clock, at(1.5))
    assert [r["desired_state"] for r in replay_rows(sqlite_ledger, "c1")] == ["off", "on"]
    clock.t = at(0.5)  # an hour back: before the window, by this clock
    with freeze_time(clock.t):  # an edit meanwhile makes the daemon evaluate c1 again
        sqlite_ledger.add_event("e2", TargetRef("client", "c1"), Window(at(5), at(6)), ME)
    drive(daemon, clock, at(4))
    rows = replay_rows(sqlite_ledger, "c1")
    assert [(r["desired_state"], r["effective_at"]) for r in rows] == [
        ("off", "2026-03-31T07:00:00Z"),
        ("on", "2026-03-31T08:00:00Z"),
        ("off", "2026-03-31T10:00:00Z"),
    ]
    check_stamps(capture)


def test_a_clock_stepped_forward_a_day(sqlite_ledger: Ledger, mosquitto: Mosquitto) -> None:
    """A day ahead at once: every boundary that passed is recorded (at its instant where it is the
    current state), and what is published carries the new time, unexpired."""
    clock = VirtualClock(T0)
    with freeze_time(T0):
        sqlite_ledger.add_client("c1", None, ME)
        sqlite_ledger.add_client("c2", None, ME)
        sqlite_ledger.add_event("e1", TargetRef("client", "c1"), Window(at(1), at(2)), ME)
        sqlite_ledger.add_event("e2", TargetRef("client", "c2"), Window(at(20), at(30)), ME)
    daemon, capture = virtual_daemon(sqlite_ledger, mosquitto, clock, ttl=600, refresh=300)
    drive(daemon, clock, at(0.5))
    clock.t = at(24.5)
    daemon.tick()
    assert daemon.settle(10)
    c1 = [(r["desired_state"], r["effective_at"]) for r in replay_rows(sqlite_ledger, "c1")]
    assert c1[0] == ("off", "2026-03-31T07:00:00Z")
    assert c1[-1][0] == "off"
    c2 = replay_rows(sqlite_ledger, "c2")
    assert [r["desired_state"] for r in c2] == ["off", "on"]
    assert c2[-1]["effective_at"] == "2026-04-01T03:00:00Z"  # the boundary, not the late noticing
    after = [r for r in publishes(capture) if ts(r["ts"]) == at(24.5)]
    assert {r["client_id"] for r in after} == {"c1", "c2"}
    assert all(ts(r["issued_at"]) == at(24.5) for r in after)
    check_stamps(capture)
