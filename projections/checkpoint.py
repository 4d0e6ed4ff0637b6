"""The projector's checkpoint: every intent log it keeps and when each is next due, as of a position.

A restart that finds a checkpoint nothing has overtaken (no schedule change
and no intent it does not hold after its position) starts from it instead of
folding the whole ledger: the current intent of every target is known, and
stays right until the target's next boundary, which the checkpoint also keeps.
The schedule side is folded later, when the daemon is idle or a change needs it.

Rows of `ledger_checkpoints` in the ledger's own database, keyed by projector
(shard and topic kind), each holding up to PART logs msgpack-encoded: read one
part at a time, a checkpoint of a whole large fleet never sits in memory as
one blob (twice: the driver's copy and ours). It is only ever a cache:
deleting the table costs one full start, never a wrong intent.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Iterable, Iterator
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec
from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    delete,
    insert,
    select,
)
from sqlalchemy.exc import SQLAlchemyError

from ledger.app import Ledger
from ledger.intent import CurrentIntent, IntentFields
from ledger.intentlog import NOTHING_PENDING, IntentLog
from ledger.persistence import engine_of, restore_aggregate

__all__ = [
    "Checkpoint",
    "CheckpointStore",
    "LiveLogs",
    "SavedLog",
    "StoredLogs",
    "restore_log",
    "restore_logs",
    "saved_log",
]

FORMAT = 3  # 3: without the intent id (derived from the log and its seq); older formats: a miss
PART = 250  # logs per row (a large blob costs its size in resident memory, long after it is freed)

metadata = MetaData()
checkpoints = Table(
    "ledger_checkpoints",
    metadata,
    Column("key", String(80), primary_key=True),
    Column("part", Integer, primary_key=True, autoincrement=False),
    Column("parts", Integer, nullable=False),
    Column("format", Integer, nullable=False),
    Column("position", BigInteger().with_variant(Integer(), "sqlite"), nullable=False),
    Column("saved_at", String(32), nullable=False),
    Column("body", LargeBinary, nullable=False),
)


class SavedLog(msgspec.Struct, array_like=True):
    """One intent log: the aggregate's state and the target's next boundary (None: none ahead)."""

    id: UUID
    version: int
    created_on: datetime
    modified_on: datetime
    client_id: str | None
    group_id: str | None
    seq: int  # with the log, the current intent's id (derived: DESIGN 5)
    effective_at: datetime
    fields: IntentFields  # encoded as the map of the semantic fields
    due: datetime | None


class Checkpoint(msgspec.Struct):
    """The intent logs of one projector, as of notification `position`."""

    key: str
    position: int
    saved_at: datetime
    logs: Collection[SavedLog]  # a loaded one: `StoredLogs`


class StoredLogs(Collection[SavedLog]):
    """The logs of a loaded checkpoint, kept as stored and decoded one at a time as they are read.

    A decoded log is several times the size of its bytes: a resume turns each into its
    intent log at once, so the fleet's logs are never all in memory twice.
    Reading an element that does not decode raises `msgspec.DecodeError`.
    """

    def __init__(self) -> None:
        self._stored: list[msgspec.Raw] = []

    def add(self, body: bytes) -> None:
        """The logs of one part (its framing checked here, each log when it is read)."""
        self._stored += _framing.decode(body)

    def __len__(self) -> int:
        return len(self._stored)

    def __iter__(self) -> Iterator[SavedLog]:
        return map(_one.decode, self._stored)

    def __contains__(self, item: object) -> bool:
        return any(log == item for log in self)


class LiveLogs(Collection[SavedLog]):
    """The logs of a checkpoint being taken, each saved (`saved_log`) as it is read: saving
    encodes a part at a time, so the fleet's saved logs are never all in memory at once.

    Read as the logs and their next boundaries are then: save it when it is taken.
    """

    def __init__(self, logs: list[IntentLog], due: dict[str, datetime]) -> None:
        self._logs, self._due = logs, due

    def __len__(self) -> int:
        return len(self._logs)

    def __iter__(self) -> Iterator[SavedLog]:
        due = self._due
        return (saved_log(log, due.get(log.name)) for log in self._logs)

    def __contains__(self, item: object) -> bool:
        return any(log == item for log in self)


def _plain(o: Any) -> Any:
    # datetime subclasses (freezegun's in tests, pendulum in callers): as RFC 3339 text,
    # which the decoder reads back into a datetime field all the same.
    if isinstance(o, datetime):
        return o.isoformat()
    raise NotImplementedError(f"cannot checkpoint {type(o).__name__}")


_encoder = msgspec.msgpack.Encoder(enc_hook=_plain)
_framing = msgspec.msgpack.Decoder(list[msgspec.Raw])
_one = msgspec.msgpack.Decoder(SavedLog)


def saved_log(log: IntentLog, due: datetime | None) -> SavedLog:
    assert log.last is not None
    return SavedLog(
        id=log.id,
        version=log.version,
        created_on=log.created_on,
        modified_on=log.modified_on,
        client_id=log.client_id,
        group_id=log.group_id,
        seq=log.seq,
        effective_at=log.last.effective_at,
        fields=log.last.fields,
        due=due,
    )


def restore_logs(logs: Iterable[SavedLog], due: dict[str, datetime]) -> Iterator[IntentLog]:
    """Each saved log restored (`restore_log`, equal values shared), its next boundary noted in `due`."""
    shared: dict[Any, Any] = {}
    for s in logs:
        log = restore_log(s, shared)
        if s.due is not None:
            due[log.name] = s.due
        yield log


def restore_log(s: SavedLog, shared: dict[Any, Any] | None = None) -> IntentLog:
    """The IntentLog aggregate as it was saved (as eventsourcing restores one from a snapshot).

    With `shared`, equal values are stored once across logs: the members of a group
    share its id, reason, window and instants, a recorded batch its record instants
    (what it saves: docs/performance.md).
    """
    fields = s.fields
    client_id = s.client_id
    effective_at, created_on, modified_on = s.effective_at, s.created_on, s.modified_on
    if shared is not None:
        window = fields.event_window
        if window is not None:  # never mutated: intents are compared and published, not edited
            window = shared.setdefault((window["start"], window["end"]), window)
        fields = IntentFields(
            client_id if client_id is not None and fields.client_id == client_id else fields.client_id,
            _shared(shared, fields.group_id),
            shared.setdefault(fields.desired_state, fields.desired_state),
            shared.setdefault(fields.reason, fields.reason),
            fields.grace_seconds,
            window,
        )
        effective_at = shared.setdefault(effective_at, effective_at)
        # A batch's logs share their record instants (IntentLog.open).
        created_on = shared.setdefault(created_on, created_on)
        modified_on = shared.setdefault(modified_on, modified_on)
    last = CurrentIntent(s.seq, effective_at, fields)  # its intent_id: derived, as saved
    state = {"client_id": client_id, "group_id": s.group_id, "seq": s.seq, "last": last}
    return restore_aggregate(IntentLog, s.id, s.version, created_on, modified_on, state, NOTHING_PENDING)


def _shared(shared: dict[Any, Any], value: str | None) -> str | None:
    return None if value is None else shared.setdefault(value, value)


class CheckpointStore:
    """Reads and writes checkpoints in the ledger's database."""

    def __init__(self, ledger: Ledger) -> None:
        self.engine = engine_of(ledger)
        metadata.create_all(self.engine, checkfirst=True)

    def load(self, key: str) -> Checkpoint | None:
        """The checkpoint saved under `key`, or None (none, incomplete, unreadable, an older format)."""
        c = checkpoints.c
        query = (
            select(c.part, c.parts, c.format, c.position, c.saved_at, c.body)
            .where(c.key == key)
            .order_by(c.part)
        )
        try:
            return self._load(query, key)
        except SQLAlchemyError:
            # Unreadable (a table of another format, say): a full start, which meets a real
            # outage of the database anyway and retries it there.
            return None

    def _load(self, query: Any, key: str) -> Checkpoint | None:
        logs = StoredLogs()
        header = None
        read = 0
        # One part at a time (a server-side cursor on PostgreSQL).
        with self.engine.connect().execution_options(stream_results=True, max_row_buffer=1) as conn:
            for expected, row in enumerate(conn.execute(query)):
                if row.format != FORMAT or row.part != expected:
                    return None
                if header is None:
                    header = (row.parts, row.position, row.saved_at)
                elif header != (row.parts, row.position, row.saved_at):
                    return None  # parts of two different saves: never mixed
                try:
                    logs.add(row.body)
                except msgspec.DecodeError:
                    return None  # a cache: unreadable means a full start, nothing worse
                read += 1
        if header is None or read != header[0]:
            return None  # none, or a part missing
        return Checkpoint(key=key, position=header[1], saved_at=datetime.fromisoformat(header[2]), logs=logs)

    def save(self, checkpoint: Checkpoint) -> int:
        """Replace the checkpoint under its key; returns its size in bytes."""
        logs = iter(checkpoint.logs)  # a part at a time: see LiveLogs
        parts = max(1, -(-len(checkpoint.logs) // PART))
        size = 0
        with self.engine.begin() as conn:
            conn.execute(delete(checkpoints).where(checkpoints.c.key == checkpoint.key))
            for part in range(parts):
                body = _encoder.encode(list(itertools.islice(logs, PART)))
                size += len(body)
                # The values as parameters, not in the statement: SQLAlchemy's compiled cache
                # keeps the first statement it compiles, and with it a blob built into it.
                row = {"key": checkpoint.key, "part": part, "parts": parts, "format": FORMAT}
                row.update(position=checkpoint.position, saved_at=checkpoint.saved_at.isoformat(), body=body)
                conn.execute(insert(checkpoints), row)
        return size
