"""The timeline fold: (schedule, policy) -> a piecewise-constant desired state.

Pure functions of their arguments: nothing here reads a clock or a database.
A `Timeline` answers `at(t)`, `next_boundary(after)` and `segments(start, end)`.
"""

from __future__ import annotations

import heapq
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol, cast

from ledger.recurrence import Series
from ledger.values import Override, Policy, ScheduledEvent, Window
from projections.blocks import Blocks, EagerBlocks, LazyBlocks
from projections.intents import REASONS, Intent, Segment
from projections.merge import Block, Span, merge_blocks
from projections.splice import merged_with

__all__ = [
    "REASONS",
    "Block",
    "Intent",
    "Segment",
    "Span",
    "Timeline",
    "client_timeline",
    "group_timeline",
    "merge_blocks",
    "schedule_blocks",
]


class Schedule(Protocol):
    @property
    def events(self) -> Mapping[str, ScheduledEvent]: ...
    @property
    def overrides(self) -> Mapping[str, Override]: ...
    @property
    def series(self) -> Mapping[str, Series]: ...


def _live_overrides(schedule: Schedule | None) -> tuple[Override, ...]:
    if schedule is None:
        return ()
    # Highest rank first: among overrides of one level the most recently set wins.
    return tuple(
        sorted((o for o in schedule.overrides.values() if not o.cleared), key=lambda o: o.rank, reverse=True)
    )


def _live_windows(schedule: Schedule | None) -> list[Window]:
    return [] if schedule is None else [e.window for e in schedule.events.values() if not e.cancelled]


def _live_series(schedule: Schedule | None) -> list[Series]:
    return [] if schedule is None else [s for s in schedule.series.values() if not s.cancelled]


def schedule_blocks(schedules: Sequence[Schedule | None], policy: Policy) -> Blocks:
    """The merged blocks of the schedules' events and series occurrences (lazy when there are series)."""
    windows = [w for schedule in schedules for w in _live_windows(schedule)]
    series = [s for schedule in schedules for s in _live_series(schedule)]
    if series:
        return LazyBlocks(windows, series, policy)
    return EagerBlocks(merge_blocks(windows, policy))


