"""The typed records an iCalendar feed is read into (ledger.ics) and applied from (ledger.feed_sync)."""

from __future__ import annotations

from datetime import date, datetime

import msgspec

from ledger.errors import InvalidInput

__all__ = ["IcsEvent", "IcsFeed", "IcsSeries", "IcsSkip", "InvalidFeed"]


class InvalidFeed(InvalidInput):
    """The feed is not iCalendar, or the options cannot place its times (exit 2)."""


class IcsEvent(msgspec.Struct, frozen=True):
    """A one-off window in UTC: a VEVENT, an RDATE or a moved instance."""

    event_id: str
    uid: str
    start: datetime
    end: datetime
    summary: str | None = None


class IcsSeries(msgspec.Struct, frozen=True):
    """A recurring VEVENT as a series: local wall-clock times in an IANA zone."""

    series_id: str
    uid: str
    tz: str
    first_start: datetime
    first_end: datetime
    rrule: str
    skip: tuple[date, ...] = ()
    summary: str | None = None


class IcsSkip(msgspec.Struct, frozen=True):
    """A component that was not imported, and why."""

    uid: str
    reason: str
    summary: str | None = None

    def __str__(self) -> str:
        named = f" ({self.summary!r})" if self.summary else ""
        return f"UID {self.uid!r}{named} not imported: {self.reason}"


class IcsFeed(msgspec.Struct, frozen=True):
    """Everything one calendar schedules, and what it says is cancelled."""

    events: tuple[IcsEvent, ...] = ()
    series: tuple[IcsSeries, ...] = ()
    cancelled: tuple[str, ...] = ()
    skipped: tuple[IcsSkip, ...] = ()
    notes: tuple[str, ...] = ()
