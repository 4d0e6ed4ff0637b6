"""Read an iCalendar feed (RFC 5545) into the events and series the ledger can hold.

Pure: the feed's bytes and the import options in, typed records out; no clock,
no I/O. DESIGN section 12 is the mapping: a VEVENT without RRULE is an event,
one with RRULE a series in its own zone, RDATEs and moved instances extra
events, EXDATEs and RECURRENCE-IDs skipped dates, STATUS:CANCELLED a cancel.
What the model cannot express is not imported and reported, one line each.
"""

from __future__ import annotations

import hashlib
import re
import warnings
from collections.abc import Iterator
from datetime import datetime, timedelta

import msgspec
from icalendar import Calendar, Event
from icalendar.error import BrokenCalendarProperty

from ledger.errors import InvalidSeries
from ledger.ics_records import IcsEvent, IcsFeed, IcsSeries, IcsSkip, InvalidFeed
from ledger.ics_rules import (
    RecurrenceSet,
    Unsupported,
    When,
    check_length,
    local_in,
    rrule_of,
    value_of,
    when_of,
)
from ledger.ics_zones import YEARS, Zone, Zones, to_utc
from ledger.recurrence import SERIES_OUTSIDE, SERIES_YEARS, Recurrence, compile_rule, parse_rule
from ledger.values import CONTROL, EARLIEST, LATEST, MAX_WINDOW, OUTSIDE, check_id

__all__ = ["IcsEvent", "IcsFeed", "IcsSeries", "IcsSkip", "InvalidFeed", "check_options", "parse_ics"]

_MAX_NOTE = 200
_Kept = tuple[list[IcsEvent], list[IcsSeries], list[str]]  # a UID's events, series and cancelled ids
# The prefix, 16 hex digits and "-YYYYMMDD" make an id of at most 64 characters.
_PREFIX = re.compile(r"([A-Za-z0-9][A-Za-z0-9_.\-]{0,38})?", re.ASCII)


def check_options(prefix: str, tz: str | None) -> None:
    """Refuse an id prefix that cannot make valid ids, and a `tz` that is no zone name."""
    if not _PREFIX.fullmatch(prefix):
        raise InvalidFeed(
            f"invalid --id-prefix {prefix!r}: up to 39 characters of A-Z a-z 0-9 _ . - "
            "starting with a letter or digit"
        )
    if tz is not None and Zones([]).named(tz) is None:
        raise InvalidFeed(f"invalid --tz {tz!r}: not a zone name of the zone database (e.g. Europe/Berlin)")


def parse_ics(data: bytes, *, prefix: str = "ics-", tz: str | None = None) -> IcsFeed:
    """Read a feed; `tz` places floating and all-day times (default: X-WR-TIMEZONE)."""
    check_options(prefix, tz)
    calendars = _calendars(data)
    zones = Zones([tz_ for c in calendars for tz_ in c.timezones])
    reader = _Reader(zones, _default_zone(calendars[0], zones, tz), prefix)
    for uid, components in _by_uid(calendars):
        reader.add(uid, components)
    return reader.feed()


def _calendars(data: bytes) -> list[Calendar]:
    head = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:15].upper()
    if head != b"BEGIN:VCALENDAR":
        raise InvalidFeed("not an iCalendar file: it does not begin with BEGIN:VCALENDAR")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            found = Calendar.from_ical(data, multiple=True)
    except (ValueError, TypeError, KeyError, AttributeError, IndexError):
        # AttributeError: icalendar 6 on a VTIMEZONE with two TZIDs (found by fuzzing).
        raise InvalidFeed("not a readable iCalendar file: a line cannot be parsed") from None
    calendars = [c for c in found if isinstance(c, Calendar)]
    if not calendars:
        raise InvalidFeed("not an iCalendar file: no VCALENDAR")
    return calendars


def _default_zone(calendar: Calendar, zones: Zones, tz: str | None) -> Zone | str:
    """The zone of floating and all-day times, or why there is none."""
    if tz is not None:
        zone = zones.named(tz)
        assert zone is not None, tz  # check_options refused it otherwise
        return zone
    declared = calendar.get("X-WR-TIMEZONE")
    if declared is None:
        return "the calendar has no X-WR-TIMEZONE: give --tz ZONE"
    zone = zones.named(str(declared))
    return zone or f"its X-WR-TIMEZONE {str(declared)!r} is not a zone name: give --tz ZONE"


def _by_uid(calendars: list[Calendar]) -> Iterator[tuple[str, list[Event]]]:
    grouped: dict[str, list[Event]] = {}
    events = [e for c in calendars for e in c.walk("VEVENT") if isinstance(e, Event)]
    for n, component in enumerate(events):
        uid = str(component.get("UID", "")).strip() or f"(VEVENT {n + 1} without UID)"
        grouped.setdefault(uid, []).append(component)
    yield from grouped.items()


