"""The pure timeline fold: merging, precedence, deregistration, and its properties."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import codec
from ledger.recurrence import Series
from ledger.values import Override, Policy, ScheduledEvent, Window
from projections import merge
from projections.timeline import Span, client_timeline, group_timeline, merge_blocks

T0 = datetime(2026, 3, 31, tzinfo=UTC)


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def win(a: float, b: float) -> Window:
    return Window(at(a), at(b))


@dataclass
class Sched:
    """A bare schedule (the timeline only needs these attributes)."""

    events: dict[str, ScheduledEvent] = field(default_factory=dict)
    overrides: dict[str, Override] = field(default_factory=dict)
    series: dict[str, Series] = field(default_factory=dict)
    client_id: str = "c1"
    group_id: str | None = "g1"
    registered: bool = True

    def event(self, event_id: str, a: float, b: float, cancelled: bool = False) -> Sched:
        self.events[event_id] = ScheduledEvent(event_id, win(a, b), cancelled)
        return self

    def override(self, oid: str, state: str, a: float, b: float, rank: int) -> Sched:
        self.overrides[oid] = Override(oid, state, win(a, b), rank)
        return self


def test_adjacent_windows_form_one_on_block() -> None:
    """08:00-09:00 and 09:00-10:00: no instant between 08:00 and 10:00 is off."""
    group = Sched().event("a", 8, 9).event("b", 9, 10)
    timeline = client_timeline(Sched(), group, Policy())
    for minute in range(0, 120):
        intent = timeline.at(at(8 + minute / 60))
        assert intent.desired_state == "on"
        assert intent.event_window == Span(at(8), at(10))
    assert timeline.at(at(10)).desired_state == "off"
    assert timeline.next_boundary(at(8)) == at(10)


def test_overlapping_windows_form_one_block_with_the_outer_window() -> None:
    """Overlaps merge; the block reports the earliest start and latest end."""
    timeline = client_timeline(Sched().event("c", 8.5, 11), Sched().event("a", 8, 9), Policy())
    assert timeline.at(at(10.5)).event_window == Span(at(8), at(11))
    assert [s.intent.desired_state for s in timeline.segments(at(7), at(12))] == ["off", "on", "off"]


def test_bridge_gap_merges_small_gaps_only() -> None:
    """A 10-minute gap stays on with bridge_gap 600 s, and goes off with 599 s."""
    group = Sched().event("a", 8, 9).event("b", 9 + 10 / 60, 10)
    assert client_timeline(Sched(), group, Policy(bridge_gap=600)).at(at(9.05)).desired_state == "on"
    assert client_timeline(Sched(), group, Policy(bridge_gap=599)).at(at(9.05)).desired_state == "off"


def test_pre_and_post_roll_widen_the_block_but_not_its_event_window() -> None:
    """The TV is on before start and after end; event_window still names the events."""
    timeline = client_timeline(Sched(), Sched().event("a", 8, 9), Policy(pre_roll=300, post_roll=600))
    on = timeline.at(at(8) - timedelta(seconds=300))
    assert on.desired_state == "on"
    assert on.event_window == Span(at(8), at(9))
    assert timeline.at(at(9) + timedelta(seconds=599)).desired_state == "on"
    assert timeline.at(at(9) + timedelta(seconds=600)).desired_state == "off"


def test_blocks_of_equal_windows_share_their_widened_instants(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two groups' blocks over the same times hold one object per instant (a fleet's memory),
    and equal to the widened windows' instants."""
    # Empty tables: one nearly full from earlier tests would be emptied between the merges.
    monkeypatch.setattr(merge, "_WIDENED", {})
    monkeypatch.setattr(codec, "_INSTANTS", {})
    policy = Policy(pre_roll=300, post_roll=600)
    first = merge_blocks([win(8, 9), win(12, 13)], policy)
    second = merge_blocks([win(12, 13), win(8, 9), win(15, 16)], policy)
    assert [(b.start, b.end) for b in first] == [
        (at(8) - timedelta(seconds=300), at(9) + timedelta(seconds=600)),
        (at(12) - timedelta(seconds=300), at(13) + timedelta(seconds=600)),
    ]
    for one, other in zip(first, second, strict=False):
        assert one.start is other.start
        assert one.end is other.end


