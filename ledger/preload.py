"""A workspace whose aggregates are read in a few bulk queries, for changes that name many ids.

A feed import names a claim per event and series; loading each through the
repository costs two queries apiece. Here the streams of all named aggregates
are read with one SELECT per batch and folded, and the workspace answers from
them (an id that was asked for and not found does not exist yet). Only for
aggregates without snapshots: the schedule side (targets and id claims).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import StoredEvent
from sqlalchemy import select

from ledger import commands as cmd
from ledger.persistence import events_table, transaction

__all__ = ["preloaded_workspace"]

_BATCH = 500


def preloaded_workspace(
    app: Application[UUID], ids: Iterable[UUID], load: Callable[[UUID], Aggregate | None]
) -> cmd.Workspace:
    """A workspace holding the named aggregates, read in bulk; other ids come from `load`."""
    wanted = list(dict.fromkeys(ids))
    found = _fold(app, wanted)
    asked = set(wanted)
    ws = cmd.Workspace(lambda i: found.get(i) if i in asked else load(i))
    for aggregate in found.values():
        ws.add(aggregate)
    return ws


def _fold(app: Application[UUID], ids: list[UUID]) -> dict[UUID, Any]:
    c = events_table(app).c
    found: dict[UUID, Any] = {}
    for first in range(0, len(ids), _BATCH):
        query = (
            select(c.originator_id, c.originator_version, c.topic, c.state)
            .where(c.originator_id.in_(ids[first : first + _BATCH]))
            .order_by(c.originator_id, c.originator_version)
        )
        with transaction(app, commit=False) as session:
            rows = session.execute(query).all()
        for originator_id, version, topic, state in rows:
            event = app.mapper.to_domain_event(StoredEvent(originator_id, version, topic, bytes(state)))
            found[originator_id] = event.mutate(found.get(originator_id))  # type: ignore[attr-defined]
    return found
