"""The ledger's commands, written once against a `Workspace` of loaded aggregates.

A command checks everything before it triggers anything that matters; the
application saves the workspace's pending events in one transaction, or
nothing when a check fails. The same functions serve single CLI commands
(aggregates loaded by id) and snapshot syncs (aggregates loaded in bulk).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.domain import Aggregate

from ledger.domain import (
    Client,
    EventClaim,
    Group,
    Meta,
    OverrideClaim,
    PolicyRecord,
    Target,
    TargetRef,
)
from ledger.errors import ClientNotFound, EventNotFound, IdConflict, InvalidInput, OverrideNotFound
from ledger.values import Policy, Window, check_id

__all__ = [
    "Workspace",
    "add_event",
    "add_override",
    "assign_client",
    "cancel_event",
    "change_policy",
    "check_target",
    "clear_override",
    "move_event",
    "register_client",
    "remove_client",
    "set_override_again",
]

A = TypeVar("A", bound=Aggregate)


class Workspace:
    """The aggregates one change reads and writes, loaded at most once each."""

    def __init__(self, load: Callable[[UUID], Aggregate | None]) -> None:
        self._load = load
        self._seen: dict[UUID, Aggregate | None] = {}

    def get(self, cls: type[A], aggregate_id: UUID) -> A | None:
        if aggregate_id not in self._seen:
            self._seen[aggregate_id] = self._load(aggregate_id)
        found = self._seen[aggregate_id]
        if found is not None and not isinstance(found, cls):
            raise TypeError(f"aggregate {aggregate_id} is a {type(found).__name__}, not {cls.__name__}")
        return found

    def all(self, cls: type[A]) -> list[A]:
        """Every loaded aggregate of a class: the whole ledger's only when bulk-loaded."""
        return [a for a in self._seen.values() if isinstance(a, cls)]

    def add(self, aggregate: A) -> A:
        self._seen[aggregate.id] = aggregate
        return aggregate

    def changed(self) -> list[Aggregate]:
        return [a for a in self._seen.values() if a is not None and a.pending_events]

    def pending_events(self) -> list[Any]:
        return [e for a in self.changed() for e in a.pending_events]

    # Lookups that every command shares.

    def client(self, client_id: str) -> Client | None:
        return self.get(Client, Client.id_for(client_id))

    def registered_client(self, client_id: str) -> Client:
        client = self.client(client_id)
        if client is None:
            raise ClientNotFound(client_id)
        if not client.registered:
            raise ClientNotFound(client_id, "was removed")
        return client

    def group(self, group_id: str) -> Group:
        """The group, named now if this is the first time anyone names it."""
        return self.get(Group, Group.id_for(group_id)) or self.add(Group.open(group_id))

    def target(self, ref: TargetRef) -> Target:
        return self.registered_client(ref.id) if ref.kind == "client" else self.group(ref.id)

    def owner(self, ref: TargetRef) -> Target:
        """The target of an existing claim (a removed client still owns its events)."""
        if ref.kind == "group":
            return self.group(ref.id)
        client = self.client(ref.id)
        assert client is not None, ref
        return client


def register_client(ws: Workspace, client_id: str, group_id: str | None, meta: Meta) -> None:
    _check_client_group(client_id, group_id)
    client = ws.client(client_id) or ws.add(Client.open(client_id))
    if group_id is not None:
        ws.group(group_id)
    client.register(group_id, meta)


def assign_client(ws: Workspace, client_id: str, group_id: str | None, meta: Meta) -> None:
    _check_client_group(client_id, group_id)
    client = ws.registered_client(client_id)
    if group_id is not None:
        ws.group(group_id)
    client.assign(group_id, meta)


def remove_client(ws: Workspace, client_id: str, meta: Meta) -> None:
    check_id("client_id", client_id)
    client = ws.client(client_id)
    if client is None:
        raise ClientNotFound(client_id)
    client.deregister(meta)


def add_event(ws: Workspace, event_id: str, ref: TargetRef, window: Window, meta: Meta) -> None:
    check_target(ref)
    check_id("event_id", event_id)
    claim = ws.get(EventClaim, EventClaim.id_for(event_id))
    if claim is None:
        target = ws.target(ref)
        ws.add(EventClaim.open(event_id, ref))
        target.schedule_event(event_id, window, meta)
        return
    existing = ws.owner(claim.target).events[event_id]
    if existing.cancelled:
        raise IdConflict(
            f"event {event_id!r} ({claim.target}, {existing.window}) was cancelled; "
            "its id stays taken: use 'event move' to reinstate it"
        )
    if claim.target != ref or existing.window != window:
        raise IdConflict(f"event {event_id!r} already exists: {claim.target}, {existing.window}")


def _event_owner(ws: Workspace, event_id: str) -> Target:
    claim = ws.get(EventClaim, EventClaim.id_for(check_id("event_id", event_id)))
    if claim is None:
        raise EventNotFound(event_id)
    return ws.owner(claim.target)


def move_event(ws: Workspace, event_id: str, window: Window, meta: Meta) -> None:
    _event_owner(ws, event_id).reschedule_event(event_id, window, meta)


def cancel_event(ws: Workspace, event_id: str, meta: Meta) -> None:
    _event_owner(ws, event_id).cancel_event(event_id, meta)


def add_override(
    ws: Workspace, override_id: str, ref: TargetRef, state: str, window: Window, meta: Meta
) -> None:
    check_target(ref)
    claim = ws.get(OverrideClaim, OverrideClaim.id_for(check_id("override_id", override_id)))
    if claim is None:
        target = ws.target(ref)
        ws.add(OverrideClaim.open(override_id, ref))
        target.set_override(override_id, state, window, meta)
        return
    existing = ws.owner(claim.target).overrides[override_id]
    described = f"override {override_id!r} ({claim.target}, {existing.desired_state}, {existing.window})"
    if existing.cleared:
        raise IdConflict(f"{described} was cleared; its id stays taken")
    if claim.target != ref or (existing.desired_state, existing.window) != (state, window):
        raise IdConflict(f"{described} already exists")


def set_override_again(
    ws: Workspace, override_id: str, ref: TargetRef, state: str, window: Window, meta: Meta
) -> None:
    """Sync's variant of `add_override`: updates or reinstates an override of the same target."""
    claim = ws.get(OverrideClaim, OverrideClaim.id_for(override_id))
    if claim is None:
        add_override(ws, override_id, ref, state, window, meta)
    elif claim.target != ref:
        raise IdConflict(f"override {override_id!r} already exists for {claim.target}")
    else:
        ws.owner(ref).set_override(override_id, state, window, meta)


def clear_override(ws: Workspace, override_id: str, meta: Meta) -> None:
    claim = ws.get(OverrideClaim, OverrideClaim.id_for(check_id("override_id", override_id)))
    if claim is None:
        raise OverrideNotFound(override_id)
    ws.owner(claim.target).clear_override(override_id, meta)


def change_policy(ws: Workspace, changes: dict[str, int], meta: Meta) -> None:
    record = ws.get(PolicyRecord, PolicyRecord.ID)
    current = record.policy if record else Policy()
    wanted = Policy(**{**current.as_dict(), **changes})
    if wanted != current:
        (record or ws.add(PolicyRecord.open())).change(wanted, meta)


def _check_client_group(client_id: str, group_id: str | None) -> None:
    check_id("client_id", client_id)
    if group_id is not None:
        check_id("group_id", group_id)


def check_target(ref: TargetRef) -> None:
    if ref.kind not in ("client", "group"):
        raise InvalidInput(f"invalid target kind {ref.kind!r}: use client or group")
    check_id(f"{ref.kind}_id", ref.id)
