"""The metrics of report ingestion: reports by result, screens by match, each screen's report age."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import GaugeMetricFamily

__all__ = ["RESULTS", "ReportMetrics", "ScreensGauge", "ages_of", "tally"]

RESULTS = ("accepted", "duplicate", "invalid", "unknown_client", "mismatched_id", "skewed")


class ReportMetrics:
    """Registered on the daemon's registry; `ages()` is read when Prometheus scrapes."""

    def __init__(self, registry: CollectorRegistry, ages: Callable[[], Iterable[tuple[str, float]]]) -> None:
        self.reports = Counter(
            "intent_ledger_reports_total", "Screen reports by result.", ["result"], registry=registry
        )
        self.screens = Gauge(
            "intent_ledger_screens",
            "Registered screens whose latest report matches the intent, does not, or is unknown.",
            ["state"],
            registry=registry,
        )
        registry.register(_Ages(ages))


def tally(
    screens: Iterable[tuple[str, str, datetime, int]],
    latest: dict[str, tuple[int, str, int]],
    t: float,
    stale: int,
    counts: dict[str, int],
) -> int:
    """Add each of `screens` (client_id, desired_state, effective_at, grace_seconds) to `counts`
    by its `latest` report (reported_at epoch, tv_state, hash) at `t`; how many there were."""
    n = 0
    for client_id, desired, effective_at, grace in screens:
        n += 1
        seen = latest.get(client_id)
        if seen is None or seen[1] == "unknown" or t - seen[0] >= stale:
            counts["unknown"] += 1
        elif seen[1] == desired or (desired == "off" and t < effective_at.timestamp() + grace):
            counts["match"] += 1
        else:
            counts["mismatch"] += 1
    return n


def ages_of(latest: dict[str, tuple[int, str, int]], now: datetime | None) -> Iterator[tuple[str, float]]:
    """(client_id, seconds from its `latest` report to `now`) for every screen that reported."""
    if now is None:
        return
    t = now.timestamp()
    for client_id, (reported, _, _) in list(latest.items()):
        yield client_id, max(0.0, t - reported)


class ScreensGauge:
    """Keeps `intent_ledger_screens{state}` current: every `every` seconds the registered screens
    (`intended()`) are compared with their `latest` report, `chunk` screens a round, so a large
    fleet never holds the daemon's loop for long."""

    def __init__(
        self,
        gauge: Gauge,
        intended: Callable[[], Iterable[tuple[str, str, datetime, int]]],
        latest: dict[str, tuple[int, str, int]],
        stale: int,
        every: float = 15.0,
        chunk: int = 2_000,
    ) -> None:
        self._gauge, self._intended, self._latest, self._stale = gauge, intended, latest, stale
        self._every, self._chunk = timedelta(seconds=every), chunk
        self._counting: Iterator[tuple[str, str, datetime, int]] | None = None
        self._counts: dict[str, int] = {}
        self.next_at: datetime | None = None  # the next count starts then (None: at the next round)

    @property
    def counting(self) -> bool:
        """A count is under way: the next round continues it."""
        return self._counting is not None

    def tick(self, now: datetime) -> None:
        """Start a count when one is due; count the next `chunk` screens."""
        if self._counting is None and (self.next_at is None or now >= self.next_at):
            self._counting = iter(self._intended())
            self._counts = dict.fromkeys(("match", "mismatch", "unknown"), 0)
            self.next_at = now + self._every
        if self._counting is None:
            return
        screens = itertools.islice(self._counting, self._chunk)
        if tally(screens, self._latest, now.timestamp(), self._stale, self._counts) == self._chunk:
            return  # more next round
        self._counting = None
        for state, count in self._counts.items():
            self._gauge.labels(state).set(count)


class _Ages:
    """`intent_ledger_screen_report_age_seconds{client_id}`, computed when scraped."""

    def __init__(self, ages: Callable[[], Iterable[tuple[str, float]]]) -> None:
        self._ages = ages

    def describe(self) -> list[GaugeMetricFamily]:
        return [self._family()]

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = self._family()
        for client_id, age in self._ages():
            family.add_metric([client_id], age)
        yield family

    @staticmethod
    def _family() -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "intent_ledger_screen_report_age_seconds",
            "Seconds since each screen's latest accepted report (as of the daemon's last round).",
            labels=["client_id"],
        )
