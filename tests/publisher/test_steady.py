"""NeverBack: the daemon's time holds across a wall clock stepped back, and says so once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from publisher.steady import NeverBack
from tests.publisher.helpers import VirtualClock, make_log

T0 = datetime(2026, 3, 31, 7, tzinfo=UTC)


def test_holds_at_the_latest_instant_until_the_wall_clock_catches_up() -> None:
    wall = VirtualClock(T0)
    log, capture = make_log(wall)
    clock = NeverBack(wall, log)
    assert clock.now() == T0
    wall.t = T0 - timedelta(hours=1)
    assert clock.now() == T0
    wall.t = T0 - timedelta(minutes=30)
    assert clock.now() == T0  # still holding: one line for the step, not one per reading
    wall.t = T0 + timedelta(seconds=1)
    assert clock.now() == T0 + timedelta(seconds=1)
    assert [(r["state"], r["at"]) for r in capture.records("clock")] == [
        ("stepped_back", "2026-03-31T07:00:00+00:00"),
        ("caught_up", "2026-03-31T07:00:01+00:00"),
    ]
    assert capture.records("clock")[0]["by_s"] == 3600


def test_jitter_below_a_second_is_held_silently_and_forward_steps_pass() -> None:
    wall = VirtualClock(T0)
    log, capture = make_log(wall)
    clock = NeverBack(wall, log)
    clock.now()
    wall.t = T0 - timedelta(milliseconds=300)
    assert clock.now() == T0
    wall.t = T0 + timedelta(days=1)
    assert clock.now() == T0 + timedelta(days=1)
    assert capture.records("clock") == []
