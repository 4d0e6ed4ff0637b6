"""The one door to what eventsourcing and SQLAlchemy do not offer publicly.

Nothing else touches the libraries' private attributes. Here: the persistence
module (`PERSISTENCE_MODULE=ledger.persistence:Factory`, a recorder writing
stored events with one Core `INSERT ... RETURNING id` in the same transaction,
table lock and NOTIFY as the stock one), a transcoder that looks along the MRO,
a ledger's engine, events table, transactions and NOTIFY channel, Core reads of
the log (decoded by ledger.codec where the mapper would do the same), aggregates
restored as the library restores a snapshot, and bulk writes through the driver.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import JSONTranscoder, StoredEvent, Transcoding
from eventsourcing.utils import resolve_topic
from eventsourcing_sqlalchemy.factory import SQLAlchemyFactory
from eventsourcing_sqlalchemy.recorders import SQLAlchemyApplicationRecorder
from sqlalchemy import Engine, Table, insert, select
from sqlalchemy.orm import Session

from ledger.batching import pieces
from ledger.codec import decode_event, decode_issued

__all__ = [
    "BulkApplicationRecorder",
    "Factory",
    "SubclassAwareTranscoder",
    "bulk_insert",
    "decode_issued",
    "dispose",
    "engine_of",
    "events_table",
    "notify_channel",
    "read_rows",
    "restore_aggregate",
    "stream_rows",
    "topics_after",
    "transaction",
]

A = TypeVar("A")


class BulkApplicationRecorder(SQLAlchemyApplicationRecorder):
    def _insert_stored_events(
        self, session: Session, stored_events: Sequence[StoredEvent], **_kwargs: Any
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
        # In pieces of a power of two rows: sqlite3 caches each distinct statement (128 a
        # connection), and a multi-row INSERT for every batch size would fill it with big ones.
        run = insert(table).returning(table.c.id)
        ids = sorted(r[0] for a, b in pieces(len(rows)) for r in session.execute(run, rows[a:b]))
        self._notify_channel(session)
        return ids


class Factory(SQLAlchemyFactory):
    application_recorder_class = BulkApplicationRecorder


class SubclassAwareTranscoder(JSONTranscoder):
    """Looks transcodings up along the MRO, so datetime subclasses (freezegun's
    FakeDatetime in tests, pendulum in callers) are stored as datetimes."""

    def _encode_obj(self, o: Any) -> dict[str, Any]:
        for cls in type(o).__mro__:
            transcoding: Transcoding | None = self.types.get(cls)
            if transcoding is not None:
                return {"_type_": transcoding.name, "_data_": transcoding.encode(o)}
        return super()._encode_obj(o)


# A ledger's engine, table and transactions.


def engine_of(app: Application[UUID]) -> Engine:
    """The SQLAlchemy engine of an application on this persistence module."""
    engine: Engine = app.factory.datastore.engine  # type: ignore[attr-defined]
    return engine


def dispose(app: Application[UUID]) -> None:
    """Release the pooled connections eventsourcing-sqlalchemy leaves open at close."""
    datastore = getattr(app.factory, "datastore", None)
    if datastore is not None and datastore.engine is not None:
        datastore.engine.dispose()


def events_table(app: Application[UUID]) -> Table:
    table: Table = app.recorder.events_record_cls.__table__  # type: ignore[attr-defined]
    return table


def transaction(app: Application[UUID], *, commit: bool) -> AbstractContextManager[Session]:
    """A session in the recorder's own transaction handling (retries, locking)."""
    session: AbstractContextManager[Session] = app.recorder.transaction(commit=commit)  # type: ignore[attr-defined]
    return session


def notify_channel(app: Application[UUID]) -> str:
    """The PostgreSQL channel the recorder NOTIFYs on every insert."""
    return str(getattr(app.recorder, "channel_name", "ledger_events"))


# Core reads: ORM objects per row were most of the cost of reading the log.


def read_rows(
    app: Application[UUID], after: int, *, topics: tuple[str, ...], limit: int, stop: int | None
) -> Iterator[tuple[int, Any]]:
    """Domain events of the notification log after `after` (up to `stop`), a page of `limit` at a time."""
    table = events_table(app)
    c = table.c
    columns = (c.id, c.originator_id, c.originator_version, c.topic, c.state)
    mapper = app.mapper
    plain = mapper.cipher is None and mapper.compressor is None
    while True:
        query = select(*columns).where(c.id > after).order_by(c.id).limit(limit)
        if stop is not None:
            query = query.where(c.id <= stop)
        if topics:
            query = query.where(c.topic.in_(topics))
        with transaction(app, commit=False) as session:
            rows = session.execute(query).all()
        for position, originator_id, version, topic, state in rows:
            event = decode_event(resolve_topic(topic), originator_id, version, state) if plain else None
            if event is None:
                event = mapper.to_domain_event(StoredEvent(originator_id, version, topic, bytes(state)))
            yield position, event
        if len(rows) < limit:
            return
        after = rows[-1][0]


