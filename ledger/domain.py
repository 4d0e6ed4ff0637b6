"""Aggregates: one per client, per group, per event/override id, one policy (intent logs: ledger.intentlog).

Command methods check invariants and return False when the change would be a
no-op (the ledger appends nothing for an identical repeat).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from ledger import events as ev
from ledger.errors import IdConflict, InvalidInput
from ledger.intentlog import IntentLog
from ledger.names import INTENT_NAMESPACE, NAMESPACE, intent_id_for
from ledger.recurrence import Series
from ledger.series_target import SeriesTarget
from ledger.values import (
    DESIRED_STATES,
    Override,
    Policy,
    ScheduledEvent,
    Window,
    check_text,
)

__all__ = [
    "INTENT_NAMESPACE",
    "NAMESPACE",
    "Client",
    "EventClaim",
    "Group",
    "IntentLog",
    "Meta",
    "OverrideClaim",
    "PolicyRecord",
    "Target",
    "TargetRef",
    "intent_id_for",
]


@dataclass(frozen=True, slots=True)
class Meta:
    """Who made a change and why."""

    actor: str
    note: str | None = None

    def __post_init__(self) -> None:
        actor = self.actor
        if not isinstance(actor, str) or not 0 < len(actor) <= 200 or "\n" in actor or "\r" in actor:
            shown = repr(actor[:40]) if isinstance(actor, str) else type(actor).__name__
            raise InvalidInput(f"invalid actor {shown}: 1 to 200 characters on one line")
        if self.note is not None and (not isinstance(self.note, str) or len(self.note) > 2000):
            raise InvalidInput("invalid note: at most 2000 characters")
        check_text("actor", actor)
        if self.note is not None:
            check_text("note", self.note)

    def fields(self) -> dict[str, Any]:
        return {"actor": self.actor, "note": self.note}


@dataclass(frozen=True, slots=True)
class TargetRef:
    """What an event or override is scheduled for: a client or a group."""

    kind: str  # "client" or "group"
    id: str

    def __str__(self) -> str:
        return f"{self.kind} {self.id}"

    def claim_fields(self) -> dict[str, str | None]:
        return {
            "client_id": self.id if self.kind == "client" else None,
            "group_id": self.id if self.kind == "group" else None,
        }

    @staticmethod
    def from_claim(client_id: str | None, group_id: str | None) -> TargetRef:
        return TargetRef("client", client_id) if client_id else TargetRef("group", str(group_id))


class Target(SeriesTarget, Aggregate):
    """Holds a schedule: event windows, series and overrides, by id."""

    def __init__(self) -> None:
        self.events: dict[str, ScheduledEvent] = {}
        self.overrides: dict[str, Override] = {}
        self.series: dict[str, Series] = {}

    @property
    def ref(self) -> TargetRef:
        raise NotImplementedError

    def schedule_event(self, event_id: str, window: Window, meta: Meta) -> None:
        self.trigger_event(
            ev.EventScheduled, event_id=event_id, start=window.start, end=window.end, **meta.fields()
        )

    def reschedule_event(self, event_id: str, window: Window, meta: Meta) -> bool:
        """Move an event (reinstating it if cancelled); False if already so."""
        old = self.events[event_id]
        if old.window == window and not old.cancelled:
            return False
        self.trigger_event(
            ev.EventRescheduled,
            event_id=event_id,
            start=window.start,
            end=window.end,
            **meta.fields(),
        )
        return True

    def cancel_event(self, event_id: str, meta: Meta) -> bool:
        if self.events[event_id].cancelled:
            return False
        self.trigger_event(ev.EventCancelled, event_id=event_id, **meta.fields())
        return True

    def set_override(self, override_id: str, state: str, window: Window, meta: Meta) -> bool:
        if state not in DESIRED_STATES:
            raise InvalidInput(f"invalid state {state!r}: use on or off")
        old = self.overrides.get(override_id)
        if old and not old.cleared and (old.desired_state, old.window) == (state, window):
            return False
        self.trigger_event(
            ev.OverrideSet,
            override_id=override_id,
            desired_state=state,
            start=window.start,
            end=window.end,
            **meta.fields(),
        )
        return True

    def clear_override(self, override_id: str, meta: Meta) -> bool:
        if self.overrides[override_id].cleared:
            return False
        self.trigger_event(ev.OverrideCleared, override_id=override_id, **meta.fields())
        return True

    def live_events(self) -> list[ScheduledEvent]:
        return [e for e in self.events.values() if not e.cancelled]

    def live_overrides(self) -> list[Override]:
        return [o for o in self.overrides.values() if not o.cleared]


class Client(Target):
    """One infoscreen client (one TV): membership and its own schedule."""

    def __init__(self, client_id: str) -> None:
        super().__init__()
        self.client_id = client_id
        self.registered = False
        self.group_id: str | None = None

    @staticmethod
    def id_for(client_id: str) -> UUID:
        return uuid5(NAMESPACE, f"client/{client_id}")

    @classmethod
    def open(cls, client_id: str) -> Client:
        return cls._create(ev.ClientIdClaimed, id=cls.id_for(client_id), client_id=client_id)

    @property
    def ref(self) -> TargetRef:
        return TargetRef("client", self.client_id)

    def register(self, group_id: str | None, meta: Meta) -> bool:
        if self.registered:
            if self.group_id == group_id:
                return False
            raise IdConflict(
                f"client {self.client_id!r} is already registered in "
                f"{_group_text(self.group_id)}; use 'client assign' to move it"
            )
        self.trigger_event(ev.ClientRegistered, client_id=self.client_id, group_id=group_id, **meta.fields())
        return True

    def assign(self, group_id: str | None, meta: Meta) -> bool:
        if self.group_id == group_id:
            return False
        self.trigger_event(ev.ClientAssigned, group_id=group_id, **meta.fields())
        return True

    def deregister(self, meta: Meta) -> bool:
        if not self.registered:
            return False
        self.trigger_event(ev.ClientDeregistered, **meta.fields())
        return True


class Group(Target):
    """A group of clients with a shared schedule; it exists once it has been named."""

    def __init__(self, group_id: str) -> None:
        super().__init__()
        self.group_id = group_id

    @staticmethod
    def id_for(group_id: str) -> UUID:
        return uuid5(NAMESPACE, f"group/{group_id}")

    @classmethod
    def open(cls, group_id: str) -> Group:
        return cls._create(ev.GroupNamed, id=cls.id_for(group_id), group_id=group_id)

    @property
    def ref(self) -> TargetRef:
        return TargetRef("group", self.group_id)


class PolicyRecord(Aggregate):
    """The single timeline policy; replays use the policy in force at the time."""

    ID = uuid5(NAMESPACE, "policy")

    def __init__(self) -> None:
        self.policy = Policy()

    @classmethod
    def open(cls) -> PolicyRecord:
        return cls._create(ev.PolicyOpened, id=cls.ID)

    def change(self, policy: Policy, meta: Meta) -> bool:
        if policy == self.policy:
            return False
        self.trigger_event(ev.PolicyChanged, **policy.as_dict(), **meta.fields())
        return True


class _Claim(Aggregate):
    """Keeps an event or override id unique in the whole ledger and says whose it is."""

    def __init__(self, client_id: str | None, group_id: str | None) -> None:
        self.target = TargetRef.from_claim(client_id, group_id)


class EventClaim(_Claim):
    @staticmethod
    def id_for(event_id: str) -> UUID:
        return uuid5(NAMESPACE, f"event/{event_id}")

    @classmethod
    def open(cls, event_id: str, target: TargetRef) -> EventClaim:
        return cls._create(
            ev.EventIdClaimed, id=cls.id_for(event_id), event_id=event_id, **target.claim_fields()
        )


class OverrideClaim(_Claim):
    @staticmethod
    def id_for(override_id: str) -> UUID:
        return uuid5(NAMESPACE, f"override/{override_id}")

    @classmethod
    def open(cls, override_id: str, target: TargetRef) -> OverrideClaim:
        return cls._create(
            ev.OverrideIdClaimed,
            id=cls.id_for(override_id),
            override_id=override_id,
            **target.claim_fields(),
        )


def _group_text(group_id: str | None) -> str:
    return f"group {group_id!r}" if group_id else "no group"
