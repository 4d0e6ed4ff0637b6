"""Apply a read iCalendar feed to one target as the minimal set of ledger events.

The feed becomes a snapshot of that target's events and series (ids from the
feed's UIDs), applied like `sync`. What the feed marks cancelled is cancelled;
with `prune`, items of this prefix on this target that the feed no longer has
are cancelled too, so two feeds (two prefixes or two targets) never prune each
other. The past is never rewritten: nothing that has ended is added or cancelled.
"""

from __future__ import annotations

import re
from datetime import datetime

from ledger import commands as cmd
from ledger.domain import Meta, TargetRef
from ledger.ics import IcsFeed
from ledger.sync import Snapshot, SnapshotEvent, apply_snapshot
from ledger.values import format_instant

__all__ = ["apply_feed", "feed_ids"]


def feed_ids(prefix: str) -> re.Pattern[str]:
    """The ids a feed with this prefix writes: prefix, 16 hex digits, maybe -YYYYMMDD."""
    return re.compile(re.escape(prefix) + r"[0-9a-f]{16}(-\d{8})?")


def apply_feed(
    ws: cmd.Workspace, feed: IcsFeed, ref: TargetRef, *, prefix: str, prune: bool, now: datetime, meta: Meta
) -> None:
    """Bring the target's items of this prefix to the feed (and cancel what it cancels)."""
    target = ws.target(ref)  # a client must be registered; a group is named by its first feed
    live = {e.event_id: e for e in target.live_events()}
    events = [
        SnapshotEvent(
            e.event_id,
            format_instant(e.start),
            format_instant(e.end),
            **ref.claim_fields(),
            note=e.summary,
        )
        for e in feed.events
        # An ended event is not added; one the ledger still has ahead is moved to where the feed says.
        if e.end > now or (e.event_id in live and live[e.event_id].window.end > now)
    ]
    apply_snapshot(ws, Snapshot(events=events), prune=False, now=now, meta=meta)
    ours = feed_ids(prefix)
    keep = {e.event_id for e in feed.events}
    gone = set(feed.cancelled)
    for event in target.live_events():
        if not ours.fullmatch(event.event_id) or event.window.end <= now:
            continue
        if event.event_id in gone or (prune and event.event_id not in keep):
            target.cancel_event(event.event_id, meta)
