"""eventsourcing-sqlalchemy with a bulk insert path (`PERSISTENCE_MODULE=ledger.persistence:Factory`).

The stock recorder builds one ORM object per stored event and flushes them
through the unit of work; that was about 60% of the time of a large sync.
This recorder writes the same rows with one Core `INSERT ... RETURNING id`
(SQLAlchemy's insertmanyvalues batches it), in the same transaction, with
the same table lock on PostgreSQL and the same NOTIFY. Everything else
(schema, reading, snapshots, tracking) is eventsourcing-sqlalchemy's own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import StoredEvent
from eventsourcing_sqlalchemy.factory import SQLAlchemyFactory
from eventsourcing_sqlalchemy.recorders import SQLAlchemyApplicationRecorder
from sqlalchemy import insert
from sqlalchemy.orm import Session

__all__ = ["BulkApplicationRecorder", "Factory"]


class BulkApplicationRecorder(SQLAlchemyApplicationRecorder):
    def _insert_stored_events(
        self, session: Session, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int]:
        if not stored_events:
            return []
        table = self.events_record_cls.__table__
        self._lock_table(session)  # PostgreSQL: commit order = id order, as the stock recorder does
        rows = [
            {
                "originator_id": e.originator_id,
                "originator_version": e.originator_version,
                "topic": e.topic,
                "state": e.state,
            }
            for e in stored_events
        ]
        # Unordered RETURNING lets SQLAlchemy batch many rows per statement on SQLite too;
        # ids grow in insertion order, so sorting them restores the order of the rows.
        result = session.execute(insert(table).returning(table.c.id), rows)
        ids = sorted(row[0] for row in result)
        self._notify_channel(session)
        return ids


class Factory(SQLAlchemyFactory):
    application_recorder_class = BulkApplicationRecorder
