"""Name a feed's own VTIMEZONE: the IANA zone whose UTC offsets agree with its rules.

Outlook writes TZIDs such as "Customized Time Zone" or "(UTC+01:00) Amsterdam,
Berlin, Bern, Rome, Stockholm, Vienna" that no table maps. A series needs an
IANA name, so its VTIMEZONE's rules are compared with every zone of the tzdata
package over the years the series starts in: a zone with the same offset at
every instant of those years stands for it. Several usually do: the one whose
city the TZID names wins, else CLDR's main zone of a Windows zone (by Windows
name), else the first by name. No zone agreeing means no name: the caller skips the series
rather than guess.
"""

from __future__ import annotations

import functools
import importlib.resources
from datetime import UTC, datetime, timedelta, tzinfo

from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

from ledger.recurrence import zone

__all__ = ["YEARS", "equivalent_zone"]

YEARS = 4
_WEEK = timedelta(days=7)
_DAY = timedelta(days=1)
_MINUTE = timedelta(minutes=1)
_MAIN_ZONES = tuple(dict.fromkeys(WINDOWS_TO_OLSON[k] for k in sorted(WINDOWS_TO_OLSON)))
Offset = timedelta | None


@functools.cache
def _names() -> tuple[str, ...]:
    return tuple(importlib.resources.files("tzdata").joinpath("zones").read_text().split())


def _offset(tz: tzinfo, instant: datetime) -> Offset:
    return instant.astimezone(tz).utcoffset()


def equivalent_zone(info: tzinfo, label: str, year: int) -> str | None:
    """The IANA zone with `info`'s offsets at every instant from `year` for `YEARS` years, or None."""
    start, end = datetime(year, 1, 1, tzinfo=UTC), datetime(year + YEARS, 1, 1, tzinfo=UTC)
    first, changes = _changes(info, start, end)
    matching = [n for n in _names() if _agrees(zone(n), first, changes, start, end)]
    named = [n for n in matching if n.rsplit("/", 1)[-1].replace("_", " ").lower() in label.lower()]
    # CLDR's zone of a Windows zone, in the order of the Windows names: New_York, not Detroit.
    main = [n for n in _MAIN_ZONES if n in matching]
    found = named or main or matching
    return found[0] if found else None


def _changes(tz: tzinfo, start: datetime, end: datetime) -> tuple[Offset, list[tuple[datetime, Offset]]]:
    """The offset at `start` and each change after it, to the minute (a VTIMEZONE changes yearly)."""
    first = previous = _offset(tz, start)
    changes = []
    t = start
    while t < end:
        after = min(t + _WEEK, end)
        offset = _offset(tz, after)
        if offset != previous:
            lo, hi = t, after
            while hi - lo > _MINUTE:
                mid = lo + (hi - lo) // _MINUTE // 2 * _MINUTE
                lo, hi = (mid, hi) if _offset(tz, mid) == previous else (lo, mid)
            changes.append((hi, offset))
        t, previous = after, offset
    return first, changes


def _agrees(
    candidate: tzinfo, first: Offset, changes: list[tuple[datetime, Offset]], start: datetime, end: datetime
) -> bool:
    # Every change at the same minute, and the same offset every day: a change of the
    # candidate on another day shows at a daily sample, on the same day at the change.
    previous = first
    for instant, offset in changes:
        if _offset(candidate, instant - _MINUTE) != previous or _offset(candidate, instant) != offset:
            return False
        previous = offset
    expected, pending = first, list(changes)
    t = start
    while t < end:
        while pending and pending[0][0] <= t:
            expected = pending.pop(0)[1]
        if _offset(candidate, t) != expected:
            return False
        t += _DAY
    return True
