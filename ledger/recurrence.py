"""Recurrence rules in local time: zones, local date-times, RRULEs and skip dates, validated.

A `Recurrence` is what a series repeats: a zone, the first occurrence's local
wall-clock start and end, and an RFC 5545 RRULE (python-dateutil parses it).
Zones come from the `tzdata` package, never the host's zone files, so every
machine expands a series to the same instants. Everything here is pure.
"""

from __future__ import annotations

import functools
import importlib.resources
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from ledger.errors import InvalidSeries
from ledger.values import LATEST

if TYPE_CHECKING:  # imported where a rule is compiled: reading the fleet needs no dateutil
    from dateutil.rrule import rrule

__all__ = [
    "FREQUENCIES",
    "SERIES_OUTSIDE",
    "SERIES_YEARS",
    "Recurrence",
    "Series",
    "check_recurrence_years",
    "check_years",
    "clear_rule_caches",
    "compile_rule",
    "format_local",
    "parse_dates",
    "parse_local",
    "parse_rule",
    "rule_parts",
    "second_start",
    "zone",
]

FREQUENCIES = ("DAILY", "WEEKLY", "MONTHLY", "YEARLY")
MAX_LENGTH = timedelta(days=31)
_FORBIDDEN = ("BYHOUR", "BYMINUTE", "BYSECOND", "DTSTART")
_KNOWN = (
    "FREQ",
    "INTERVAL",
    "COUNT",
    "UNTIL",
    "BYDAY",
    "BYMONTHDAY",
    "BYYEARDAY",
    "BYWEEKNO",
    "BYMONTH",
    "BYSETPOS",
    "WKST",
)
_ZONE_NAME = re.compile(r"[A-Za-z0-9_+\-]+(/[A-Za-z0-9_+\-]+)*", re.ASCII)
_LOCAL = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?", re.ASCII)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
_UNTIL = re.compile(r"(\d{8})(T\d{6}(Z?))?", re.ASCII)


@functools.lru_cache(maxsize=1024)
def zone(name: str) -> ZoneInfo:
    """The IANA zone `name` from the tzdata package (`UTC` included); InvalidSeries if unknown."""
    if not isinstance(name, str) or not _ZONE_NAME.fullmatch(name):
        raise InvalidSeries(f"invalid tz {name!r}: not an IANA zone name (e.g. Europe/Berlin)")
    resource = importlib.resources.files("tzdata.zoneinfo").joinpath(*name.split("/"))
    try:
        with resource.open("rb") as f:
            return ZoneInfo.from_file(f, key=name)
    except (OSError, ValueError):
        raise InvalidSeries(f"invalid tz {name!r}: not an IANA zone name (e.g. Europe/Berlin)") from None


def parse_local(text: str, what: str) -> datetime:
    """A local wall-clock date-time `YYYY-MM-DDTHH:MM[:SS]` (no offset), naive."""
    if not isinstance(text, str) or not _LOCAL.fullmatch(text.strip()):
        raise InvalidSeries(
            f"invalid {what} {text!r}: expected a local date-time without offset, e.g. 2027-01-04T07:30"
        )
    try:
        return datetime.fromisoformat(text.strip())
    except ValueError as e:
        raise InvalidSeries(f"invalid {what} {text!r}: {e}") from None


# A series may have begun long before the ledger's first instant (a holiday since 1965): only
# its occurrences from then on are ever expanded. Its years need four digits and an end.
SERIES_YEARS = range(1000, LATEST.year)
SERIES_OUTSIDE = f"outside the years {SERIES_YEARS.start} to {SERIES_YEARS.stop - 1}"


def check_years(what: str, values: Iterable[date]) -> None:
    """Refuse a local date or date-time (a new series' start or end, a skip) outside
    SERIES_YEARS. Checked where a change is made, not where stored events are read: a ledger
    reads as it was written."""
    for value in values:
        if value.year not in SERIES_YEARS:
            raise InvalidSeries(f"invalid {what} {value.isoformat()}: {SERIES_OUTSIDE}")


def check_recurrence_years(recurrence: Recurrence) -> None:
    """`check_years` of a recurrence's first start and end, each under its own name."""
    check_years("first_start", (recurrence.first_start,))
    check_years("first_end", (recurrence.first_end,))


