"""The report run_all writes (docs/performance.md): tables, and one summary row per goal.

Every goal row names its figure, the measured value, the baseline measured in
the same run, their ratio, the goal (from `bench.goals`) and the verdict. A
row that could not be measured is kept, marked in red with the reason: the
suite never drops a row.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from bench.goals import Goal

__all__ = ["RED", "Doc", "Row", "fmt", "verdict"]

RED = "🔴"


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("**met**" if ok else "**missed**")


def fmt(x: Any, digits: int = 3) -> str:
    """A figure for a table: by magnitude unless `digits` is given; '-' for nothing."""
    if x is None:
        return "-"
    if isinstance(x, bool):
        return str(x)
    if isinstance(x, float):
        if x != x:
            return "-"
        if digits == 3:  # the default: by magnitude
            digits = 0 if abs(x) >= 1000 else 1 if abs(x) >= 10 else 3
        return f"{x:,.{digits}f}"
    return f"{x:,}" if isinstance(x, int) else str(x)


@dataclass(frozen=True)
class Row:
    """One summary row: a figure beside its baseline, with its goal (None: reported for context)."""

    figure: str
    value: float | None
    unit: str
    baseline: str
    base_value: float | None
    goal: Goal | None
    on_ratio: bool  # the goal bounds the ratio (True) or the value itself (False)
    reason: str = ""  # why it was not measured
    # The ratio when it is not value / base_value: the median of interleaved rounds' ratios.
    rounds_ratio: float | None = None

    @property
    def ratio(self) -> float | None:
        if self.value is None or not self.base_value:
            return None
        return self.rounds_ratio if self.rounds_ratio is not None else self.value / self.base_value

    def cells(self) -> list[str]:
        if self.value is None:
            goal = self.goal.text if self.goal else "-"
            return [self.figure, f"{RED} **not measured**: {self.reason}", self.baseline, "-", goal, RED]
        judged = self.ratio if self.on_ratio else self.value
        ok = self.goal.met(judged) if self.goal else None
        value = f"{fmt(self.value)} {self.unit}".strip()
        base = (
            f"{self.baseline}: {fmt(self.base_value)} {self.unit}".strip()
            if self.base_value
            else self.baseline
        )
        ratio = fmt(self.ratio, 2) if self.ratio is not None else "-"
        goal = (self.goal.text + (" (ratio)" if self.on_ratio else "")) if self.goal else "context"
        return [self.figure, value, base, ratio, goal, verdict(ok)]


@dataclass
class Doc:
    lines: list[str] = field(default_factory=list)
    summary: list[Row] = field(default_factory=list)

    def add(self, *lines: str) -> None:
        self.lines.extend(lines)

    def table(self, header: list[str], rows: list[list[Any]]) -> None:
        self.add("| " + " | ".join(header) + " |", "|" + "---|" * len(header))
        for r in rows:
            self.add("| " + " | ".join(fmt(x) for x in r) + " |")
        self.add("")

    def failed(self, r: dict[str, Any] | None, *rows: Row) -> bool:
        """True (and its rows marked red, with the reason) when a benchmark run could not measure."""
        reason = not_measured(r)
        if reason is None:
            return False
        self.add(f"{RED} **Not measured**: {reason}", "")
        for row in rows:
            self.summary.append(replace(row, value=None, reason=reason))
        return True

    def row(self, row: Row) -> None:
        self.summary.append(row)

    def summary_table(self) -> list[str]:
        out = [
            "| figure | measured | baseline (same run) | ratio | goal | |",
            "|---|---|---|---|---|---|",
        ]
        return out + ["| " + " | ".join(row.cells()) + " |" for row in self.summary]


def not_measured(r: dict[str, Any] | None) -> str | None:
    """Why a benchmark's result holds no figures, or None when it does."""
    if r is None:
        return "not run"
    if r.get("error") == "not run":
        return f"not run: {r.get('reason')}"
    if "error" in r:
        tail = f": {r['reason']}" if r.get("reason") else ""
        tries = f" ({r['attempts']} attempts)" if r.get("attempts", 1) > 1 else ""
        return f"`{r.get('command')}` failed{tries}, {r['error']}{tail}"
    return None
