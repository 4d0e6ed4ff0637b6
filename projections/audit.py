"""Incident review: what the ledger knew at a time, and why a client was on or off.

Bitemporal: `as_of(ledger, k)` folds only the changes committed by `k`
(knowledge time); `why(..., at=t, as_of=k)` answers "what did we believe at
k about instant t". Every piece of evidence names the change that made it
so: who, when, and their note. (What was delivered: projections.delivery.)
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from itertools import pairwise
from typing import Any

from ledger import events as ev
from ledger.app import TIMELINE_TOPICS, Ledger
from ledger.collector import paused_gc
from ledger.domain import PolicyRecord, Target
from ledger.errors import ClientNotFound
from ledger.values import Window, floor_second, format_instant
from projections.evidence import every_block, inside, occurrence_evidence
from projections.fleet import ClientRow, FleetView
from projections.observed import observed_states
from projections.timeline import Block

__all__ = ["AuditView", "as_of", "changes", "fleet_at", "gaps", "why"]


class AuditView(FleetView):
    """A fleet view that remembers which change last touched each item, membership and the policy."""

    def __init__(self) -> None:
        super().__init__()
        self.made_by: dict[tuple[str, ...], tuple[int, Any]] = {}
        self.target_of: dict[Any, str] = {}  # aggregate id -> "client X" / "group G" / "policy"

    def apply(self, position: int, event: Any, affected: Any = None) -> None:
        super().apply(position, event, affected)
        aggregate = self.aggregate_of(event.originator_id)
        if isinstance(aggregate, Target | ClientRow):
            self.target_of[event.originator_id] = str(aggregate.ref)
        elif isinstance(aggregate, PolicyRecord):
            self.target_of[event.originator_id] = "policy"
        if isinstance(event, ev.LedgerChange):
            self.made_by[_item_key(event, aggregate)] = (position, event)


def _item_key(event: Any, aggregate: Any) -> tuple[str, ...]:
    if hasattr(event, "event_id"):
        return ("event", event.event_id)
    if hasattr(event, "override_id"):
        return ("override", event.override_id)
    if hasattr(event, "series_id"):
        return ("series", event.series_id)
    if isinstance(aggregate, ClientRow):
        return ("client", aggregate.client_id)
    return ("policy",)


def as_of(ledger: Ledger, knowledge: datetime | None = None, view: FleetView | None = None) -> FleetView:
    """The schedule side of the ledger as it was known at `knowledge` (None: now).

    Folds into `view` (default: an AuditView, which also keeps who made each item so).
    """
    view = AuditView() if view is None else view
    late: set[Any] = set()
    for position, event in ledger.read(topics=TIMELINE_TOPICS):
        stamp: datetime = event.timestamp  # type: ignore[attr-defined]
        if knowledge is not None and (event.originator_id in late or stamp > knowledge):
            # Writers' clocks may interleave: once one change of an aggregate is too late,
            # all its later ones are too (versions must stay contiguous).
            late.add(event.originator_id)
            continue
        view.apply(position, event)
    return view


def _made(view: AuditView, *key: str) -> dict[str, Any] | None:
    found = view.made_by.get(key)
    if found is None:
        return None
    position, event = found
    return {
        "change": type(event).__name__,
        "position": position,
        "at": format_instant(floor_second(event.timestamp)),
        "actor": event.actor,
        "note": event.note,
    }


def _window(w: Window | Any) -> dict[str, str]:
    return {"start": format_instant(w.start), "end": format_instant(w.end)}


def why(ledger: Ledger, client_id: str, at: datetime, knowledge: datetime | None = None) -> dict[str, Any]:
    """The effective state of a client at `at` and the exact records that produced it."""
    view = as_of(ledger, knowledge)
    assert isinstance(view, AuditView)
    client = view.clients.get(client_id)
    if client is None:
        known = "is not known" if knowledge is None else f"was not known at {format_instant(knowledge)}"
        raise ClientNotFound(client_id, known)
    group = view.groups.get(client.group_id) if client.group_id else None
    timeline = view.timeline(client_id)
    intent = timeline.at(at)
    targets: list[Target | ClientRow] = [client] + ([group] if group is not None else [])
    block = timeline.block_at(at)
    events = [
        {
            "event_id": e.event_id,
            "target": str(t.ref),
            "window": _window(e.window),
            "status": "cancelled" if e.cancelled else "scheduled",
            "in_block": bool(block and not e.cancelled and _inside(e.window, block, view)),
            "made_by": _made(view, "event", e.event_id),
        }
        for t in targets
        for e in t.events.values()
        if (block and _inside(e.window, block, view)) or e.window.contains(at)
    ]
    overrides = [
        {
            "override_id": o.override_id,
            "target": str(t.ref),
            "desired_state": o.desired_state,
            "window": _window(o.window),
            "rank": o.rank,
            "status": "cleared" if o.cleared else "active",
            "made_by": _made(view, "override", o.override_id),
        }
        for t in targets
        for o in t.overrides.values()
        if o.window.contains(at)
    ]
    occurrences = occurrence_evidence(targets, at, block, view.policy, lambda sid: _made(view, "series", sid))
    return {
        "client_id": client_id,
        "at": format_instant(at),
        "as_of": None if knowledge is None else format_instant(knowledge),
        **intent.fields(),
        "decided_by": _decided_by(intent.reason, overrides, events, occurrences),
        "membership": {
            "registered": client.registered,
            "group_id": client.group_id,
            "made_by": _made(view, "client", client_id),
        },
        "policy": {**view.policy.as_dict(), "made_by": _made(view, "policy")},
        "events": sorted(events, key=lambda e: (e["window"]["start"], e["event_id"])),
        "occurrences": occurrences,
        "overrides": sorted(overrides, key=lambda o: -o["rank"]),
    }


def _inside(window: Window, block: Block, view: AuditView) -> bool:
    return inside(window.start, window.end, block, view.policy)


def _decided_by(
    reason: str,
    overrides: list[dict[str, Any]],
    events: list[dict[str, Any]],
    occurrences: list[dict[str, Any]],
) -> list[str]:
    if reason in ("client_override", "group_override"):
        level = "client" if reason == "client_override" else "group"
        active = [o for o in overrides if o["status"] == "active" and o["target"].startswith(level)]
        return [f"override {active[0]['override_id']}"] if active else []
    if reason == "event_window_active":
        found = [(e["window"]["start"], f"event {e['event_id']}") for e in events if e["in_block"]]
        found += [(o["window"]["start"], f"series {o['occurrence']}") for o in occurrences if o["in_block"]]
        return [name for _, name in sorted(found)]
    return []


def fleet_at(
    ledger: Ledger, at: datetime, group_id: str | None = None, stale: int = 900
) -> list[dict[str, Any]]:
    """Every registered client's state at `at` (optionally one group's), and what its screen reported."""
    with paused_gc():
        view = as_of(ledger, view=FleetView())
    rows = []
    for client_id, client in sorted(view.clients.items()):
        if not client.registered or (group_id is not None and client.group_id != group_id):
            continue
        rows.append({"client_id": client_id, **view.timeline(client_id).at(at).fields()})
    seen = observed_states(ledger, at, [r["client_id"] for r in rows], stale)
    return [{**r, "observed": seen[r["client_id"]]} for r in rows]


def changes(
    ledger: Ledger,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    client_id: str | None = None,
    group_id: str | None = None,
    actor: str | None = None,
) -> list[dict[str, Any]]:
    """Ledger changes (who, what, when, note), oldest first, filtered."""
    view = AuditView()
    rows = []
    for position, event in ledger.read(topics=TIMELINE_TOPICS):
        view.apply(position, event)
        if not isinstance(event, ev.LedgerChange):
            continue
        target = view.target_of.get(event.originator_id, "?")
        when = event.timestamp
        if (since is not None and when < since) or (until is not None and when >= until):
            continue
        if actor is not None and event.actor != actor:
            continue
        if client_id is not None and target != f"client {client_id}":
            continue
        if (
            group_id is not None
            and target != f"group {group_id}"
            and getattr(event, "group_id", None) != group_id
        ):
            continue
        rows.append(
            {
                "position": position,
                "at": format_instant(floor_second(when)),
                "change": type(event).__name__,
                "target": target,
                **ev.event_fields(event, skip=("actor", "note")),
                "actor": event.actor,
                "note": event.note,
                **_occurrence_names(event),
            }
        )
    return rows


def _occurrence_names(event: Any) -> dict[str, list[str]]:
    # A skip or unskip is about occurrences: name them as everywhere else.
    if isinstance(event, ev.SeriesSkipped | ev.SeriesUnskipped):
        return {"occurrences": [f"{event.series_id}@{d}" for d in event.dates]}
    return {}


def gaps(ledger: Ledger, group_id: str | None = None, max_gap: int = 900) -> list[dict[str, Any]]:
    """`off` stretches of at most `max_gap` seconds between two `on` blocks (bridge-gap candidates)."""
    with paused_gc():
        view = as_of(ledger, view=FleetView())
    rows = []
    for client_id, client in sorted(view.clients.items()):
        if not client.registered or (group_id is not None and client.group_id != group_id):
            continue
        rows += _short_gaps(client_id, every_block(view.timeline(client_id)), max_gap)
    return rows


def _short_gaps(client_id: str, blocks: Iterable[Block], max_gap: int) -> list[dict[str, Any]]:
    found = []
    ordered = list(blocks)
    for before, after in pairwise(ordered):
        seconds = int((after.start - before.end).total_seconds())
        if 0 < seconds <= max_gap:
            found.append(
                {
                    "client_id": client_id,
                    "start": format_instant(before.end),
                    "end": format_instant(after.start),
                    "seconds": seconds,
                    "before": _window(before.window),
                    "after": _window(after.window),
                }
            )
    return found