def format_local(value: datetime) -> str:
    """`YYYY-MM-DDTHH:MM:SS`, the stored form of a local wall-clock time."""
    return value.isoformat(timespec="seconds")  # four-digit years, unlike strftime's %Y


def parse_dates(texts: Iterable[str], what: str = "date") -> frozenset[date]:
    """Local calendar dates `YYYY-MM-DD`."""
    given = tuple(texts)
    try:
        hash(given)
    except TypeError:
        return _parse_dates(given, what)  # raises: an unhashable item is no date
    # Cached: a fleet's series skip the same holidays, and the fold parses each series' list.
    return _cached_dates(given, what)


@functools.lru_cache(maxsize=1024)
def _cached_dates(texts: tuple[str, ...], what: str) -> frozenset[date]:
    return _parse_dates(texts, what)


def _parse_dates(texts: tuple[object, ...], what: str) -> frozenset[date]:
    found = set()
    for text in texts:
        if not isinstance(text, str) or not _DATE.fullmatch(text.strip()):
            raise InvalidSeries(f"invalid {what} {text!r}: expected YYYY-MM-DD")
        try:
            found.add(date.fromisoformat(text.strip()))
        except ValueError as e:
            raise InvalidSeries(f"invalid {what} {text!r}: {e}") from None
    return frozenset(found)


