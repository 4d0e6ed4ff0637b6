"""Every table intent-ledger creates in the ledger's database (for resets, backups, docs)."""

from __future__ import annotations

from projections import checkpoint, observations, readmodel, retention

__all__ = ["ALL_TABLES", "LEDGER_TABLES"]

# eventsourcing-sqlalchemy's, for the application named "ledger".
LEDGER_TABLES = ("ledger_events", "ledger_snapshots", "ledger_tracking")
ALL_TABLES: tuple[str, ...] = (
    *LEDGER_TABLES,
    *(t.name for t in checkpoint.metadata.sorted_tables),
    *(t.name for t in readmodel.metadata.sorted_tables),
    *(t.name for t in observations.metadata.sorted_tables),
    *(t.name for t in retention.metadata.sorted_tables),
)
