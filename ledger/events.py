"""The ledger's domain events: past-tense facts, one module-level class each.

Schedule events are shared by the client and the group aggregates, so their
topics (``ledger.events:EventScheduled``) name the fact, not the aggregate.
Each event's `apply` is the fold step that evolves its aggregate; the
projections replay the very same steps.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar

from eventsourcing.domain import Aggregate

from ledger.intent import CurrentIntent, IntentFields
from ledger.recurrence import Recurrence, Series, parse_dates
from ledger.values import Override, Policy, ScheduledEvent, Window, format_instant

__all__ = [
    "SEMANTIC_FIELDS",
    "ClientAssigned",
    "ClientDeregistered",
    "ClientIdClaimed",
    "ClientRegistered",
    "EventCancelled",
    "EventIdClaimed",
    "EventRescheduled",
    "EventScheduled",
    "GroupNamed",
    "IntentIssued",
    "IntentLogOpened",
    "LedgerChange",
    "OverrideCleared",
    "OverrideIdClaimed",
    "OverrideSet",
    "PolicyChanged",
    "PolicyOpened",
    "SeriesCancelled",
    "SeriesChanged",
    "SeriesIdClaimed",
    "SeriesScheduled",
    "SeriesSkipped",
    "SeriesUnskipped",
    "event_fields",
    "new_event",
]


class LedgerChange(Aggregate.Event):
    """A change somebody made: it says who (`actor`) and, optionally, why (`note`)."""

    actor: str
    note: str | None


# Creation events: they only fix the natural key of the aggregate.


class ClientIdClaimed(Aggregate.Created):
    client_id: str


class GroupNamed(Aggregate.Created):
    group_id: str


class PolicyOpened(Aggregate.Created):
    pass


class EventIdClaimed(Aggregate.Created):
    event_id: str
    client_id: str | None
    group_id: str | None


class OverrideIdClaimed(Aggregate.Created):
    override_id: str
    client_id: str | None
    group_id: str | None


class SeriesIdClaimed(Aggregate.Created):
    series_id: str
    client_id: str | None
    group_id: str | None


class IntentLogOpened(Aggregate.Created):
    client_id: str | None
    group_id: str | None


# Fleet membership.


class ClientRegistered(LedgerChange):
    client_id: str
    group_id: str | None

    def apply(self, aggregate: Any) -> None:
        aggregate.registered = True
        aggregate.group_id = self.group_id


class ClientAssigned(LedgerChange):
    group_id: str | None

    def apply(self, aggregate: Any) -> None:
        aggregate.group_id = self.group_id


class ClientDeregistered(LedgerChange):
    def apply(self, aggregate: Any) -> None:
        aggregate.registered = False


# Schedule of a client or a group.


class EventScheduled(LedgerChange):
    event_id: str
    start: datetime
    end: datetime

    def apply(self, aggregate: Any) -> None:
        aggregate.events[self.event_id] = ScheduledEvent(self.event_id, Window(self.start, self.end))


class EventRescheduled(LedgerChange):
    """New times for an event; also reinstates a cancelled one."""

    event_id: str
    start: datetime
    end: datetime

    def apply(self, aggregate: Any) -> None:
        aggregate.events[self.event_id] = ScheduledEvent(self.event_id, Window(self.start, self.end))


class EventCancelled(LedgerChange):
    event_id: str

    def apply(self, aggregate: Any) -> None:
        old = aggregate.events[self.event_id]
        aggregate.events[self.event_id] = ScheduledEvent(old.event_id, old.window, cancelled=True)


class OverrideSet(LedgerChange):
    override_id: str
    desired_state: str
    start: datetime
    end: datetime

    def apply(self, aggregate: Any) -> None:
        # The aggregate version orders the overrides of one target: "most recently set wins".
        aggregate.overrides[self.override_id] = Override(
            self.override_id,
            self.desired_state,
            Window(self.start, self.end),
            rank=self.originator_version,
        )


class OverrideCleared(LedgerChange):
    override_id: str

    def apply(self, aggregate: Any) -> None:
        old = aggregate.overrides[self.override_id]
        aggregate.overrides[self.override_id] = Override(
            old.override_id, old.desired_state, old.window, old.rank, cleared=True
        )


# Recurring windows in local time (DESIGN section 11) of a client or a group.


class SeriesScheduled(LedgerChange):
    """A series: `first_start`/`first_end` local wall-clock times in `tz`, `rrule` for the others."""

    series_id: str
    tz: str
    first_start: str
    first_end: str
    rrule: str

    def apply(self, aggregate: Any) -> None:
        old = aggregate.series.get(self.series_id)
        recurrence = Recurrence.parse(self.tz, self.first_start, self.first_end, self.rrule)
        skip = old.skip if old else frozenset()
        aggregate.series[self.series_id] = Series(self.series_id, recurrence, skip)


class SeriesChanged(SeriesScheduled):
    """A new rule for a series (the skips stay); also reinstates a cancelled one."""


class SeriesSkipped(LedgerChange):
    series_id: str
    dates: list[str]

    def apply(self, aggregate: Any) -> None:
        old = aggregate.series[self.series_id]
        added = parse_dates(self.dates)
        # The parsed set itself when nothing was skipped yet: series skipping the same dates share it.
        skip = old.skip | added if old.skip else added
        aggregate.series[self.series_id] = Series(old.series_id, old.recurrence, skip, old.cancelled)


class SeriesUnskipped(LedgerChange):
    series_id: str
    dates: list[str]

    def apply(self, aggregate: Any) -> None:
        old = aggregate.series[self.series_id]
        aggregate.series[self.series_id] = Series(
            old.series_id, old.recurrence, old.skip - parse_dates(self.dates), old.cancelled
        )


class SeriesCancelled(LedgerChange):
    series_id: str

    def apply(self, aggregate: Any) -> None:
        old = aggregate.series[self.series_id]
        aggregate.series[self.series_id] = Series(old.series_id, old.recurrence, old.skip, cancelled=True)


class PolicyChanged(LedgerChange):
    pre_roll: int
    post_roll: int
    bridge_gap: int
    grace_seconds: int

    def apply(self, aggregate: Any) -> None:
        aggregate.policy = Policy(self.pre_roll, self.post_roll, self.bridge_gap, self.grace_seconds)


# The intent log: what the server actually issued.


class IntentIssued(Aggregate.Event):
    """A semantic transition of a client's (or a group's) intent, as issued."""

    seq: int
    intent_id: str
    effective_at: datetime
    desired_state: str
    reason: str
    event_window: dict[str, str] | None
    client_id: str | None
    group_id: str | None
    grace_seconds: int
    cause: dict[str, Any]

    def apply(self, aggregate: Any) -> None:
        aggregate.seq = self.seq
        aggregate.last = self.current()

    def current(self) -> CurrentIntent:
        """This intent as the typed record its log keeps as `last`."""
        fields = IntentFields(
            self.client_id,
            self.group_id,
            self.desired_state,
            self.reason,
            self.grace_seconds,
            self.event_window,
        )
        return CurrentIntent(self.seq, self.effective_at, fields)  # its intent_id derived from these


E = TypeVar("E")


def new_event(cls: type[E], state: dict[str, Any]) -> E:
    """An event of `cls` holding `state`: every field, in the order its dataclass has them.

    Built as the library's mapper builds a stored event (the instance's dict set at
    once), so the hot paths skip the frozen dataclass's keyword copy and per-field setattr.
    """
    event = object.__new__(cls)
    object.__setattr__(event, "__dict__", state)
    return event


# Two intents are the same iff these payload fields are equal (DESIGN section 4).
SEMANTIC_FIELDS: tuple[str, ...] = IntentFields.__struct_fields__


_BOOKKEEPING = ("originator_id", "originator_version", "timestamp", "originator_topic")


def event_fields(event: Any, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """What an event says, for people and JSON: its own fields, instants as `...Z`."""
    return {
        k: (format_instant(v) if isinstance(v, datetime) else v)
        for k, v in vars(event).items()
        if k not in _BOOKKEEPING and k not in skip
    }