def _cancelled(component: Event) -> bool:
    return str(component.get("STATUS", "")).upper() == "CANCELLED"


def _summary(component: Event) -> str | None:
    # Kept as the changes' note: on one line, without the control characters a note refuses.
    text = CONTROL.sub("", " ".join(str(component.get("SUMMARY", "")).split()))
    return text[:_MAX_NOTE] or None


class _Reader:
    def __init__(self, zones: Zones, default: Zone | str, prefix: str) -> None:
        self._zones, self._default, self._prefix = zones, default, prefix
        self._events: list[IcsEvent] = []
        self._series: list[IcsSeries] = []
        self._cancelled: list[str] = []
        self._skipped: list[IcsSkip] = []
        self._notes: list[str] = []

    def feed(self) -> IcsFeed:
        return IcsFeed(
            tuple(self._events),
            tuple(self._series),
            tuple(self._cancelled),
            tuple(self._skipped),
            tuple(self._notes),
        )

    def add(self, uid: str, components: list[Event]) -> None:
        masters = [c for c in components if "RECURRENCE-ID" not in c]
        instances = [c for c in components if "RECURRENCE-ID" in c]
        base = self._prefix + hashlib.sha256(uid.encode()).hexdigest()[:16]
        summary = _summary(components[0])
        if len(masters) > 1:
            self._skip(uid, f"{len(masters) - 1} more VEVENT(s) with this UID and no RECURRENCE-ID", summary)
        try:
            moved, kept = self._read(uid, base, masters, instances)
        except (Unsupported, BrokenCalendarProperty) as e:
            if masters and _cancelled(masters[0]):
                self._cancelled.append(base)  # what it cannot express it no longer asks for
            else:
                self._skip(uid, _reason(e), summary)
            return
        events, series, cancelled = kept
        for event_id, event in moved:
            if event is None:
                cancelled.append(event_id)
            else:
                events.append(event)
        self._events.extend(events)
        self._series.extend(series)
        self._cancelled.extend(cancelled)

    def _read(
        self, uid: str, base: str, masters: list[Event], instances: list[Event]
    ) -> tuple[list[tuple[str, IcsEvent | None]], _Kept]:
        """The UID's moved instances and what its master keeps (events, series, cancelled ids)."""
        try:
            recurrence = self._master(uid, base, masters[0]) if masters else None
            moved = [self._instance(uid, base, c, recurrence) for c in instances]
            kept = self._keep(uid, recurrence) if recurrence is not None else ([], [], [])
        except OverflowError:  # a date near datetime's last year (a feed's 9999 "forever")
            raise Unsupported(f"a date of it is {OUTSIDE}") from None
        return moved, kept

    def _equivalent(self, _uid: str, own: Zone, year: int) -> str:
        # A series needs an IANA name: the zone whose offsets agree with the VTIMEZONE's rules.
        name = self._zones.equivalent(own, year)
        if name is None:
            raise Unsupported(
                f"its zone {own.label!r} has no IANA name and no IANA zone agrees with its VTIMEZONE"
            )
        return name

    def _skip(self, uid: str, reason: str, summary: str | None) -> None:
        self._skipped.append(IcsSkip(uid, reason, summary))

    def _when(self, uid: str, component: Event, name: str) -> When:
        return when_of(component, name, self._zones, lambda: self._floating(uid))

    def _floating(self, uid: str) -> Zone:
        if isinstance(self._default, str):
            raise InvalidFeed(f"UID {uid!r} has floating or all-day times and {self._default}")
        return self._default

    def _master(self, uid: str, base: str, component: Event) -> RecurrenceSet:
        start = self._when(uid, component, "DTSTART")
        if start.local.year not in SERIES_YEARS:  # a one-off before 1970 is refused by `_window`
            raise Unsupported(f"its DTSTART is {SERIES_OUTSIDE}")
        length = check_length(start, self._end(uid, component, start))
        if "EXRULE" in component:
            raise Unsupported("EXRULE is not supported (use EXDATE)")
        recurrence = RecurrenceSet(base, start, length, rrule_of(component, start), _cancelled(component))
        recurrence.summary = _summary(component)
        for value in self._values(component, "EXDATE", start.zone):
            if value.local.year in SERIES_YEARS:  # no occurrence falls on one outside them
                recurrence.skip.add(local_in(value, start.zone).date())
        for value in self._values(component, "RDATE", start.zone):
            local = local_in(value, start.zone)
            end = local + length if value.end is None else local_in(value.end, start.zone)
            recurrence.extra[local.date()] = self._window(
                f"{base}-{local:%Y%m%d}", uid, local, end, start.zone
            )
        for day in recurrence.skip:
            recurrence.extra.pop(day, None)
        return recurrence

    def _values(self, component: Event, name: str, zone: Zone) -> list[When]:
        # Floating dates and times of an EXDATE or RDATE are local to the event's own zone.
        found = component.get(name)
        lists = found if isinstance(found, list) else [found] if found is not None else []
        return [
            value_of(item, name, self._zones, lambda: zone)
            for lst in lists
            for item in getattr(lst, "dts", [])
        ]

    def _end(self, uid: str, component: Event, start: When) -> datetime:
        if "DTEND" in component:
            return local_in(self._when(uid, component, "DTEND"), start.zone)
        duration = getattr(component.get("DURATION"), "dt", None)
        if isinstance(duration, timedelta):
            return start.local + duration  # the same nominal duration, on the wall clock
        if start.all_day:
            return start.local + timedelta(days=1)
        raise Unsupported("it has neither DTEND nor DURATION, so it lasts no time")

    def _window(self, event_id: str, uid: str, local: datetime, end: datetime, zone: Zone) -> IcsEvent:
        start_utc, end_utc = to_utc(local, zone), to_utc(end, zone)
        if end_utc <= start_utc:
            raise Unsupported(f"the occurrence at {local:%Y-%m-%dT%H:%M} is empty in UTC")
        if end_utc - start_utc > MAX_WINDOW:
            raise Unsupported("it is longer than 31 days")
        if not (start_utc >= EARLIEST and end_utc < LATEST):
            raise Unsupported(f"the occurrence at {local:%Y-%m-%dT%H:%M} is {OUTSIDE}")
        return IcsEvent(check_id("event_id", event_id), uid, start_utc, end_utc)

    def _instance(
        self, uid: str, base: str, component: Event, recurrence: RecurrenceSet | None
    ) -> tuple[str, IcsEvent | None]:
        # Like an EXDATE, a floating or DATE RECURRENCE-ID is local to the series' own zone.
        own = (lambda: recurrence.start.zone) if recurrence is not None else (lambda: self._floating(uid))
        rid = when_of(component, "RECURRENCE-ID", self._zones, own)
        if str(component["RECURRENCE-ID"].params.get("RANGE", "")).upper() == "THISANDFUTURE":
            raise Unsupported("RECURRENCE-ID with RANGE=THISANDFUTURE is not supported")
        day = local_in(rid, recurrence.start.zone if recurrence else rid.zone).date()
        event_id = check_id("event_id", f"{base}-{day:%Y%m%d}")
        if recurrence is not None:
            recurrence.replaced.add(day)
        if _cancelled(component) or (recurrence is not None and recurrence.cancelled):
            return event_id, None
        start = self._when(uid, component, "DTSTART")
        end = self._end(uid, component, start)
        check_length(start, end)
        event = self._window(event_id, uid, start.local, end, start.zone)
        return event_id, msgspec.structs.replace(event, summary=_summary(component))

    def _keep(self, uid: str, r: RecurrenceSet) -> _Kept:
        extra = [e for day, e in sorted(r.extra.items()) if day not in r.replaced]
        if r.cancelled:
            return [], [], [r.base, *(e.event_id for e in extra)]
        events = [msgspec.structs.replace(e, summary=r.summary) for e in extra]
        if r.rule is None:
            first_day = r.start.local.date()
            if first_day in r.skip or first_day in r.replaced:
                return events, [], [r.base]
            event = self._window(r.base, uid, r.start.local, r.start.local + r.length, r.start.zone)
            return [msgspec.structs.replace(event, summary=r.summary), *events], [], []
        tz = r.start.zone.name or self._equivalent(uid, r.start.zone, r.start.local.year)
        try:  # the series' own checks, so what `sync` would refuse is a warning line here
            rec = Recurrence(tz, r.start.local, r.start.local + r.length, parse_rule(r.rule))
            compile_rule(rec)
        except InvalidSeries as e:
            raise Unsupported(str(e)) from None
        if r.start.zone.name is None:
            self._notes.append(
                f"UID {uid!r}: zone {r.start.zone.label!r} read as {tz}, whose offsets agree with its "
                f"VTIMEZONE from {r.start.local.year} to {r.start.local.year + YEARS - 1}"
            )
        skip = tuple(sorted((r.skip | r.replaced) - set(r.extra)))
        series = IcsSeries(
            check_id("series_id", r.base),
            uid,
            rec.tz,
            rec.first_start,
            rec.first_end,
            rec.rrule,
            skip,
            r.summary,
        )
        return events, [series], []


def _reason(e: Exception) -> str:
    # icalendar keeps a malformed value and raises only when it is read: name the property.
    if isinstance(e, Unsupported):
        return e.reason
    found = re.search(r"broken property '([A-Z-]+)'", str(e))
    return f"its {found.group(1) if found else 'property'} value is malformed"
