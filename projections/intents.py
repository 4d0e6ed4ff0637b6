"""What a timeline says at an instant: the semantic intent, and the constant pieces of a timeline."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec

from ledger.intent import IntentFields
from ledger.values import format_instant
from projections.merge import Span

__all__ = ["REASONS", "Intent", "Segment"]

REASONS = (
    "event_window_active",
    "no_active_event",
    "group_override",
    "client_override",
    "client_deregistered",
)


@dataclass(frozen=True, slots=True)
class Intent:
    """The semantic intent: every payload field except intent_id, issued_at, expires_at."""

    client_id: str | None
    group_id: str | None
    desired_state: str
    reason: str
    grace_seconds: int
    event_window: Span | None

    def window_dict(self) -> dict[str, str] | None:
        w = self.event_window
        return None if w is None else _window_dict(w)

    def semantic(self) -> IntentFields:
        """The semantic fields, as an intent log records them."""
        return IntentFields(
            self.client_id,
            self.group_id,
            self.desired_state,
            self.reason,
            self.grace_seconds,
            self.window_dict(),
        )

    def fields(self) -> dict[str, Any]:
        """The semantic fields as a dict (for reports and JSON)."""
        return msgspec.structs.asdict(self.semantic())


@functools.lru_cache(maxsize=4096)
def _window_dict(w: Span) -> dict[str, str]:
    # One dict per window, shared by every intent in it (never mutated: intents are compared
    # and published, not edited), as a restore from the checkpoint shares them.
    return {"start": format_instant(w.start), "end": format_instant(w.end)}


@dataclass(frozen=True, slots=True)
class Segment:
    start: datetime | None  # None: unbounded
    end: datetime | None
    intent: Intent
