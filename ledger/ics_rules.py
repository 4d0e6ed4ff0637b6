"""The pieces of one VEVENT the feed reader needs: its times, its length, its RRULE.

Every time is held as a local wall-clock time and its zone (`When`), because a
series keeps local times and a one-off window converts to UTC only at the end.
What the ledger's model cannot express raises `Unsupported`, whose reason
becomes the component's warning line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from icalendar import Event
from icalendar.prop import vRecur

from ledger.ics_zones import Zone, Zones, to_utc
from ledger.values import MAX_WINDOW

__all__ = [
    "FREQUENCIES",
    "RecurrenceSet",
    "Unsupported",
    "When",
    "check_length",
    "local_in",
    "rrule_of",
    "when_of",
]

FREQUENCIES = ("DAILY", "WEEKLY", "MONTHLY", "YEARLY")
_TIME_PARTS = ("BYHOUR", "BYMINUTE", "BYSECOND")
_UTC = Zone("UTC", UTC, "UTC")


class Unsupported(Exception):
    """The component says something the ledger cannot hold; it is skipped with `reason`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class When:
    """A time of the feed as a local wall-clock time in its zone; `end` for a PERIOD."""

    local: datetime
    zone: Zone
    all_day: bool = False
    end: When | None = None


@dataclass
class RecurrenceSet:
    """A VEVENT with its recurrence set: the rule, the extra dates, the skipped ones."""

    base: str
    start: When
    length: timedelta
    rule: str | None
    cancelled: bool
    summary: str | None = None
    skip: set[date] = field(default_factory=set)
    extra: dict[date, Any] = field(default_factory=dict)
    replaced: set[date] = field(default_factory=set)


def when_of(component: Event, name: str, zones: Zones, floating: Callable[[], Zone]) -> When:
    """A date-time property of a component (DTSTART, DTEND, RECURRENCE-ID) as a `When`."""
    prop = component.get(name)
    if prop is None:
        raise Unsupported(f"it has no {name}")
    return value_of(prop, name, zones, floating)


def value_of(prop: Any, name: str, zones: Zones, floating: Callable[[], Zone]) -> When:
    """One value (a property or an item of an EXDATE/RDATE list) as a `When`."""
    try:
        value = prop.dt
    except (ValueError, AttributeError):
        raise Unsupported(f"its {name} cannot be read") from None
    params = getattr(prop, "params", None) or {}
    tzid = params.get("TZID")
    if isinstance(value, tuple):  # a PERIOD: start and end, or start and duration
        start = _point(value[0], name, tzid, zones, floating)
        end = value[1]
        if isinstance(end, timedelta):
            return When(start.local, start.zone, end=When(start.local + end, start.zone))
        return When(start.local, start.zone, end=_point(end, name, tzid, zones, floating))
    return _point(value, name, tzid, zones, floating)


def _point(value: Any, name: str, tzid: Any, zones: Zones, floating: Callable[[], Zone]) -> When:
    if isinstance(value, datetime):
        if tzid is not None:  # the TZID decides, whatever icalendar made of it
            zone = zones.resolve(str(tzid))
            if zone is None:
                raise Unsupported(
                    f"its {name} names the unknown zone {str(tzid)!r} and no VTIMEZONE defines it"
                )
            return When(value.replace(tzinfo=None), zone)
        if value.tzinfo is None:
            return When(value, floating())
        return When(value.astimezone(UTC).replace(tzinfo=None), _UTC)
    if isinstance(value, date):
        return When(datetime.combine(value, time()), floating(), all_day=True)
    raise Unsupported(f"its {name} is not a date or a date-time")


def local_in(when: When, zone: Zone) -> datetime:
    """The wall-clock time of `when` in another zone (floating and same-zone times as they are)."""
    if when.zone.label == zone.label:
        return when.local
    return to_utc(when.local, when.zone).astimezone(zone.info).replace(tzinfo=None)


def check_length(start: When, end: datetime) -> timedelta:
    """The nominal length of an occurrence: positive and at most 31 days."""
    length = end - start.local
    if length <= timedelta(0):
        raise Unsupported("it ends before it starts")
    if length > MAX_WINDOW:
        raise Unsupported("it is longer than 31 days")
    return length


def rrule_of(component: Event, _start: When) -> str | None:
    """The RRULE without DTSTART (UNTIL in UTC or local), or None; the series checks it further."""
    found = component.get("RRULE")
    if found is None:
        return None
    if isinstance(found, list):
        if len(found) > 1:
            raise Unsupported("it has more than one RRULE")
        found = found[0]
    freq = str((found.get("FREQ") or ["?"])[0]).upper()
    if freq not in FREQUENCIES:
        raise Unsupported(f"FREQ={freq} is not supported (DAILY, WEEKLY, MONTHLY or YEARLY)")
    for part in _TIME_PARTS:
        if part in found:
            raise Unsupported(f"{part} is not supported (the time of day comes from DTSTART)")
    recur: Any = vRecur({k: v for k, v in found.items() if k != "UNTIL"})
    text = bytes(recur.to_ical()).decode()
    until = (found.get("UNTIL") or [None])[0]
    if until is not None:
        text += f";UNTIL={_until(until)}"
    return text


def _until(until: date) -> str:
    # A DATE UNTIL means "through that local day"; a date-time stays UTC or local as written.
    if not isinstance(until, datetime):
        return f"{until:%Y%m%d}T235959"
    if until.tzinfo is not None:
        return f"{until.astimezone(UTC):%Y%m%dT%H%M%SZ}"
    return f"{until:%Y%m%dT%H%M%S}"
