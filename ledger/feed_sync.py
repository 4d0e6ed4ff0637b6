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
from uuid import UUID

import msgspec

from ledger import commands as cmd
from ledger.domain import Client, EventClaim, Group, Meta, Target, TargetRef
from ledger.errors import EmptyFeed
from ledger.ics import IcsEvent, IcsFeed, IcsSeries
from ledger.occurrences import ended
from ledger.recurrence import Recurrence, Series, format_local
from ledger.series import SeriesClaim
from ledger.sync import Snapshot, SnapshotEvent, SnapshotSeries, apply_snapshot
from ledger.values import format_instant

__all__ = ["apply_feed", "feed_aggregate_ids", "feed_ids", "snapshot_of"]


def feed_ids(prefix: str) -> re.Pattern[str]:
    """The ids a feed with this prefix writes: prefix, 16 hex digits, maybe -YYYYMMDD."""
    return re.compile(re.escape(prefix) + r"[0-9a-f]{16}(-\d{8})?")


def feed_aggregate_ids(feed: IcsFeed, ref: TargetRef) -> list[UUID]:
    """The aggregates an import reads: the target and the claims of the feed's ids."""
    target = Client.id_for(ref.id) if ref.kind == "client" else Group.id_for(ref.id)
    return [
        target,
        *(EventClaim.id_for(e.event_id) for e in feed.events),
        *(SeriesClaim.id_for(s.series_id) for s in feed.series),
    ]


def apply_feed(
    ws: cmd.Workspace,
    feed: IcsFeed,
    ref: TargetRef,
    *,
    prefix: str,
    prune: bool,
    now: datetime,
    meta: Meta,
    allow_empty: bool = False,
) -> None:
    """Bring the target's items of this prefix to the feed (and cancel what it cancels).

    A feed with nothing in it does not prune unless `allow_empty`: a calendar server
    that answers with an empty calendar during an outage must not blank a site.
    """
    target = ws.target(ref)  # a client must be registered; a group is named by its first feed
    if prune and not allow_empty and not (feed.events or feed.series or feed.cancelled):
        _check_not_emptied(target, feed_ids(prefix), ref, prefix, now)
    live_events = {e.event_id: e for e in target.live_events()}
    live_series = {s.series_id: s for s in target.live_series()}
    # What has ended is not added; what the ledger still has ahead goes where the feed says.
    ahead = msgspec.structs.replace(
        feed,
        events=tuple(
            e
            for e in feed.events
            if e.end > now or (e.event_id in live_events and live_events[e.event_id].window.end > now)
        ),
        series=tuple(
            s
            for s in feed.series
            if not ended(_as_series(s), now)
            or (s.series_id in live_series and not ended(live_series[s.series_id], now))
        ),
    )
    apply_snapshot(ws, snapshot_of(ahead, ref), prune=False, now=now, meta=meta)
    ours, gone = feed_ids(prefix), set(feed.cancelled)

    def drop(item_id: str, keep: set[str]) -> bool:
        return bool(ours.fullmatch(item_id)) and (item_id in gone or (prune and item_id not in keep))

    keep_events, keep_series = {e.event_id for e in feed.events}, {s.series_id for s in feed.series}
    for event in target.live_events():
        if drop(event.event_id, keep_events) and event.window.end > now:
            target.cancel_event(event.event_id, meta)
    for one in target.live_series():
        if drop(one.series_id, keep_series) and not ended(one, now):
            target.cancel_series(one.series_id, meta)


def _check_not_emptied(
    target: Target, ours: re.Pattern[str], ref: TargetRef, prefix: str, now: datetime
) -> None:
    doomed = [e.event_id for e in target.live_events() if ours.fullmatch(e.event_id) and e.window.end > now]
    doomed += [s.series_id for s in target.live_series() if ours.fullmatch(s.series_id) and not ended(s, now)]
    if doomed:
        raise EmptyFeed(
            f"the feed is empty: --prune would cancel all {len(doomed)} items of prefix {prefix!r} "
            f"on {ref}; nothing applied (pass --allow-empty if the calendar is meant to be empty)"
        )


def snapshot_of(feed: IcsFeed, ref: TargetRef) -> Snapshot:
    """The feed's events and series as a `sync` snapshot for one target."""
    return Snapshot(
        events=[_event(e, ref) for e in feed.events], series=[_series(s, ref) for s in feed.series]
    )


def _event(e: IcsEvent, ref: TargetRef) -> SnapshotEvent:
    start, end = format_instant(e.start), format_instant(e.end)
    return SnapshotEvent(e.event_id, start, end, **ref.claim_fields(), note=e.summary)


def _series(s: IcsSeries, ref: TargetRef) -> SnapshotSeries:
    return SnapshotSeries(
        s.series_id,
        s.tz,
        format_local(s.first_start),
        format_local(s.first_end),
        s.rrule,
        **ref.claim_fields(),
        skip=[d.isoformat() for d in s.skip],
        note=s.summary,
    )


def _as_series(s: IcsSeries) -> Series:
    return Series(s.series_id, Recurrence(s.tz, s.first_start, s.first_end, s.rrule), frozenset(s.skip))
