"""The fleet view: the ledger folded into clients, groups, policy and intent logs, in memory.

`FleetView.apply(event)` is the fold step. It reuses each domain event's own
`apply` (through `mutate` for the few groups, the policy and the intent logs),
so the view and the write model can never disagree about what an event means,
and it is idempotent: an event the view already holds (the projector's own
intents, read back from the log) is skipped. Clients, thousands of them, are
held as `ClientRow`s: what a timeline needs, no aggregate bookkeeping, and one
shared empty schedule for the many that only follow their group.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, OriginatorVersionError

from ledger import events as ev
from ledger.domain import Client, Group, IntentLog, PolicyRecord, TargetRef
from ledger.recurrence import Series
from ledger.values import Override, Policy, ScheduledEvent
from projections.timeline import Timeline, client_timeline, group_timeline

__all__ = ["Affected", "ClientRow", "FleetView", "empty_schedule"]

_NONE: Mapping[str, Any] = MappingProxyType({})  # the schedule of every client without one of its own


def empty_schedule() -> Mapping[str, Any]:
    """The one empty schedule shared by every `ClientRow` without one of its own."""
    return _NONE


_MEMBERSHIP = (ev.ClientRegistered, ev.ClientAssigned, ev.ClientDeregistered)
_CLAIMS = (ev.EventIdClaimed, ev.OverrideIdClaimed)


class ClientRow:
    """A client as the fleet view holds it: membership and its own schedule (a `Client`'s state)."""

    __slots__ = (
        "client_id",
        "events",
        "group_id",
        "indexed_group",
        "overrides",
        "registered",
        "series",
        "version",
    )

    def __init__(self, client_id: str, version: int) -> None:
        self.client_id = client_id
        self.version = version
        self.registered = False
        self.group_id: str | None = None
        self.indexed_group: str | None = None  # the group the view's `members` has it in
        self.events: Mapping[str, ScheduledEvent] = _NONE
        self.overrides: Mapping[str, Override] = _NONE
        self.series: Mapping[str, Series] = _NONE

    @property
    def id(self) -> UUID:
        """The client aggregate's id, derived from its name (not held: thousands of rows)."""
        return Client.id_for(self.client_id)

    @property
    def ref(self) -> TargetRef:
        return TargetRef("client", self.client_id)

    def live_events(self) -> list[ScheduledEvent]:
        return [e for e in self.events.values() if not e.cancelled]

    def live_overrides(self) -> list[Override]:
        return [o for o in self.overrides.values() if not o.cleared]

    def live_series(self) -> list[Series]:
        return [s for s in self.series.values() if not s.cancelled]

    def fold(self, event: Any) -> None:
        """The event's own step, as `Client.mutate` takes it (the version checked the same way)."""
        if event.originator_version != self.version + 1:
            raise OriginatorVersionError(
                f"client {self.client_id!r}: version {event.originator_version} after {self.version}"
            )
        if self.events is _NONE and not isinstance(event, _MEMBERSHIP):
            self.events, self.overrides, self.series = {}, {}, {}  # its own schedule from now on
        event.apply(self)
        self.version = event.originator_version


_MUTATE = Aggregate.Event.mutate  # the library's step of an aggregate's later events


def _step(aggregate: Any, event: Any) -> None:
    """`event.mutate(aggregate)` of an `Aggregate.Event`, as the library's runs it: the event's
    `apply`, then the version and the modified instant (the id holds: the aggregate was found by it)."""
    next_version = aggregate._version + 1
    if event.originator_version != next_version:
        raise OriginatorVersionError(event.originator_version, next_version)
    event.apply(aggregate)
    aggregate._version = event.originator_version
    aggregate._modified_on = event.timestamp


@dataclass
class Affected:
    """Whose timeline a batch of ledger events may have changed, and the latest cause of each."""

    clients: dict[str, tuple[int, Any]] = field(default_factory=dict)
    groups: dict[str, tuple[int, Any]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.clients or self.groups)


class FleetView:
    """Clients, groups, the policy and the intent logs, as of notification `position`."""

    def __init__(self) -> None:
        self.position = 0
        self.clients: dict[str, ClientRow] = {}
        self.groups: dict[str, Group] = {}
        self.members: defaultdict[str, set[str]] = defaultdict(set)
        self.policy = Policy()
        self.logs: dict[str, IntentLog] = {}
        # By the aggregate id's int: a client's or group's id object is then not held at all
        # (an intent log holds its own), only its int.
        self._by_id: dict[int, Any] = {}
        self._names: dict[str, str] = {}  # one copy of each group id, shared by its members
        self._timelines: dict[str, Timeline] = {}

    def apply(self, position: int, event: Any, affected: Affected | None = None) -> None:
        """Fold one domain event (read at `position` of the notification log) into the view."""
        if position > self.position:
            self.position = position
        if isinstance(event, _CLAIMS):
            return  # claims only guard id uniqueness; the schedule lives on the targets
        key = event.originator_id.int
        held = self._by_id.get(key)
        if held is not None and event.originator_version <= held.version:
            return  # held already (`holds`)
        if isinstance(held, ClientRow):
            held.fold(event)
            aggregate: Any = held
        elif isinstance(event, ev.ClientIdClaimed):
            aggregate = self._by_id[key] = ClientRow(event.client_id, event.originator_version)
        elif held is not None and type(event).mutate is _MUTATE:
            _step(held, event)
            aggregate = held
        else:
            aggregate = self._by_id[key] = event.mutate(held)
        # Creation events (a group named, the policy opened) change no timeline.
        if affected is not None and not isinstance(event, ev.LedgerChange):
            affected = None
        self._index(aggregate, position, event, affected)

    def _index(self, aggregate: Any, position: int, event: Any, affected: Affected | None) -> None:
        """Keep the view's indexes of a folded aggregate and mark whose timeline it changed."""
        if isinstance(aggregate, ClientRow):
            self.index_client(aggregate)
            if affected is not None:
                affected.clients[aggregate.client_id] = (position, event)
        elif isinstance(aggregate, Group):
            self.index_group(aggregate)
            if affected is not None:
                cause = (position, event)
                affected.groups[aggregate.group_id] = cause
                for client_id in self.members.get(aggregate.group_id, ()):
                    affected.clients[client_id] = cause
        elif isinstance(aggregate, PolicyRecord):
            self.policy = aggregate.policy
            self._timelines.clear()
            if affected is not None:
                cause = (position, event)
                affected.clients.update(dict.fromkeys(self.clients, cause))
                affected.groups.update(dict.fromkeys(self.groups, cause))
        elif isinstance(aggregate, IntentLog):
            self.logs[aggregate.name] = aggregate

    def holds(self, event: Any) -> bool:
        """Whether the view already holds this event's aggregate at or after its version."""
        held = self._by_id.get(event.originator_id.int)
        return held is not None and event.originator_version <= held.version

    def aggregate_of(self, originator_id: UUID) -> Any:
        """The aggregate the view holds by this id (None: none)."""
        return self._by_id.get(originator_id.int)

    def hold(self, aggregate: Any) -> None:
        """Adopt an aggregate created outside the fold (a new intent log) before it is saved."""
        self._by_id[aggregate.id.int] = aggregate
        if isinstance(aggregate, IntentLog):
            self.logs[aggregate.name] = aggregate

    def hold_logs(self, logs: Iterable[IntentLog]) -> None:
        """`hold()` many intent logs at once (a resume from a checkpoint)."""
        by_id, by_name = self._by_id, self.logs
        for log in logs:
            by_id[log.id.int] = by_name[log.name] = log

    def release(self, aggregate: Any) -> None:
        """Forget an adopted aggregate whose first save failed."""
        self._by_id.pop(aggregate.id.int, None)
        if isinstance(aggregate, IntentLog) and self.logs.get(aggregate.name) is aggregate:
            del self.logs[aggregate.name]

    @property
    def by_id(self) -> dict[int, Any]:
        """The aggregates held, by their id's int (for a fold of rows: projections.rowfold)."""
        return self._by_id

    def index_group(self, group: Group) -> None:
        """Hold a folded group; its timeline is computed again when next asked for."""
        self.groups[group.group_id] = group
        self._timelines.pop(group.group_id, None)

    def index_client(self, client: ClientRow) -> None:
        """Keep the view's indexes of a folded client row."""
        # The row is mutated in place, so remember the group it was in.
        if client.group_id is not None:
            client.group_id = self._names.setdefault(client.group_id, client.group_id)
        previous = client.indexed_group
        if previous != client.group_id:
            if previous:
                self.members[previous].discard(client.client_id)
            if client.group_id:
                self.members[client.group_id].add(client.client_id)
        client.indexed_group = client.group_id
        self.clients[client.client_id] = client

    def timeline(self, client_id: str) -> Timeline:
        client = self.clients[client_id]
        group = self.groups.get(client.group_id) if client.group_id else None
        if group is None or client.live_events() or client.live_series() or client.live_overrides():
            blocks = None if group is None else self.group_timeline(group.group_id).blocks
            return client_timeline(client, group, self.policy, blocks)
        # Most clients only follow their group: share its timeline (computed once per change).
        return self.group_timeline(group.group_id).for_target(
            client.client_id, client.group_id, client.registered
        )

    def follower(self, client_id: str) -> ClientRow | None:
        """The client if its timeline is its group's own, for another target (None: it has a
        schedule of its own, no group, or it is not a client): what `timeline` shares."""
        client = self.clients.get(client_id)
        if client is None or client.group_id is None or client.group_id not in self.groups:
            return None
        if client.events is _NONE:  # the shared empty schedule: no events, series or overrides
            return client
        own = client.live_events() or client.live_series() or client.live_overrides()
        return None if own else client

    def group_timeline(self, group_id: str) -> Timeline:
        timeline = self._timelines.get(group_id)
        if timeline is None:
            timeline = self._timelines[group_id] = group_timeline(self.groups[group_id], self.policy)
        return timeline
