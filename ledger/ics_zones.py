"""Time zones of an iCalendar feed: TZIDs resolved to IANA names, or to the feed's own rules.

A TZID is resolved, in order, as an IANA name of the zone database, as a
Windows zone name (Outlook, Exchange) through the Unicode CLDR mapping that
`icalendar` ships, or through the `X-LIC-LOCATION` its VTIMEZONE names. A TZID
none of these resolve is never guessed: a one-off time converts with the
VTIMEZONE's own rules, a series takes the IANA zone that agrees with those
rules (ledger.ics_match), and without a VTIMEZONE the component is skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

from icalendar import Timezone
from icalendar.timezone import tzp
from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

from ledger.errors import InvalidSeries
from ledger.ics_match import YEARS, equivalent_zone
from ledger.recurrence import zone

__all__ = ["YEARS", "Zone", "Zones", "is_zone_name", "to_utc"]


def is_zone_name(name: str) -> bool:
    """Whether `name` is an IANA zone name of the tzdata package (`UTC` included), as series take."""
    try:
        zone(name)
    except InvalidSeries:
        return False
    return True


@dataclass(frozen=True)
class Zone:
    """A resolved zone: an IANA `name`, or None when only the feed's VTIMEZONE defines it."""

    name: str | None
    info: tzinfo
    label: str


def to_utc(local: datetime, zone: Zone) -> datetime:
    """A local wall-clock time in UTC as RFC 5545 reads it.

    zoneinfo with fold=0 reads a time in the spring-forward gap with the offset
    before the gap and a repeated time as the first of the two, as RFC 5545 says.
    """
    return local.replace(tzinfo=zone.info, fold=0).astimezone(UTC)


class Zones:
    """The zones of one calendar: its VTIMEZONE blocks and the zone for floating times."""

    def __init__(self, vtimezones: list[Timezone]) -> None:
        self._vtimezones = {str(v.get("TZID", "")): v for v in vtimezones}
        self._equivalents: dict[tuple[str, int], str | None] = {}

    def equivalent(self, own: Zone, year: int) -> str | None:
        """The IANA zone whose offsets agree with a VTIMEZONE's own rules from `year` on, if any."""
        key = (own.label, year)
        if key not in self._equivalents:
            self._equivalents[key] = equivalent_zone(own.info, own.label, year)
        return self._equivalents[key]

    def resolve(self, tzid: str) -> Zone | None:
        """The zone a TZID names, or None when neither a name nor a VTIMEZONE defines it."""
        name = self.iana_name(tzid)
        if name is not None:
            return Zone(name, zone(name), name)
        vtimezone = self._vtimezones.get(tzid)
        if vtimezone is None:
            return None
        # Not cached in icalendar's process-wide table: another feed may define the same TZID.
        return Zone(None, tzp.create_timezone(vtimezone), tzid)

    def iana_name(self, tzid: str) -> str | None:
        """The IANA name a TZID stands for, or None when it names none."""
        cleaned = tzid.strip().strip('"')
        if is_zone_name(cleaned):
            return cleaned
        mapped = WINDOWS_TO_OLSON.get(cleaned)
        if mapped is not None and is_zone_name(mapped):
            return mapped
        vtimezone = self._vtimezones.get(tzid)
        location = str(vtimezone.get("X-LIC-LOCATION", "")) if vtimezone is not None else ""
        return location if location and is_zone_name(location) else None

    def named(self, name: str) -> Zone | None:
        """A zone given by name (`--tz`, X-WR-TIMEZONE): IANA or Windows names only."""
        iana = self.iana_name(name)
        return Zone(iana, zone(iana), iana) if iana is not None else None
