"""The cause and effective instant of a transition: a ledger change, a boundary, a catch-up, a start."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from ledger.values import floor_second, format_instant
from projections.timeline import Intent, Timeline

__all__ = ["Cause", "CauseOf", "boundary_cause", "describe_cause", "fixed_cause"]


Cause = tuple[datetime, dict[str, Any]]
CauseOf = Callable[[Timeline, Intent], Cause]


def describe_cause(position: int, event: Any) -> dict[str, Any]:
    """The `cause` of a ledger-driven transition: which recorded change made it."""
    cause: dict[str, Any] = {
        "kind": "ledger",
        "position": position,
        "event": type(event).__name__,
        "at": format_instant(floor_second(event.timestamp)),
    }
    for name in ("event_id", "override_id", "series_id", "client_id", "group_id", "actor"):
        value = getattr(event, name, None)
        if value is not None:
            cause[name] = value
    return cause


def fixed_cause(effective_at: datetime, cause: dict[str, Any]) -> CauseOf:
    return lambda _timeline, _intent: (effective_at, cause)


def boundary_cause(boundary: datetime, now: datetime) -> CauseOf:
    def cause_of(timeline: Timeline, intent: Intent) -> Cause:
        # On time (nothing else changed between the boundary and now): the
        # boundary is the effective instant. Late past several boundaries (the
        # process was stalled): one catch-up transition at now, not the missed ones.
        if timeline.at(boundary) == intent:
            cause = {
                "kind": "boundary",
                "at": format_instant(boundary),
                "windows": timeline.named_at(boundary),
            }
            return boundary, cause
        return now, {"kind": "catch_up", "boundary": format_instant(boundary)}

    return cause_of
