"""The occurrences of one series: local wall-clock starts from the rule, then UTC windows.

Pure and bounded: asking for the occurrences that start in a UTC range only
iterates the rule near that range. The rule is rebased (a DTSTART a whole
number of periods later, with the parts dateutil would derive from the first
start written out), so a series that began ten years ago costs what one that
began last week does. Local to UTC as RFC 5545 says: a local time in a
spring-forward gap takes the offset before the gap, a repeated one is the
first of the two (PEP 495 `fold=0` does exactly both); an occurrence lasts
the nominal wall-clock length of the first one; one that is empty once in
UTC is dropped.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from ledger.recurrence import (
    Recurrence,
    Series,
    clear_rule_caches,
    compile_rule,
    rule_parts,
    second_start,
    zone,
)
from ledger.values import LATEST

if TYPE_CHECKING:  # imported where a rule is rebased: `-h` and the listings need no dateutil
    from dateutil.rrule import rrule

__all__ = [
    "Occurrence",
    "clear_caches",
    "ended",
    "last_start",
    "local_to_utc",
    "occurrence_dates",
    "occurrences",
    "occurrences_from",
]

# Local wall-clock time is UTC plus an offset from -12 h to +14 h that changes by at most a
# day at once (Samoa, 2011): a local range this much wider holds every UTC start asked for.
_PAD = timedelta(hours=26)
_CHUNK = timedelta(days=7)
_HOUR = timedelta(hours=1)
_BARREN = timedelta(days=3653)
_EPOCH = datetime(2000, 1, 3, tzinfo=UTC)  # a Monday; weeks of occurrences are cached from it
_WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


@dataclass(frozen=True, slots=True, order=True)
class Occurrence:
    """One occurrence: a UTC window `[start, end)` and its local wall-clock times."""

    start: datetime
    end: datetime
    series_id: str
    local_start: datetime
    local_end: datetime

    @property
    def name(self) -> str:
        """`series_id@YYYY-MM-DD`, by the local start date."""
        return f"{self.series_id}@{self.local_start.date().isoformat()}"


def clear_caches() -> None:
    """Forget every cached expansion (benchmarks measure a cold process this way)."""
    for cached in (_week, _rule_week, _rebased, _bounded):
        cached.cache_clear()
    clear_rule_caches()


def local_to_utc(local: datetime, tz: str) -> datetime:
    """A naive local wall-clock time in `tz` as a UTC instant (RFC 5545 gap and fold rules)."""
    return local.replace(tzinfo=zone(tz), fold=0).astimezone(UTC)


def occurrences(series: Series, start: datetime, end: datetime) -> list[Occurrence]:
    """The occurrences of `series` that start in the UTC range `[start, end)`, in start order."""
    # From cached weeks: a fold asks about the same few weeks again and again (each
    # member's evaluation, the search for where the merge begins, the next boundary).
    first, last = ((t - _EPOCH) // _CHUNK for t in (start, end))  # floored: ranges before it too
    found: list[Occurrence] = []
    for k in range(first, last + 1):
        week = _week(series, k)
        if k in (first, last):
            found += [o for o in week if start <= o.start < end]
        else:
            found += week
    return found


@functools.lru_cache(maxsize=65_536)
def _week(series: Series, k: int) -> tuple[Occurrence, ...]:
    series_id = series.series_id
    weeks = _rule_week(series.recurrence, series.skip, k)
    return tuple(Occurrence(s, e, series_id, ls, le) for s, e, ls, le in weeks)


# (UTC start, UTC end, local start, local end) of one occurrence.
_Times = tuple[datetime, datetime, datetime, datetime]


@functools.lru_cache(maxsize=16_384)
def _rule_week(rec: Recurrence, skip: frozenset[date], k: int) -> tuple[_Times, ...]:
    # By rule (zone included) and skips, not by series: a fleet's groups share a few rules,
    # and a series' id only names its occurrences.
    start = _EPOCH + k * _CHUNK
    return tuple(_expand(rec, skip, start, start + _CHUNK))


def _expand(rec: Recurrence, skip: frozenset[date], start: datetime, end: datetime) -> list[_Times]:
    z = zone(rec.tz)
    # Local starts of UTC starts in [start, end): UTC plus the zone's offsets there, and an
    # hour more each side for the offset before a gap.
    offsets = [t.astimezone(z).utcoffset() or timedelta(0) for t in (start, start + (end - start) / 2, end)]
    lo = (start + min(offsets) - _HOUR).replace(tzinfo=None)
    hi = (end + max(offsets) + _HOUR).replace(tzinfo=None)
    found = []
    length = rec.length
    for local in _local_starts(rec, lo, hi):
        if skip and local.date() in skip:
            continue
        # fold=0 (rrule's and ours): the offset before a gap, the first of a repeated time.
        s = local.replace(tzinfo=z, fold=0).astimezone(UTC)
        if not start <= s < end:
            continue
        local_end = local + length
        e = local_end.replace(tzinfo=z, fold=0).astimezone(UTC)
        if e > s:
            found.append((s, e, local, local_end))
    found.sort()  # the order of the occurrences: one series' share its id
    return found


def occurrences_from(series: Series, start: datetime) -> Iterator[Occurrence]:
    """The occurrences starting at or after `start`, in start order, lazily (maybe forever)."""
    lo = found = start
    last = last_start(series.recurrence)
    if last is not None and last.year >= LATEST.year - 1:
        last = None  # a COUNT the rule could not reach before datetime's end: none after it
    while last is None or lo <= local_to_utc(last, series.recurrence.tz) + _PAD:
        hi = min(lo + _CHUNK, LATEST)  # none from the ledger's last year on
        for occurrence in occurrences(series, lo, hi):
            found = occurrence.start
            yield occurrence
        lo = hi
        if lo - found > _BARREN or lo >= LATEST:
            return  # ten years without a window (every one empty in UTC, or skipped), or the
            # ledger's last year passed: no more


def ended(series: Series, now: datetime) -> bool:
    """Whether no occurrence of `series` ends after `now`."""
    return all(occurrence.end <= now for occurrence in occurrences_from(series, now - timedelta(days=32)))


def _local_starts(rec: Recurrence, lo: datetime, hi: datetime) -> list[datetime]:
    """Local starts in `[lo, hi]`: the first start (it always counts) and the rule's."""
    if hi < rec.first_start:
        return []
    if second_start(rec) is None:  # only the first start: never ask dateutil to search for more
        return [rec.first_start] if lo <= rec.first_start else []
    rule = _rebased(rec, _rebase_start(rec, lo))
    found: list[datetime] = rule.between(lo, hi, inc=True)
    if lo <= rec.first_start <= hi and rec.first_start not in found:
        found.insert(0, rec.first_start)
    return found


