"""Core reads of the notification log: rows as the driver returns them, decoded by ledger.codec.

ORM objects per row were most of the cost of reading the log; a SELECT built and
compiled anew for every page was a good part of the rest. Here the statement of a
read is compiled once and run a page at a time with the position it goes on from;
each row becomes the domain event the library's mapper would make of it (the typed
decoders of ledger.codec where they read it exactly, the mapper otherwise).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import UUID, SafeUUID

from eventsourcing.application import Application
from eventsourcing.persistence import StoredEvent
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session
from sqlalchemy_utils.types.uuid import UUIDType

from ledger.codec import UNREADABLE, Reader, reader_of
from ledger.persistence import driver_rows, engine_of, events_table, reading

__all__ = ["Decoding", "read_pages", "read_rows", "uuid_of_bytes"]


def read_rows(
    app: Application[UUID], after: int, *, topics: tuple[str, ...], limit: int, stop: int | None
) -> Iterator[tuple[int, Any]]:
    """Domain events of the notification log after `after` (up to `stop`), a page of `limit` at a time."""
    decoding = Decoding(app)
    for rows in read_pages(app, after, topics=topics, limit=limit, stop=stop):
        yield from decoding.events(rows)


def read_pages(
    app: Application[UUID], after: int, *, topics: tuple[str, ...], limit: int, stop: int | None
) -> Iterator[list[Any]]:
    """The driver's rows (position, stored id, version, topic, stored state) of the notification
    log after `after` (up to `stop`), a page of `limit` at a time: for `Decoding`."""
    page = _page(app, topics, limit, stop is not None)
    while True:
        with reading(app) as db:
            rows = page.rows(db, after, stop)
        yield rows
        if len(rows) < limit:
            return
        after = rows[-1][0]


def _page(app: Application[UUID], topics: tuple[str, ...], limit: int, bounded: bool) -> _Page:
    """The page's SELECT of this table, topics, page size and bound: built once a process. The
    daemon reads the log at every ledger change (and its own records); building and compiling
    the statement each time cost more than running it."""
    table = events_table(app)
    key = (table.fullname, engine_of(app).dialect.name, topics, limit, bounded)
    page = _PAGES.get(key)
    if page is None:
        c = table.c
        query = select(c.id, c.originator_id, c.originator_version, c.topic, c.state)
        query = query.where(c.id > bindparam("after", 0)).order_by(c.id).limit(limit)
        if bounded:
            query = query.where(c.id <= bindparam("stop", 0))
        if topics:
            query = query.where(c.topic.in_(topics))
        page = _PAGES[key] = _Page(query)
    return page


class _Page:
    """A SELECT compiled once (its IN lists rendered), run with the position a page goes on from
    (and the last it may read)."""

    def __init__(self, query: Any) -> None:
        self.query = query
        # (text, parameters, their names in order when positional): set in one assignment, so
        # a reader on another thread sees all of it or none.
        self.compiled: tuple[str, dict[str, Any], tuple[str, ...] | None] | None = None

    def rows(self, db: Any, after: int, stop: int | None = None) -> list[Any]:
        """The rows after `after` (up to `stop` if bounded), with the values as the driver returns
        them (no result processors)."""
        connection = db.connection() if isinstance(db, Session) else db
        if self.compiled is None:
            compiled = self.query.compile(
                dialect=connection.dialect, compile_kwargs={"render_postcompile": True}
            )
            names = tuple(compiled.positiontup) if compiled.positional else None
            self.compiled = (compiled.string, dict(compiled.params), names)
        text, shared, names = self.compiled
        params = dict(shared)  # shared by every read of its kind: not changed in place
        params["after"] = after
        if "stop" in params:
            params["stop"] = stop
        driver_params: Any = params if names is None else tuple(params[n] for n in names)
        # Executed through SQLAlchemy (its errors, and a dead connection invalidated, as every
        # other query's), the rows taken from the driver's cursor as they are: a Row object a
        # row from the Result is no use to the decoding, which unpacks each row once.
        return driver_rows(connection.exec_driver_sql(text, driver_params))


class Decoding:
    """What makes a row of `read_pages` the domain event the library's mapper would make of it."""

    def __init__(self, app: Application[UUID]) -> None:
        c = events_table(app).c
        self.mapper = app.mapper
        self.plain = self.mapper.cipher is None and self.mapper.compressor is None
        self.id_of, self.state_of = _id_reader(app, c.originator_id), _result_processor(app, c.state)
        # Whether a stored id is its UUID's 16 bytes (SQLite): its int is then read from them.
        self.id_bytes = self.id_of is uuid_of_bytes
        self.readers: dict[str, Reader | None] = {}  # by stored topic: its class's typed decoder

    def key(self, stored_id: Any) -> int:
        """The int of a stored originator id's UUID (what the fleet view holds its aggregates by)."""
        if self.id_bytes and len(stored_id) == 16:
            return int.from_bytes(stored_id, "big")
        return (stored_id if self.id_of is None else self.id_of(stored_id)).int  # type: ignore[no-any-return]

    def event(self, stored_id: Any, version: int, topic: str, state: Any) -> Any:
        """The domain event of one row (its id, version, topic and state as the driver gave them)."""
        ((_, event),) = self.events([(0, stored_id, version, topic, state)])
        return event

    def events(self, rows: list[Any]) -> Iterator[tuple[int, Any]]:
        """The domain events of a page's rows, with their positions."""
        mapper, plain, id_of, state_of, readers = (
            self.mapper,
            self.plain,
            self.id_of,
            self.state_of,
            self.readers,
        )
        # One id object an aggregate of the page (a client's claim and registration are
        # neighbours), made as the column's result processor makes it.
        ids: dict[Any, UUID] = {}
        for position, stored_id, version, topic, state in rows:
            originator_id = ids.get(stored_id)
            if originator_id is None:
                originator_id = ids[stored_id] = stored_id if id_of is None else id_of(stored_id)
            if state_of is not None:
                state = state_of(state)
            event = None
            if plain:
                read = readers.get(topic, _UNSEEN)
                if read is _UNSEEN:
                    read = readers[topic] = reader_of(topic)
                if read is not None:
                    try:
                        event = read(originator_id, version, state)
                    except UNREADABLE:
                        event = None
            if event is None:
                event = mapper.to_domain_event(StoredEvent(originator_id, version, topic, bytes(state)))
            yield position, event


