"""A small ledger holding every kind of schedule change, for tests that compare two ways of reading it."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from ledger import Ledger, Meta, TargetRef, Window
from ledger.recurrence import Recurrence

__all__ = ["T0", "fill"]

T0 = datetime(2026, 3, 30, tzinfo=UTC)
ME = Meta("tester", "a note")


def _win(a: float, b: float) -> Window:
    return Window(T0 + timedelta(hours=a), T0 + timedelta(hours=b))


def fill(ledger: Ledger) -> None:
    """Groups with members, series, overrides, own events, moved and removed clients, a policy change."""
    g, h = TargetRef("group", "g"), TargetRef("group", "h")
    for i in range(6):
        ledger.add_client(f"c{i}", "g" if i < 4 else "h", ME)
    ledger.add_client("loner", None, ME)
    ledger.add_event("ge1", g, _win(8, 9), ME)
    ledger.add_event("ge2", g, _win(9, 10), ME)  # touches ge1
    ledger.add_event("he1", h, _win(30, 34), ME)
    ledger.add_event("ce1", TargetRef("client", "c1"), _win(9.5, 12), ME)
    ledger.add_event("le1", TargetRef("client", "loner"), _win(1, 2), ME)
    ledger.move_event("ge2", _win(9, 11), ME)
    ledger.cancel_event("he1", ME)
    ledger.add_override("go1", g, "off", _win(8.5, 8.75), ME)
    ledger.add_override("co1", TargetRef("client", "c2"), "on", _win(20, 22), ME)
    ledger.add_override("co2", TargetRef("client", "c3"), "off", _win(8, 9), ME)
    ledger.clear_override("co2", ME)
    weekly = "FREQ=WEEKLY;BYDAY=MO,WE"
    hours = Recurrence.parse("Europe/Berlin", "2026-03-30T07:30", "2026-03-30T16:00", weekly)
    ledger.schedule_series("sh", h, hours, ME)
    ledger.skip_series("sh", [date(2026, 4, 1), date(2026, 4, 6)], ME)
    ledger.unskip_series("sh", [date(2026, 4, 6)], ME)
    lessons = Recurrence.parse("UTC", "2026-03-30T13:00", "2026-03-30T14:00", "FREQ=DAILY")
    ledger.schedule_series("sc", TargetRef("client", "c4"), lessons, ME)
    longer = Recurrence.parse("UTC", "2026-03-30T13:00", "2026-03-30T15:00", "FREQ=DAILY")
    ledger.change_series("sc", longer, ME)
    ledger.schedule_series("sx", g, lessons, ME)
    ledger.cancel_series("sx", ME)
    ledger.assign_client("c3", "h", ME)
    ledger.assign_client("c5", None, ME)
    ledger.remove_client("c0", ME)
    ledger.set_policy({"post_roll": 600, "bridge_gap": 1800}, ME)