def parse_rule(text: str) -> str:
    """The RRULE value in a canonical form (FREQ first, then the other parts sorted)."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidSeries("invalid rrule '': expected e.g. FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR")
    parts = _rule_parts(text)
    _check_values(text, parts)
    ordered = ["FREQ", *sorted(k for k in parts if k != "FREQ")]
    return ";".join(f"{k}={parts[k]}" for k in ordered)


def _rule_parts(text: str) -> dict[str, str]:
    parts: dict[str, str] = {}
    for part in text.strip().upper().removeprefix("RRULE:").split(";"):
        key, sep, value = part.partition("=")
        if not sep or not value:
            raise InvalidSeries(f"invalid rrule {text!r}: {part!r} is not NAME=VALUE")
        if key in _FORBIDDEN:
            raise InvalidSeries(f"invalid rrule {text!r}: {key} is not allowed (times come from the start)")
        if key not in _KNOWN:
            raise InvalidSeries(f"invalid rrule {text!r}: unknown part {key}")
        if key in parts:
            raise InvalidSeries(f"invalid rrule {text!r}: {key} given twice")
        parts[key] = value
    return parts


def _check_values(text: str, parts: dict[str, str]) -> None:
    if parts.get("FREQ") not in FREQUENCIES:
        raise InvalidSeries(f"invalid rrule {text!r}: FREQ must be one of {', '.join(FREQUENCIES)}")
    if "COUNT" in parts and "UNTIL" in parts:
        raise InvalidSeries(f"invalid rrule {text!r}: COUNT and UNTIL together")
    for key in ("COUNT", "INTERVAL"):
        if key in parts and not (parts[key].isdigit() and 0 < int(parts[key]) <= 10_000):
            raise InvalidSeries(f"invalid rrule {text!r}: {key} must be a whole number from 1 to 10000")
    if "UNTIL" in parts and not _UNTIL.fullmatch(parts["UNTIL"]):
        raise InvalidSeries(f"invalid rrule {text!r}: UNTIL must be YYYYMMDD, YYYYMMDDTHHMMSS or ...Z")


@dataclass(frozen=True, slots=True)
class Recurrence:
    """A zone, the first occurrence in local wall-clock time, and the RRULE for the others."""

    tz: str
    first_start: datetime  # naive, local
    first_end: datetime  # naive, local
    rrule: str  # canonical (parse_rule)

    def __post_init__(self) -> None:
        zone(self.tz)
        length = self.first_end - self.first_start
        if length <= timedelta(0):
            raise InvalidSeries(
                f"invalid first_end {format_local(self.first_end)}: must be after first_start "
                f"{format_local(self.first_start)}"
            )
        if length > MAX_LENGTH:
            raise InvalidSeries(
                f"invalid first_end {format_local(self.first_end)}: occurrence longer than 31 days"
            )
        if second_start(self) is None and not {"COUNT", "UNTIL"} & set(rule_parts(self.rrule)):
            raise InvalidSeries(f"invalid rrule {self.rrule!r}: it never repeats after the first start")

    @classmethod
    def parse(cls, tz: str, first_start: str, first_end: str, rule: str) -> Recurrence:
        """Validate text fields (as commands, snapshots and stored events give them)."""
        fields = (tz, first_start, first_end, rule)
        if cls is Recurrence and all(type(field) is str for field in fields):
            # Cached: the series of a fleet's groups share a few rules, each parsed by the fold.
            return _cached_recurrence(*fields)
        return cls._parse(*fields)

    @classmethod
    def _parse(cls, tz: str, first_start: str, first_end: str, rule: str) -> Recurrence:
        start = parse_local(first_start, "first_start")
        end = parse_local(first_end, "first_end")
        return cls(tz, start, end, parse_rule(rule))

    @property
    def length(self) -> timedelta:
        """The nominal (wall-clock) length of every occurrence."""
        return self.first_end - self.first_start

    def fields(self) -> dict[str, str]:
        """The stored form: the fields of SeriesScheduled / SeriesChanged."""
        return {
            "tz": self.tz,
            "first_start": format_local(self.first_start),
            "first_end": format_local(self.first_end),
            "rrule": self.rrule,
        }

    def __str__(self) -> str:
        return f"{self.tz} {format_local(self.first_start)}..{format_local(self.first_end)} {self.rrule}"


@functools.lru_cache(maxsize=4096)
def _cached_recurrence(tz: str, first_start: str, first_end: str, rule: str) -> Recurrence:
    return Recurrence._parse(tz, first_start, first_end, rule)


@functools.lru_cache(maxsize=4096)
def compile_rule(recurrence: Recurrence) -> rrule:
    """The dateutil rule over naive local start times, UNTIL turned into local time."""
    from dateutil.rrule import rrule, rrulestr

    parts = rule_parts(recurrence.rrule)
    until = parts.get("UNTIL")
    if until is not None and int(until[:4]) >= LATEST.year:
        del parts["UNTIL"]  # a feed's "forever" (e.g. 99991231): no end within the ledger's years
    elif until is not None:
        parts["UNTIL"] = _local_until(until, recurrence.tz)
    text = ";".join(f"{k}={v}" for k, v in parts.items())
    try:
        rule = rrulestr(text, dtstart=recurrence.first_start)
    except (ValueError, TypeError, KeyError, IndexError) as e:
        raise InvalidSeries(f"invalid rrule {recurrence.rrule!r}: {e}") from None
    if not isinstance(rule, rrule):
        raise InvalidSeries(f"invalid rrule {recurrence.rrule!r}: one RRULE expected")
    return rule


def clear_rule_caches() -> None:
    """Forget every parsed and compiled rule and parsed list of dates (zones stay loaded)."""
    for cached in (_cached_dates, _cached_recurrence, compile_rule, second_start):
        cached.cache_clear()


def rule_parts(text: str) -> dict[str, str]:
    """The parts of a canonical RRULE value, by name."""
    return dict(p.split("=", 1) for p in text.split(";"))


@functools.lru_cache(maxsize=4096)
def second_start(recurrence: Recurrence) -> datetime | None:
    """The rule's first local start after `first_start` (None: the series never repeats)."""
    found: datetime | None = compile_rule(recurrence).after(recurrence.first_start)
    return found


def _local_until(text: str, tz: str) -> str:
    # UTC (as RFC 5545 requires with a zone) becomes the same instant in local time; a
    # local date-time stays; a bare date is inclusive: the end of that local day.
    m = _UNTIL.fullmatch(text)
    assert m is not None
    if m.group(2) is None:
        return f"{text}T235959"
    if not m.group(3):
        return text
    instant = datetime.strptime(text, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    return instant.astimezone(zone(tz)).strftime("%Y%m%dT%H%M%S")


@dataclass(frozen=True, slots=True)
class Series:
    """A series of a client or group: its recurrence, skipped local dates, and whether cancelled."""

    series_id: str
    recurrence: Recurrence
    skip: frozenset[date] = frozenset()
    cancelled: bool = False

    def occurrence_name(self, day: date) -> str:
        """`series_id@YYYY-MM-DD`: an occurrence by its local start date."""
        return f"{self.series_id}@{day.isoformat()}"