def test_cancelled_events_do_not_count() -> None:
    """A cancelled event leaves no on-block."""
    timeline = client_timeline(Sched().event("a", 8, 9, cancelled=True), None, Policy())
    assert timeline.at(at(8.5)).reason == "no_active_event"


def test_precedence_client_override_beats_group_override_beats_events() -> None:
    """client override > group override > events > off."""
    group = Sched().event("a", 8, 12).override("g-off", "off", 9, 11, rank=5)
    client = Sched().override("c-on", "on", 10, 10.5, rank=1)
    timeline = client_timeline(client, group, Policy())
    table = [
        (7, "off", "no_active_event", None),
        (8.5, "on", "event_window_active", Span(at(8), at(12))),
        (9.5, "off", "group_override", None),
        (10.25, "on", "client_override", Span(at(10), at(10.5))),
        (10.75, "off", "group_override", None),
        (11.5, "on", "event_window_active", Span(at(8), at(12))),
    ]
    for hour, state, reason, window in table:
        intent = timeline.at(at(hour))
        assert (intent.desired_state, intent.reason, intent.event_window) == (state, reason, window), hour


def test_most_recently_set_override_of_one_level_wins() -> None:
    """Among overlapping overrides of one level the higher rank (set later) decides."""
    client = Sched().override("old", "off", 8, 12, rank=3).override("new", "on", 9, 10, rank=7)
    timeline = client_timeline(client, None, Policy())
    assert timeline.at(at(9.5)).desired_state == "on"
    assert timeline.at(at(8.5)).desired_state == "off"
    client.overrides["old"] = Override("old", "off", win(8, 12), rank=9)
    assert client_timeline(client, None, Policy()).at(at(9.5)).desired_state == "off"


def test_deregistered_client_is_off_forever() -> None:
    """A removed client is off with reason client_deregistered, whatever its schedule."""
    client = Sched(registered=False).event("a", 8, 9)
    timeline = client_timeline(client, Sched().event("b", 8, 9), Policy())
    intent = timeline.at(at(8.5))
    assert (intent.desired_state, intent.reason) == ("off", "client_deregistered")
    assert timeline.next_boundary(at(0)) is None


def test_group_timeline_has_no_client() -> None:
    """Group topics carry the group's own state with a null client_id."""
    timeline = group_timeline(Sched(group_id="g1").event("a", 8, 9), Policy())  # type: ignore[arg-type]
    intent = timeline.at(at(8.5))
    assert (intent.client_id, intent.group_id, intent.desired_state) == (None, "g1", "on")


def test_a_merged_block_reports_at_most_31_days() -> None:
    """A chain of adjacent windows starts a new block where its event_window would pass 31 days."""
    windows = [Window(T0 + timedelta(days=20 * i), T0 + timedelta(days=20 * (i + 1))) for i in range(3)]
    blocks = merge_blocks(windows, Policy())
    assert [b.window for b in blocks] == [
        Span(T0 + timedelta(days=20 * i), T0 + timedelta(days=20 * (i + 1))) for i in range(3)
    ]
    assert [(b.start, b.end) for b in blocks] == [(w.start, w.end) for w in windows]  # touching: never off


# Properties over random schedules and policies.

minutes = st.integers(min_value=0, max_value=24 * 60)
windows_st = st.lists(
    st.tuples(minutes, st.integers(min_value=1, max_value=240)).map(
        lambda p: Window(T0 + timedelta(minutes=p[0]), T0 + timedelta(minutes=p[0] + p[1]))
    ),
    max_size=12,
)
policies = st.builds(
    Policy,
    pre_roll=st.sampled_from([0, 60, 300, 900]),
    post_roll=st.sampled_from([0, 60, 300, 900]),
    bridge_gap=st.sampled_from([0, 60, 600, 1800]),
)
overrides_st = st.lists(
    st.tuples(st.sampled_from(["on", "off"]), minutes, st.integers(min_value=1, max_value=180)),
    max_size=3,
)


