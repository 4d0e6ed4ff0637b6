"""A workspace whose aggregates are read in a few bulk queries, for changes that name many ids.

A feed import names a claim per event and series; loading each through the
repository costs two queries apiece. Here the streams of all named aggregates
are read with one SELECT per batch and folded, and the workspace answers from
them (an id that was asked for and not found does not exist yet). Only for
aggregates without snapshots: the schedule side (targets and id claims).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.domain import Aggregate
from eventsourcing.persistence import StoredEvent
from sqlalchemy import select

from ledger import commands as cmd

__all__ = ["preloaded_workspace"]

_BATCH = 500


class _Store(Protocol):
    recorder: Any
    mapper: Any

    def _load(self, aggregate_id: UUID) -> Aggregate | None: ...


def preloaded_workspace(store: _Store, ids: Iterable[UUID]) -> cmd.Workspace:
    """A workspace holding the named aggregates, read in bulk; other ids load one by one."""
    wanted = list(dict.fromkeys(ids))
    found = _fold(store, wanted)
    asked = set(wanted)
    ws = cmd.Workspace(lambda i: found.get(i) if i in asked else store._load(i))
    for aggregate in found.values():
        ws.add(aggregate)
    return ws


def _fold(store: _Store, ids: list[UUID]) -> dict[UUID, Any]:
    table = store.recorder.events_record_cls.__table__
    columns = (table.c.originator_id, table.c.originator_version, table.c.topic, table.c.state)
    found: dict[UUID, Any] = {}
    for first in range(0, len(ids), _BATCH):
        query = (
            select(*columns)
            .where(table.c.originator_id.in_(ids[first : first + _BATCH]))
            .order_by(table.c.originator_id, table.c.originator_version)
        )
        with store.recorder.transaction(commit=False) as session:
            rows = session.execute(query).all()
        for originator_id, version, topic, state in rows:
            event = store.mapper.to_domain_event(StoredEvent(originator_id, version, topic, bytes(state)))
            found[originator_id] = event.mutate(found.get(originator_id))
    return found
