"""The one door to what eventsourcing and SQLAlchemy do not offer publicly.

Nothing else touches the libraries' private attributes. Here: the persistence
module (`PERSISTENCE_MODULE=ledger.persistence:Factory`, a recorder writing
stored events with multi-row `INSERT ... RETURNING id` through the driver
(ledger.bulk), table lock and NOTIFY as the stock one; its datastore is
ledger.writelock's), a transcoder that looks
along the MRO, a ledger's engine, events table, transactions and NOTIFY channel,
and aggregates restored as the library restores a snapshot.
`bulk_insert` and `decode_issued` are ledger.bulk's and ledger.codec's, here for
their callers (the Core reads of the log: ledger.logread).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from itertools import islice
from typing import Any, TypeVar, cast
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import JSONTranscoder, StoredEvent, Transcoding
from eventsourcing_sqlalchemy.datastore import transactions
from eventsourcing_sqlalchemy.factory import SQLAlchemyFactory
from eventsourcing_sqlalchemy.recorders import SQLAlchemyApplicationRecorder
from sqlalchemy import CursorResult, Engine, LargeBinary, Table, func, insert, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy_utils.types.uuid import UUIDType

from ledger.bulk import bind_processors, bulk_insert, insert_many_returning, insert_many_rowids
from ledger.codec import decode_issued
from ledger.writelock import Datastore

__all__ = [
    "BulkApplicationRecorder",
    "Factory",
    "SubclassAwareTranscoder",
    "bulk_insert",
    "decode_issued",
    "dispose",
    "driver_rows",
    "engine_of",
    "events_table",
    "head_of",
    "notify_channel",
    "reading",
    "restore_aggregate",
    "stream_rows",
    "topics_after",
    "transaction",
]

A = TypeVar("A")


class BulkApplicationRecorder(SQLAlchemyApplicationRecorder):
    """The stock recorder's insert (table lock, ids in commit order, NOTIFY), through the driver."""

    def _insert_stored_events(
        self, session: Session, stored_events: Sequence[StoredEvent], **_kwargs: Any
    ) -> Sequence[int]:
        if not stored_events:
            return []
        table = self.events_record_cls.__table__
        postgres = session.connection().dialect.name == "postgresql"
        if postgres:
            # Encoded before the lock: every other writer waits while it is held, and on
            # PostgreSQL the rows go as one parameter anyway (no statement-at-a-time saving).
            stored_events = list(stored_events)
            # The stock recorder's table lock (commit order = id order) and its NOTIFY in one
            # round trip: a NOTIFY is delivered at the commit wherever it stands in the transaction.
            name = self.events_table_name
            if self.schema_name:
                name = f"{self.schema_name}.{name}"
            cursor = session.connection().connection.cursor()
            cursor.execute(f"LOCK TABLE {name} IN EXCLUSIVE MODE; NOTIFY {self.channel_name};")
        else:
            self._lock_table(session)
        ids = _insert_returning(session, table, stored_events)
        if not postgres:
            self._notify_channel(session)
        return ids


_EVENT_COLUMNS = ("originator_id", "originator_version", "topic", "state")


def _insert_returning(session: Session, table: Table, events: Sequence[StoredEvent]) -> list[int]:
    """The rows of `events` inserted; their ids, in the rows' order."""
    connection = session.connection()
    rows = iter(events)  # read as the statements go: a lazy sequence encodes a statement's rows at a time
    if connection.dialect.name == "postgresql":  # raw values: ledger.bulk sends them as JSON

        def values(count: int) -> list[Any]:
            params: list[Any] = []
            for e in islice(rows, count):
                params += (e.originator_id, e.originator_version, e.topic, e.state)
            return params

    elif _plain_binds(connection, table):
        # The columns' bind processors make a UUID its 16 bytes and wrap bytes for the driver,
        # which binds bytes as the same BLOB: done here a row at a time, without three calls.
        id_, state = bind_processors(connection, table, ("originator_id", "state"))

        def values(count: int) -> list[Any]:
            params: list[Any] = []
            for e in islice(rows, count):  # one flat list: no tuple a row
                i, s = e.originator_id, e.state
                params += (
                    i.bytes if type(i) is UUID else id_(i),
                    e.originator_version,
                    e.topic,
                    s if type(s) is bytes else state(s),
                )
            return params

    else:
        id_, version, topic, state = bind_processors(connection, table, _EVENT_COLUMNS)

        def values(count: int) -> list[Any]:
            params: list[Any] = []
            for e in islice(rows, count):  # one flat list: no tuple a row
                params += (
                    id_(e.originator_id),
                    version(e.originator_version),
                    topic(e.topic),
                    state(e.state),
                )
            return params

    if connection.dialect.name == "sqlite":
        return insert_many_rowids(connection, insert(table), _EVENT_COLUMNS, len(events), values)
    # Unordered RETURNING of multi-row INSERTs; ids grow in insertion order, so sorting
    # them restores the order of the rows.
    statement = insert(table).returning(table.c.id)
    returned = insert_many_returning(connection, statement, _EVENT_COLUMNS, len(events), values)
    return sorted(row[0] for row in returned)