def _build(
    client_windows: list[Window], group_windows: list[Window], overrides: list[tuple[str, int, int]]
) -> tuple[Sched, Sched]:
    client, group = Sched(), Sched()
    for i, w in enumerate(client_windows):
        client.events[f"c{i}"] = ScheduledEvent(f"c{i}", w)
    for i, w in enumerate(group_windows):
        group.events[f"g{i}"] = ScheduledEvent(f"g{i}", w)
    for i, (state, start, length) in enumerate(overrides):
        w = Window(T0 + timedelta(minutes=start), T0 + timedelta(minutes=start + length))
        (client if i % 2 else group).overrides[f"o{i}"] = Override(f"o{i}", state, w, rank=i)
    return client, group


@settings(max_examples=200, deadline=None)
@given(windows_st, windows_st, policies, overrides_st)
def test_segments_are_disjoint_cover_the_range_and_are_maximal(
    client_windows: list[Window],
    group_windows: list[Window],
    policy: Policy,
    overrides: list[tuple[str, int, int]],
) -> None:
    """Segments tile [lo, hi) without gaps or overlaps, and neighbours always differ."""
    client, group = _build(client_windows, group_windows, overrides)
    timeline = client_timeline(client, group, policy)
    lo, hi = T0 - timedelta(hours=2), T0 + timedelta(hours=30)
    segments = timeline.segments(lo, hi)
    assert segments[0].start == lo
    assert segments[-1].end == hi
    for a, b in itertools.pairwise(segments):
        assert a.end == b.start
        assert a.intent != b.intent
    for s in segments:
        assert s.start is not None
        assert s.end is not None
        assert s.start < s.end
        assert timeline.at(s.start) == s.intent


@settings(max_examples=200, deadline=None)
@given(windows_st, windows_st, policies)
def test_no_off_inside_a_merged_block(
    client_windows: list[Window], group_windows: list[Window], policy: Policy
) -> None:
    """Without overrides, every instant covered by a widened event or a bridged gap is on."""
    client, group = _build(client_windows, group_windows, [])
    timeline = client_timeline(client, group, policy)
    widened = sorted(
        (w.start - timedelta(seconds=policy.pre_roll), w.end + timedelta(seconds=policy.post_roll))
        for w in [*client_windows, *group_windows]
    )
    for start, end in widened:
        for t in (start, start + (end - start) / 2, end - timedelta(seconds=1)):
            assert timeline.at(t).desired_state == "on"
    # A gap between consecutive widened windows that is at most bridge_gap stays on.
    reach = None
    for start, end in widened:
        if reach is not None and timedelta(0) < start - reach <= timedelta(seconds=policy.bridge_gap):
            assert timeline.at(reach).desired_state == "on"
        reach = end if reach is None else max(reach, end)
    # And instants far from every window are off.
    if not widened:
        assert timeline.at(T0).desired_state == "off"


@settings(max_examples=100, deadline=None)
@given(windows_st, policies, overrides_st, st.lists(st.integers(-120, 1800), min_size=1, max_size=8))
def test_members_sharing_a_remembering_timeline_get_what_a_fresh_one_says(
    group_windows: list[Window], policy: Policy, overrides: list[tuple[str, int, int]], minutes: list[int]
) -> None:
    """The answers a group's timeline remembers are the same for each member (their own ids) and
    the same as a timeline that remembers nothing: a cache of a pure function."""
    _, group = _build([], group_windows, overrides)
    shared = group_timeline(group, policy)  # type: ignore[arg-type]
    instants = [T0 + timedelta(minutes=m) for m in minutes]
    for member in ("m1", "m2", "m1"):
        timeline = shared.for_target(member, "g1")
        fresh = group_timeline(group, policy).for_target(member, "g1")  # type: ignore[arg-type]
        for t in instants + instants:
            assert timeline.at(t) == fresh.at(t)
            assert timeline.at(t).client_id == member
            assert timeline.next_boundary(t) == fresh.next_boundary(t)
    gone = shared.for_target("m3", "g1", registered=False)
    assert all(gone.at(t).reason == "client_deregistered" and gone.next_boundary(t) is None for t in instants)
