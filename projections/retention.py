"""Retention of the daemon's receipts: `prune(ledger, before)` deletes what is older than T.

The ledger and the audit read model keep everything (the read model is derived
from the ledger). Receipts grow with every transition the daemon publishes
(`audit_deliveries`: one row per intent id; `audit_failures`: one per failed
publish), and so do the screens' observation runs (`audit_observations`: one
per change a screen reported); they are facts about deliveries, not about the
schedule: an operator keeps them as long as audits need them and prunes the
rest. What is current is never pruned: the receipt of every client's latest
intent (the one `audit_refreshes` names) and every screen's latest run (the
one `audit_reports` names). The horizon of the last prune is kept
(`audit_pruned`), so `audit delivery` says "receipt pruned" rather than
"missing" for transitions before it.

The event store's snapshots of an aggregate (an intent log gains one every
100 intents) are a cache of its events: only each aggregate's latest is ever
read, so a prune also deletes those a later snapshot of the same aggregate
supersedes, whatever T.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    MetaData,
    String,
    Table,
    and_,
    column,
    delete,
    exists,
    inspect,
    select,
    table,
)

from ledger import Ledger
from ledger.persistence import engine_of
from ledger.values import format_instant
from projections.observations import observations, reports
from projections.readmodel import deliveries, failures, refreshes

__all__ = ["PRUNED_TABLES", "horizon", "metadata", "prune"]

metadata = MetaData()
pruned = Table(
    "audit_pruned",
    metadata,
    Column("name", String(40), primary_key=True),
    Column("before", String(24), nullable=False),  # stamp_ms text: sorts as time
)
PRUNED_TABLES = (deliveries.name, failures.name, observations.name)
SNAPSHOTS = "ledger_snapshots"  # eventsourcing-sqlalchemy's, for the application named "ledger"
_RECEIPTS = "receipts"


def prune(ledger: Ledger, before: datetime) -> dict[str, int]:
    """Delete receipts older than `before` (but a client's current one); rows deleted per table."""
    engine = engine_of(ledger)
    stamp = _stamp(before)
    metadata.create_all(engine, checkfirst=True)
    deliveries.create(engine, checkfirst=True)
    failures.create(engine, checkfirst=True)
    refreshes.create(engine, checkfirst=True)
    observations.create(engine, checkfirst=True)
    reports.create(engine, checkfirst=True)
    with engine.begin() as conn:
        current = select(refreshes.c.intent_id)
        old = deliveries.c.first_acked_at < stamp
        gone = {
            deliveries.name: conn.execute(
                delete(deliveries).where(old, deliveries.c.intent_id.not_in(current))
            ),
            failures.name: conn.execute(delete(failures).where(failures.c.at < stamp)),
            observations.name: conn.execute(delete(observations).where(_old_run(before))),
        }
        deleted = {name: result.rowcount for name, result in gone.items()}
        deleted[SNAPSHOTS] = _superseded_snapshots(conn)
        last = conn.execute(select(pruned.c.before).where(pruned.c.name == _RECEIPTS)).scalar()
        if last is None:
            conn.execute(pruned.insert().values(name=_RECEIPTS, before=stamp))
        elif last < stamp:
            conn.execute(pruned.update().where(pruned.c.name == _RECEIPTS).values(before=stamp))
    return deleted


def _old_run(before: datetime) -> Any:
    # Ended before T (whole seconds, Z: compared as text) and not a screen's current run.
    current = exists().where(
        and_(
            reports.c.client_id == observations.c.client_id,
            reports.c.run_started_at == observations.c.started_at,
        )
    )
    return and_(observations.c.last_reported_at < format_instant(before), ~current)


def _superseded_snapshots(conn: Connection) -> int:
    # Only the columns the statement names: the library owns the table and its types.
    if not inspect(conn).has_table(SNAPSHOTS):
        return 0
    mine = table(SNAPSHOTS, column("originator_id"), column("originator_version"))
    later = mine.alias("later")
    superseded = exists().where(
        later.c.originator_id == mine.c.originator_id,
        later.c.originator_version > mine.c.originator_version,
    )
    return conn.execute(delete(mine).where(superseded)).rowcount


def horizon(ledger: Ledger) -> str | None:
    """The `before` of the latest prune (stamp_ms text), or None if receipts were never pruned."""
    engine = engine_of(ledger)
    metadata.create_all(engine, checkfirst=True)
    with engine.connect() as conn:
        value = conn.execute(select(pruned.c.before).where(pruned.c.name == _RECEIPTS)).scalar()
    return None if value is None else str(value)


def _stamp(t: datetime) -> str:
    # As the receipts store their instants (milliseconds, Z): compared as text.
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
