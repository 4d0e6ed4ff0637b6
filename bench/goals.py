"""Every goal of the benchmark suite, defined once: the benchmarks and the report read them here.

A goal compares one measured figure with a bound: a ratio to the baseline of
the same run (most of them), or an absolute figure where the issue gives one
(latency in ms, bytes per client). `Goal.met` is the verdict, `Goal.text`
how the report spells the bound.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "AUDIT",
    "BOUNDARY",
    "BYTES_PER_CLIENT",
    "CLI",
    "CLIENT_P99_PG",
    "CLIENT_P99_SQLITE",
    "COLD_FIRST",
    "COLD_RESTART",
    "COMPLIANCE_SECONDS",
    "FAILOVER_TTL_FRACTION",
    "GOAL_SIZES",
    "GROUP_P99",
    "GROUP_RATIO",
    "REPLAY_MS",
    "SERIES_SHOW_MS",
    "SERIES_STATE_MS",
    "SOAK_RSS_DRIFT",
    "SYNC",
    "WITH_SERIES",
    "Goal",
]


@dataclass(frozen=True)
class Goal:
    """A bound on one figure: `at_least` (higher is better) or at most; `strict` for < and >."""

    bound: float
    at_least: bool
    source: str  # the issue that set it
    unit: str = ""
    strict: bool = False

    def met(self, value: float | None) -> bool | None:
        """The verdict for a measured value; None when it was not measured."""
        if value is None or value != value:
            return None
        if self.at_least:
            return value > self.bound if self.strict else value >= self.bound
        return value < self.bound if self.strict else value <= self.bound

    @property
    def text(self) -> str:
        sign = (">" if self.strict else ">=") if self.at_least else ("<" if self.strict else "<=")
        bound = f"{self.bound:,.0f}" if self.bound >= 100 else f"{self.bound:g}"
        return f"{sign} {bound}{(' ' + self.unit) if self.unit else ''}"


# Fleet sizes at which the cold-start and memory goals are judged (issue 14); smaller fleets are
# reported for context, where the fixed part of the process weighs most.
GOAL_SIZES = (10_000, 100_000)

SYNC = Goal(0.5, at_least=True, source="issue 2")  # ledger events/s, ours / raw eventsourcing
COLD_FIRST = Goal(0.7, at_least=True, source="issue 14")  # msg/s, ours / raw paho: fresh ledger
COLD_RESTART = Goal(0.9, at_least=True, source="issue 14")  # msg/s, ours / raw paho: from the checkpoint
BYTES_PER_CLIENT = Goal(2048, at_least=False, source="issue 14", unit="B")  # peak RSS above idle
BOUNDARY = Goal(1.5, at_least=False, source="issue 14")  # boundary -> last PUBACK, ours / raw
CLIENT_P99_SQLITE = Goal(25.0, at_least=False, source="issue 14", unit="ms")  # change -> PUBACK
CLIENT_P99_PG = Goal(15.0, at_least=False, source="issue 14", unit="ms")
GROUP_RATIO = Goal(3.0, at_least=False, source="issue 14")  # group of 500 p99, ours / raw burst
GROUP_P99 = Goal(500.0, at_least=False, source="issue 3", unit="ms", strict=True)
AUDIT = Goal(2.0, at_least=False, source="issue 4", strict=True)  # seconds, ours / plain SQL
REPLAY_MS = Goal(100.0, at_least=False, source="issue 5", unit="ms", strict=True)
FAILOVER_TTL_FRACTION = Goal(0.5, at_least=False, source="issue 5", unit="x ttl", strict=True)
SOAK_RSS_DRIFT = Goal(1.05, at_least=False, source="issue 14")  # largest RSS after warm-up / at its end
COMPLIANCE_SECONDS = Goal(2.0, at_least=False, source="issue 10", unit="s", strict=True)  # a day, 10k
WITH_SERIES = Goal(1.10, at_least=False, source="issue 14")  # a figure with series or reports / plain
SERIES_STATE_MS = Goal(50.0, at_least=False, source="issue 9", unit="ms", strict=True)  # state ten years on
SERIES_SHOW_MS = Goal(100.0, at_least=False, source="issue 9", unit="ms", strict=True)  # a year of a series
CLI = Goal(2.0, at_least=False, source="issue 12")  # `client list` / `sqlite-utils tables`, medians
