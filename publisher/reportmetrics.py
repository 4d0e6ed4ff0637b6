"""The metrics of report ingestion: reports by result, screens by match, each screen's report age."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import GaugeMetricFamily

__all__ = ["RESULTS", "ReportMetrics", "tally"]

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
