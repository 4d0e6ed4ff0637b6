"""Delivery review: a client's recorded transitions beside what was published and acknowledged."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ledger.app import Ledger
from projections import retention
from projections.observed import firsts_of, followed
from projections.readmodel import ReadModel

__all__ = ["delivery"]


def delivery(
    ledger: Ledger,
    client_id: str,
    since: datetime | None = None,
    until: datetime | None = None,
    late_after: int = 5,
) -> dict[str, Any]:
    """Recorded transitions beside what was published, acknowledged and reported, with what went wrong."""
    model = ReadModel(ledger)
    model.catch_up()
    recorded = model.replay(client_id, since, until)
    if not recorded and not model.replay(client_id):
        ledger.client(client_id)  # unknown client: an error; a quiet one: an empty report
    receipts = model.receipts(client_id)
    failed_ids = {f["intent_id"] for f in receipts["failures"]}
    pruned_before = retention.horizon(ledger)
    reports = firsts_of(ledger, client_id)
    rows = []
    for t in recorded:
        first = receipts["firsts"].get(t["intent_id"])
        flags = []
        if first is None:
            pruned = pruned_before is not None and _parse(t["effective_at"]) < _parse(pruned_before)
            flags.append("receipt_pruned" if pruned else "missing")
        else:
            acked = _parse(first["first_acked_at"])
            if (acked - _parse(t["effective_at"])).total_seconds() > late_after:
                flags.append("late")
            if acked >= _parse(first["expires_at"]):
                flags.append("expired_at_receipt")
        if t["intent_id"] in failed_ids:
            flags.append("failed")
        rows.append(
            {
                **t,
                "first_acked_at": first and first["first_acked_at"],
                "latency_ms": first and first["latency_ms"],
                "flags": flags,
                **followed(reports, t["intent_id"], t["desired_state"]),
            }
        )
    latest = receipts["latest"]
    return {
        "client_id": client_id,
        "transitions": rows,
        "latest_publish": latest,
        "largest_retained_age_seconds": latest["max_age_seconds"] if latest else None,
        "failures": receipts["failures"],
    }


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
