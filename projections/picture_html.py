"""The timeline as a self-contained HTML report: the SVG inline, then per client its tables.

Per client: the recorded transitions with their delivery, the event windows
and overrides in the range with who set them and their note, and the
observed stretches. An empty table says "none recorded" instead of a bare
header.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from ledger.values import format_instant
from projections.picture_svg import render_svg

if TYPE_CHECKING:
    from projections.pictures import Row

__all__ = ["render_html"]

_STYLE = (
    "body{font-family:sans-serif;margin:24px;color:#263238}"
    "table{border-collapse:collapse;margin:4px 0 16px}"
    "td,th{border:1px solid #cfd8dc;padding:3px 8px;font-size:12px;text-align:left}th{background:#eceff1}"
    ".on{color:#2e7d32;font-weight:bold}.unknown{color:#546e7a;font-style:italic}"
    "p.none{color:#78909c;font-style:italic;margin:4px 0 16px}h4{margin:8px 0 2px;font-size:13px}"
)


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value))


def _table(kind: str, client_id: str, header: Sequence[str], rows: list[list[str]]) -> str:
    """A table of already-escaped cells, or "none recorded"."""
    if not rows:
        return f'<p class="none {kind}" data-client="{_e(client_id)}">none recorded</p>'
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{kind}" data-client="{_e(client_id)}"><tr>{head}</tr>{body}</table>'


def _state(state: str | None) -> str:
    return f'<span class="{_e(state)}">{_e(state)}</span>'


def render_html(rows: list[Row], start: datetime, end: datetime, title: str = "Intent timeline") -> str:
    """A self-contained report (no external resources): the picture, then each client's tables."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_e(title)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        f"<p>{format_instant(start)} .. {format_instant(end)} (UTC). Per client: <b>schedule</b> is the "
        "state the schedule gives as the ledger holds it now (event windows outlined, overrides "
        "underlined); <b>issued</b> the intents actually recorded (a mark per transition, its "
        "intent_id beside it); <b>observed</b> what the screen reported (unknown hatched).</p>",
        render_svg(rows, start, end),
    ]
    for row in rows:
        parts.append(f"<h2>{_e(row.client_id)}</h2>")
        parts.append("<h4>Recorded transitions and their delivery</h4>")
        transitions = []
        for t in row.transitions:
            d = t.get("delivered")
            latency = f"{d['latency_ms']} ms" if d and d["latency_ms"] is not None else ""
            transitions.append(
                [
                    _e(t["seq"]),
                    format_instant(t["effective_at"]),
                    _state(t["desired_state"]),
                    _e(t["reason"]),
                    _e(t["cause"]),
                    f"<code>{_e(t['intent_id'])}</code>",
                    _e(d["first_acked_at"]) if d else "not delivered",
                    latency,
                ]
            )
        header = ["seq", "effective_at", "state", "reason", "cause", "intent_id", "first PUBACK", "latency"]
        parts.append(_table("transitions", row.client_id, header, transitions))
        parts.append("<h4>Event windows and overrides</h4>")
        items = [
            [
                _e(i.kind),
                f"<code>{_e(i.name)}</code>",
                _e(i.target),
                f"{format_instant(i.start)} .. {format_instant(i.end)}",
                _state(i.state) if i.state else "",
                _e(i.actor),
                _e(i.note),
            ]
            for i in row.items
        ]
        header = ["kind", "id", "target", "window", "state", "set by", "note"]
        parts.append(_table("items", row.client_id, header, items))
        parts.append("<h4>Observed state</h4>")
        observed = [
            [f"{format_instant(s.start)} .. {format_instant(s.end)}", _state(s.state), _e(s.label)]
            for s in row.observed
        ]
        parts.append(_table("observed", row.client_id, ["stretch", "tv_state", "detail"], observed))
    parts.append("</body></html>")
    return "\n".join(parts)
