"""Timeline pictures for incident tickets: SVG, a self-contained HTML report, and text.

`rows_for` gathers, per client, the state segments over [start, end) from the
current schedule, the event windows and overrides that shaped them, and the
intents actually recorded (labelled with the start of their intent_id). The
renderers are pure functions of those rows.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ledger.app import Ledger
from ledger.errors import ClientNotFound
from ledger.values import format_instant
from projections.audit import as_of
from projections.fleet import FleetView
from projections.readmodel import ReadModel

__all__ = ["Row", "render_html", "render_svg", "render_text", "rows_for"]

ON, OFF, OVERRIDE, WINDOW = "#2e7d32", "#cfd8dc", "#ef6c00", "#1a237e"


@dataclass
class Row:
    client_id: str
    group_id: str | None
    segments: list[tuple[datetime, datetime, str, str]] = field(
        default_factory=list
    )  # start, end, state, reason
    windows: list[tuple[datetime, datetime, str]] = field(default_factory=list)  # event windows
    overrides: list[tuple[datetime, datetime, str, str]] = field(default_factory=list)  # ..., state, id
    transitions: list[dict[str, Any]] = field(default_factory=list)  # recorded, inside the range


def rows_for(
    ledger: Ledger, start: datetime, end: datetime, clients: list[str] | None = None, group: str | None = None
) -> list[Row]:
    """One row per client (the given ones, or every registered member of `group`)."""
    view = as_of(ledger, view=FleetView())
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
            row.segments.append((s.start, s.end, s.intent.desired_state, s.intent.reason))
        for target in [client] + ([target_group] if target_group else []):
            row.windows += [
                (e.window.start, e.window.end, e.event_id)
                for e in target.live_events()
                if e.window.start < end and e.window.end > start
            ]
            row.overrides += [
                (o.window.start, o.window.end, o.desired_state, o.override_id)
                for o in target.live_overrides()
                if o.window.start < end and o.window.end > start
            ]
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
            for e in ledger.issued(client_id)
            if start <= e.effective_at < end
        ]
        rows.append(row)
    return rows


_LABEL, _WIDTH, _ROW, _TOP = 160, 1100, 34, 40


def render_svg(rows: list[Row], start: datetime, end: datetime) -> str:
    """One row per client: on/off spans, event windows outlined, overrides marked, transitions labelled."""
    span = (end - start).total_seconds()
    plot = _WIDTH - _LABEL - 20

    def x(t: datetime) -> float:
        return round(_LABEL + plot * max(0.0, min(1.0, (t - start).total_seconds() / span)), 2)

    height = _TOP + _ROW * len(rows) + 30
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{height}" '
        f'viewBox="0 0 {_WIDTH} {height}" font-family="sans-serif" font-size="11">',
        f"<title>intent timeline {format_instant(start)} .. {format_instant(end)} (UTC)</title>",
    ]
    for tick in _ticks(start, end):
        out.append(
            f'<line class="tick" x1="{x(tick)}" y1="{_TOP - 6}" x2="{x(tick)}" '
            f'y2="{height - 30}" stroke="#eceff1"/>'
        )
        out.append(
            f'<text x="{x(tick)}" y="{_TOP - 10}" text-anchor="middle">{tick.strftime("%H:%M")}</text>'
        )
    out.append(f'<text x="{_LABEL}" y="14">UTC {start.strftime("%Y-%m-%d")}</text>')
    for i, row in enumerate(rows):
        y = _TOP + i * _ROW
        out.append(f'<g class="row" data-client="{html.escape(row.client_id)}">')
        out.append(f'<text x="8" y="{y + 17}">{html.escape(row.client_id)}</text>')
        for s, e, state, reason in row.segments:
            colour = ON if state == "on" else OFF
            out.append(
                f'<rect class="span {state}" x="{x(s)}" y="{y + 4}" width="{max(0.5, x(e) - x(s))}" '
                f'height="18" fill="{colour}"><title>{state} ({reason}) {format_instant(s)}'
                f"..{format_instant(e)}</title></rect>"
            )
        for s, e, event_id in row.windows:
            out.append(
                f'<rect class="window" x="{x(s)}" y="{y + 2}" width="{max(0.5, x(e) - x(s))}" '
                f'height="22" fill="none" stroke="{WINDOW}" stroke-width="1">'
                f"<title>event {html.escape(event_id)}</title></rect>"
            )
        for s, e, state, override_id in row.overrides:
            out.append(
                f'<rect class="override" x="{x(s)}" y="{y + 24}" width="{max(0.5, x(e) - x(s))}" '
                f'height="4" fill="{OVERRIDE}"><title>override {html.escape(override_id)}: {state}'
                f"</title></rect>"
            )
        for t in row.transitions:
            tx = x(t["effective_at"])
            out.append(f'<line class="transition" x1="{tx}" y1="{y}" x2="{tx}" y2="{y + 28}" stroke="#000"/>')
            out.append(
                f'<text class="label" x="{tx + 2}" y="{y + 33}" font-size="8">{t["intent_id"][:8]}</text>'
            )
        out.append("</g>")
    legend_y = height - 12
    out.append(
        f'<rect x="{_LABEL}" y="{legend_y - 9}" width="12" height="10" fill="{ON}"/>'
        f'<text x="{_LABEL + 16}" y="{legend_y}">on</text>'
        f'<rect x="{_LABEL + 50}" y="{legend_y - 9}" width="12" height="10" fill="{OFF}"/>'
        f'<text x="{_LABEL + 66}" y="{legend_y}">off</text>'
        f'<rect x="{_LABEL + 100}" y="{legend_y - 9}" width="12" height="10" fill="none" stroke="{WINDOW}"/>'
        f'<text x="{_LABEL + 116}" y="{legend_y}">event window</text>'
        f'<rect x="{_LABEL + 200}" y="{legend_y - 6}" width="12" height="4" fill="{OVERRIDE}"/>'
        f'<text x="{_LABEL + 216}" y="{legend_y}">override</text>'
        f'<text x="{_LABEL + 290}" y="{legend_y}">| transition (intent_id)</text>'
    )
    out.append("</svg>")
    return "\n".join(out)


def _ticks(start: datetime, end: datetime) -> list[datetime]:
    span = (end - start).total_seconds()
    step = next((s for s in (300, 900, 1800, 3600, 7200, 21600, 43200, 86400) if span / s <= 16), 86400)
    first = start + timedelta(seconds=(-start.timestamp()) % step)
    ticks = []
    t = first
    while t <= end:
        ticks.append(t)
        t += timedelta(seconds=step)
    return ticks


def render_html(rows: list[Row], start: datetime, end: datetime, title: str = "Intent timeline") -> str:
    """A self-contained report: the SVG inline, then the recorded transitions per client."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;margin:24px}table{border-collapse:collapse;margin:8px 0 24px}"
        "td,th{border:1px solid #cfd8dc;padding:3px 8px;font-size:12px}th{background:#eceff1}"
        ".on{color:#2e7d32;font-weight:bold}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p>{format_instant(start)} .. {format_instant(end)} (UTC). Spans show the state the current "
        "schedule gives; vertical marks are the intents actually recorded.</p>",
        render_svg(rows, start, end),
        "<h2>Recorded transitions and their delivery</h2>",
    ]
    for row in rows:
        parts.append(
            f'<h3>{html.escape(row.client_id)}</h3><table class="transitions" '
            f'data-client="{html.escape(row.client_id)}"><tr><th>seq</th><th>effective_at</th>'
            "<th>state</th><th>reason</th><th>cause</th><th>intent_id</th>"
            "<th>first PUBACK</th><th>latency</th></tr>"
        )
        for t in row.transitions:
            d = t.get("delivered")
            acked = d["first_acked_at"] if d else "not delivered"
            latency = f"{d['latency_ms']} ms" if d and d["latency_ms"] is not None else ""
            parts.append(
                f"<tr><td>{t['seq']}</td><td>{format_instant(t['effective_at'])}</td>"
                f'<td class="{t["desired_state"]}">{t["desired_state"]}</td><td>{t["reason"]}</td>'
                f"<td>{t['cause']}</td><td><code>{t['intent_id']}</code></td>"
                f"<td>{acked}</td><td>{latency}</td></tr>"
            )
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)


def render_text(rows: list[Row], start: datetime, end: datetime, width: int = 72) -> str:
    """The same rows for a terminal: '#' on, '.' off, '!' where an override decides."""
    span = (end - start).total_seconds()
    label = max([len(r.client_id) for r in rows] + [6])
    lines = [f"{'UTC':<{label}} {format_instant(start)} .. {format_instant(end)}"]
    for row in rows:
        cells = []
        for i in range(width):
            t = start + timedelta(seconds=span * (i + 0.5) / width)
            seg = next((s for s in row.segments if s[0] <= t < s[1]), None)
            if seg is None:
                cells.append(" ")
            elif seg[3] in ("client_override", "group_override"):
                cells.append("!" if seg[2] == "off" else "+")
            else:
                cells.append("#" if seg[2] == "on" else ".")
        lines.append(f"{row.client_id:<{label}} {''.join(cells)}")
    lines.append(f"{'':<{label}} # on  . off  + override on  ! override off")
    return "\n".join(lines)
