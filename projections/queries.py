"""Read models for the command line: fleet listings, the state of a client, its replay."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from ledger import events as ev
from ledger.domain import Client, Group, Target
from ledger.values import format_instant

if TYPE_CHECKING:  # `client list` reads through a LedgerView, without the application's imports
    from ledger.app import Ledger
    from ledger.quickread import LedgerView

__all__ = ["client_rows", "event_rows", "override_rows", "replay_rows", "state_of"]


def _targets(ledger: Ledger | LedgerView) -> list[Target]:
    found = ledger.aggregates().values()
    return [a for a in found if isinstance(a, Client | Group)]


def client_rows(ledger: Ledger | LedgerView) -> list[dict[str, Any]]:
    clients = [a for a in _targets(ledger) if isinstance(a, Client)]
    return [
        {
            "client_id": c.client_id,
            "group_id": c.group_id,
            "status": "registered" if c.registered else "removed",
        }
        for c in sorted(clients, key=lambda c: c.client_id)
    ]


def event_rows(ledger: Ledger | LedgerView) -> list[dict[str, Any]]:
    rows = [
        {
            "event_id": e.event_id,
            "target": str(t.ref),
            "start": format_instant(e.window.start),
            "end": format_instant(e.window.end),
            "status": "cancelled" if e.cancelled else "scheduled",
        }
        for t in _targets(ledger)
        for e in t.events.values()
    ]
    return sorted(rows, key=lambda r: (r["start"], r["event_id"]))


def override_rows(ledger: Ledger | LedgerView) -> list[dict[str, Any]]:
    rows = [
        {
            "override_id": o.override_id,
            "target": str(t.ref),
            "desired_state": o.desired_state,
            "start": format_instant(o.window.start),
            "end": format_instant(o.window.end),
            "status": "cleared" if o.cleared else "active",
            "rank": o.rank,
        }
        for t in _targets(ledger)
        for o in t.overrides.values()
    ]
    return sorted(rows, key=lambda r: (r["start"], r["override_id"]))


def state_of(ledger: Ledger | LedgerView, client_id: str, at: datetime) -> dict[str, Any]:
    """The effective intent of a client at `at`, with today's membership and policy."""
    from projections.timeline import client_timeline  # the listings need no timeline (nor dateutil)

    client = ledger.client(client_id)
    group = ledger.group(client.group_id) if client.group_id else None
    timeline = client_timeline(client, group, ledger.policy())
    intent = timeline.at(at)
    nxt = timeline.next_boundary(at)
    return {
        "at": format_instant(at),
        **intent.fields(),
        "next_boundary": None if nxt is None else format_instant(nxt),
    }


def replay_rows(
    ledger: Ledger, client_id: str, since: datetime | None = None, until: datetime | None = None
) -> list[dict[str, Any]]:
    """The recorded transitions of a client, oldest first, with `since <= effective_at < until`."""
    issued = ledger.issued(client_id)
    if not issued:
        ledger.client(client_id)  # an unknown client is an error, a quiet one an empty list
    return [
        _replay_row(e)
        for e in issued
        if (since is None or e.effective_at >= since) and (until is None or e.effective_at < until)
    ]


def _replay_row(e: ev.IntentIssued) -> dict[str, Any]:
    return {
        "seq": e.seq,
        "intent_id": e.intent_id,
        "effective_at": format_instant(e.effective_at),
        "desired_state": e.desired_state,
        "reason": e.reason,
        "event_window": e.event_window,
        "cause": e.cause,
    }
