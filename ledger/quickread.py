"""A read-only view of an SQLite ledger through the stdlib sqlite3, for quick commands.

`client list` and its kind start a fresh interpreter for one query; importing
eventsourcing's application, SQLAlchemy's ORM and eventsourcing-sqlalchemy was
most of their time. This view reads the stored events with `sqlite3` and builds
each event as the library's mapper does (same JSON transcodings, same upcasts),
then folds them with the aggregates' own `mutate`. It serves the plain files we
write: anything else (PostgreSQL, a cipher or compressor configured, a file the
view cannot read) gets `None` from `open_view`, and the caller uses `Ledger`.
Sibling of ledger.persistence: the library's storage layout is known here only.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate
from eventsourcing.utils import resolve_topic

from ledger.domain import Client, Group, PolicyRecord
from ledger.errors import ClientNotFound
from ledger.topics import SCHEDULE_TOPICS
from ledger.urls import parse_database_url
from ledger.values import Policy

__all__ = ["AggregateReads", "LedgerView", "open_view"]

# The application's name is "ledger": eventsourcing-sqlalchemy names its table after it.
_TABLE = "ledger_events"
_COLUMNS = "originator_id, originator_version, topic, state"
# Settings that change how events are stored; with any of them the library reads them.
_STORAGE_SETTINGS = ("CIPHER_TOPIC", "COMPRESSOR_TOPIC", "PERSISTENCE_MODULE", "SQLALCHEMY_URL")
_DECODERS: dict[str, Any] = {"uuid_hex": UUID, "decimal_str": Decimal, "datetime_iso": datetime.fromisoformat}


def _decode_obj(d: dict[str, Any]) -> Any:
    # As eventsourcing's JSONTranscoder, with the transcodings the ledger registers.
    if len(d) == 2 and "_type_" in d and "_data_" in d:
        name = d["_type_"]
        if name not in _DECODERS:
            from ledger.intentlog import CurrentIntentAsDict

            _DECODERS[CurrentIntentAsDict.name] = CurrentIntentAsDict().decode
        return _DECODERS[name](d["_data_"])
    return d


def _event(originator_id: bytes, version: int, topic: str, state: bytes) -> Any:
    # As eventsourcing's Mapper.to_domain_event, for an unencrypted, uncompressed record.
    cls = resolve_topic(topic)
    event_state: dict[str, Any] = json.loads(state, object_hook=_decode_obj)
    event_state["originator_id"] = UUID(bytes=originator_id)  # sqlalchemy-utils' UUIDType: 16 bytes
    event_state["originator_version"] = version
    class_version = getattr(cls, "class_version", 1)
    from_version = event_state.pop("class_version", 1)
    while from_version < class_version:
        getattr(cls, f"upcast_v{from_version}_v{from_version + 1}")(event_state)
        from_version += 1
    event = object.__new__(cls)
    object.__setattr__(event, "__dict__", event_state)
    return event


class AggregateReads:
    """A client, a group, the policy: read by `Ledger` (its repository) and `LedgerView` alike."""

    def _load(self, aggregate_id: UUID) -> Aggregate | None:
        raise NotImplementedError

    def client(self, client_id: str) -> Client:
        client = self._load(Client.id_for(client_id))
        if not isinstance(client, Client):
            raise ClientNotFound(client_id)
        return client

    def group(self, group_id: str) -> Group | None:
        group = self._load(Group.id_for(group_id))
        return group if isinstance(group, Group) else None

    def policy(self) -> Policy:
        record = self._load(PolicyRecord.ID)
        return record.policy if isinstance(record, PolicyRecord) else Policy()


class LedgerView(AggregateReads):
    """The aggregates of an SQLite ledger file, read without eventsourcing's application."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def aggregates(self, topics: Iterable[str] = SCHEDULE_TOPICS) -> dict[UUID, Aggregate]:
        """Every aggregate of `topics`, folded from the notification log in one pass (as `Ledger`)."""
        wanted = tuple(topics)
        marks = ", ".join("?" * len(wanted))
        query = f"SELECT {_COLUMNS} FROM {_TABLE} WHERE topic IN ({marks}) ORDER BY id"
        found: dict[UUID, Any] = {}
        for row in self._connection.execute(query, wanted):
            event = _event(*row)
            found[event.originator_id] = event.mutate(found.get(event.originator_id))
        return found

    def _load(self, aggregate_id: UUID) -> Aggregate | None:
        # Only intent logs are snapshotted, so the stream alone is what the repository folds here.
        query = f"SELECT {_COLUMNS} FROM {_TABLE} WHERE originator_id = ? ORDER BY originator_version"
        aggregate: Any = None
        for row in self._connection.execute(query, (aggregate_id.bytes,)):
            aggregate = _event(*row).mutate(aggregate)
        return aggregate if isinstance(aggregate, Aggregate) else None

    def close(self) -> None:
        self._connection.close()


def open_view(db_url: str) -> LedgerView | None:
    """A view of the SQLite ledger file at `db_url`, or None where `Ledger` must read it."""
    if any(key.endswith(_STORAGE_SETTINGS) for key in os.environ):
        return None
    url = parse_database_url(db_url)
    path = url.path
    if path is None or url.parts.query or not path.is_file():
        return None  # PostgreSQL, in memory, options, or a missing file (Ledger says why)
    try:
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error:
        return None
    try:
        # Fails here, not mid-command, on a file that is not a ledger (Ledger explains it).
        connection.execute(f"SELECT id, {_COLUMNS} FROM {_TABLE} LIMIT 0")
    except sqlite3.Error:
        connection.close()
        return None
    return LedgerView(connection)