def _rebase_start(rec: Recurrence, lo: datetime) -> datetime:
    """The latest DTSTART at or before `lo` from which the rule generates the same occurrences.

    dateutil generates every occurrence of the DTSTART's period from DTSTART on,
    and all of the later periods; a period is aligned on the first start unless
    the rule repeats every day or every week with its days written out.
    """
    parts = rule_parts(rec.rrule)
    interval = int(parts.get("INTERVAL", "1"))
    s = rec.first_start
    freq = parts["FREQ"]
    if freq == "DAILY" or (freq == "WEEKLY" and interval == 1):
        days = (lo - s).days
        step = 1 if freq == "WEEKLY" else interval
        found = s + timedelta(days=days - days % step)
    elif freq == "WEEKLY":
        weeks = (lo - s).days // 7
        found = s + timedelta(weeks=weeks - weeks % interval)
    elif freq == "MONTHLY":
        months = (lo.year - s.year) * 12 + lo.month - s.month
        months = s.month - 1 + months - months % interval
        found = s.replace(year=s.year + months // 12, month=months % 12 + 1, day=1)
    else:
        years = lo.year - s.year
        found = s.replace(year=s.year + years - years % interval, month=1, day=1)
    return found if found > s else s


@functools.lru_cache(maxsize=8192)
def _rebased(rec: Recurrence, dtstart: datetime) -> rrule:
    """The rule from a later DTSTART (`_rebase_start`), generating the same occurrences after it."""
    from dateutil.rrule import rrule, rrulestr

    if dtstart == rec.first_start:
        return _bounded(rec)
    parts = rule_parts(rec.rrule)
    s = rec.first_start
    freq = parts["FREQ"]
    if not any(k in parts for k in ("BYDAY", "BYMONTHDAY", "BYYEARDAY", "BYWEEKNO")):
        # What dateutil derives from DTSTART when no BY-part says otherwise, written out.
        if freq == "WEEKLY":
            parts["BYDAY"] = _WEEKDAYS[s.weekday()]
        elif freq == "MONTHLY":
            parts["BYMONTHDAY"] = str(s.day)
        elif freq == "YEARLY":
            parts.setdefault("BYMONTH", str(s.month))
            parts["BYMONTHDAY"] = str(s.day)
    bounded = _bounded(rec)
    parts.pop("COUNT", None)
    text = ";".join(f"{k}={v}" for k, v in parts.items() if k != "UNTIL")
    rule = rrulestr(text, dtstart=dtstart)
    assert isinstance(rule, rrule)
    return rule.replace(until=bounded._until)


@functools.lru_cache(maxsize=4096)
def _bounded(rec: Recurrence) -> rrule:
    """The compiled rule with a COUNT turned into the UNTIL of its last occurrence."""
    rule = compile_rule(rec)
    count = rule._count
    if count is None:
        return rule
    # RFC 5545: the first start counts as the first of COUNT, synchronised with the rule or not.
    first_matches = next(iter(rule), None) == rec.first_start
    others = list(rule.replace(count=count if first_matches else max(count - 1, 0)))
    if not others:
        return rule.replace(count=None, until=rec.first_start - timedelta(seconds=1))
    return rule.replace(count=None, until=others[-1])


def last_start(rec: Recurrence) -> datetime | None:
    """The local start of the last occurrence, or None for a rule without end."""
    if second_start(rec) is None:
        return rec.first_start
    rule = _bounded(rec)
    until: datetime | None = rule._until
    return None if until is None else max(rec.first_start, until)


def occurrence_dates(series: Series, first: date, last: date) -> list[Occurrence]:
    """The occurrences whose local start date is in `[first, last]` (for `series show`)."""
    rec = series.recurrence
    lo = datetime.combine(first, datetime.min.time())
    hi = datetime.combine(last, datetime.max.time()).replace(microsecond=0)
    found = []
    for local in _local_starts(rec, lo, hi):
        if local.date() in series.skip:
            continue
        s, e = local_to_utc(local, rec.tz), local_to_utc(local + rec.length, rec.tz)
        if e > s:
            found.append(Occurrence(s, e, series.series_id, local, local + rec.length))
    return found
