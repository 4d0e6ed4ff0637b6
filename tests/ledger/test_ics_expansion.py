"""An import keeps a calendar's meaning: the ledger's windows equal an independent expansion.

`recurring-ical-events` expands the feed itself (RRULE, RDATE, EXDATE,
RECURRENCE-ID, STATUS:CANCELLED); the import's events plus the occurrences
of its series (ledger.occurrences) must give the same UTC windows over the year.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import icalendar
import pytest
import recurring_ical_events

from ledger.ics import parse_ics
from ledger.occurrences import occurrences
from ledger.recurrence import Recurrence, Series

REPO = Path(__file__).parents[2]
FROM, TO = datetime(2027, 1, 1, tzinfo=UTC), datetime(2028, 1, 1, tzinfo=UTC)
Window = tuple[datetime, datetime]


def _utc(value: date | datetime, zone: str) -> datetime:
    if not isinstance(value, datetime):
        value = datetime.combine(value, time())
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo(zone))
    return value.astimezone(UTC)


def expected(data: bytes, zone: str, leave_out: set[str]) -> list[Window]:
    calendar = icalendar.Calendar.from_ical(data)
    found = []
    for event in recurring_ical_events.of(calendar).between(FROM - timedelta(days=40), TO):
        if str(event.get("UID")) in leave_out or str(event.get("STATUS", "")).upper() == "CANCELLED":
            continue
        start = _utc(event["DTSTART"].dt, zone)
        end = _utc(event["DTEND"].dt, zone) if "DTEND" in event else start + event["DURATION"].dt
        if FROM <= start < TO:
            found.append((start, end))
    return sorted(found)


def imported(data: bytes, zone: str) -> tuple[list[Window], set[str]]:
    feed = parse_ics(data, tz=zone)
    found = [(e.start, e.end) for e in feed.events if FROM <= e.start < TO]
    for s in feed.series:
        series = Series(s.series_id, Recurrence(s.tz, s.first_start, s.first_end, s.rrule), frozenset(s.skip))
        found += [(o.start, o.end) for o in occurrences(series, FROM, TO)]
    return sorted(found), {s.uid for s in feed.skipped}


@pytest.mark.parametrize(
    ("path", "zone"),
    [
        ("tests/ledger/feeds/google.ics", "Europe/Berlin"),
        ("tests/ledger/feeds/outlook.ics", "Europe/Berlin"),
        ("tests/ledger/feeds/outlook-custom-zones.ics", "UTC"),
        ("tests/ledger/feeds/timetable.ics", "Europe/Vienna"),
        ("examples/timetable.ics", "Europe/Berlin"),
    ],
)
def test_the_import_gives_the_windows_an_independent_expansion_gives(path: str, zone: str) -> None:
    data = (REPO / path).read_bytes()
    windows, skipped = imported(data, zone)
    assert len(windows) > 3
    # A DATE UNTIL on a DATE-TIME rule (not valid RFC 5545, but exported) means "through that
    # local day" to us (docs/decisions.md), midnight to the reference: tell it so in UTC.
    reference = data.replace(b"UNTIL=20270630;", b"UNTIL=20270630T215959Z;")
    assert windows == expected(reference, zone, leave_out=skipped)
