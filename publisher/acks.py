"""Acknowledgements: settled publishes are logged, counted and receipted; failures are kept.

Reaping waits until the outbox's progress mark is settled (or the oldest publish
is overdue): logging while paho still drains a burst takes the GIL from its
network thread in bursts, and the convoy that follows slows acknowledgements
several-fold. A removed client's final `off`, once acknowledged, clears its topic.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from publisher.mqtt import Delivery
from publisher.outbox import BURST_WAIT, Kind, Outbox, Outgoing
from publisher.receipts import ReceiptWriter

__all__ = ["LINES", "Acks"]

# Log lines of a reap built and written at a time at most: a settled window's lines (each a
# dict, then its text; RunSettings.window publishes) held at once would be the largest thing a
# burst allocates on top of the view, and a first start's peak.
LINES = 128


class Acks:
    """Reaps the outbox: one log line, one metric and one receipt per settled publish."""

    def __init__(self, outbox: Outbox, writer: ReceiptWriter) -> None:
        self.outbox, self.writer = outbox, writer
        self.receipts, self.metrics, self.log = writer.receipts, writer.metrics, writer.log
        self.failures: list[str] = []
        self.acked_at: dict[str, datetime] = {}  # name -> last PUBACK (the self-check reads it)
        self._latencies: list[float] = []
        self._results: dict[tuple[str, str], int] = {}  # (result, kind) -> publishes, counted per batch
        self._lines: list[tuple[str, dict[str, Any]]] = []  # log lines not yet written (LINES at most)

    def settle(self, timeout: float, now: Callable[[], datetime]) -> bool:
        """Wait until every publish in flight is acknowledged or failed (True).

        Gives up after `timeout`, but not while acknowledgements are still coming in:
        a very large burst simply takes longer than any fixed timeout.
        """
        outbox = self.outbox
        deadline = time.monotonic() + timeout
        while outbox.outgoing or (outbox.waiting and outbox.connection.connected):
            t = time.monotonic()
            session = outbox.connection.session
            flowing = session is not None and t - session.last_ack < outbox.settings.ack_timeout
            if t >= deadline and not flowing:
                break
            outbox.await_progress(BURST_WAIT)
            self.reap(now())
            busy = bool(outbox.outgoing or outbox.waiting)
            self.writer.write(during_burst=busy, complete=not busy)
            outbox.drain(now())
        return not outbox.outgoing and not outbox.waiting

    def reap(self, now: datetime) -> None:
        """Log finished publishes, oldest first; fail those overdue."""
        if not self.outbox.outgoing:
            return
        if not (self.outbox.progress_mark().done or self._overdue(self.outbox.outgoing[0].delivery)):
            return
        try:
            while self.outbox.outgoing:
                item = self.outbox.outgoing[0]
                if not item.delivery.done:
                    if not self._overdue(item.delivery):
                        return
                    timeout = self.outbox.settings.ack_timeout
                    session = self.outbox.connection.session
                    if session is not None and session.silent_since(item.delivery.started):
                        # Nothing at all from the broker since: a dead link (a NAT that forgot
                        # us, a hung broker), not a slow one. Reconnect now, not at the keepalive.
                        self._write_lines()  # what settled before is logged before the loss
                        session.abandon(f"no PUBACK within {timeout:g} s and nothing else from the broker")
                        return
                    item.delivery.resolve(f"no PUBACK within {timeout:g} s")
                self.outbox.outgoing.popleft()
                self._finish(item, now)
                if len(self._lines) >= LINES:
                    self._write_lines()
        finally:
            self._flush_batch()

    def _overdue(self, delivery: Delivery) -> bool:
        # Measured from the later of its publish and the last PUBACK of any kind: a large burst
        # waits in paho's queue far longer than the timeout while acknowledgements keep
        # flowing; only a stall is a failure.
        session = self.outbox.connection.session
        progress = session.last_ack if session is not None else 0.0
        return max(delivery.started, progress) + self.outbox.settings.ack_timeout <= time.monotonic()

    def drain_lost(self, now: datetime) -> None:
        """Fail everything in flight: its session is gone."""
        while self.outbox.outgoing:
            item = self.outbox.outgoing.popleft()
            item.delivery.resolve("connection lost before PUBACK")
            self._finish(item, now)
            if len(self._lines) >= LINES:
                self._write_lines()
        self._flush_batch()

    def _flush_batch(self) -> None:
        # The log's last lines and flush, and one pass over the latency histogram, per settled batch.
        self._write_lines()
        self.log.flush()
        if self._latencies:
            self.metrics.observe_acks(self._latencies)
            self._latencies = []
        if self._results:
            for (result, kind), count in self._results.items():
                self.metrics.publish_result(result, kind).inc(count)
            self._results = {}

    def _write_lines(self) -> None:
        lines, self._lines = self._lines, []  # taken first: a write that fails is not written again
        if lines:
            self.log.write_all(lines)

    def _finish(self, item: Outgoing, now: datetime) -> None:
        delivery, kind, intent = item.delivery, item.kind, item.intent
        ok = delivery.ok
        result = "acked" if ok else "failed"
        latency = delivery.latency
        latency_ms = None if latency is None else round(latency * 1000, 3)
        if kind is Kind.STATUS:
            line = {"status": item.status, "result": result}
            if delivery.error:
                line["error"] = delivery.error
            self._lines.append(("status", line))
            return
        counted = (result, kind._value_)  # `value` is a descriptor: slow, twice a publish
        self._results[counted] = self._results.get(counted, 0) + 1
        if ok and latency is not None:
            self._latencies.append(latency)  # observed once the batch is reaped
            if not self.outbox.once:  # only the self-check sweep reads it
                self.acked_at[item.name] = now
            if intent is not None:
                assert item.issued_at is not None
                assert item.expires_at is not None
                self.receipts.acked(
                    item.name, intent, item.issued_at, item.expires_at, kind, now, latency_ms, item.intent_id
                )
        elif not ok:
            intent_id = None if intent is None else intent.intent_id
            self.receipts.failed(item.name, intent_id, now, delivery.error or "failed")
        self._lines.append(("publish" if intent is not None else "clear", _line(item, result, latency_ms)))
        if not ok:
            self.failures.append(f"{delivery.topic}: {delivery.error}")
        elif kind is Kind.TRANSITION and intent is not None and intent.removed:
            self.outbox.clear(item.name)


def _line(item: Outgoing, result: str, latency_ms: float | None) -> dict[str, Any]:
    """The log line of a settled publish (written as it is: no copies)."""
    delivery, intent = item.delivery, item.intent
    line: dict[str, Any] = {"kind": item.kind._value_, "topic": delivery.topic}
    if intent is None:
        line["client_id"] = item.name
    else:
        fields = intent.fields
        line["client_id"] = fields.client_id
        line["group_id"] = fields.group_id
        line["intent_id"] = intent.intent_id if item.intent_id is None else item.intent_id
        line["seq"] = intent.seq
        line["desired_state"] = fields.desired_state
        line["reason"] = fields.reason
        line["issued_at"] = item.issued_at
        line["expires_at"] = item.expires_at
    line["result"] = result
    line["latency_ms"] = latency_ms
    if delivery.error:
        line["error"] = delivery.error
    return line
