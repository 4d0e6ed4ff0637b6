"""Prometheus metrics of the daemon (prometheus-client, one registry per daemon)."""

from __future__ import annotations

import bisect
import collections
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from publisher.errors import PublisherError

__all__ = ["Metrics"]


class Metrics:
    """Counters and gauges named by Prometheus conventions (units in names, `_total` counters)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._children: dict[tuple[Any, ...], Any] = {}
        r = self.registry
        self.publishes = Counter(
            "intent_ledger_publishes_total",
            "Intent publishes by result and kind.",
            ["result", "kind"],
            registry=r,
        )
        self.transitions = Counter(
            "intent_ledger_transitions_total",
            "Recorded intent transitions.",
            ["reason", "desired_state"],
            registry=r,
        )
        self.ack_latency = Histogram(
            "intent_ledger_publish_ack_latency_seconds",
            "Publish to PUBACK.",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.connected = Gauge(
            "intent_ledger_broker_connected", "1 while connected to the broker.", registry=r
        )
        self.reconnects = Counter(
            "intent_ledger_broker_reconnects_total", "Connections opened after the first.", registry=r
        )
        self.ledger_lag = Gauge(
            "intent_ledger_ledger_lag_events",
            "Last ledger position minus the last one processed.",
            registry=r,
        )
        self.ledger_errors = Counter(
            "intent_ledger_ledger_errors_total", "Failed reads or writes of the ledger.", registry=r
        )
        self.retained_age = Gauge(
            "intent_ledger_retained_payload_age_seconds",
            "Oldest issued_at among the intents the broker holds, as seen by the self-check.",
            registry=r,
        )
        self.mismatches = Counter(
            "intent_ledger_retained_mismatches_total",
            "Retained intents that differed from the current one (then republished).",
            registry=r,
        )

    def publish_result(self, result: str, kind: str) -> Any:
        """The publishes counter's child for (result, kind), looked up once (labels() is slow)."""
        return self._child(self.publishes, result, kind)

    def transition(self, reason: str, desired_state: str) -> Any:
        """The transitions counter's child for (reason, desired_state)."""
        return self._child(self.transitions, reason, desired_state)

    def _child(self, counter: Counter, *labels: str) -> Any:
        key = (counter, *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = counter.labels(*labels)
        return child

    def observe_acks(self, seconds: list[float]) -> None:
        """`ack_latency.observe(s)` for each of `seconds`, in one pass (a settled burst at once)."""
        # observe() takes two locks per value and scans the buckets, per PUBACK (its cost:
        # docs/performance.md). Counted per bucket here, as observe() would count them.
        histogram = self.ack_latency
        buckets = getattr(histogram, "_buckets", None)
        bounds = getattr(histogram, "_upper_bounds", None)
        if buckets is None or bounds is None:
            for s in seconds:  # a prometheus-client whose internals moved: the slow way
                histogram.observe(s)
            return
        for index, count in collections.Counter(bisect.bisect_left(bounds, s) for s in seconds).items():
            buckets[index].inc(count)
        histogram._sum.inc(sum(seconds))

    def serve(self, port: int, host: str = "127.0.0.1") -> None:
        """Serve /metrics on `host:port`; `PublisherError` when it cannot listen there."""
        try:
            start_http_server(port, addr=host, registry=self.registry)
        except OSError as e:  # the port taken, the host unknown or not this machine's
            why = e.strerror or str(e)
            raise PublisherError(
                f"cannot serve metrics on {host}:{port} (--metrics-port, --metrics-host): {why}"
            ) from None
