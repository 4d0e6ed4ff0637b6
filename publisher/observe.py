"""Ingestion of the screens' reports (DESIGN section 13): a component the daemon composes.

`start()` subscribes to `{prefix}/+/power/state` (QoS 1) on a broker session
of its own (publisher.reportlink), whose callback on paho's network thread
only appends to an inbox. Each report is classified (accepted, duplicate, or
rejected as invalid, unknown_client, mismatched_id, skewed); the accepted ones
are buffered for the observation tables and written in batches. As the daemon
runs it (`background`), all of that happens on a thread of its own
(publisher.reportwriter), against the clock of the daemon's latest round, so
the daemon's thread never classifies and never waits on ingestion; without
it, `tick(now)` classifies a few milliseconds' worth a round. Rejections are
counted, logged at most once a minute per topic, never stored and never
fatal; a database that is away only delays the writes.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry

from ledger.app import Ledger
from projections.compliance import to_epoch
from projections.observation_reads import latest_reports
from projections.observations import ObservationLog, Seen
from publisher.config import BrokerConfig
from publisher.logs import Episode, EventLog
from publisher.receipts import stamp_ms
from publisher.report import InvalidReport, decode_report, epoch
from publisher.reportlink import ReportLink
from publisher.reportmetrics import RESULTS, ReportMetrics, ScreensGauge, ages_of
from publisher.reportwriter import ReportWriter
from publisher.settings import DB_ERRORS, one_line
from publisher.undecided import Undecided

__all__ = ["RESULTS", "Observer"]

SKEW = 300  # seconds a report's reported_at may differ from the server's clock
DRAIN = 2_000  # reports classified per round at most
BUDGET = 0.005  # seconds of a round spent on reports at most (a transition may be waiting)
FLUSH = 250  # screens written per round at most: one short transaction
LOG_EVERY = 60.0  # seconds between two log lines about one topic


class Observer:
    """Classifies, counts and stores what the screens report."""

    def __init__(
        self,
        ledger: Ledger,
        *,
        prefix: str,
        registry: CollectorRegistry,
        log: EventLog,
        errors: tuple[type[BaseException], ...] = DB_ERRORS,
        stale: int = 900,
        owns: Callable[[str], bool] = lambda _name: True,
        registered: Callable[[str], bool | None] = lambda _name: True,
        intended: Callable[[], Iterable[tuple[str, str, datetime, int]]] = lambda: (),
        broker: BrokerConfig | None = None,
        background: bool = False,
    ) -> None:
        """`owns`: reports of other shards' clients are ignored; `registered`: is a client
        registered now; `intended`: (client_id, desired_state, effective_at, grace_seconds)
        of every registered client, for the screens-by-match gauge. `intended` is called
        from `tick()` only, on the daemon's thread; with `background`, `owns` and
        `registered` are called on the writer's thread, so they must only read (a dict
        lookup); `registered` may answer None (not known yet: publisher.roster), the report
        held and asked about again (publisher.undecided). `broker`: where `start()`
        subscribes (a session of the component's own).
        `background`: reports are classified and written on a thread of their own
        (publisher.reportwriter), not in `tick()`."""
        self.prefix = prefix
        self.stale = stale
        self.writer = ObservationLog(ledger, split_after=stale)
        self.background = ReportWriter(self.writer, log, ingest=self._ingest) if background else None
        self._log = log
        self._errors = errors
        self._owns, self._registered = owns, registered
        self._inbox: collections.deque[tuple[str, bytes]] = collections.deque()
        # (topic, payload, report, now, stamp) of reports whose client `registered` cannot tell yet.
        self._undecided: Undecided[tuple[str, bytes, Any, datetime, str]] = Undecided()
        # Per screen: (reported_at as epoch seconds, tv_state, the payload's hash).
        self._latest: dict[str, tuple[int, str, int]] = {}
        # Screens whose latest report changed, oldest first, kept only for a reader that mirrors
        # `_latest` elsewhere (the report process's parent); None: nobody reads them.
        self.changed: collections.deque[tuple[str, int, str]] | None = None
        self.counted = dict.fromkeys(RESULTS, 0)  # reports by result so far (as the counter)
        self._loaded = False
        self._logged: dict[str, datetime] = {}
        self._next_write: datetime | None = None
        self._failing = Episode(log, "reports")
        self._write_delay = 1.0
        self._now: datetime | None = None
        # The clock of the daemon's latest round and the monotonic time it was read at: the
        # writer's thread classifies against it, never asking the daemon's thread.
        self._clock: tuple[datetime, float] | None = None
        self.metrics = ReportMetrics(registry, self.ages)
        self.screens = ScreensGauge(self.metrics.screens, intended, self._latest, stale)
        self._result = {r: self.metrics.reports.labels(r) for r in RESULTS}
        self.link = None if broker is None else ReportLink(broker, self.topic, self._on_report, log)

    @property
    def topic(self) -> str:
        return f"{self.prefix}/+/power/state"

    def start(self) -> None:
        """Subscribe to the reports (on a session of our own; called again, it does nothing)."""
        if self.link is not None:
            self.link.start()
        if self.background is not None:
            self.background.start()

    def attach(self, session: Any) -> None:
        """Subscribe an existing broker session instead (an embedding with one connection)."""
        session.client.message_callback_add(self.topic, self._on_report)
        session.subscribe(self.topic, qos=1)

    def _on_report(self, _client: Any, _userdata: Any, message: Any) -> None:
        # Network thread: append, nothing more (deque.append is atomic).
        self._inbox.append((message.topic, message.payload))
        if self.background is not None:
            self.background.wake()

    def inbox(self) -> int:
        return len(self._inbox)

    # The daemon's thread.

    def tick(self, now: datetime) -> None:
        """Write what is due, classify what arrived, refresh the gauges: a few ms at most."""
        self._now = now
        self._clock = (now, time.monotonic())
        if self.background is None:
            started = time.perf_counter()
            # Written a second after the first of a batch arrived, or at once when a batch is full.
            if self._write_due(now):
                self._write(now)
            if self._inbox or self._undecided:
                self._drain(now, started + BUDGET, DRAIN)
            if self.writer.pending() and self._next_write is None:
                self._next_write = now + timedelta(seconds=1.0)
        self.screens.tick(now)

    def _write_due(self, now: datetime) -> bool:
        if self.background is not None or not self.writer.pending():
            return False  # written on the writer's thread, or nothing to write
        due = self._next_write is not None and now >= self._next_write
        return due or self.writer.pending() >= FLUSH

    def next_deadline(self) -> datetime | None:
        """When `tick()` has work next (None: nothing waiting)."""
        # More than one round's worth arrived (classified here), or the count of screens goes on.
        waiting = self._inbox and self.background is None
        drain = self._now if waiting or self.screens.counting else None
        return min((t for t in (drain, self._next_write, self.screens.next_at) if t), default=None)

    def close(self) -> None:
        """Unsubscribe; classify and write what is left (best effort: the database may be away)."""
        if self.link is not None:
            self.link.close()
        if self.background is not None:
            return self.background.close()  # its last round classifies and writes what is left
        if self._now is not None:
            while self._inbox:
                self.tick(self._now)
                if not self._loaded:
                    break
        try:
            while self.writer.pending():
                self.writer.flush(FLUSH)
        except self._errors:
            self._log.emit("reports", state="error", pending=self.writer.pending(), when="shutdown")

    def _ingest(self, budget: float) -> bool:
        """Classify for about `budget` seconds (the writer's thread); True: more are waiting."""
        clock = self._clock
        if clock is None or not (self._inbox or self._undecided):
            return False  # no round yet (no clock to judge the skew by), or nothing waiting
        now = clock[0] + timedelta(seconds=time.monotonic() - clock[1])
        self._drain(now, time.perf_counter() + budget, len(self._inbox))
        return bool(self._inbox)

    def _drain(self, now: datetime, until: float, limit: int) -> None:
        """Classify at most `limit` reports, until `until` (perf_counter) has passed."""
        self._load()
        stamp = stamp_ms(now)
        counted = dict.fromkeys(RESULTS, 0)
        released = self._undecided.release(self._registered)
        for i, ((topic, payload, report, then, held_at), known) in enumerate(released):
            counted[self._admit(topic, payload, report, known, then, held_at)] += 1
            if i & 15 == 15 and time.perf_counter() > until:
                break  # the rest later (still held, in order)
        inbox, classify = self._inbox, self._classify
        for i in range(min(limit, len(inbox))):
            if i & 15 == 15 and time.perf_counter() > until:
                break  # the rest later
            topic, payload = inbox.popleft()
            result = classify(topic, payload, now, stamp)
            if result is not None:
                counted[result] += 1
        for result, n in counted.items():
            if n:
                self._result[result].inc(n)
                self.counted[result] += n

    def _load(self) -> None:
        # The latest stored report per screen, so a retained copy seen again is a duplicate.
        if self._loaded:
            return
        try:
            stored = latest_reports(self.writer.engine)
        except self._errors:
            return  # classified without it; the writer continues the right runs anyway
        self._loaded = True
        for client_id, row in stored.items():
            self._latest.setdefault(client_id, (to_epoch(row["reported_at"]), row["tv_state"], 0))

    def _classify(self, topic: str, payload: bytes, now: datetime, stamp: str) -> str | None:
        name = topic[len(self.prefix) + 1 : -len("/power/state")]
        if not self._owns(name):
            return None  # another shard's screen: its daemon counts it
        try:
            report = decode_report(payload)
        except InvalidReport as e:
            return self._reject("invalid", topic, now, str(e))
        if report.client_id != name:
            return self._reject("mismatched_id", topic, now, f"report names client {report.client_id!r}")
        known = None if self._undecided.holds(name) else self._registered(name)
        if known is None:  # asked about again in a later round, this report's clock kept
            self._undecided.hold(name, (topic, payload, report, now, stamp))
            return None
        return self._admit(topic, payload, report, known, now, stamp)

    def _admit(self, topic: str, payload: bytes, report: Any, known: bool, now: datetime, stamp: str) -> str:
        name = report.client_id
        if not known:
            return self._reject("unknown_client", topic, now, f"client {name!r} is not registered")
        reported = epoch(report.reported_at)
        skew = reported - now.timestamp()
        if abs(skew) > SKEW:
            return self._reject(
                "skewed",
                topic,
                now,
                f"reported_at {report.reported_at} is {skew:+.0f} s off the server's clock",
            )
        latest = self._latest.get(name)
        digest = hash(payload)
        if latest is not None and (reported < latest[0] or (reported == latest[0] and digest == latest[2])):
            return "duplicate"  # a retained copy again, a redelivery, or out of order
        self._latest[name] = (reported, report.tv_state, digest)
        if self.changed is not None:
            self.changed.append((name, reported, report.tv_state))
        self.writer.add(
            Seen(
                name,
                report.reported_at,
                report.since,
                report.intent_id,
                report.tv_state,
                report.detail,
                stamp,
            )
        )
        return "accepted"

    def _reject(self, result: str, topic: str, now: datetime, why: str) -> str:
        last = self._logged.get(topic)
        if last is None or (now - last).total_seconds() >= LOG_EVERY:
            if len(self._logged) > 10_000:  # garbage on many topics: forget the old ones
                cutoff = now - timedelta(seconds=LOG_EVERY)
                self._logged = {t: at for t, at in self._logged.items() if at > cutoff}
            self._logged[topic] = now
            self._log.emit("report", result=result, topic=topic, error=why[:300])
        return result

    def _write(self, now: datetime) -> None:
        try:
            self.writer.flush(FLUSH)
        except self._errors as e:
            self._write_delay = min(self._write_delay * 2, 30.0)
            self._next_write = now + timedelta(seconds=self._write_delay)
            pending, retry = self.writer.pending(), self._write_delay
            self._failing.failed("writer", one_line(e)[:300], pending=pending, retry=retry)
            return
        self._failing.ended("writer", pending=self.writer.pending())
        self._write_delay = 1.0
        self._next_write = now + timedelta(seconds=1.0) if self.writer.pending() else None

    def ages(self) -> Iterator[tuple[str, float]]:
        """(client_id, seconds since its latest report) for every screen that reported."""
        return ages_of(self._latest, self._now)