_UNSEEN: Any = object()
# By (schema-qualified table, dialect, topics, page size, bounded): the few reads a process makes.
_PAGES: dict[tuple[str, str, tuple[str, ...], int, bool], _Page] = {}


def _result_processor(app: Application[UUID], column: Any) -> Any:
    """The result processor of `column` on the ledger's dialect (None: the driver's value as it is)."""
    dialect = engine_of(app).dialect
    return column.type.dialect_impl(dialect).result_processor(dialect, None)


def _id_reader(app: Application[UUID], column: Any) -> Any:
    """What makes a stored originator id a UUID (None: the driver's value is one already)."""
    processor = _result_processor(app, column)
    binary = isinstance(column.type, UUIDType) and column.type.binary
    if processor is not None and binary and engine_of(app).dialect.name == "sqlite":
        # Sixteen bytes, read as the processor reads them (`UUID(bytes=...)`) without its checks.
        return uuid_of_bytes
    return processor


def uuid_of_bytes(value: bytes) -> UUID:
    """`uuid.UUID(bytes=value)` for the 16 bytes of a stored id, built as its `__init__` builds it."""
    if len(value) != 16:
        return UUID(bytes=value)  # its own error
    made = _new(UUID)
    _set(made, "int", int.from_bytes(value, "big"))
    _set(made, "is_safe", SafeUUID.unknown)
    return made


_new = object.__new__
_set = object.__setattr__
