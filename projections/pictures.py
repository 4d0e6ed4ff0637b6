"""Timeline pictures for incident tickets: what they show, gathered from the ledger, and a text view.

`rows_for` gathers, per client, three bands over [start, end): the schedule
as the ledger holds it now (with the event windows and overrides that shaped
it), the intents actually issued (the intent log), and the state the screen
reported. They are typed records (`Row`, `Stretch`, `Item`), so the
renderers (projections/picture_svg.py, projections/picture_html.py, and
`render_text` here) are pure functions of them.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from ledger.app import Ledger
from ledger.errors import ClientNotFound
from ledger.occurrences import occurrences
from ledger.persistence import engine_of
from ledger.values import format_instant
from projections.audit import AuditView, as_of
from projections.compliance import observed_at, to_epoch
from projections.observation_reads import runs_between
from projections.observations import Run
from projections.picture_html import render_html
from projections.picture_svg import render_svg
from projections.readmodel import ReadModel

__all__ = [
    "Item",
    "Row",
    "Stretch",
    "issued_stretches",
    "observed_stretches",
    "render_html",
    "render_svg",
    "render_text",
    "rows_for",
]


@dataclass(frozen=True)
class Stretch:
    """A constant piece of a band: `state` is on, off or unknown; `label` says more (a reason, an id)."""

    start: datetime
    end: datetime
    state: str
    label: str = ""


@dataclass(frozen=True)
class Item:
    """An event window or an override that shapes the schedule band, with who set it and why."""

    kind: Literal["event", "override"]
    name: str  # the window's id (an event id, an override id, or an occurrence's name)
    target: str  # "client X" / "group G"
    start: datetime
    end: datetime
    state: str | None = None  # an override's on/off
    actor: str | None = None
    note: str | None = None


@dataclass
class Row:
    """One client's picture."""

    client_id: str
    group_id: str | None
    schedule: list[Stretch] = field(default_factory=list)  # label: the reason
    items: list[Item] = field(default_factory=list)
    issued: list[Stretch] = field(default_factory=list)  # label: the intent_id
    transitions: list[dict[str, Any]] = field(default_factory=list)  # recorded inside the range
    observed: list[Stretch] = field(default_factory=list)  # empty: nothing reported


def issued_stretches(recorded: list[Any], start: datetime, end: datetime) -> list[Stretch]:
    """The intent log as stretches over [start, end): each transition holds until the next."""
    before = [e for e in recorded if e.effective_at <= start]
    inside = [e for e in recorded if start < e.effective_at < end]
    chain = before[-1:] + inside
    stretches = []
    for i, e in enumerate(chain):
        s = max(start, e.effective_at)
        t = chain[i + 1].effective_at if i + 1 < len(chain) else end
        stretches.append(Stretch(s, t, e.desired_state, e.intent_id))
    return stretches


def observed_stretches(runs: list[Run], start: datetime, end: datetime, stale: int = 900) -> list[Stretch]:
    """The observed state over [start, end) as stretches (DESIGN 13, as `audit compliance` reads it).

    It can change only where a run begins (`since`, `started_at`) or goes quiet
    (`last_reported_at + stale`); between two such instants it is constant.
    """
    a, b = to_epoch(format_instant(start)), to_epoch(format_instant(end))
    points = {a, b}
    for r in runs:
        points |= {to_epoch(r.since), to_epoch(r.started_at), to_epoch(r.last_reported_at) + stale}
    cuts = sorted(t for t in points if a <= t <= b)
    stretches: list[Stretch] = []
    for s, e in itertools.pairwise(cuts):
        state = observed_at(runs, s, stale)
        if stretches and stretches[-1].state == state:
            last = stretches.pop()
            stretches.append(Stretch(last.start, _instant(e), state))
        else:
            stretches.append(Stretch(_instant(s), _instant(e), state))
    return stretches


def _instant(t: int) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def _observed(
    ledger: Ledger, clients: list[str], start: datetime, end: datetime, stale: int
) -> dict[str, list[Stretch]]:
    # A ledger no daemon has observed yet has no observation tables: no observations.
    runs = runs_between(engine_of(ledger), format_instant(start), format_instant(end), clients)
    return {c: observed_stretches(found, start, end, stale) for c, found in runs.items()}


