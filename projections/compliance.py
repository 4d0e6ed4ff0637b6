"""Compliance: the recorded intents beside what the screens reported (DESIGN section 13).

A pure fold over (recorded transitions, observation runs, range, staleness):
no clock, no database. Instants are whole epoch seconds.

- Intended state at t: the desired_state of the latest transition effective at
  or before t. A client is audited only while it has one and it is not
  `client_deregistered` (before its first intent, and after its removal, it
  is not part of the fleet).
- Observed state at t: the tv_state of the latest report whose `since` is at
  or before t; `unknown` before any, when it says `unknown`, and from `stale`
  seconds after a report until the next one.
- The first `grace_seconds` after each on -> off are the client's to finish:
  `on` then is neither unscheduled nor a mismatch.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

from ledger.values import format_instant
from projections.observations import Run

__all__ = ["Compliance", "Intended", "Totals", "compliance", "fleet_totals", "observed_at", "to_epoch"]

_NEVER = -(2**62)
_DEREGISTERED = "client_deregistered"


class Intended(NamedTuple):
    """One recorded transition of a client's intent."""

    at: int  # effective_at, epoch seconds
    desired_state: str
    reason: str
    grace_seconds: int


@dataclass
class Totals:
    scheduled_on_s: int = 0
    observed_on_s: int = 0
    unscheduled_on_s: int = 0
    unknown_s: int = 0

    @property
    def coverage(self) -> float | None:
        return None if not self.scheduled_on_s else round(self.observed_on_s / self.scheduled_on_s, 4)

    def add(self, other: Totals) -> None:
        self.scheduled_on_s += other.scheduled_on_s
        self.observed_on_s += other.observed_on_s
        self.unscheduled_on_s += other.unscheduled_on_s
        self.unknown_s += other.unknown_s

    def as_dict(self) -> dict[str, Any]:
        return {
            "scheduled_on_s": self.scheduled_on_s,
            "observed_on_s": self.observed_on_s,
            "unscheduled_on_s": self.unscheduled_on_s,
            "unknown_s": self.unknown_s,
            "coverage": self.coverage,
        }


