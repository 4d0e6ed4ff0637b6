"""Applying iCalendar feeds to the ledger (Ledger.sync_feed) on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from eventsourcing.domain import Aggregate

from ledger import Ledger, Meta, Receipt, TargetRef, Window
from ledger.domain import Group
from ledger.errors import ClientNotFound, EmptyFeed, IdConflict
from ledger.feed_sync import feed_aggregate_ids
from ledger.ics import parse_ics
from ledger.preload import preloaded_workspace
from tests.conftest import ME

FEEDS = Path(__file__).parent / "feeds"
ROOM = TargetRef("group", "room-101")
NOW = datetime(2027, 1, 1, tzinfo=UTC)
MATHS = "lesson-101-mo-1@timetable.example.org"


def base(uid: str, prefix: str = "ics-") -> str:
    return prefix + hashlib.sha256(uid.encode()).hexdigest()[:16]


def sync(
    ledger: Ledger,
    data: bytes,
    target: TargetRef = ROOM,
    *,
    prefix: str = "ics-",
    prune: bool = False,
    now: datetime = NOW,
    dry_run: bool = False,
    allow_empty: bool = False,
) -> Receipt:
    feed = parse_ics(data, prefix=prefix, tz="Europe/Vienna")
    return ledger.sync_feed(
        feed, target, prefix=prefix, prune=prune, now=now, meta=ME, dry_run=dry_run, allow_empty=allow_empty
    )


def timetable() -> bytes:
    return (FEEDS / "timetable.ics").read_bytes()


def live(ledger: Ledger, group_id: str = "room-101") -> tuple[set[str], set[str]]:
    group = ledger.group(group_id)
    assert group is not None
    return {e.event_id for e in group.live_events()}, {s.series_id for s in group.live_series()}


def test_a_timetable_becomes_series_and_events(ledger: Ledger) -> None:
    receipt = sync(ledger, timetable())
    assert receipt.appended > 0
    events, series = live(ledger)
    assert events == {f"{base(MATHS)}-20270301", base("project-days-2027@timetable.example.org")}
    assert series == {base(MATHS), base("lesson-101-we-3@timetable.example.org")}
    group = ledger.group("room-101")
    assert group is not None
    maths = group.series[base(MATHS)]
    assert maths.recurrence.tz == "Europe/Vienna"
    assert maths.skip == {date(2027, 2, 15), date(2027, 3, 1), date(2027, 3, 8)}
    moved = group.events[f"{base(MATHS)}-20270301"]
    assert (moved.window.start, moved.window.end) == (
        datetime(2027, 3, 2, 9, tzinfo=UTC),
        datetime(2027, 3, 2, 9, 50, tzinfo=UTC),
    )


def test_a_second_import_of_an_unchanged_feed_appends_nothing(ledger: Ledger) -> None:
    sync(ledger, timetable(), prune=True)
    assert sync(ledger, timetable()).appended == 0
    assert sync(ledger, timetable(), prune=True).appended == 0


def test_dry_run_reports_and_appends_nothing(ledger: Ledger) -> None:
    dry = sync(ledger, timetable(), dry_run=True)
    assert dry.appended > 0
    assert ledger.group("room-101") is None
    assert sync(ledger, timetable()).appended == dry.appended


def test_a_changed_feed_changes_rules_skips_and_times(ledger: Ledger) -> None:
    sync(ledger, timetable())
    changed = (
        timetable()
        .replace(b"DTEND;TZID=Europe/Vienna:20270111T085000", b"DTEND;TZID=Europe/Vienna:20270111T090000")
        .replace(b"EXDATE;TZID=Europe/Vienna:20270215T080000", b"EXDATE;TZID=Europe/Vienna:20270222T080000")
        .replace(
            b"20270302T100000\nDTEND;TZID=Europe/Vienna:20270302T105000",
            b"20270302T110000\nDTEND;TZID=Europe/Vienna:20270302T115000",
        )
    )
    assert parse_ics(changed).skipped == ()
    receipt = sync(ledger, changed)
    kinds = sorted(type(e).__name__ for e in receipt.events)
    assert kinds == ["EventRescheduled", "SeriesChanged", "SeriesSkipped", "SeriesUnskipped"]
    group = ledger.group("room-101")
    assert group is not None
    maths = group.series[base(MATHS)]
    assert maths.recurrence.first_end == datetime(2027, 1, 11, 9)
    assert maths.skip == {date(2027, 2, 22), date(2027, 3, 1), date(2027, 3, 8)}


def test_a_lesson_cancelled_later_is_cancelled_without_prune(ledger: Ledger) -> None:
    sync(ledger, timetable())
    moved = f"{base(MATHS)}-20270301"
    cancelled = timetable().replace(b"SUMMARY:Mathematik 3b (verlegt)", b"STATUS:CANCELLED")
    receipt = sync(ledger, cancelled)
    assert [type(e).__name__ for e in receipt.events] == ["EventCancelled"]
    assert moved not in live(ledger)[0]
    # It comes back when the feed says so again.
    assert [type(e).__name__ for e in sync(ledger, timetable()).events] == ["EventRescheduled"]
    assert moved in live(ledger)[0]


def test_a_cancelled_series_is_cancelled(ledger: Ledger) -> None:
    sync(ledger, timetable())
    gone = timetable().replace(b"SUMMARY:Mathematik 3b\n", b"SUMMARY:Mathematik 3b\nSTATUS:CANCELLED\n", 1)
    receipt = sync(ledger, gone)
    assert sorted(type(e).__name__ for e in receipt.events) == ["EventCancelled", "SeriesCancelled"]
    assert base(MATHS) not in live(ledger)[1]


def test_prune_cancels_only_this_prefix_on_this_target(ledger: Ledger) -> None:
    ledger.add_client("kiosk", None, ME)
    sync(ledger, timetable())  # ics- on room-101
    sync(ledger, timetable(), prefix="b-")  # another feed on the same group
    sync(ledger, timetable(), TargetRef("client", "kiosk"), prefix="k-")  # the same feed elsewhere
    ledger.add_event(
        "manual-1", ROOM, Window(datetime(2027, 2, 1, 8, tzinfo=UTC), datetime(2027, 2, 1, 9, tzinfo=UTC)), ME
    )  # not from a feed
    empty = b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n"
    assert sync(ledger, empty).appended == 0  # without --prune nothing goes
    receipt = sync(ledger, empty, prune=True, allow_empty=True)
    assert (
        sorted(type(e).__name__ for e in receipt.events) == ["EventCancelled"] * 2 + ["SeriesCancelled"] * 2
    )
    events, series = live(ledger)
    assert all(i.startswith("b-") for i in series)
    assert len(series) == 2
    assert {i for i in events if not i.startswith("b-")} == {"manual-1"}
    kiosk = ledger.client("kiosk")
    assert len(kiosk.live_series()) == 2
    assert len(kiosk.live_events()) == 2


def test_an_empty_feed_does_not_prune_without_allow_empty(ledger: Ledger) -> None:
    """A calendar server in trouble may answer with an empty calendar: --prune then cancels
    nothing and says why, unless the operator allows an empty feed."""
    sync(ledger, timetable())
    before = live(ledger)
    empty = b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n"
    with pytest.raises(
        EmptyFeed, match=r"the feed is empty: --prune would cancel all \d+ items of prefix 'ics-'"
    ):
        sync(ledger, empty, prune=True)
    assert live(ledger) == before
    assert sync(ledger, empty, prune=True, prefix="other-").appended == 0  # nothing of that prefix: fine


def test_prune_and_imports_leave_the_past_alone(ledger: Ledger) -> None:
    later = datetime(2027, 3, 5, tzinfo=UTC)  # the moved lesson (2 March) has ended
    receipt = sync(ledger, timetable(), now=later)
    assert f"{base(MATHS)}-20270301" not in live(ledger)[0]  # an ended event is not added
    assert receipt.appended > 0
    sync(ledger, timetable())  # imported while it lay ahead
    empty = b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n"
    pruned = sync(ledger, empty, prune=True, now=later, allow_empty=True)
    cancelled = {getattr(e, "event_id", None) or getattr(e, "series_id", None) for e in pruned.events}
    # The series and the project days still lie ahead; the moved lesson is history and stays.
    assert f"{base(MATHS)}-20270301" not in cancelled
    assert base(MATHS) in cancelled
    assert base("project-days-2027@timetable.example.org") in cancelled


def test_an_event_moved_into_the_past_is_moved_not_left_ahead(ledger: Ledger) -> None:
    sync(ledger, timetable())
    moved_back = timetable().replace(
        b"DTSTART;TZID=Europe/Vienna:20270302T100000\nDTEND;TZID=Europe/Vienna:20270302T105000",
        b"DTSTART;TZID=Europe/Vienna:20270102T100000\nDTEND;TZID=Europe/Vienna:20270102T105000",
    )
    receipt = sync(ledger, moved_back, now=datetime(2027, 2, 1, tzinfo=UTC))
    assert [type(e).__name__ for e in receipt.events] == ["EventRescheduled"]


def test_an_unregistered_client_is_refused(ledger: Ledger) -> None:
    with pytest.raises(ClientNotFound):
        sync(ledger, timetable(), TargetRef("client", "ghost"))


def test_the_same_prefix_on_two_targets_is_a_conflict_naming_the_record(ledger: Ledger) -> None:
    ledger.add_client("kiosk", None, ME)
    sync(ledger, timetable())
    with pytest.raises(IdConflict, match=r"already exists: group room-101, 2027-03-02T09:00:00Z"):
        sync(ledger, timetable(), TargetRef("client", "kiosk"))
    assert ledger.client("kiosk").live_events() == []


def test_the_summary_is_the_note_and_the_actor_is_kept(ledger: Ledger) -> None:
    feed = parse_ics(timetable())
    receipt = ledger.sync_feed(
        feed, ROOM, prefix="ics-", prune=False, now=NOW, meta=Meta("sync:timetable.ics")
    )
    notes = {getattr(e, "note", None) for e in receipt.events}
    assert {"Mathematik 3b", "Projekttage", "Mathematik 3b (verlegt)"} <= notes
    assert {getattr(e, "actor", "sync:timetable.ics") for e in receipt.events} == {"sync:timetable.ics"}


def test_the_bulk_read_workspace_holds_what_the_repository_holds(ledger: Ledger) -> None:
    sync(ledger, timetable())
    sync(ledger, timetable().replace(b"SUMMARY:Mathematik 3b (verlegt)", b"STATUS:CANCELLED"))
    feed = parse_ics(timetable())
    ids = feed_aggregate_ids(feed, ROOM)
    ws = preloaded_workspace(ledger, [*ids, Group.id_for("nobody")], ledger._load)
    for aggregate_id in ids:
        bulk, one = ws.get(Aggregate, aggregate_id), ledger._load(aggregate_id)
        assert bulk is not None
        assert one is not None
        assert (type(bulk), bulk.version, vars(bulk)) == (type(one), one.version, vars(one))
    assert ws.get(Group, Group.id_for("nobody")) is None
