"""A fold of the log's rows into the fleet view that builds no event for the common rows.

A first start folds the whole schedule side: a claim and a registration a client, and
the fleet's scheduled events, most of them a group's. `FleetView.apply` takes domain
events, and building one a row (its dict, its instants, its id object), only to dispatch
it on its class, costs more than the step it feeds. Here a row of the few topics that make up most
of a ledger is decoded into a struct of the fields its step reads, and the step the
event's `apply` (and `ClientRow.fold`, or the library's `mutate` for a group) would take
is taken on the view directly. Anything else, and any row whose step is not the plain
one (a version out of turn, an aggregate of another kind, a state read inexactly), is
decoded into its event and folded by `FleetView.apply`, so both paths hold the same view
(tested on varied ledgers, both stores). Only for a fold that marks nobody: a marked
target keeps its cause's event.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

import msgspec
from eventsourcing.utils import get_topic

from ledger import events as ev
from ledger.codec import UNREADABLE, shared_instant
from ledger.domain import Group
from ledger.logread import Decoding
from ledger.values import ScheduledEvent, Window
from projections.fleet import ClientRow, FleetView, empty_schedule

__all__ = ["STATES", "RowFold", "fold_rows"]


class _At(msgspec.Struct):
    # eventsourcing's DatetimeAsISO, as ledger.codec reads it.
    data: datetime = msgspec.field(name="_data_")


# Each state's stored fields, all of them (a state with another field is the event's to
# read); those no step reads are taken as raw JSON, not built.
class _Claimed(msgspec.Struct, forbid_unknown_fields=True):
    timestamp: msgspec.Raw
    originator_topic: msgspec.Raw
    client_id: str


class _Registered(msgspec.Struct, forbid_unknown_fields=True):
    timestamp: msgspec.Raw
    actor: msgspec.Raw
    note: msgspec.Raw
    client_id: msgspec.Raw
    group_id: str | None


class _Scheduled(msgspec.Struct, forbid_unknown_fields=True):
    timestamp: _At
    actor: msgspec.Raw
    note: msgspec.Raw
    event_id: str
    start: _At
    end: _At


# Built now, their annotations resolved (a test faking the clock may later replace `datetime`).
_CLAIMED = msgspec.json.Decoder(_Claimed)
_REGISTERED = msgspec.json.Decoder(_Registered)
_SCHEDULED = msgspec.json.Decoder(_Scheduled)
STATES: dict[type, type[msgspec.Struct]] = {
    ev.ClientIdClaimed: _Claimed,
    ev.ClientRegistered: _Registered,
    ev.EventScheduled: _Scheduled,
}
_EMPTY = empty_schedule()


class RowFold:
    """Folds pages of `Ledger.read_pages` rows into `view`, marking nobody."""

    def __init__(self, view: FleetView, decoding: Decoding) -> None:
        self.view, self.decoding = view, decoding
        steps: dict[type, Callable[[int, int, Any], bool]] = {
            ev.ClientIdClaimed: self._claimed,
            ev.ClientRegistered: self._registered,
            ev.EventScheduled: self._scheduled,
        }
        # A cipher or a compressor: every row is the mapper's to read.
        self.steps = {get_topic(cls): step for cls, step in steps.items()} if decoding.plain else {}
        self._by_id = view.by_id

    def fold(self, pages: Iterable[list[Any]]) -> None:
        for rows in pages:
            self.page(rows)

    def page(self, rows: list[Any]) -> None:
        """Fold one page's rows (position, stored id, version, topic, stored state), in order."""
        view, decoding, steps = self.view, self.decoding, self.steps
        key_of, state_of, id_bytes = decoding.key, decoding.state_of, decoding.id_bytes
        from_bytes = int.from_bytes
        for position, stored_id, version, topic, stored in rows:
            step = steps.get(topic)
            if step is not None:
                state = stored if state_of is None else state_of(stored)
                # SQLite's 16 bytes read inline (`Decoding.key`), without a call a row.
                key = from_bytes(stored_id, "big") if id_bytes and len(stored_id) == 16 else key_of(stored_id)
                if step(key, version, state):
                    if position > view.position:
                        view.position = position
                    continue
            view.apply(position, decoding.event(stored_id, version, topic, stored))

    # Each step: True if taken, False (nothing changed) if the row is the event's to fold.

    def _claimed(self, key: int, version: int, state: Any) -> bool:
        if key in self._by_id:
            return False
        try:
            s = _CLAIMED.decode(state)
        except UNREADABLE:
            return False
        # A new row has no group yet: of the view's indexes (`index_client`), only its clients.
        self.view.clients[s.client_id] = self._by_id[key] = ClientRow(s.client_id, version)
        return True

    def _registered(self, key: int, version: int, state: Any) -> bool:
        row: Any = self._by_id.get(key)
        if type(row) is not ClientRow or version != row.version + 1:
            return False
        try:
            s = _REGISTERED.decode(state)
        except UNREADABLE:
            return False
        # ClientRegistered.apply; a membership event leaves the shared empty schedule.
        row.registered = True
        row.group_id = s.group_id
        row.version = version
        self.view.index_client(row)
        return True

    def _scheduled(self, key: int, version: int, state: Any) -> bool:
        held: Any = self._by_id.get(key)
        kind = type(held)
        if kind is ClientRow:
            if version != held.version + 1:
                return False
        elif kind is not Group or version != held._version + 1:
            return False
        try:
            s = _SCHEDULED.decode(state)
            # EventScheduled.apply's value, built before anything changes: a window it
            # refuses is the event's to refuse, as it would.
            window = Window(shared_instant(s.start.data), shared_instant(s.end.data))
            scheduled = ScheduledEvent(s.event_id, window)
        except (*UNREADABLE, ValueError):
            return False
        if kind is ClientRow:
            if held.events is _EMPTY:
                held.events, held.overrides, held.series = {}, {}, {}  # its own schedule from now on
            held.events[s.event_id] = scheduled
            held.version = version
            self.view.index_client(held)
        else:
            # The library's step of a later event (as FleetView's), then the view's index of a group.
            held.events[s.event_id] = scheduled
            held._version = version
            held._modified_on = s.timestamp.data
            self.view.index_group(held)
        return True


def fold_rows(view: FleetView, decoding: Decoding, pages: Iterable[list[Any]]) -> None:
    """Fold every page of rows into `view`, marking nobody (see `RowFold`)."""
    RowFold(view, decoding).fold(pages)
