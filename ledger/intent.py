"""The current intent of an intent log, as a typed record (what was last issued for a target).

`IntentLog.last` holds one; the projector compares it, the checkpoint stores
it, the daemon publishes it. Its intent id is a function of the log and `seq`,
so it is derived where it is read, not held for every target. `IntentFields`
are the semantic fields: two intents are the same iff they are equal (DESIGN
section 4).
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from ledger.names import intent_id_for, log_name

__all__ = ["REMOVED", "CurrentIntent", "IntentFields"]

REMOVED = "client_deregistered"  # the reason of a removed client's final intent


class IntentFields(msgspec.Struct, frozen=True, gc=False):
    """Every payload field of an intent except its id and stamps (keys in the recorded order)."""

    client_id: str | None
    group_id: str | None
    desired_state: str
    reason: str
    grace_seconds: int
    event_window: dict[str, str] | None


class CurrentIntent(msgspec.Struct, frozen=True, gc=False):
    """The last intent issued for one log: its `seq`, effective instant and fields (and its id)."""

    seq: int
    effective_at: datetime
    fields: IntentFields

    @property
    def intent_id(self) -> str:
        """`intent_id_for(log, seq)`, derived (DESIGN 5) rather than held for every target: the
        log is named by the fields' client or, with none, their group."""
        return intent_id_for(log_name(self.fields.client_id, self.fields.group_id), self.seq)

    @property
    def removed(self) -> bool:
        """A removed client's final `off`: its current intent is "no intent" (topic cleared)."""
        return self.fields.reason == REMOVED
