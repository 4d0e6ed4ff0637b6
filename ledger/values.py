"""Validated values: identifiers, UTC instants, windows and the timeline policy."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from ledger.errors import InvalidId, InvalidInput, InvalidInstant, InvalidPolicy, InvalidWindow

__all__ = [
    "CONTROL",
    "DESIRED_STATES",
    "EARLIEST",
    "LATEST",
    "MAX_WINDOW",
    "OUTSIDE",
    "DesiredState",
    "Override",
    "Policy",
    "ScheduledEvent",
    "Window",
    "check_id",
    "check_instant",
    "check_text",
    "floor_second",
    "format_instant",
    "parse_instant",
]

DesiredState = Literal["on", "off"]
DESIRED_STATES: tuple[str, ...] = ("on", "off")
MAX_WINDOW = timedelta(days=31)
# The instants a command, a snapshot or a feed may give: wide, yet far enough inside datetime's
# years 1-9999 that a window plus a policy's rolls, a zone's offset or a search's padding never
# leaves them, and every year is written with four digits (RFC 3339).
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)  # exclusive
OUTSIDE = f"outside the years {EARLIEST.year} to {LATEST.year - 1}"

# Ids become MQTT topic levels, so only a conservative ASCII alphabet is allowed.
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}", re.ASCII)
# RFC 3339 date-time; the offset is mandatory (a naive instant is never guessed).
_INSTANT = re.compile(r"(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})?", re.ASCII)


def check_id(kind: str, value: object) -> str:
    """Return `value` if it is a valid `kind` id (1-64 of A-Z a-z 0-9 _ . -)."""
    if not isinstance(value, str) or not _ID.fullmatch(value):
        shown = repr(value) if not isinstance(value, str) or len(value) <= 70 else f"{value[:64]!r}..."
        raise InvalidId(
            f"invalid {kind} {shown}: use 1 to 64 characters of A-Z a-z 0-9 _ . - "
            "starting with a letter or digit"
        )
    return value


# The characters free text may not hold: all controls but tab, line feed and carriage return.
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def check_text(what: str, text: str) -> str:
    """Return free text (a note, an actor) if it can be stored: UTF-8, no control characters
    but tabs and line breaks (PostgreSQL's text takes no NUL)."""
    if not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError:  # a shell's bytes that are not UTF-8, as surrogates
            raise InvalidInput(f"invalid {what}: it is not UTF-8 text") from None
    if not text.isprintable() and CONTROL.search(text):
        raise InvalidInput(f"invalid {what}: control characters (only line breaks and tabs)")
    return text


def parse_instant(text: str, what: str = "instant") -> datetime:
    """Parse an RFC 3339 timestamp with an offset into an aware UTC datetime."""
    m = _INSTANT.fullmatch(text.strip()) if isinstance(text, str) else None
    if m is None:
        raise InvalidInstant(f"invalid {what} {text!r}: expected RFC 3339, e.g. 2026-03-31T12:00:00Z")
    date, clock, fraction, offset = m.groups()
    if offset is None:
        raise InvalidInstant(f"invalid {what} {text!r}: no UTC offset (add Z or +HH:MM)")
    if fraction and int(fraction[1:]) != 0:
        raise InvalidInstant(f"invalid {what} {text!r}: only whole seconds are allowed")
    offset = "+00:00" if offset in ("Z", "z") else offset
    if int(offset[1:3]) >= 24 or int(offset[4:]) >= 60:
        raise InvalidInstant(f"invalid {what} {text!r}: the offset must be less than 24 hours")
    try:
        utc = datetime.fromisoformat(f"{date}T{clock}{offset}").astimezone(UTC)
    except ValueError as e:
        raise InvalidInstant(f"invalid {what} {text!r}: {e}") from None
    except OverflowError:  # past datetime's own years once in UTC
        utc = None
    if utc is None or not EARLIEST <= utc < LATEST:
        raise InvalidInstant(f"invalid {what} {text!r}: {OUTSIDE}")
    return utc


def check_instant(value: datetime, what: str = "instant") -> datetime:
    """Return `value` in UTC; reject naive datetimes and fractional seconds."""
    if type(value) is datetime and value.tzinfo is UTC and not value.microsecond:
        return value  # already as stored: shared, not copied (a fleet's intents share their instants)
    if not isinstance(value, datetime):
        raise InvalidInstant(f"invalid {what} {value!r}: not a datetime")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInstant(f"invalid {what} {value.isoformat()}: no UTC offset")
    if value.microsecond:
        raise InvalidInstant(f"invalid {what} {value.isoformat()}: only whole seconds are allowed")
    utc = value.astimezone(UTC)
    # Normalise subclasses (freezegun, pendulum) to a plain datetime.
    return datetime(utc.year, utc.month, utc.day, utc.hour, utc.minute, utc.second, tzinfo=UTC)


@functools.lru_cache(maxsize=4096)
def format_instant(value: datetime) -> str:
    """Format as `YYYY-MM-DDTHH:MM:SSZ` (UTC, whole seconds)."""
    # Cached: the same few instants (a group's window, a boundary) are formatted for
    # every member at every transition, and strftime is slow beside a dict lookup.
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def floor_second(value: datetime) -> datetime:
    """Drop the fraction of a clock reading: stored instants are whole seconds."""
    return check_instant(value.replace(microsecond=0))


@dataclass(frozen=True, slots=True, order=True)
class Window:
    """A half-open interval `[start, end)` of UTC instants, at most 31 days long."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", check_instant(self.start, "start"))
        object.__setattr__(self, "end", check_instant(self.end, "end"))
        if self.end <= self.start:
            raise InvalidWindow(f"invalid window {self}: end must be after start")
        if self.end - self.start > MAX_WINDOW:
            raise InvalidWindow(f"invalid window {self}: longer than 31 days")

    @classmethod
    def parse(cls, start: str, end: str) -> Window:
        return cls(parse_instant(start, "start"), parse_instant(end, "end"))

    def contains(self, t: datetime) -> bool:
        return self.start <= t < self.end

    def __str__(self) -> str:
        return f"{format_instant(self.start)}..{format_instant(self.end)}"


_POLICY_LIMITS = {
    "pre_roll": 86_400,
    "post_roll": 86_400,
    "bridge_gap": 86_400,
    "grace_seconds": 3_600,
}


@dataclass(frozen=True, slots=True)
class Policy:
    """How event windows become on-blocks: widening, bridging, and the client's grace."""

    pre_roll: int = 0
    post_roll: int = 0
    bridge_gap: int = 0
    grace_seconds: int = 30

    def __post_init__(self) -> None:
        for name, limit in _POLICY_LIMITS.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= limit:
                raise InvalidPolicy(
                    f"invalid {name.replace('_', '-')} {value!r}: whole seconds from 0 to {limit}"
                )

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in _POLICY_LIMITS}


@dataclass(frozen=True, slots=True)
class ScheduledEvent:
    """An event window of a client or group; a cancelled one keeps its id taken."""

    event_id: str
    window: Window
    cancelled: bool = False


@dataclass(frozen=True, slots=True)
class Override:
    """A manual on/off for a window. `rank` orders overrides of one target: higher was set later."""

    override_id: str
    desired_state: str
    window: Window
    rank: int
    cleared: bool = False
