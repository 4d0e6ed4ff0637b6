"""The SQL read model for audits: transitions and ledger changes, in the ledger's own database.

Rows and the tracking position are written in one transaction, so the model
is never ahead of or behind what it says it has read; a crash between a
ledger write and the model's write only means the next `catch_up()` reads it.
Two processes catching up at once cannot both write a position: the primary
keys make the slower one roll back and try again. `rebuild()` drops the
tables and reads the whole ledger again; the result equals the incremental one.
"""

from __future__ import annotations

from datetime import datetime
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

from ledger import events as ev
from ledger.app import Ledger
from ledger.collector import paused_gc
from ledger.names import log_name
from ledger.persistence import engine_of, transaction
from ledger.values import floor_second, format_instant
from projections.observation_reads import fetch

__all__ = ["RECEIPT_TABLES", "ReadModel", "deliveries", "failures", "metadata", "refreshes"]

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
        self.engine = engine_of(ledger)
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
        with transaction(self.ledger, commit=True) as session:
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
        # JSON columns as text, decoded by msgspec: faster than the drivers' json decoding.
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
        # The collector off: every row is three new containers that all survive, and its
        # passes would scan them (and whatever the caller holds) again and again; then
        # they are moved out of the young generation, or its first pass after the pause
        # scans them all. The rows as the driver returns them: a Row object a row is no use.
        decode = _json_decoder.decode
        with paused_gc(promote=True):
            return [
                {
                    "seq": seq,
                    "intent_id": intent_id,
                    "effective_at": effective_at,
                    "desired_state": state,
                    "reason": reason,
                    "event_window": None if window is None else decode(window),
                    "cause": None if cause is None else decode(cause),
                }
                for seq, intent_id, effective_at, state, reason, window, cause in fetch(self.engine, query)
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


def _transition(position: int, e: ev.IntentIssued) -> dict[str, Any]:
    return {
        "position": position,
        "log_name": log_name(e.client_id, e.group_id),
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