def topics_after(app: Application[UUID], after: int, topics: Iterable[str], stop: int | None) -> bool:
    """Whether any event of `topics` was appended after position `after` (up to `stop`)."""
    c = events_table(app).c
    query = select(c.id).where(c.id > after, c.topic.in_(tuple(topics))).limit(1)
    if stop is not None:
        query = query.where(c.id <= stop)
    with transaction(app, commit=False) as session:
        return session.execute(query).first() is not None


def stream_rows(app: Application[UUID], originator: UUID, topic: str) -> list[tuple[int, bytes]]:
    """(version, state) of one aggregate's events of `topic`, in order."""
    c = events_table(app).c
    query = (
        select(c.originator_version, c.state)
        .where(c.originator_id == originator, c.topic == topic)
        .order_by(c.originator_version)
    )
    with transaction(app, commit=False) as session:
        return [(version, bytes(state)) for version, state in session.execute(query).all()]


# Objects built as the library builds them.


def restore_aggregate(
    cls: type[A],
    id: UUID,
    version: int,
    created_on: datetime,
    modified_on: datetime,
    state: dict[str, Any],
) -> A:
    """An aggregate of `cls` with its bookkeeping and `state`, as eventsourcing restores a snapshot."""
    aggregate = object.__new__(cls)
    attributes = {
        "_id": id,
        "_version": version,
        "_created_on": created_on,
        "_modified_on": modified_on,
        "_pending_events": [],
        **state,
    }
    object.__setattr__(aggregate, "__dict__", attributes)
    return aggregate


# Bulk writes through the driver.


def bulk_insert(
    session: Any,
    statement: Any,
    columns: tuple[str, ...],
    rows: list[tuple[Any, ...]],
    encoded: tuple[str, ...] = (),
) -> None:
    """Execute `statement` for every row (tuples in `columns` order) in one driver call.

    Skips SQLAlchemy's per-row parameter processing; the columns' bind processors still
    apply (JSON serialised as SQLAlchemy would), except to `encoded` ones (JSON text).
    """
    connection = session.connection()
    dialect = connection.dialect
    compiled = statement.compile(dialect=dialect, column_keys=list(columns))
    table = statement.table
    for i, name in enumerate(columns):
        if name in encoded:
            continue
        process = table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            rows = [(*r[:i], process(r[i]), *r[i + 1 :]) for r in rows]
    if compiled.positional:
        order = [columns.index(name) for name in compiled.positiontup]
        params: list[Any] = rows
        if order != list(range(len(columns))):
            params = [tuple(r[i] for i in order) for r in rows]
    else:
        params = [dict(zip(columns, r, strict=True)) for r in rows]
    if dialect.name == "sqlite":
        _sqlite_many(connection, compiled.string, params)
    else:
        connection.exec_driver_sql(compiled.string, params)


# Rows per multi-row INSERT: SQLite binds at most 32,766 parameters per statement since
# 3.32, 999 before (a Python built against an older system library).
SQLITE_ROWS = 500 if sqlite3.sqlite_version_info >= (3, 32) else 999 // 8


def _sqlite_many(connection: Any, sql: str, rows: list[tuple[Any, ...]]) -> None:
    # Hundreds of rows per statement: sqlite3's executemany releases and retakes the GIL for
    # every row, and while paho's thread is busy each retake waits (a convoy). Always the
    # same number of rows per statement (the rest row by row): sqlite3 caches every distinct
    # statement, and one per burst size would cost memory in proportion to the fleet.
    head, _, tail = sql.partition(" VALUES ")
    end = tail.index(")") + 1  # "(?, ?, ...)": no nested parentheses
    group, rest = tail[:end], tail[end:]
    full = len(rows) - len(rows) % SQLITE_ROWS
    if full:
        statement = f"{head} VALUES {', '.join([group] * SQLITE_ROWS)}{rest}"
        for first in range(0, full, SQLITE_ROWS):
            chunk = rows[first : first + SQLITE_ROWS]
            connection.exec_driver_sql(statement, tuple(v for r in chunk for v in r))
    if full < len(rows):
        connection.exec_driver_sql(sql, rows[full:])
