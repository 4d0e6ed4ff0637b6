"""The timeline picture as SVG: per client three bands (schedule, issued, observed) and a legend.

Everything an incident review needs is written on the picture, not only in
tooltips: event and override ids inside their windows when they fit, intent
ids beside their transition marks on up to two staggered lines (a label that
would overlap another is left out; the HTML report's table lists them all).
"""

from __future__ import annotations

import html
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from ledger.values import format_instant

if TYPE_CHECKING:
    from projections.pictures import Row, Stretch

__all__ = ["render_svg"]

_X = Callable[[datetime], float]  # instant -> x coordinate

ON, OFF, UNKNOWN, OVERRIDE, WINDOW, INK, FAINT = (
    "#2e7d32",
    "#cfd8dc",
    "#90a4ae",
    "#ef6c00",
    "#1a237e",
    "#263238",
    "#78909c",
)
_LABEL, _WIDTH, _TOP = 170, 1160, 44
_BAND, _GAP = 16, 6  # band height, space between bands
_ITEMS = 12  # the line of event and override ids above the schedule band
_ROW = _ITEMS + 3 * (_BAND + _GAP) + 34  # ids, three bands, two lines of transition labels
_CHAR = 5.2  # width of a character at font-size 9 (sans-serif), for fitting labels
_HATCH = (
    '<defs><pattern id="unknown-hatch" patternUnits="userSpaceOnUse" width="6" height="6" '
    'patternTransform="rotate(45)"><rect width="6" height="6" fill="#eceff1"/>'
    f'<line x1="0" y1="0" x2="0" y2="6" stroke="{UNKNOWN}" stroke-width="2.5"/></pattern></defs>'
)
_FILL = {"on": ON, "off": OFF, "unknown": "url(#unknown-hatch)"}


def render_svg(rows: list[Row], start: datetime, end: datetime) -> str:
    """One block per client: the schedule (windows outlined, overrides marked), the intents issued
    (marks and ids), the observed state (unknown hatched); a time axis and a legend."""
    span = (end - start).total_seconds()
    plot = _WIDTH - _LABEL - 20

    def x(t: datetime) -> float:
        return round(_LABEL + plot * max(0.0, min(1.0, (t - start).total_seconds() / span)), 2)

    height = _TOP + _ROW * len(rows) + 40
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{height}" '
        f'viewBox="0 0 {_WIDTH} {height}" font-family="sans-serif" font-size="11" fill="{INK}">',
        f"<title>intent timeline {format_instant(start)} .. {format_instant(end)} (UTC)</title>",
        _HATCH,
        f'<text x="8" y="16" font-weight="bold">UTC</text>'
        f'<text x="{_LABEL}" y="16">{format_instant(start)} .. {format_instant(end)}</text>',
    ]
    for tick in _ticks(start, end):
        out.append(
            f'<line class="tick" x1="{x(tick)}" y1="{_TOP - 6}" x2="{x(tick)}" '
            f'y2="{height - 40}" stroke="#eceff1"/>'
            f'<text x="{x(tick)}" y="{_TOP - 10}" text-anchor="middle">{_tick_label(tick, span)}</text>'
        )
    for i, row in enumerate(rows):
        out += _row(row, _TOP + i * _ROW, x)
    out.append(_legend(height - 16))
    out.append("</svg>")
    return "\n".join(out)


def _row(row: Row, y: int, x: _X) -> list[str]:
    bands = [y + _ITEMS + k * (_BAND + _GAP) for k in range(3)]
    out = [
        f'<g class="row" data-client="{html.escape(row.client_id)}">',
        f'<text x="8" y="{bands[0] + 12}" font-weight="bold">{html.escape(row.client_id)}</text>',
    ]
    if row.group_id:
        out.append(f'<text x="8" y="{bands[1] + 12}" fill="{FAINT}">group {html.escape(row.group_id)}</text>')
    for name, top in zip(("schedule", "issued", "observed"), bands, strict=True):
        out.append(
            f'<text x="{_LABEL - 6}" y="{top + 12}" text-anchor="end" font-size="9" '
            f'fill="{FAINT}">{name}</text>'
        )
    out += _band(row.schedule, bands[0], x, "span")
    out += _items(row, bands[0], x)
    out += _band(row.issued, bands[1], x, "issued")
    out += _band(row.observed, bands[2], x, "observed")
    out += _transition_marks(row, bands[1], bands[2] + _BAND + 4, x)
    out.append("</g>")
    return out


