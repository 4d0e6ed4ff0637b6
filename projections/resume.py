"""The fleet view a projector's checkpoint gives back, if the ledger has not overtaken it.

Overtaken: a schedule change after the checkpoint's position, or an intent of one
of the projector's logs that it does not hold (another instance recorded after it
was saved). Either way the projector starts from the whole ledger instead; a
checkpoint costs nothing to refuse.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from ledger.app import INTENT_TOPICS, TIMELINE_TOPICS, Ledger
from ledger.domain import IntentLog
from projections.checkpoint import Checkpoint, restore_logs
from projections.fleet import FleetView
from projections.shard import Shard

__all__ = ["resumed_view"]


def resumed_view(
    ledger: Ledger, saved: Checkpoint, shard: Shard
) -> tuple[FleetView, dict[str, datetime]] | None:
    """The intent logs of `saved` as a view at the ledger's head, and each one's next boundary;
    None if the ledger overtook it or a part does not read back."""
    head = ledger.max_notification_id()
    if saved.position > head or ledger.appended(saved.position, topics=TIMELINE_TOPICS, stop=head):
        return None
    view = FleetView()
    due: dict[str, datetime] = {}
    try:
        view.hold_logs(restore_logs(saved.logs, due))
    except msgspec.DecodeError:
        return None
    for _, event in ledger.read(saved.position, topics=INTENT_TOPICS, stop=head):
        name = IntentLog.name_for(event.client_id, event.group_id)  # type: ignore[attr-defined]
        if shard.owns(name) and not view.holds(event):
            return None
    view.position = head
    return view, due