def _plain_binds(connection: Any, table: Table) -> bool:
    """Whether the events table binds as the stock one on SQLite: ids as a binary UUIDType
    (16 bytes), versions and topics as they are, states as a LargeBinary."""
    c = table.c
    dialect = connection.dialect
    return (
        dialect.name == "sqlite"
        and isinstance(c.originator_id.type, UUIDType)
        and c.originator_id.type.binary
        and type(c.state.type) is LargeBinary
        and c.originator_version.type.dialect_impl(dialect).bind_processor(dialect) is None
        and c.topic.type.dialect_impl(dialect).bind_processor(dialect) is None
    )


class Factory(SQLAlchemyFactory):
    application_recorder_class = BulkApplicationRecorder
    datastore_class = Datastore


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


@contextmanager
def reading(app: Application[UUID]) -> Iterator[Any]:
    """Where to run one read. PostgreSQL, outside a transaction: an autocommit connection, one
    round trip a statement instead of three (BEGIN, the statement, ROLLBACK); each statement sees
    what was committed before it, as in the recorder's READ COMMITTED transactions. Otherwise
    the recorder's read transaction (the one in progress, if any)."""
    engine = engine_of(app)
    if engine.dialect.name != "postgresql" or transactions.get(None) is not None:
        with transaction(app, commit=False) as session:
            yield session
        return
    with engine.connect() as connection:
        yield connection.execution_options(isolation_level="AUTOCOMMIT")


def head_of(app: Application[UUID]) -> int:
    """The largest notification id (0: none yet), without loading its row."""
    with reading(app) as db:
        connection = db.connection() if isinstance(db, Session) else db
        # The daemon asks before every step (on SQLite 100 times a second while idle): the
        # statement is compiled once a table and dialect, not built and compiled each time.
        table, dialect = events_table(app), connection.dialect
        key = (table.fullname, dialect.name)
        text = _HEAD_TEXT.get(key)
        if text is None:
            text = _HEAD_TEXT[key] = select(func.max(table.c.id)).compile(dialect=dialect).string
        return int(connection.exec_driver_sql(text).scalar() or 0)


_HEAD_TEXT: dict[tuple[str, str], str] = {}  # by (schema-qualified table, dialect)


def notify_channel(app: Application[UUID]) -> str:
    """The PostgreSQL channel the recorder NOTIFYs on every insert."""
    return str(getattr(app.recorder, "channel_name", "ledger_events"))


def topics_after(app: Application[UUID], after: int, topics: Iterable[str], stop: int | None) -> bool:
    """Whether any event of `topics` was appended after position `after` (up to `stop`)."""
    c = events_table(app).c
    query = select(c.id).where(c.id > after, c.topic.in_(tuple(topics))).limit(1)
    if stop is not None:
        query = query.where(c.id <= stop)
    with reading(app) as db:
        return db.execute(query).first() is not None


def stream_rows(app: Application[UUID], originator: UUID, topic: str) -> list[tuple[int, bytes]]:
    """(version, state) of one aggregate's events of `topic`, in order."""
    c = events_table(app).c
    query = (
        select(c.originator_version, c.state)
        .where(c.originator_id == originator, c.topic == topic)
        .order_by(c.originator_version)
    )
    # The rows as the driver returns them (no Row objects, no result processors): both
    # drivers give a state column's value as bytes, and each row is unpacked once anyway.
    with reading(app) as db:
        connection = db.connection() if isinstance(db, Session) else db
        return cast(list[tuple[int, bytes]], driver_rows(connection.execute(query)))


def driver_rows(result: CursorResult[Any]) -> list[Any]:
    """The rows of an executed statement as its driver returns them (no Row objects, no result
    processors), the result closed. A driver error while the rows are stepped is raised as
    SQLAlchemy raises one from `execute`: the daemon's database errors are SQLAlchemy's."""
    context = result.context
    error = context.dialect.loaded_dbapi.Error
    try:
        return cast(list[Any], result.cursor.fetchall())  # both drivers return a list
    except error as e:
        raise DBAPIError.instance(context.statement, context.parameters, e, error) from None
    finally:
        result.close()


# Objects built as the library builds them.


def restore_aggregate(
    cls: type[A],
    id: UUID,
    version: int,
    created_on: datetime,
    modified_on: datetime,
    state: dict[str, Any],
    pending: list[Any] | None = None,
) -> A:
    """An aggregate of `cls` with its bookkeeping and `state`, as eventsourcing restores a snapshot
    (`pending`: the empty list of pending events it holds; default a new one)."""
    aggregate = object.__new__(cls)
    # Set one by one, in the order `__init__` sets them: the instance then shares its
    # class's key table, as aggregates built by `__init__` do (an assigned `__dict__`
    # is a whole dict of its own, larger, held for every restored log).
    put = object.__setattr__
    put(aggregate, "_id", id)
    put(aggregate, "_version", version)
    put(aggregate, "_created_on", created_on)
    put(aggregate, "_modified_on", modified_on)
    put(aggregate, "_pending_events", [] if pending is None else pending)
    for name, value in state.items():
        put(aggregate, name, value)
    return aggregate