@dataclass
class Compliance(Totals):
    """One client's figures over the range, and its mismatched stretches (start, end, intended, observed)."""

    client_id: str = ""
    mismatches: list[tuple[int, int, str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "client_id": self.client_id,
            **super().as_dict(),
            "mismatches": [
                {"start": _text(a), "end": _text(b), "intended": i, "observed": o}
                for a, b, i, o in self.mismatches
            ],
        }


@functools.lru_cache(maxsize=65_536)
def to_epoch(text: str) -> int:
    """`YYYY-MM-DDTHH:MM:SSZ` as epoch seconds (a text without an offset is refused, never local)."""
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise ValueError(f"instant without an offset: {text!r}")
    return int(value.timestamp())


@functools.lru_cache(maxsize=65_536)
def _text(t: int) -> str:
    return format_instant(datetime.fromtimestamp(t, UTC))


# A client's timeline as changes (instant, which, value), applied in time order:
# which 0: the intended state (None: not audited); 1: +1/-1 entering/leaving a grace;
# 2: the reported state; 3: True while silent too long (stale).
_WANT, _GRACE, _SEEN, _QUIET = 0, 1, 2, 3
_by_time = operator.itemgetter(0)


def _intended_changes(transitions: Sequence[Sequence[Any]], out: list[tuple[int, int, Any]]) -> None:
    previous = None
    for when, desired, reason, grace in transitions:
        at = to_epoch(when) if isinstance(when, str) else when
        out.append((at, _WANT, None if reason == _DEREGISTERED else desired))
        if previous == "on" and desired == "off" and grace:  # None: a row without it
            out.append((at, _GRACE, 1))
            out.append((at + grace, _GRACE, -1))
        previous = desired


def _observed_changes(runs: Sequence[Sequence[Any]], stale: int, out: list[tuple[int, int, Any]]) -> None:
    start = _NEVER
    count = len(runs)
    for i, run in enumerate(runs):
        # A later report's `since` may reach back, never before an earlier report's.
        start = max(start, to_epoch(run[1]))
        out.append((start, _SEEN, run[3]))
        quiet_from = to_epoch(run[4]) + stale
        if i + 1 == count:
            out.append((quiet_from, _QUIET, True))
            continue
        resumed = to_epoch(runs[i + 1][0])
        if quiet_from < resumed:
            out.append((quiet_from, _QUIET, True))
            out.append((resumed, _QUIET, False))


def compliance(
    client_id: str,
    transitions: Sequence[Sequence[Any]],
    runs: Sequence[Sequence[Any]],
    start: int,
    end: int,
    stale: int = 900,
) -> Compliance:
    """One client's compliance over `[start, end)`.

    `transitions`: its recorded intents in seq order as `Intended` (at: epoch seconds or
    stored text, desired_state, reason, grace_seconds), including the last two effective
    before `start`; `runs`: its observation runs by started_at (`Run`, or rows in its
    order), including the last one started before `start`.
    """
    changes: list[tuple[int, int, Any]] = []
    _intended_changes(transitions, changes)
    _observed_changes(runs, stale, changes)
    changes.sort(key=_by_time)  # stable: of two changes at one instant, the later one wins
    changes.append((end, -1, None))
    return _fold(client_id, changes, start, end)


def _fold(client_id: str, changes: list[tuple[int, int, Any]], start: int, end: int) -> Compliance:
    # The stretches between changes, accounted inline (a report has hundreds of thousands):
    # [a, b) wanted `want`, observed `observed` ("unknown" while quiet).
    scheduled = observed_on = unscheduled = unknown = 0
    mismatches: list[tuple[int, int, str, str]] = []
    now: list[Any] = [None, 0, "unknown", False]  # by `which`: want, in_grace, seen, quiet
    a = start
    for t, which, value in changes:
        if t > a:
            b = t if t < end else end
            want = now[0]
            if want is not None:
                seconds, in_grace = b - a, now[1]
                observed = "unknown" if now[3] else now[2]
                if want == "on":
                    scheduled += seconds
                    observed_on += seconds if observed == "on" else 0
                elif observed == "on" and not in_grace:
                    unscheduled += seconds
                if observed == "unknown":
                    unknown += seconds
                elif observed != want and not (in_grace and want == "off"):
                    _mismatch(mismatches, a, b, want, observed)
            a = b
            if a >= end:
                break
        # (The end's own change, -1, is the last: what it sets is never read.)
        now[which] = now[which] + value if which == _GRACE else value
    return Compliance(
        scheduled_on_s=scheduled,
        observed_on_s=observed_on,
        unscheduled_on_s=unscheduled,
        unknown_s=unknown,
        client_id=client_id,
        mismatches=mismatches,
    )


def _mismatch(mismatches: list[tuple[int, int, str, str]], a: int, b: int, want: str, observed: str) -> None:
    """Add the mismatched stretch [a, b) to `mismatches`, joined to the last one if it goes on."""
    last = mismatches[-1] if mismatches else None
    if last is not None and last[1] == a and last[2] == want and last[3] == observed:
        mismatches[-1] = (last[0], b, want, observed)
    else:
        mismatches.append((a, b, want, observed))


def fleet_totals(rows: Iterable[Totals]) -> dict[str, Any]:
    """The fleet's totals (and its coverage) over per-client figures."""
    total = Totals()
    count = 0
    for row in rows:
        total.add(row)
        count += 1
    return {"clients": count, **total.as_dict()}


def observed_at(runs: Sequence[Run], t: int, stale: int = 900) -> str:
    """The observed state at `t` (on, off or unknown)."""
    changes: list[tuple[int, int, Any]] = []
    _observed_changes(runs, stale, changes)
    changes.sort(key=_by_time)
    seen, quiet = "unknown", False
    for at, which, value in changes:
        if at > t:
            break
        if which == _SEEN:
            seen = value
        else:
            quiet = value
    return "unknown" if quiet else str(seen)
