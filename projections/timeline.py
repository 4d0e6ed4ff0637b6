"""The timeline fold: (schedule, policy) -> a piecewise-constant desired state.

Pure functions of their arguments: nothing here reads a clock or a database.
A `Timeline` answers `at(t)`, `next_boundary(after)` and `segments(start, end)`.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import msgspec

from ledger.intent import IntentFields
from ledger.values import Override, Policy, ScheduledEvent, Window, format_instant

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
]

REASONS = (
    "event_window_active",
    "no_active_event",
    "group_override",
    "client_override",
    "client_deregistered",
)


@dataclass(frozen=True, slots=True, order=True)
class Span:
    """An `event_window`: the earliest event start and latest event end of a block
    (or an override's window). Unlike a `Window` it may exceed 31 days."""

    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class Intent:
    """The semantic intent: every payload field except intent_id, issued_at, expires_at."""

    client_id: str | None
    group_id: str | None
    desired_state: str
    reason: str
    grace_seconds: int
    event_window: Span | None

    def window_dict(self) -> dict[str, str] | None:
        w = self.event_window
        return None if w is None else {"start": format_instant(w.start), "end": format_instant(w.end)}

    def semantic(self) -> IntentFields:
        """The semantic fields, as an intent log records them."""
        return IntentFields(
            self.client_id,
            self.group_id,
            self.desired_state,
            self.reason,
            self.grace_seconds,
            self.window_dict(),
        )

    def fields(self) -> dict[str, Any]:
        """The semantic fields as a dict (for reports and JSON)."""
        return msgspec.structs.asdict(self.semantic())


@dataclass(frozen=True, slots=True)
class Block:
    """Merged, widened event windows: `on` over [start, end); `window` spans the events inside."""

    start: datetime
    end: datetime
    window: Span


@dataclass(frozen=True, slots=True)
class Segment:
    start: datetime | None  # None: unbounded
    end: datetime | None
    intent: Intent


class Schedule(Protocol):
    events: dict[str, ScheduledEvent]
    overrides: dict[str, Override]


def merge_blocks(windows: Iterable[Window], policy: Policy) -> tuple[Block, ...]:
    """Widen each window by pre/post-roll and merge those that overlap, touch or bridge."""
    pre, post = timedelta(seconds=policy.pre_roll), timedelta(seconds=policy.post_roll)
    gap = timedelta(seconds=policy.bridge_gap)
    blocks: list[Block] = []
    for w in sorted(windows):
        start, end = w.start - pre, w.end + post
        if blocks and start - blocks[-1].end <= gap:
            last = blocks[-1]
            span = Span(last.window.start, max(last.window.end, w.end))
            blocks[-1] = Block(last.start, max(last.end, end), span)
        else:
            blocks.append(Block(start, end, Span(w.start, w.end)))
    return tuple(blocks)


def _live_overrides(schedule: Schedule | None) -> tuple[Override, ...]:
    if schedule is None:
        return ()
    # Highest rank first: among overrides of one level the most recently set wins.
    return tuple(
        sorted((o for o in schedule.overrides.values() if not o.cleared), key=lambda o: o.rank, reverse=True)
    )


def _live_windows(schedule: Schedule | None) -> list[Window]:
    return [] if schedule is None else [e.window for e in schedule.events.values() if not e.cancelled]


class Timeline:
    """The desired state of one target over all of time."""

    __slots__ = (
        "_boundaries",
        "_ends",
        "_starts",
        "blocks",
        "client_id",
        "client_overrides",
        "grace_seconds",
        "group_id",
        "group_overrides",
        "registered",
    )

    def __init__(
        self,
        *,
        client_id: str | None,
        group_id: str | None,
        blocks: Sequence[Block],
        group_overrides: Sequence[Override] = (),
        client_overrides: Sequence[Override] = (),
        grace_seconds: int,
        registered: bool = True,
    ) -> None:
        self.client_id = client_id
        self.group_id = group_id
        self.blocks = tuple(blocks)
        self.group_overrides = tuple(group_overrides)
        self.client_overrides = tuple(client_overrides)
        self.grace_seconds = grace_seconds
        self.registered = registered
        self._starts = [b.start for b in self.blocks]
        self._ends = [b.end for b in self.blocks]
        edges = {*self._starts, *self._ends}
        for o in (*self.group_overrides, *self.client_overrides):
            edges.update((o.window.start, o.window.end))
        self._boundaries = sorted(edges) if registered else []

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
        for overrides, reason in (
            (self.client_overrides, "client_override"),
            (self.group_overrides, "group_override"),
        ):
            for o in overrides:
                if o.window.start <= t < o.window.end:
                    on = o.desired_state == "on"
                    window = Span(o.window.start, o.window.end) if on else None
                    return self._intent(o.desired_state, reason, window)
        i = bisect_right(self._starts, t) - 1
        if i >= 0 and t < self._ends[i]:
            return self._intent("on", "event_window_active", self.blocks[i].window)
        return self._intent("off", "no_active_event", None)

    def next_boundary(self, after: datetime) -> datetime | None:
        """The first instant after `after` whose intent differs from the one at `after`."""
        current = self.at(after)
        for edge in self._boundaries[bisect_right(self._boundaries, after) :]:
            if self.at(edge) != current:
                return edge
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


class ClientLike(Schedule, Protocol):
    client_id: str
    group_id: str | None
    registered: bool


class GroupLike(Schedule, Protocol):
    group_id: str


def client_timeline(
    client: ClientLike,
    group: Schedule | None,
    policy: Policy,
    group_blocks: tuple[Block, ...] | None = None,
) -> Timeline:
    """A client's timeline: its own and its current group's schedule (steps 1-7 of the spec).

    `group_blocks` may pass the group's merged blocks, computed once for all its members.
    """
    own = _live_windows(client)
    if own or group_blocks is None:
        blocks = merge_blocks([*own, *_live_windows(group)], policy)
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
    )


def group_timeline(group: GroupLike, policy: Policy) -> Timeline:
    """A group topic's timeline: the group's own events and overrides (steps 1-5)."""
    return Timeline(
        client_id=None,
        group_id=group.group_id,
        blocks=merge_blocks(_live_windows(group), policy),
        group_overrides=_live_overrides(group),
        grace_seconds=policy.grace_seconds,
    )
