"""The stored topics of the ledger's events, by side: the schedule, what a timeline needs, the intents."""

from __future__ import annotations

from eventsourcing.utils import get_topic

from ledger import events as ev

__all__ = ["INTENT_TOPICS", "SCHEDULE_TOPICS", "TIMELINE_TOPICS"]

# Topics of the schedule side of the ledger (everything except the intent log),
# so a bulk load never reads years of IntentIssued records it does not need.
SCHEDULE_TOPICS: tuple[str, ...] = tuple(
    get_topic(cls)
    for cls in (
        ev.ClientIdClaimed,
        ev.GroupNamed,
        ev.PolicyOpened,
        ev.EventIdClaimed,
        ev.OverrideIdClaimed,
        ev.ClientRegistered,
        ev.ClientAssigned,
        ev.ClientDeregistered,
        ev.EventScheduled,
        ev.EventRescheduled,
        ev.EventCancelled,
        ev.OverrideSet,
        ev.OverrideCleared,
        ev.PolicyChanged,
        ev.SeriesIdClaimed,
        ev.SeriesScheduled,
        ev.SeriesChanged,
        ev.SeriesSkipped,
        ev.SeriesUnskipped,
        ev.SeriesCancelled,
    )
)
# What a timeline needs: the schedule without the id claims (they only guard uniqueness).
TIMELINE_TOPICS: tuple[str, ...] = tuple(
    t
    for t in SCHEDULE_TOPICS
    if t not in (get_topic(ev.EventIdClaimed), get_topic(ev.OverrideIdClaimed), get_topic(ev.SeriesIdClaimed))
)
INTENT_TOPICS: tuple[str, ...] = (get_topic(ev.IntentLogOpened), get_topic(ev.IntentIssued))
