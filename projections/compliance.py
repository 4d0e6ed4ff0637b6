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

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any

from ledger.values import format_instant
from projections.observations import Run

__all__ = ["Compliance", "Intended", "Totals", "compliance", "fleet_totals", "observed_at", "to_epoch"]

_NEVER = -(2**62)
_DEREGISTERED = "client_deregistered"


@dataclass(frozen=True, slots=True)
class Intended:
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


def to_epoch(text: str) -> int:
    """`YYYY-MM-DDTHH:MM:SSZ` as epoch seconds."""
    return int(datetime.fromisoformat(text).timestamp())


def _text(t: int) -> str:
    return format_instant(datetime.fromtimestamp(t, UTC))


def _intended_steps(transitions: Sequence[Intended]) -> tuple[list[tuple[int, Any]], list[tuple[int, Any]]]:
    """The intended state as steps (None: not audited), and the grace stretches as steps (True inside)."""
    steps: list[tuple[int, Any]] = [(_NEVER, None)]
    grace: list[tuple[int, Any]] = [(_NEVER, False)]
    previous = None
    grace_end = _NEVER
    for t in transitions:
        state = None if t.reason == _DEREGISTERED else t.desired_state
        steps.append((t.at, state))
        if previous == "on" and t.desired_state == "off" and t.grace_seconds > 0:
            if t.at > grace_end:
                grace.append((t.at, True))
            else:
                grace.pop()  # overlaps the previous stretch: extend it
            grace_end = max(grace_end, t.at + t.grace_seconds)
            grace.append((grace_end, False))
        previous = t.desired_state
    return steps, grace


def _observed_steps(runs: Sequence[Run], stale: int) -> tuple[list[tuple[int, Any]], list[tuple[int, Any]]]:
    """The reported state as steps, and the silent stretches as steps (True: stale)."""
    steps: list[tuple[int, Any]] = [(_NEVER, "unknown")]
    silent: list[tuple[int, Any]] = [(_NEVER, False)]
    start = _NEVER
    parsed = [
        (to_epoch(r.started_at), to_epoch(r.since), to_epoch(r.last_reported_at), r.tv_state) for r in runs
    ]
    for i, (_started, since, last, state) in enumerate(parsed):
        start = max(start, since)
        steps.append((start, state))
        quiet_from = last + stale
        resumed = parsed[i + 1][0] if i + 1 < len(parsed) else None
        if resumed is None or quiet_from < resumed:
            silent.append((quiet_from, True))
            if resumed is not None:
                silent.append((resumed, False))
    return steps, silent


def _merge(
    start: int, end: int, *functions: list[tuple[int, Any]]
) -> Iterable[tuple[int, int, tuple[Any, ...]]]:
    """Elementary stretches [a, b) of [start, end) on which every step function is constant."""
    times = sorted({t for f in functions for t, _ in f if start < t < end} | {start, end})
    index = [0] * len(functions)
    for a, b in pairwise(times):
        values = []
        for k, f in enumerate(functions):
            i = index[k]
            while i + 1 < len(f) and f[i + 1][0] <= a:
                i += 1
            index[k] = i
            values.append(f[i][1])
        yield a, b, tuple(values)


def compliance(
    client_id: str,
    transitions: Sequence[Intended],
    runs: Sequence[Run],
    start: int,
    end: int,
    stale: int = 900,
) -> Compliance:
    """One client's compliance over `[start, end)`.

    `transitions`: its recorded intents in seq order, including the last two effective
    before `start`; `runs`: its observation runs by started_at, including the last one
    started before `start`.
    """
    intended, grace = _intended_steps(transitions)
    reported, silent = _observed_steps(runs, stale)
    result = Compliance(client_id=client_id)
    mismatches = result.mismatches
    for a, b, (want, in_grace, seen, quiet) in _merge(start, end, intended, grace, reported, silent):
        if want is None:
            continue
        seconds = b - a
        observed = "unknown" if quiet else seen
        if want == "on":
            result.scheduled_on_s += seconds
            if observed == "on":
                result.observed_on_s += seconds
        elif observed == "on" and not in_grace:  # want is off here
            result.unscheduled_on_s += seconds
        if observed == "unknown":
            result.unknown_s += seconds
        elif observed != want and not (in_grace and want == "off"):
            if mismatches and mismatches[-1][1] == a and mismatches[-1][2:] == (want, observed):
                mismatches[-1] = (mismatches[-1][0], b, want, observed)
            else:
                mismatches.append((a, b, want, observed))
    return result


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
    reported, silent = _observed_steps(runs, stale)
    for _a, _b, (seen, quiet) in _merge(t, t + 1, reported, silent):
        return "unknown" if quiet else str(seen)
    return "unknown"
