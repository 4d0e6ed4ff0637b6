"""The fold over series: DST in four zones, gap and repeated local times, merging, skips, the 31-day cap."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.occurrences import occurrences
from ledger.recurrence import Recurrence, Series, format_local
from ledger.values import Override, Policy, ScheduledEvent, Window
from projections.merge import Span
from projections.timeline import Timeline, client_timeline
from tests.projections.test_timeline import Sched as BareSched


class Sched(BareSched):
    """A bare schedule with series and UTC event windows."""

    def add(
        self, series_id: str, tz: str, start: str, end: str, rule: str = "FREQ=DAILY", **kw: object
    ) -> Sched:
        recurrence = Recurrence.parse(tz, start, end, rule)
        self.series[series_id] = Series(series_id, recurrence, **kw)  # type: ignore[arg-type]
        return self

    def window(self, event_id: str, start: str, end: str) -> Sched:
        self.events[event_id] = ScheduledEvent(event_id, Window.parse(start, end))
        return self

    def timeline(self, policy: Policy | None = None) -> Timeline:
        return client_timeline(Sched(), self, policy or Policy())


def z(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def windows(s: Sched, start: str, end: str) -> list[tuple[str, str, str]]:
    return [
        (o.name, o.start.strftime("%m-%dT%H:%MZ"), o.end.strftime("%m-%dT%H:%MZ"))
        for series in s.series.values()
        for o in occurrences(series, z(start), z(end))
    ]


# Daily 07:30-16:00 local, on the day before and the day after each change of 2027.
DAY_AROUND_CHANGES = {
    "Europe/Berlin": [
        ("2027-03-27", "03-27T06:30Z", "03-27T15:00Z"),
        ("2027-03-29", "03-29T05:30Z", "03-29T14:00Z"),
        ("2027-10-30", "10-30T05:30Z", "10-30T14:00Z"),
        ("2027-11-01", "11-01T06:30Z", "11-01T15:00Z"),
    ],
    "America/New_York": [
        ("2027-03-13", "03-13T12:30Z", "03-13T21:00Z"),
        ("2027-03-15", "03-15T11:30Z", "03-15T20:00Z"),
        ("2027-11-06", "11-06T11:30Z", "11-06T20:00Z"),
        ("2027-11-08", "11-08T12:30Z", "11-08T21:00Z"),
    ],
    "Australia/Sydney": [  # summer time ends in April, begins in October
        ("2027-04-03", "04-02T20:30Z", "04-03T05:00Z"),
        ("2027-04-05", "04-04T21:30Z", "04-05T06:00Z"),
        ("2027-10-02", "10-01T21:30Z", "10-02T06:00Z"),
        ("2027-10-04", "10-03T20:30Z", "10-04T05:00Z"),
    ],
    "Australia/Lord_Howe": [  # a 30-minute shift: +11:00 <-> +10:30
        ("2027-04-03", "04-02T20:30Z", "04-03T05:00Z"),
        ("2027-04-05", "04-04T21:00Z", "04-05T05:30Z"),
        ("2027-10-02", "10-01T21:00Z", "10-02T05:30Z"),
        ("2027-10-04", "10-03T20:30Z", "10-04T05:00Z"),
    ],
}


@pytest.mark.parametrize("tz", sorted(DAY_AROUND_CHANGES))
def test_a_daily_series_keeps_its_local_hours_across_both_changes(tz: str) -> None:
    s = Sched().add("hours", tz, "2027-01-01T07:30", "2027-01-01T16:00")
    timeline = s.timeline()
    for day, start, end in DAY_AROUND_CHANGES[tz]:
        on = z(f"2027-{start[:-1]}:00Z")
        off = z(f"2027-{end[:-1]}:00Z")
        assert timeline.at(on - timedelta(seconds=1)).desired_state == "off", (tz, day)
        intent = timeline.at(on)
        assert (intent.desired_state, intent.event_window) == ("on", Span(on, off)), (tz, day)
        assert timeline.next_boundary(on) == off
        assert timeline.at(off).desired_state == "off"
        assert timeline.named_at(on) == [f"series hours@{day}"]


# A local start in the spring-forward gap takes the offset before the gap; a repeated one is the first.
GAP_AND_FOLD = [
    ("Europe/Berlin", "2027-03-28T02:30", "04:00", "03-28T01:30Z", "03-28T02:00Z"),  # DESIGN 11's example
    ("America/New_York", "2027-03-14T02:30", "04:00", "03-14T07:30Z", "03-14T08:00Z"),
    ("Australia/Sydney", "2027-10-03T02:30", "04:00", "10-02T16:30Z", "10-02T17:00Z"),
    ("Australia/Lord_Howe", "2027-10-03T02:15", "03:00", "10-02T15:45Z", "10-02T16:00Z"),
    ("Europe/Berlin", "2027-10-31T02:30", "03:00", "10-31T00:30Z", "10-31T02:00Z"),  # repeated: CEST first
    ("America/New_York", "2027-11-07T01:30", "03:00", "11-07T05:30Z", "11-07T08:00Z"),
    ("Australia/Sydney", "2027-04-04T02:30", "03:00", "04-03T15:30Z", "04-03T17:00Z"),
    ("Australia/Lord_Howe", "2027-04-04T01:45", "03:00", "04-03T14:45Z", "04-03T16:30Z"),
]


@pytest.mark.parametrize(("tz", "local", "until", "start", "end"), GAP_AND_FOLD)
def test_gap_and_repeated_local_times_follow_rfc_5545(
    tz: str, local: str, until: str, start: str, end: str
) -> None:
    day = local[:10]
    s = Sched().add("s", tz, local, f"{day}T{until}", "FREQ=YEARLY")
    assert windows(s, "2027-01-01T00:00:00Z", "2028-01-01T00:00:00Z") == [(f"s@{day}", start, end)]


OVERNIGHT = {  # 22:00-06:00 local (nominal 8 h) on the night of each change
    "Europe/Berlin": [
        ("2027-03-27", "03-27T21:00Z", "03-28T04:00Z"),
        ("2027-10-30", "10-30T20:00Z", "10-31T05:00Z"),
    ],
    "America/New_York": [
        ("2027-03-13", "03-14T03:00Z", "03-14T10:00Z"),
        ("2027-11-06", "11-07T02:00Z", "11-07T11:00Z"),
    ],
    "Australia/Sydney": [
        ("2027-04-03", "04-03T11:00Z", "04-03T20:00Z"),
        ("2027-10-02", "10-02T12:00Z", "10-02T19:00Z"),
    ],
    "Australia/Lord_Howe": [
        ("2027-04-03", "04-03T11:00Z", "04-03T19:30Z"),
        ("2027-10-02", "10-02T11:30Z", "10-02T19:00Z"),
    ],
}


@pytest.mark.parametrize("tz", sorted(OVERNIGHT))
def test_an_overnight_occurrence_ends_at_the_same_wall_clock_time_across_a_change(tz: str) -> None:
    s = Sched().add("night", tz, "2027-01-01T22:00", "2027-01-02T06:00")
    found = windows(s, "2027-01-01T00:00:00Z", "2028-01-01T00:00:00Z")
    for day, start, end in OVERNIGHT[tz]:
        assert (f"night@{day}", start, end) in found


def test_an_occurrence_that_is_empty_in_utc_is_dropped() -> None:
    """02:00-03:00 on the morning Berlin springs forward is 01:00Z..01:00Z: no window at all."""
    s = Sched().add("s", "Europe/Berlin", "2027-03-27T02:00", "2027-03-27T03:00")
    names = [n for n, _, _ in windows(s, "2027-03-26T00:00:00Z", "2027-03-30T00:00:00Z")]
    assert names == ["s@2027-03-27", "s@2027-03-29"]


def test_skipped_dates_have_no_occurrence_and_the_first_start_always_counts() -> None:
    s = Sched().add(
        "hours",
        "Europe/Berlin",
        "2027-01-03T07:30",  # a Sunday: not in the rule, yet the first occurrence (RFC 5545)
        "2027-01-03T16:00",
        "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR",
        skip=frozenset({date(2027, 1, 5)}),
    )
    names = [n for n, _, _ in windows(s, "2027-01-01T00:00:00Z", "2027-01-09T00:00:00Z")]
    assert names == [
        "hours@2027-01-03",
        "hours@2027-01-04",
        "hours@2027-01-06",
        "hours@2027-01-07",
        "hours@2027-01-08",
    ]


def test_occurrences_merge_with_a_touching_event_and_each_other() -> None:
    """An evening event right after opening hours, and a lesson inside them: one block, never off."""
    s = (
        Sched()
        .add(
            "hours",
            "Europe/Berlin",
            "2027-03-29T07:30",
            "2027-03-29T16:00",
            "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR",
        )
        .add("lesson", "Europe/Berlin", "2027-03-29T15:00", "2027-03-29T17:00", "FREQ=WEEKLY;BYDAY=MO")
        .window("party", "2027-03-29T15:00:00Z", "2027-03-29T18:00:00Z")
    )
    timeline = s.timeline()
    pieces = [
        (p.start, p.end, p.intent.desired_state)
        for p in timeline.segments(z("2027-03-29T00:00:00Z"), z("2027-03-30T00:00:00Z"))
    ]
    assert pieces == [
        (z("2027-03-29T00:00:00Z"), z("2027-03-29T05:30:00Z"), "off"),
        (z("2027-03-29T05:30:00Z"), z("2027-03-29T18:00:00Z"), "on"),
        (z("2027-03-29T18:00:00Z"), z("2027-03-30T00:00:00Z"), "off"),
    ]
    assert timeline.at(z("2027-03-29T12:00:00Z")).event_window == Span(
        z("2027-03-29T05:30:00Z"), z("2027-03-29T18:00:00Z")
    )
    assert timeline.named_at(z("2027-03-29T05:30:00Z")) == [
        "series hours@2027-03-29",
        "series lesson@2027-03-29",
        "event party",
    ]


def test_a_round_the_clock_series_is_on_throughout_in_blocks_of_at_most_31_days() -> None:
    s = Sched().add("always", "UTC", "2027-01-01T00:00", "2027-01-02T00:00")
    timeline = s.timeline()
    start = z("2027-01-01T00:00:00Z")
    pieces = timeline.segments(start, start + timedelta(days=100))
    assert all(p.intent.desired_state == "on" for p in pieces)
    spans = [p.intent.event_window for p in pieces]
    assert all(w is not None and w.end - w.start <= timedelta(days=31) for w in spans)
    assert [p.start for p in pieces[:4]] == [start + timedelta(days=31 * i) for i in range(4)]
    # Asked years later, the blocks still follow from the very first occurrence.
    later = start + timedelta(days=31 * 120 + 5)
    assert timeline.at(later).event_window == Span(later - timedelta(days=5), later + timedelta(days=26))


def test_overrides_still_win_over_occurrences() -> None:
    s = Sched().add("hours", "Europe/Berlin", "2027-01-04T07:30", "2027-01-04T16:00")
    s.overrides["dark"] = Override(
        "dark", "off", Window.parse("2027-01-05T08:00:00Z", "2027-01-05T09:00:00Z"), 1
    )
    timeline = s.timeline()
    assert timeline.at(z("2027-01-05T08:30:00Z")).reason == "group_override"
    assert timeline.next_boundary(z("2027-01-05T07:00:00Z")) == z("2027-01-05T08:00:00Z")
    assert timeline.next_boundary(z("2027-01-05T08:00:00Z")) == z("2027-01-05T09:00:00Z")
    assert timeline.next_boundary(z("2027-01-05T09:00:00Z")) == z("2027-01-05T15:00:00Z")


def test_ten_years_on_the_fold_answers_from_the_occurrences_near_the_instant() -> None:
    s = Sched().add(
        "hours", "Europe/Berlin", "2027-01-04T07:30", "2027-01-04T16:00", "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR"
    )
    timeline = s.timeline()
    t = z("2037-03-30T10:00:00Z")  # a Monday, summer time
    assert timeline.at(t).event_window == Span(z("2037-03-30T05:30:00Z"), z("2037-03-30T14:00:00Z"))
    assert timeline.next_boundary(t) == z("2037-03-30T14:00:00Z")
    # Friday 27 March is still winter time; summer time begins on Sunday 29 March 2037.
    assert timeline.next_boundary(z("2037-03-27T14:00:00Z")) == z("2037-03-27T15:00:00Z")
    assert timeline.next_boundary(z("2037-03-27T15:00:00Z")) == z("2037-03-30T05:30:00Z")


def test_a_bounded_series_ends() -> None:
    s = Sched().add("s", "UTC", "2027-01-01T08:00", "2027-01-01T09:00", "FREQ=DAILY;UNTIL=20270103T080000Z")
    timeline = s.timeline()
    assert timeline.next_boundary(z("2027-01-03T08:30:00Z")) == z("2027-01-03T09:00:00Z")
    assert timeline.next_boundary(z("2027-01-03T09:00:00Z")) is None


# Property: the lazy fold equals the eager fold of the same occurrences written out as one-off events.

_T0 = datetime(2027, 1, 1, tzinfo=UTC)


@st.composite
def schedules(draw: st.DrawFn) -> tuple[Sched, Sched, Policy]:
    lazy, eager = Sched(), Sched()
    for i in range(draw(st.integers(1, 3))):
        start = datetime(2027, 1, 1) + timedelta(minutes=draw(st.integers(0, 20 * 24 * 4)) * 15)
        length = timedelta(minutes=15 * draw(st.one_of(st.integers(1, 40), st.integers(90, 200))))
        rule = draw(
            st.sampled_from(["FREQ=DAILY", "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR", "FREQ=DAILY;INTERVAL=2"])
        )
        tz = draw(st.sampled_from(["UTC", "Europe/Berlin"]))
        lazy.add(f"s{i}", tz, format_local(start), format_local(start + length), rule)
    for i in range(draw(st.integers(0, 3))):
        start = _T0 + timedelta(minutes=15 * draw(st.integers(0, 90 * 24 * 4)))
        window = Window(start, start + timedelta(minutes=15 * draw(st.integers(1, 200))))
        lazy.events[f"e{i}"] = eager.events[f"e{i}"] = ScheduledEvent(f"e{i}", window)
    for s in lazy.series.values():
        for o in occurrences(s, _T0 - timedelta(days=1), _T0 + timedelta(days=150)):
            eager.events[o.name] = ScheduledEvent(o.name, Window(o.start, o.end))
    seconds = st.sampled_from([0, 0, 300, 900, 3600])
    return lazy, eager, Policy(pre_roll=draw(seconds), post_roll=draw(seconds), bridge_gap=draw(seconds))


@settings(max_examples=80, deadline=None)
@given(schedules(), st.lists(st.integers(30 * 24 * 60, 90 * 24 * 60), min_size=1, max_size=8))
def test_the_lazy_fold_equals_the_eager_fold_of_its_occurrences(
    schedule: tuple[Sched, Sched, Policy], minutes: list[int]
) -> None:
    lazy_s, eager_s, policy = schedule
    lazy, eager = lazy_s.timeline(policy), eager_s.timeline(policy)
    for t in sorted(_T0 + timedelta(minutes=m) for m in minutes):
        assert lazy.at(t) == eager.at(t), t
        assert lazy.next_boundary(t) == eager.next_boundary(t), t
    t = _T0 + timedelta(minutes=minutes[0])
    assert lazy.segments(t, t + timedelta(days=9)) == eager.segments(t, t + timedelta(days=9))


def test_a_series_whose_every_occurrence_is_empty_in_utc_never_hangs_the_fold() -> None:
    """02:00-03:00 on the last Sunday of March in Berlin is always inside the gap: no window, ever."""
    s = Sched().add(
        "gap", "Europe/Berlin", "2027-03-28T02:00", "2027-03-28T03:00", "FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU"
    )
    timeline = s.timeline()
    assert timeline.at(_T0).desired_state == "off"
    assert timeline.next_boundary(_T0) is None
