"""The one door to what eventsourcing and SQLAlchemy do not offer publicly.

Nothing else touches the libraries' private attributes. Here: the persistence
module (`PERSISTENCE_MODULE=ledger.persistence:Factory`, a recorder writing
stored events with one Core `INSERT ... RETURNING id` in the same transaction,
table lock and NOTIFY as the stock one), a transcoder that looks along the MRO,
a ledger's engine, events table, transactions and NOTIFY channel, Core reads of
the log, aggregates restored as the library restores a snapshot, the typed
`IntentIssued` decoder, and bulk writes through the driver.
"""

from __future__ import annotations

import re
import sqlite3
import typing
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

import msgspec
from eventsourcing.application import Application
from eventsourcing.persistence import JSONTranscoder, Mapper, StoredEvent, Transcoder, Transcoding
from eventsourcing.utils import get_topic
from eventsourcing_sqlalchemy.factory import SQLAlchemyFactory
from eventsourcing_sqlalchemy.recorders import SQLAlchemyApplicationRecorder
from sqlalchemy import Engine, Table, insert, select
from sqlalchemy.orm import Session

from ledger import events as ev

__all__ = [
    "BulkApplicationRecorder",
    "Factory",
    "PlainJsonMapper",
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
    """The stock recorder's insert (table lock, ids in commit order, NOTIFY), through the driver."""

    def _insert_stored_events(
        self, session: Session, stored_events: Sequence[StoredEvent], **_kwargs: Any
    ) -> Sequence[int]:
        if not stored_events:
            return []
        table = self.events_record_cls.__table__
        self._lock_table(session)  # PostgreSQL: commit order = id order, as the stock recorder does
        # Unordered RETURNING of multi-row INSERTs; ids grow in insertion order, so sorting
        # them restores the order of the rows.
        ids = sorted(row[0] for row in _insert_returning(session, table, stored_events))
        self._notify_channel(session)
        return ids


_EVENT_COLUMNS = ("originator_id", "originator_version", "topic", "state")


def _insert_returning(session: Session, table: Table, events: Sequence[StoredEvent]) -> list[Any]:
    # The statement SQLAlchemy would send, in positional form, many rows at a time; the
    # columns' bind processors applied, in one flat list of parameters (no tuple a row).
    connection = session.connection()
    dialect = connection.dialect
    compiled = insert(table).returning(table.c.id).compile(dialect=dialect, column_keys=list(_EVENT_COLUMNS))
    sql = compiled.string
    if not compiled.positional:  # psycopg's "%(name)s": the VALUES list names the columns in order
        sql = re.sub(r"%\((\w+)\)s", "%s", sql)
    identity = _identity
    id_, version, topic, state = (
        table.c[name].type.dialect_impl(dialect).bind_processor(dialect) or identity
        for name in _EVENT_COLUMNS
    )
    params: list[Any] = []
    for e in events:
        params += (id_(e.originator_id), version(e.originator_version), topic(e.topic), state(e.state))
    per_statement = SQLITE_ROWS if dialect.name == "sqlite" else _PG_ROWS
    return _many_values(connection, sql, params, len(_EVENT_COLUMNS), per_statement)


def _identity(value: Any) -> Any:
    return value


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


class PlainJsonMapper(Mapper[UUID]):
    """Writes the very bytes the stock mapper writes, encoding plain events with msgspec.

    Plain: every field a str, int, bool, None, or a datetime (stored as the transcoder's
    registered datetime transcoding, wrapped at the top level), and lists and str-keyed
    dicts of the first four. Anything else (a snapshot, a nested instant, a float, a
    subclass of str), and a cipher or a compressor, takes the stock path.
    """

    def __init__(self, transcoder: Transcoder, compressor: Any = None, cipher: Any = None) -> None:
        super().__init__(transcoder, compressor=compressor, cipher=cipher)
        self._instant = _instant_transcoding(self)

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        instant = self._instant
        if instant is not None:
            state = _plain_state(domain_event, instant)
            if state is not None:
                return StoredEvent(
                    originator_id=domain_event.originator_id,
                    originator_version=domain_event.originator_version,
                    topic=get_topic(type(domain_event)),
                    state=state,
                )
        return super().to_stored_event(domain_event)


def _instant_transcoding(mapper: Mapper[UUID]) -> Transcoding | None:
    transcoder = mapper.transcoder
    if mapper.cipher or mapper.compressor or not isinstance(transcoder, JSONTranscoder):
        return None
    return transcoder.types.get(datetime)


_SCALARS = (str, int, bool, type(None))
_plain_encoder = msgspec.json.Encoder()


def _plain(value: Any) -> bool:
    # Loops, not all() over generators: this runs for every nested value of every event.
    kind = type(value)
    if kind is dict:
        for k, v in value.items():
            if type(k) is not str or (type(v) not in _SCALARS and not _plain(v)):
                return False
        return True
    if kind is list:
        return all(map(_plain, value))
    return kind in _SCALARS


def _plain_state(event: Any, instant: Transcoding) -> bytes | None:
    # The stock mapper's state: the event's dict without its id and version, then its
    # class version when above 1; instants as {"_type_": ..., "_data_": ...}.
    state = dict(vars(event))
    del state["originator_id"], state["originator_version"]
    for name, value in state.items():
        if type(value) in _SCALARS:
            continue
        if isinstance(value, datetime):
            state[name] = {"_type_": instant.name, "_data_": instant.encode(value)}
        elif not _plain(value):
            return None
    class_version = getattr(type(event), "class_version", 1)
    if class_version > 1:
        state["class_version"] = class_version
    try:
        return _plain_encoder.encode(state)
    except (OverflowError, UnicodeEncodeError):  # ints beyond 64 bits, lone surrogates
        return None


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
    while True:
        query = select(*columns).where(c.id > after).order_by(c.id).limit(limit)
        if stop is not None:
            query = query.where(c.id <= stop)
        if topics:
            query = query.where(c.topic.in_(topics))
        with transaction(app, commit=False) as session:
            rows = session.execute(query).all()
        for position, originator_id, version, topic, state in rows:
            yield position, mapper.to_domain_event(StoredEvent(originator_id, version, topic, bytes(state)))
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


class _Instant(msgspec.Struct):
    # eventsourcing's DatetimeAsISO: {"_type_": "datetime_iso", "_data_": "...+00:00"}.
    data: datetime = msgspec.field(name="_data_")


def _stored_fields(cls: type) -> list[tuple[str, Any]]:
    # The event's own annotations, in the order the mapper's dict has them; instants are
    # stored wrapped. Derived, not restated, so a field added to the event is read too.
    skip = ("originator_id", "originator_version")
    return [
        (name, _Instant if hint is datetime else hint)
        for name, hint in typing.get_type_hints(cls).items()
        if name not in skip and typing.get_origin(hint) is not typing.ClassVar
    ]


_FIELDS = _stored_fields(ev.IntentIssued)
_INSTANTS = frozenset(name for name, hint in _FIELDS if hint is _Instant)
_issued_decoder = msgspec.json.Decoder(msgspec.defstruct("IssuedState", _FIELDS))


def decode_issued(originator_id: UUID, version: int, state: bytes) -> ev.IntentIssued:
    """The `IntentIssued` stored as `state` (its JSON) at `version` of `originator_id`.

    The library's mapper decodes each record through `json.loads` with an object hook
    for its instants; a decoder typed with the event's own schema reads the same bytes
    several times faster and builds the very same event object (tested on stored rows).
    It serves the uncompressed, unencrypted ledgers we write.
    """
    s = _issued_decoder.decode(state)
    state_dict = msgspec.structs.asdict(s)  # field order: the order the mapper's dict has
    for name in _INSTANTS:
        state_dict[name] = state_dict[name].data
    state_dict["originator_id"] = originator_id
    state_dict["originator_version"] = version
    return ev.new_event(ev.IntentIssued, state_dict)


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
    full = len(rows) - len(rows) % SQLITE_ROWS
    if full:
        _many_values(connection, sql, [v for r in rows[:full] for v in r], len(rows[0]), SQLITE_ROWS)
    if full < len(rows):
        connection.exec_driver_sql(sql, rows[full:])


# Rows per multi-row INSERT on PostgreSQL (SQLAlchemy's own page size; the server binds
# at most 65,535 parameters per statement).
_PG_ROWS = 1000


def _many_values(connection: Any, sql: str, params: list[Any], width: int, size: int) -> list[Any]:
    """Execute the one-row INSERT `sql` for every `width` values of `params` as multi-row
    INSERTs; the rows they return.

    `size` rows a statement, the rest in halving chunks (256, 128, ... 1): a bounded
    set of distinct statements, however many rows a call brings.
    """
    head, _, tail = sql.partition(" VALUES ")
    end = tail.index(")") + 1  # "(?, ?, ...)": no nested parentheses
    group, rest = tail[:end], tail[end:]
    returned: list[Any] = []
    count, first = len(params) // width, 0
    while first < count:
        n = size if count - first >= size else 1 << ((count - first).bit_length() - 1)
        statement = f"{head} VALUES {', '.join([group] * n)}{rest}"
        result = connection.exec_driver_sql(statement, tuple(params[first * width : (first + n) * width]))
        if result.returns_rows:
            returned += result.fetchall()
        first += n
    return returned