def _items(view: AuditView, target: Any, start: datetime, end: datetime) -> list[Item]:
    where = str(target.ref)
    found = []
    for e in target.live_events():
        w = e.window
        if w.start < end and w.end > start:
            found.append(
                Item("event", e.event_id, where, w.start, w.end, None, *_who(view, "event", e.event_id))
            )
    for series in target.live_series():  # occurrences, named series_id@YYYY-MM-DD
        who = _who(view, "series", series.series_id)
        for occ in occurrences(series, start - timedelta(days=32), end):
            if occ.end > start:
                found.append(Item("event", occ.name, where, occ.start, occ.end, None, *who))
    for o in target.live_overrides():
        w, who = o.window, _who(view, "override", o.override_id)
        if w.start < end and w.end > start:
            found.append(Item("override", o.override_id, where, w.start, w.end, o.desired_state, *who))
    return found


def _who(view: AuditView, kind: str, name: str) -> tuple[str | None, str | None]:
    """Who made the item so, and their note (the latest change that touched it)."""
    _, made = view.made_by.get((kind, name), (0, None))
    return (None, None) if made is None else (made.actor, made.note)


def rows_for(
    ledger: Ledger,
    start: datetime,
    end: datetime,
    clients: list[str] | None = None,
    group: str | None = None,
    stale: int = 900,
) -> list[Row]:
    """One row per client (the given ones, or every registered member of `group`); the observed
    band is unknown from `stale` seconds after a screen's last report."""
    view = AuditView()  # keeps who made each item so, and their note
    as_of(ledger, view=view)
    model = ReadModel(ledger)  # delivery receipts, written by the daemon
    if clients is None:
        clients = sorted(
            c for c, client in view.clients.items() if client.registered and client.group_id == group
        )
    rows = []
    for client_id in clients:
        client = view.clients.get(client_id)
        if client is None:
            raise ClientNotFound(client_id)
        target_group = view.groups.get(client.group_id) if client.group_id else None
        row = Row(client_id, client.group_id)
        for s in view.timeline(client_id).segments(start, end):
            assert s.start is not None
            assert s.end is not None
            row.schedule.append(Stretch(s.start, s.end, s.intent.desired_state, s.intent.reason))
        for target in [client] + ([target_group] if target_group else []):
            row.items += _items(view, target, start, end)
        row.items.sort(key=lambda i: (i.start, i.kind, i.name))
        recorded = ledger.issued(client_id)
        row.issued = issued_stretches(recorded, start, end)
        firsts = model.receipts(client_id)["firsts"]
        row.transitions = [
            {
                "seq": e.seq,
                "intent_id": e.intent_id,
                "effective_at": e.effective_at,
                "desired_state": e.desired_state,
                "reason": e.reason,
                "cause": e.cause.get("kind"),
                "delivered": firsts.get(e.intent_id),
            }
            for e in recorded
            if start <= e.effective_at < end
        ]
        rows.append(row)
    observed = _observed(ledger, clients, start, end, stale)
    for row in rows:
        row.observed = observed.get(row.client_id, [])
    return rows


def render_text(rows: list[Row], start: datetime, end: datetime, width: int = 72) -> str:
    """The schedule band for a terminal: '#' on, '.' off, '+'/'!' where an override decides on/off."""
    span = (end - start).total_seconds()
    label = max([len(r.client_id) for r in rows] + [6])
    lines = [f"{'UTC':<{label}} {start:%Y-%m-%dT%H:%M:%SZ} .. {end:%Y-%m-%dT%H:%M:%SZ}"]
    for row in rows:
        cells = []
        for i in range(width):
            t = start + timedelta(seconds=span * (i + 0.5) / width)
            seg = next((s for s in row.schedule if s.start <= t < s.end), None)
            if seg is None:
                cells.append(" ")
            elif seg.label in ("client_override", "group_override"):
                cells.append("!" if seg.state == "off" else "+")
            else:
                cells.append("#" if seg.state == "on" else ".")
        lines.append(f"{row.client_id:<{label}} {''.join(cells)}")
    lines.append(f"{'':<{label}} # on  . off  + override on  ! override off")
    return "\n".join(lines)
