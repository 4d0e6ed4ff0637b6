"""The SQL read model for audits: transitions and ledger changes, in the ledger's own database.

Rows and the tracking position are written in one transaction, so the model
is never ahead of or behind what it says it has read; a crash between a
ledger write and the model's write only means the next `catch_up()` reads it.
Two processes catching up at once cannot both write a position: the primary
keys make the slower one roll back and try again. `rebuild()` drops the
tables and reads the whole ledger again; the result equals the incremental one.
"""

from __future__ import annotations

import functools
import itertools
import sqlite3
from datetime import UTC, datetime
from typing import Any

import msgspec
from eventsourcing.persistence import IntegrityError
from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    cast,
    delete,
    func,
    insert,
    inspect,
    select,
)
from sqlalchemy.dialects.postgresql import insert as _pg_insert
from sqlalchemy.dialects.sqlite import insert as _sqlite_insert

from ledger import events as ev
from ledger.app import Ledger
from ledger.values import floor_second, format_instant

__all__ = ["DeliveryLog", "ReadModel"]

_ID = BigInteger().with_variant(Integer(), "sqlite")
metadata = MetaData()
transitions = Table(
    "audit_transitions",
    metadata,
    Column("position", _ID, primary_key=True, autoincrement=False),
    Column("log_name", String(80), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("intent_id", String(36), nullable=False, unique=True),
    Column("effective_at", String(20), nullable=False),  # YYYY-MM-DDTHH:MM:SSZ sorts as text
    Column("client_id", String(64)),
    Column("group_id", String(64)),
    Column("desired_state", String(3), nullable=False),
    Column("reason", String(32), nullable=False),
    Column("event_window", JSON),
    Column("cause", JSON, nullable=False),
    Index("audit_transitions_log_seq", "log_name", "seq", unique=True),
    Column("grace_seconds", Integer),  # the grace the intent carried (audit compliance)
)
changes = Table(
    "audit_changes",
    metadata,
    Column("position", _ID, primary_key=True, autoincrement=False),
    Column("at", String(20), nullable=False, index=True),
    Column("change", String(40), nullable=False),
    Column("target", String(80), nullable=False, index=True),
    Column("actor", String(200), nullable=False, index=True),
    Column("note", Text),
    Column("details", JSON, nullable=False),
)
targets = Table(
    "audit_targets",
    metadata,
    Column("originator_id", String(36), primary_key=True),
    Column("target", String(80), nullable=False),
)
tracking = Table(
    "audit_tracking",
    metadata,
    Column("position", _ID, primary_key=True, autoincrement=False),
)
TABLES = (transitions, changes, targets, tracking)  # derived from the ledger; rebuild drops them


class ReadModel:
    """Audit tables kept up to date from the notification log."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.engine = ledger.factory.datastore.engine  # type: ignore[attr-defined]
        metadata.create_all(self.engine, checkfirst=True)
        if "grace_seconds" not in {c["name"] for c in inspect(self.engine).get_columns(transitions.name)}:
            # A model built before the column existed: it is derived, so read the ledger again.
            metadata.drop_all(self.engine, tables=list(TABLES), checkfirst=True)
            metadata.create_all(self.engine, tables=list(TABLES))

    def position(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.max(tracking.c.position))).scalar() or 0)

    def catch_up(self, batch: int = 5_000) -> int:
        """Read what the ledger appended since the tracked position; returns rows written."""
        written = 0
        while True:
            start = self.position()
            events = list(self.ledger.read(start, limit=batch))
            if not events:
                return written
            try:
                written += self._write(events)
            except IntegrityError:
                continue  # another process wrote these positions first: read on from there
            if len(events) < batch:
                return written

    def _write(self, events: list[tuple[int, Any]]) -> int:
        known = {}
        rows_t, rows_c, rows_g = [], [], []
        for position, event in events:
            if isinstance(event, ev.ClientIdClaimed | ev.GroupNamed | ev.PolicyOpened):
                label = {ev.ClientIdClaimed: "client", ev.GroupNamed: "group"}.get(type(event), "policy")
                name = getattr(event, "client_id", None) or getattr(event, "group_id", None)
                known[str(event.originator_id)] = f"{label} {name}" if name else label
                rows_g.append(
                    {"originator_id": str(event.originator_id), "target": known[str(event.originator_id)]}
                )
            elif isinstance(event, ev.IntentIssued):
                rows_t.append(_transition(position, event))
            elif isinstance(event, ev.LedgerChange):
                rows_c.append((position, event))
        with self.ledger.recorder.transaction(commit=True) as session:  # type: ignore[attr-defined]
            # Claim the positions first: the tracking row's key makes a concurrent writer fail here.
            session.execute(insert(tracking), [{"position": events[-1][0]}])
            session.execute(delete(tracking).where(tracking.c.position < events[-1][0]))
            missing = {str(e.originator_id) for _, e in rows_c} - set(known)
            if missing:
                found = session.execute(select(targets).where(targets.c.originator_id.in_(missing)))
                known.update({r.originator_id: r.target for r in found})
            if rows_g:
                session.execute(insert(targets), rows_g)
            if rows_t:
                session.execute(insert(transitions), rows_t)
            if rows_c:
                session.execute(insert(changes), [_change(p, e, known) for p, e in rows_c])
        return len(rows_t) + len(rows_c)

    def rebuild(self) -> int:
        """Drop the audit tables and read the whole ledger again."""
        # Only what the ledger can give back: delivery receipts are facts of their own.
        metadata.drop_all(self.engine, tables=list(TABLES), checkfirst=True)
        metadata.create_all(self.engine, tables=list(TABLES))
        return self.catch_up()

    # Queries.

    def replay(
        self, log_name: str, since: datetime | None = None, until: datetime | None = None
    ) -> list[dict[str, Any]]:
        c = transitions.c
        # JSON columns as text, decoded by msgspec: the drivers' json decoding was half the time.
        query = (
            select(
                c.seq,
                c.intent_id,
                c.effective_at,
                c.desired_state,
                c.reason,
                cast(c.event_window, Text),
                cast(c.cause, Text),
            )
            .where(c.log_name == log_name)
            .order_by(c.seq)
        )
        if since is not None:
            query = query.where(c.effective_at >= format_instant(since))
        if until is not None:
            query = query.where(c.effective_at < format_instant(until))
        with self.engine.connect() as conn:
            return [
                {
                    "seq": seq,
                    "intent_id": intent_id,
                    "effective_at": effective_at,
                    "desired_state": state,
                    "reason": reason,
                    "event_window": _json(window),
                    "cause": _json(cause),
                }
                for seq, intent_id, effective_at, state, reason, window, cause in conn.execute(query)
            ]

    def receipts(self, log_name: str) -> dict[str, Any]:
        """The daemon's delivery receipts for one client: firsts by intent id, latest, failures."""
        with self.engine.connect() as conn:
            firsts = {
                r.intent_id: dict(r._mapping)
                for r in conn.execute(select(deliveries).where(deliveries.c.log_name == log_name))
            }
            latest = conn.execute(select(refreshes).where(refreshes.c.log_name == log_name)).first()
            failed = [
                dict(r._mapping)
                for r in conn.execute(
                    select(failures).where(failures.c.log_name == log_name).order_by(failures.c.id)
                )
            ]
        return {
            "firsts": firsts,
            "latest": None if latest is None else dict(latest._mapping),
            "failures": failed,
        }

    def dump(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of every table, for comparing two builds."""
        with self.engine.connect() as conn:
            return {t.name: sorted(tuple(r) for r in conn.execute(select(t))) for t in TABLES}


_json_decoder = msgspec.json.Decoder()


def _json(text: str | None) -> Any:
    return None if text is None else _json_decoder.decode(text)


def _transition(position: int, e: ev.IntentIssued) -> dict[str, Any]:
    return {
        "position": position,
        "log_name": e.client_id if e.client_id is not None else f"groups/{e.group_id}",
        "seq": e.seq,
        "intent_id": e.intent_id,
        "effective_at": format_instant(e.effective_at),
        "client_id": e.client_id,
        "group_id": e.group_id,
        "desired_state": e.desired_state,
        "reason": e.reason,
        "event_window": e.event_window,
        "cause": e.cause,
        "grace_seconds": e.grace_seconds,
    }


def _change(position: int, e: ev.LedgerChange, known: dict[str, str]) -> dict[str, Any]:
    details = ev.event_fields(e, skip=("actor", "note"))
    return {
        "position": position,
        "at": format_instant(floor_second(e.timestamp)),
        "change": type(e).__name__,
        "target": known.get(str(e.originator_id), "?"),
        "actor": e.actor,
        "note": e.note,
        "details": details,
    }


deliveries = Table(
    "audit_deliveries",
    metadata,
    Column("intent_id", String(36), primary_key=True),
    Column("log_name", String(80), nullable=False, index=True),
    Column("seq", Integer, nullable=False),
    Column("first_acked_at", String(24), nullable=False),  # ...T12:00:00.123Z, sorts as text
    Column("issued_at", String(20), nullable=False),
    Column("expires_at", String(20), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("latency_ms", JSON),
)
refreshes = Table(
    "audit_refreshes",
    metadata,
    Column("log_name", String(80), primary_key=True),
    Column("intent_id", String(36), nullable=False),
    Column("last_issued_at", String(20), nullable=False),
    Column("last_acked_at", String(24), nullable=False),
    Column("max_age_seconds", Integer, nullable=False),
)
failures = Table(
    "audit_failures",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("log_name", String(80), nullable=False, index=True),
    Column("intent_id", String(36)),
    Column("at", String(24), nullable=False),
    Column("error", Text, nullable=False),
)
RECEIPT_TABLES = (deliveries, refreshes, failures)


@functools.lru_cache(maxsize=256)
def stamp_ms(t: datetime) -> str:
    # Cached: the receipts of one settled batch share their instant.
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@functools.lru_cache(maxsize=256)
def _issued_instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class DeliveryLog:
    """Delivery receipts the daemon writes: the first successful PUBACK of each intent id,
    the latest publish per client with the largest age its retained payload reached, failures.

    Receipts are buffered and written once per daemon round; if the database is
    away they stay buffered (bounded) and are written later.
    """

    LIMIT = 200_000

    def __init__(self, ledger: Ledger) -> None:
        self.engine = ledger.factory.datastore.engine  # type: ignore[attr-defined]
        self._transaction = ledger.recorder.transaction  # type: ignore[attr-defined]
        metadata.create_all(self.engine, checkfirst=True)
        # Buffered rows are tuples in column order (a third of a dict's size: a burst of
        # 100,000 buffers up to 20,000 of them).
        self._firsts: dict[str, tuple[Any, ...]] = {}
        self._latest: dict[str, tuple[Any, ...]] = {}
        self._failures: list[dict[str, Any]] = []
        self._last_issued: dict[str, datetime] = {}
        # The age a retained payload reaches is measured between this process's own publishes
        # of a client; one that publishes each client once (--once) keeps no per-client state.
        self.track_ages = True

    def acked(
        self, name: str, record: dict[str, Any], kind: str, acked_at: datetime, latency_ms: float | None
    ) -> None:
        issued = record["issued_at"]
        acked = stamp_ms(acked_at)
        intent_id = record["intent_id"]
        if intent_id not in self._firsts:  # _FIRSTS order; the latency as the JSON text stored
            latency = "null" if latency_ms is None else repr(float(latency_ms))
            self._firsts[intent_id] = (
                intent_id,
                name,
                record["seq"],
                acked,
                issued,
                record["expires_at"],
                kind,
                latency,
            )
        age = 0
        if self.track_ages:
            issued_at = _issued_instant(issued)
            previous = self._last_issued.get(name)
            age = 0 if previous is None else int((issued_at - previous).total_seconds())
            self._last_issued[name] = issued_at
        latest = self._latest.get(name)
        # _LATEST order; the last column is max_age_seconds.
        self._latest[name] = (name, intent_id, issued, acked, max(age, latest[-1] if latest else 0))

    def failed(self, name: str, intent_id: str | None, at: datetime, error: str) -> None:
        if len(self._failures) < self.LIMIT:
            self._failures.append(
                {"log_name": name, "intent_id": intent_id, "at": stamp_ms(at), "error": error}
            )

    def pending(self) -> int:
        return len(self._firsts) + len(self._latest) + len(self._failures)

    def flush(self, limit: int | None = None) -> None:
        """Write what is buffered (at most `limit` of each kind) in one transaction.

        Raises on database errors, keeping the buffer.
        """
        if not self.pending():
            return
        firsts = list(itertools.islice(self._firsts.items(), limit))
        latest = list(itertools.islice(self._latest.items(), limit))
        failed = self._failures[:limit]
        dialect = self.engine.dialect.name
        upsert = _sqlite_insert if dialect == "sqlite" else _pg_insert
        with self._transaction(commit=True) as session:
            if firsts:
                statement = upsert(deliveries).on_conflict_do_nothing()
                _bulk(session, statement, _FIRSTS, [row for _, row in firsts], encoded=("latency_ms",))
            if latest:
                statement = upsert(refreshes)
                bigger = func.max if dialect == "sqlite" else func.greatest
                statement = statement.on_conflict_do_update(
                    index_elements=[refreshes.c.log_name],
                    set_={
                        "intent_id": statement.excluded.intent_id,
                        "last_issued_at": statement.excluded.last_issued_at,
                        "last_acked_at": statement.excluded.last_acked_at,
                        "max_age_seconds": bigger(
                            refreshes.c.max_age_seconds, statement.excluded.max_age_seconds
                        ),
                    },
                )
                _bulk(session, statement, _LATEST, [row for _, row in latest])
            if failed:
                session.execute(insert(failures), failed)
        # Written: forget them (the owner thread is the only writer of these buffers).
        for key, _ in firsts:
            del self._firsts[key]
        for key, row in latest:
            if self._latest.get(key) is row:
                del self._latest[key]
        del self._failures[: len(failed)]


_FIRSTS = ("intent_id", "log_name", "seq", "first_acked_at", "issued_at", "expires_at", "kind", "latency_ms")
_LATEST = ("log_name", "intent_id", "last_issued_at", "last_acked_at", "max_age_seconds")


def _bulk(
    session: Any,
    statement: Any,
    columns: tuple[str, ...],
    rows: list[tuple[Any, ...]],
    encoded: tuple[str, ...] = (),
) -> None:
    # One executemany on the driver: SQLAlchemy's per-row parameter processing was most
    # of the cost of writing 10,000 receipts after a cold start's burst. The columns'
    # own bind processors still apply (a JSON column is serialised, as SQLAlchemy would).
    connection = session.connection()
    dialect = connection.dialect
    compiled = statement.compile(dialect=dialect, column_keys=list(columns))
    table = statement.table
    for i, name in enumerate(columns):
        if name in encoded:  # already in the driver's form (JSON text)
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
        _sqlite_many(connection, compiled.string, len(columns), params)
    else:
        connection.exec_driver_sql(compiled.string, params)


# Rows per multi-row INSERT: SQLite binds at most 32,766 parameters per statement since
# 3.32, 999 before (a Python built against an older system library).
SQLITE_ROWS = 500 if sqlite3.sqlite_version_info >= (3, 32) else 999 // 8


def _sqlite_many(connection: Any, sql: str, width: int, rows: list[tuple[Any, ...]]) -> None:
    # Hundreds of rows per statement: sqlite3's executemany releases and retakes the GIL for
    # every row, and while paho's thread is busy each retake waits (a convoy). Always the
    # same number of rows per statement (the rest row by row): sqlite3 caches every distinct
    # statement, and one per burst size cost 70 MB at 100,000 clients.
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