class Timeline:
    """The desired state of one target over all of time."""

    __slots__ = (
        "_at_memo",
        "_boundaries",
        "_next_memo",
        "_override_edges",
        "blocks",
        "client_id",
        "client_overrides",
        "grace_seconds",
        "group_id",
        "group_overrides",
        "registered",
        "sources",
    )

    def __init__(
        self,
        *,
        client_id: str | None,
        group_id: str | None,
        blocks: Blocks,
        group_overrides: Sequence[Override] = (),
        client_overrides: Sequence[Override] = (),
        grace_seconds: int,
        registered: bool = True,
        sources: Sequence[Schedule | None] = (),
    ) -> None:
        self.client_id = client_id
        self.group_id = group_id
        self.blocks = blocks
        self.sources = tuple(s for s in sources if s is not None)
        self.group_overrides = tuple(group_overrides)
        self.client_overrides = tuple(client_overrides)
        self.grace_seconds = grace_seconds
        self.registered = registered
        overrides = {
            t for o in (*self.group_overrides, *self.client_overrides) for t in (o.window.start, o.window.end)
        }
        self._override_edges = sorted(overrides)
        # A finite schedule keeps all its edges in one list; a lazy one merges them on demand.
        self._boundaries: list[datetime] | None = None
        if isinstance(blocks, EagerBlocks):
            self._boundaries = sorted({*blocks.edges, *overrides})
        if not registered:
            self._boundaries = []
        # Answers already worked out, shared by every target `for_target` gives this timeline to
        # (a group's members ask about the same instants): a cache of a pure function.
        self._at_memo: dict[datetime, tuple[str, str, Span | None]] = {}
        self._next_memo: dict[datetime, datetime | None] = {}

    def for_target(self, client_id: str | None, group_id: str | None, registered: bool = True) -> Timeline:
        """This timeline for another target with no schedule of its own (shares the arrays)."""
        other = Timeline.__new__(Timeline)
        for name in Timeline.__slots__:
            setattr(other, name, getattr(self, name))
        other.client_id, other.group_id, other.registered = client_id, group_id, registered
        if not registered:
            other._boundaries = []
        return other

    def _intent(self, state: str, reason: str, window: Span | None) -> Intent:
        return Intent(self.client_id, self.group_id, state, reason, self.grace_seconds, window)

    def at(self, t: datetime) -> Intent:
        """The semantic intent at instant `t`."""
        if not self.registered:
            return self._intent("off", "client_deregistered", None)
        found = self._at_memo.get(t)
        if found is None:
            found = self._state_at(t)
            _remember(self._at_memo, t, found)
        return self._intent(*found)

    def _state_at(self, t: datetime) -> tuple[str, str, Span | None]:
        for overrides, reason in (
            (self.client_overrides, "client_override"),
            (self.group_overrides, "group_override"),
        ):
            for o in overrides:
                if o.window.start <= t < o.window.end:
                    on = o.desired_state == "on"
                    return o.desired_state, reason, Span(o.window.start, o.window.end) if on else None
        block = self.blocks.at(t)
        if block is not None:
            return "on", "event_window_active", block.window
        return "off", "no_active_event", None

    def block_at(self, t: datetime) -> Block | None:
        """The merged block of events and occurrences around `t` (overrides aside)."""
        return self.blocks.at(t)

    def named_at(self, t: datetime) -> list[str]:
        """What begins or ends at `t`: `event ID`, `series ID@DATE` (an occurrence), `override ID`."""
        names = [*self.blocks.names_at(t, self.sources)]
        for o in (*self.client_overrides, *self.group_overrides):
            if t in (o.window.start, o.window.end):
                names.append(f"override {o.override_id}")
        return names

    def _edges_after(self, after: datetime) -> Iterable[datetime]:
        if self._boundaries is not None:
            return self._boundaries[bisect_right(self._boundaries, after) :]
        overrides = self._override_edges[bisect_right(self._override_edges, after) :]
        return heapq.merge(self.blocks.edges_after(after), overrides)

    def next_boundary(self, after: datetime) -> datetime | None:
        """The first instant after `after` whose intent differs from the one at `after`."""
        if not self.registered:
            return None  # no boundaries: off for good
        found = self._next_memo.get(after, _UNKNOWN)
        if found is _UNKNOWN:
            found = self._next_boundary(after)
            _remember(self._next_memo, after, found)
        return cast(datetime | None, found)

    def _next_boundary(self, after: datetime) -> datetime | None:
        if self._boundaries is None and not self._override_edges and isinstance(self.blocks, LazyBlocks):
            # Without overrides every block edge changes the intent (blocks differ in their span).
            return self.blocks.next_edge(after)
        current = self.at(after)
        previous = after
        for edge in self._edges_after(after):
            if edge == previous:
                continue  # an override edge on a block edge
            if self.at(edge) != current:
                return edge
            previous = edge
        return None

    def segments(self, start: datetime, end: datetime) -> list[Segment]:
        """The constant pieces covering [start, end), in order."""
        pieces: list[Segment] = []
        t = start
        while t < end:
            nxt = self.next_boundary(t)
            stop = end if nxt is None or nxt > end else nxt
            pieces.append(Segment(t, stop, self.at(t)))
            t = stop
        return pieces


_UNKNOWN: Any = object()
_MEMO = 64  # instants a timeline remembers answers for; more, and it starts afresh


def _remember(memo: dict[datetime, Any], t: datetime, answer: Any) -> None:
    if len(memo) >= _MEMO:
        memo.clear()
    memo[t] = answer


class ClientLike(Schedule, Protocol):
    @property
    def client_id(self) -> str: ...
    @property
    def group_id(self) -> str | None: ...
    @property
    def registered(self) -> bool: ...


class GroupLike(Schedule, Protocol):
    @property
    def group_id(self) -> str: ...


def client_timeline(
    client: ClientLike,
    group: Schedule | None,
    policy: Policy,
    group_blocks: Blocks | None = None,
) -> Timeline:
    """A client's timeline: its own and its current group's schedule (steps 1-7 of the spec).

    `group_blocks` may pass the group's merged blocks, computed once for all its members.
    """
    own = _live_windows(client)
    spliced = None
    if own and isinstance(group_blocks, EagerBlocks) and not _live_series(client):
        # The group's blocks with the client's windows spliced in, not every window merged again.
        spliced = merged_with(group_blocks.blocks, own, policy)
    blocks: Blocks
    if spliced is not None:
        blocks = EagerBlocks(spliced)
    elif own or _live_series(client) or group_blocks is None:
        blocks = schedule_blocks([client, group], policy)
    else:
        blocks = group_blocks
    return Timeline(
        client_id=client.client_id,
        group_id=client.group_id,
        blocks=blocks,
        group_overrides=_live_overrides(group),
        client_overrides=_live_overrides(client),
        grace_seconds=policy.grace_seconds,
        registered=client.registered,
        sources=(client, group),
    )


def group_timeline(group: GroupLike, policy: Policy) -> Timeline:
    """A group topic's timeline: the group's own events and overrides (steps 1-5)."""
    return Timeline(
        client_id=None,
        group_id=group.group_id,
        blocks=schedule_blocks([group], policy),
        group_overrides=_live_overrides(group),
        grace_seconds=policy.grace_seconds,
        sources=(group,),
    )
