"""Schedule snapshots: the JSON file `sync` applies as the minimal set of ledger events."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

from ledger import commands as cmd
from ledger import series as srs
from ledger.domain import Client, EventClaim, Group, Meta, TargetRef
from ledger.errors import EmptySnapshot, InvalidInput, InvalidSnapshot
from ledger.recurrence import Recurrence, check_recurrence_years, check_years, parse_dates
from ledger.values import Window, check_id, check_text

__all__ = [
    "Snapshot",
    "SnapshotClient",
    "SnapshotEvent",
    "SnapshotOverride",
    "SnapshotSeries",
    "apply_snapshot",
    "parse_snapshot",
]


class SnapshotClient(msgspec.Struct, forbid_unknown_fields=True):
    client_id: str
    group_id: str | None = None


class SnapshotEvent(msgspec.Struct, forbid_unknown_fields=True):
    event_id: str
    start: str
    end: str
    client_id: str | None = None
    group_id: str | None = None
    note: str | None = None


class SnapshotOverride(msgspec.Struct, forbid_unknown_fields=True):
    override_id: str
    desired_state: Literal["on", "off"]
    start: str
    end: str
    client_id: str | None = None
    group_id: str | None = None
    note: str | None = None


class SnapshotSeries(msgspec.Struct, forbid_unknown_fields=True):
    """A series (DESIGN section 11): local wall-clock first start and end in `tz`, an RRULE, skipped dates."""

    series_id: str
    tz: str
    first_start: str
    first_end: str
    rrule: str = "FREQ=DAILY"
    client_id: str | None = None
    group_id: str | None = None
    skip: list[str] = []
    note: str | None = None

    def recurrence(self) -> Recurrence:
        return Recurrence.parse(self.tz, self.first_start, self.first_end, self.rrule)


class Snapshot(msgspec.Struct, forbid_unknown_fields=True):
    clients: list[SnapshotClient] = []
    events: list[SnapshotEvent] = []
    overrides: list[SnapshotOverride] = []
    series: list[SnapshotSeries] = []


_decoder = msgspec.json.Decoder(Snapshot)


def parse_snapshot(data: bytes | str) -> Snapshot:
    """Decode and validate a snapshot file; every problem is one InvalidSnapshot line."""
    # A byte order mark, as some editors save UTF-8: not JSON, but no doubt what is meant.
    data = data.removeprefix(b"\xef\xbb\xbf") if isinstance(data, bytes) else data.removeprefix("\ufeff")
    try:
        snapshot = _decoder.decode(data)
    except msgspec.DecodeError as e:
        raise InvalidSnapshot(f"invalid snapshot: {e}") from None
    try:
        _check(snapshot)
    except InvalidInput as e:
        raise InvalidSnapshot(f"invalid snapshot: {e}") from None
    return snapshot


def _check(snapshot: Snapshot) -> None:
    _unique("client_id", [c.client_id for c in snapshot.clients])
    _unique("event_id", [e.event_id for e in snapshot.events])
    _unique("override_id", [o.override_id for o in snapshot.overrides])
    _unique("series_id", [s.series_id for s in snapshot.series])
    for c in snapshot.clients:
        check_id("client_id", c.client_id)
        if c.group_id is not None:
            check_id("group_id", c.group_id)
    items: list[SnapshotEvent | SnapshotOverride] = [*snapshot.events, *snapshot.overrides]
    for item in items:
        _ref(item)
        Window.parse(item.start, item.end)
    for e in snapshot.events:
        check_id("event_id", e.event_id)
    for o in snapshot.overrides:
        check_id("override_id", o.override_id)
    for s in snapshot.series:
        check_id("series_id", s.series_id)
        _ref(s)
        try:
            check_recurrence_years(s.recurrence())
            check_years("skip date", parse_dates(s.skip, "skip date"))
        except InvalidInput as e:
            raise InvalidInput(f"series {s.series_id!r}: {e}") from None
    _check_notes(snapshot)


def _check_notes(snapshot: Snapshot) -> None:
    notes = [
        *((f"event {e.event_id!r}", e.note) for e in snapshot.events),
        *((f"override {o.override_id!r}", o.note) for o in snapshot.overrides),
        *((f"series {s.series_id!r}", s.note) for s in snapshot.series),
    ]
    for what, note in notes:
        if note is not None:
            try:
                check_text("note", note)
            except InvalidInput as e:
                raise InvalidInput(f"{what}: {e}") from None


def _unique(kind: str, ids: list[str]) -> None:
    seen: set[str] = set()
    for i in ids:
        if i in seen:
            raise InvalidSnapshot(f"{kind} {i!r} appears twice")
        seen.add(i)


def _ref(item: SnapshotEvent | SnapshotOverride | SnapshotSeries) -> TargetRef:
    if (item.client_id is None) == (item.group_id is None):
        what = next(getattr(item, k) for k in ("event_id", "override_id", "series_id") if hasattr(item, k))
        raise InvalidSnapshot(f"{what!r} needs exactly one of client_id and group_id")
    if item.client_id is not None:
        return TargetRef("client", check_id("client_id", item.client_id))
    return TargetRef("group", check_id("group_id", item.group_id))


def apply_snapshot(
    ws: cmd.Workspace,
    snapshot: Snapshot,
    *,
    prune: bool,
    now: datetime,
    meta: Meta,
    allow_empty: bool = False,
) -> None:
    """Bring the ledger to the snapshot: add and update; with `prune`, remove what is absent.

    Pruning never rewrites the past: only events and overrides with `end > now`,
    and series with an occurrence ending after `now`, are cancelled. `ws` must
    hold every aggregate of the ledger when pruning. A snapshot without clients does
    not prune unless `allow_empty`: an empty or truncated file must not deregister
    the fleet (and cancel its schedule).
    """
    if prune and not allow_empty:
        _check_not_emptied(ws, snapshot)
    for c in snapshot.clients:
        client = ws.client(c.client_id)
        if client is not None and client.registered:
            cmd.assign_client(ws, c.client_id, c.group_id, meta)
        else:
            cmd.register_client(ws, c.client_id, c.group_id, meta)
    for e in snapshot.events:
        ref, window = _ref(e), Window.parse(e.start, e.end)
        item_meta = Meta(meta.actor, e.note or meta.note)
        claim = ws.get(EventClaim, EventClaim.id_for(e.event_id))
        if claim is not None and claim.target == ref:
            ws.owner(ref).reschedule_event(e.event_id, window, item_meta)
        else:
            cmd.add_event(ws, e.event_id, ref, window, item_meta)
    for o in snapshot.overrides:
        item_meta = Meta(meta.actor, o.note or meta.note)
        window = Window.parse(o.start, o.end)
        cmd.set_override_again(ws, o.override_id, _ref(o), o.desired_state, window, item_meta)
    for s in snapshot.series:
        item_meta = Meta(meta.actor, s.note or meta.note)
        srs.set_series_again(
            ws, s.series_id, _ref(s), s.recurrence(), parse_dates(s.skip, "skip date"), item_meta
        )
    if prune:
        _prune(ws, snapshot, now, meta)
        srs.prune_series(ws, {s.series_id for s in snapshot.series}, now, meta)


def _check_not_emptied(ws: cmd.Workspace, snapshot: Snapshot) -> None:
    registered = 0 if snapshot.clients else sum(1 for c in ws.all(Client) if c.registered)
    if registered:
        raise EmptySnapshot(
            f"the snapshot has no clients: --prune would deregister all {registered} registered "
            "clients; nothing applied (pass --allow-empty if the fleet is meant to be empty)"
        )


def _prune(ws: cmd.Workspace, snapshot: Snapshot, now: datetime, meta: Meta) -> None:
    keep_events = {e.event_id for e in snapshot.events}
    keep_overrides = {o.override_id for o in snapshot.overrides}
    keep_clients = {c.client_id for c in snapshot.clients}
    for target in [*ws.all(Client), *ws.all(Group)]:
        for event in target.live_events():
            if event.event_id not in keep_events and event.window.end > now:
                target.cancel_event(event.event_id, meta)
        for override in target.live_overrides():
            if override.override_id not in keep_overrides and override.window.end > now:
                target.clear_override(override.override_id, meta)
    for client in ws.all(Client):
        if client.client_id not in keep_clients:
            client.deregister(meta)