def _items(row: Row, top: int, x: _X) -> list[str]:
    """Event windows outlined, overrides underlined; their ids on the line above, where they fit."""
    out = []
    label_end = float("-inf")
    for item in row.items:
        s, e = x(item.start), x(item.end)
        label = item.name if item.kind == "event" else f"{item.name}: {item.state}"
        if item.kind == "event":
            out.append(
                f'<rect class="window" x="{s}" y="{top - 2}" width="{max(0.5, e - s)}" '
                f'height="{_BAND + 4}" fill="none" stroke="{WINDOW}" stroke-width="1.2">'
                f"<title>event {html.escape(item.name)}</title></rect>"
            )
        else:
            out.append(
                f'<rect class="override" x="{s}" y="{top + _BAND - 4}" width="{max(0.5, e - s)}" '
                f'height="4" fill="{OVERRIDE}"><title>override {html.escape(label)}</title></rect>'
            )
        if s + 1 < label_end + 6:
            continue  # no room: the HTML report's table lists every window
        label_end = s + 1 + len(label) * _CHAR
        colour = WINDOW if item.kind == "event" else OVERRIDE
        out.append(
            f'<text class="item-label" x="{s + 1}" y="{top - 4}" font-size="9" '
            f'fill="{colour}">{html.escape(label)}</text>'
        )
    return out


def _band(stretches: list[Stretch], top: int, x: _X, kind: str) -> list[str]:
    if not stretches:  # nothing recorded: said on the band, not left blank
        fill, what = (
            ("url(#unknown-hatch)", "no reports") if kind == "observed" else ("none", "none recorded")
        )
        return [
            f'<rect class="{kind} empty" x="{_LABEL}" y="{top}" width="{_WIDTH - _LABEL - 20}" '
            f'height="{_BAND}" fill="{fill}" stroke="#eceff1"/>'
            f'<rect x="{_LABEL + 2}" y="{top + 3}" width="{len(what) * _CHAR + 6}" height="{_BAND - 6}" '
            'fill="#fff"/>'
            f'<text class="{kind}-empty" x="{_LABEL + 5}" y="{top + 12}" font-size="9">{what}</text>'
        ]
    out = []
    for st in stretches:
        s, e = x(st.start), x(st.end)
        why = f" ({st.label})" if st.label else ""
        tip = f"{st.state}{why} {format_instant(st.start)}..{format_instant(st.end)}"
        out.append(
            f'<rect class="{kind} {st.state}" x="{s}" y="{top}" width="{max(0.5, e - s)}" height="{_BAND}" '
            f'fill="{_FILL.get(st.state, OFF)}"><title>{html.escape(tip)}</title></rect>'
        )
    return out


def _transition_marks(row: Row, top: int, labels_top: int, x: _X) -> list[str]:
    """A mark per recorded transition; its intent id on the first of two lines where it fits."""
    out = []
    ends = [float("-inf"), float("-inf")]  # where the last label on each line ends
    for t in row.transitions:
        tx = x(t["effective_at"])
        out.append(
            f'<line class="transition" x1="{tx}" y1="{top - 2}" x2="{tx}" y2="{labels_top}" stroke="#000"/>'
        )
        text = t["intent_id"][:8]
        width = len(text) * _CHAR
        line = next((k for k, end in enumerate(ends) if tx >= end + 4), None)
        if line is None:
            continue  # no room: the HTML table lists every transition
        ends[line] = tx + width
        out.append(
            f'<text class="label" x="{tx}" y="{labels_top + 9 + 10 * line}" font-size="9">'
            f"{html.escape(text)}<title>seq {t['seq']} {html.escape(t['intent_id'])}</title></text>"
        )
    return out


def _legend(y: int) -> str:
    entries = [
        f'<rect x="0" y="-9" width="14" height="10" fill="{ON}"/><text x="18" y="0">on</text>',
        f'<rect x="0" y="-9" width="14" height="10" fill="{OFF}"/><text x="18" y="0">off</text>',
        '<rect x="0" y="-9" width="14" height="10" fill="url(#unknown-hatch)"/>'
        '<text x="18" y="0">unknown</text>',
        f'<rect x="0" y="-10" width="14" height="12" fill="none" stroke="{WINDOW}"/>'
        '<text x="18" y="0">event window</text>',
        f'<rect x="0" y="-6" width="14" height="4" fill="{OVERRIDE}"/><text x="18" y="0">override</text>',
        '<line x1="7" y1="-10" x2="7" y2="2" stroke="#000"/><text x="14" y="0">transition (intent_id)</text>',
    ]
    widths = [50, 50, 80, 110, 85, 160]
    out, at = [f'<g class="legend" transform="translate({_LABEL} {y})">'], 0
    for entry, width in zip(entries, widths, strict=True):
        out.append(f'<g transform="translate({at} 0)">{entry}</g>')
        at += width
    out.append("</g>")
    return "".join(out)


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


def _tick_label(tick: datetime, span: float) -> str:
    return tick.strftime("%m-%d %H:%M" if span > 86_400 else "%H:%M")
