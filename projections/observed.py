"""The audit's reads of observed state: `audit compliance`, and what `delivery` and `fleet` add.

A thin query layer: the recorded transitions come from the read model, the
observation runs from the observation tables, and `projections.compliance`
folds them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine

from ledger.app import Ledger
from ledger.collector import paused_gc
from ledger.errors import NotFound
from ledger.persistence import engine_of
from ledger.values import format_instant
from projections import observation_reads as reads
from projections.compliance import compliance, fleet_totals, observed_at, to_epoch
from projections.readmodel import ReadModel, transitions

__all__ = ["compliance_report", "firsts_of", "followed", "observed_states"]


def _engine(ledger: Ledger) -> Engine:
    return engine_of(ledger)  # the reads answer "none" where the observation tables are missing


def _transitions(
    engine: Engine, start: str, end: str, clients: list[str] | None
) -> dict[str, list[tuple[Any, ...]]]:
    """Per client: its transitions effective in [start, end) and the last two before `start`,
    as (log_name, effective_at, desired_state, reason, grace_seconds, group_id)."""
    t = transitions.c
    before = reads.last_before(t.log_name, t.seq, t.effective_at < start)
    query = (
        select(t.log_name, t.effective_at, t.desired_state, t.reason, t.grace_seconds, t.group_id)
        .outerjoin(before, before.c.key == t.log_name)
        .where(t.client_id.is_not(None), t.effective_at < end)
        .where((t.effective_at >= start) | (t.seq >= before.c.order - 1))
        .order_by(t.log_name, t.seq)
    )
    return reads.grouped(engine, query, t.log_name, clients)


def _in_force(rows: list[tuple[Any, ...]], start: str) -> list[tuple[Any, ...]]:
    # The transitions that decide some instant of the range: the last before it and those in it.
    inside = [r for r in rows if r[1] >= start]
    before = [r for r in rows if r[1] < start]
    return before[-1:] + inside


def compliance_report(
    ledger: Ledger,
    start: datetime,
    end: datetime,
    *,
    clients: list[str] | None = None,
    group_id: str | None = None,
    stale: int = 900,
) -> dict[str, Any]:
    """`audit compliance`: per client and for the fleet (every client, or `clients`, or a group's)."""
    ReadModel(ledger).catch_up()
    with paused_gc():  # tens of thousands of rows, all kept until the answer is built
        return _compliance(ledger, start, end, clients, group_id, stale)


def _compliance(
    ledger: Ledger,
    start: datetime,
    end: datetime,
    clients: list[str] | None,
    group_id: str | None,
    stale: int,
) -> dict[str, Any]:
    engine = _engine(ledger)
    first, last = format_instant(start), format_instant(end)
    recorded = _transitions(engine, first, last, clients)
    if clients is not None:
        for client_id in clients:
            if client_id not in recorded:
                ledger.client(client_id)  # an unknown client is an error, a quiet one zeros
        chosen = list(dict.fromkeys(clients))
    else:
        if group_id is not None and ledger.group(group_id) is None:
            raise NotFound(f"group {group_id!r} does not exist")
        chosen = sorted(
            name
            for name, rows in recorded.items()
            if any(
                r[3] != "client_deregistered" and (group_id is None or r[5] == group_id)
                for r in _in_force(rows, first)
            )
        )
    runs = reads.run_rows(engine, first, last, chosen)
    a, b = to_epoch(first), to_epoch(last)
    rows = []
    for client_id in chosen:
        intended = [r[1:5] for r in recorded.get(client_id, ())]  # at, desired, reason, grace
        rows.append(compliance(client_id, intended, runs.get(client_id, ()), a, b, stale))
    return {
        "from": first,
        "to": last,
        "report_stale": stale,
        "clients": [r.as_dict() for r in rows],
        "fleet": fleet_totals(rows),
    }


def observed_states(ledger: Ledger, at: datetime, clients: list[str], stale: int = 900) -> dict[str, str]:
    """The observed state (on, off, unknown) of each of `clients` at `at`."""
    engine = _engine(ledger)
    t = format_instant(at)
    after = format_instant(datetime.fromtimestamp(to_epoch(t) + 1, at.tzinfo))
    runs = reads.runs_between(engine, t, after, clients)
    moment = to_epoch(t)
    return {c: observed_at(runs.get(c, ()), moment, stale) for c in clients}


def firsts_of(ledger: Ledger, client_id: str) -> dict[tuple[str | None, str], str]:
    """The first report of each (intent_id, tv_state) of a client (for `followed_at`, `matched_at`)."""
    return reads.first_reports(_engine(ledger), client_id)


def followed(firsts: dict[tuple[str | None, str], str], intent_id: str, desired_state: str) -> dict[str, Any]:
    """`followed_at` (the first report naming `intent_id`) and `matched_at` (the first naming it
    with tv_state equal to `desired_state`)."""
    named = [at for (reported_id, _), at in firsts.items() if reported_id == intent_id]
    return {"followed_at": min(named, default=None), "matched_at": firsts.get((intent_id, desired_state))}
