"""The projection runner: follows the ledger, records transitions, keeps retained intents fresh.

One thread owns everything here (the ledger session, the projector, the
timers, the broker session); paho's network thread only resolves
deliveries. `tick()` does one round of work and `next_deadline()` says when
the next one is due, so tests can drive the daemon through virtual time;
`run()` is the loop that sleeps in between, on the injected clock.
"""

from __future__ import annotations

import gc
import heapq
import json
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import msgspec
import sqlalchemy.exc
from eventsourcing.persistence import PersistenceError

from ledger.app import Ledger
from ledger.collector import paused_gc, promote_all
from ledger.domain import IntentLog
from ledger.events import IntentIssued
from ledger.values import floor_second, format_instant
from projections.checkpoint import CheckpointStore
from projections.projector import Projector, Shard
from projections.readmodel import DeliveryLog
from publisher.config import BrokerConfig
from publisher.errors import BrokerUnavailable, NotConnected
from publisher.lease import Lease
from publisher.logs import EventLog
from publisher.metrics import Metrics
from publisher.mqtt import Delivery, MqttSession
from publisher.payload import Timestamp, build_payload, encode_payload
from publisher.watch import PgWatcher, is_postgres

__all__ = ["Backoff", "Clock", "Daemon", "RunSettings", "SystemClock"]

DB_ERRORS = (PersistenceError, sqlalchemy.exc.SQLAlchemyError, OSError)
BURST = 100  # publishes in flight from which the ledger is polled at most every BURST_POLL
QUIET = timedelta(seconds=5)  # no transitions for this long before a periodic checkpoint
BURST_POLL = timedelta(seconds=0.25)  # ledger polls while a burst is in flight, at most
RECEIPTS_TICK = 250  # receipts written per round after a burst (about 10 ms)
RECEIPTS_BATCH = 10_000  # receipts buffered during a burst at most (about 3 MB)


@dataclass(frozen=True)
class RunSettings:
    prefix: str = "infoscreen"
    ttl: int = 600
    refresh: int | None = None  # default ttl // 2
    group_topics: bool = False
    poll_interval: float = 0.01  # SQLite; PostgreSQL wakes on NOTIFY and polls every 0.5 s
    ack_timeout: float = 10.0
    inflight: int = 20
    self_check: bool = True  # sweep our own retained topics (QoS 0) and repair what differs
    check_every: float | None = None  # default max(5 s, refresh / 2)
    shard: Shard = field(default_factory=Shard)
    # Publishes awaiting their PUBACK at most: paho's message ids are 16-bit (65,535 in
    # flight at the most), and each queued message costs paho about 2.4 KB: a window of
    # 1,000 keeps a burst of 100,000 within a few MB, at no measurable cost in speed.
    window: int = 1_000
    standby_poll: float = 0.5  # how often a standby tries to take the lease
    # The projector's checkpoint (for fast restarts) is saved at shutdown, after --once, and
    # while running at most this often, after QUIET without transitions: a save holds the
    # loop (0.1 s at 10,000 clients, about 2 s at 100,000).
    checkpoint_every: float = 600.0

    @property
    def refresh_every(self) -> int:
        return self.refresh if self.refresh is not None else max(1, self.ttl // 2)


class Clock(Protocol):
    def now(self) -> datetime: ...

    def wait(self, wake: threading.Event, seconds: float) -> None: ...


class SystemClock:
    """Wall-clock UTC; waits on the wake event so new work interrupts a sleep."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def wait(self, wake: threading.Event, seconds: float) -> None:
        wake.wait(max(0.0, seconds))


class Backoff:
    """Exponential delays between attempts: `initial`, doubling, capped at `maximum`."""

    def __init__(self, initial: float = 0.2, maximum: float = 15.0) -> None:
        self.initial, self.maximum = initial, maximum
        self._next = initial

    def next(self) -> float:
        delay, self._next = self._next, min(self._next * 2, self.maximum)
        return delay

    def reset(self) -> None:
        self._next = self.initial


@dataclass(eq=False)
class _Outgoing:
    delivery: Delivery
    name: str
    kind: str  # transition | refresh | republish | clear | status
    record: dict[str, Any] = field(default_factory=dict)


class Daemon:
    """Turns the ledger into retained, acknowledged, never-stale MQTT intents."""

    def __init__(
        self,
        ledger: Ledger,
        broker: BrokerConfig,
        settings: RunSettings | None = None,
        *,
        clock: Clock | None = None,
        log: EventLog | None = None,
        connect_backoff: Backoff | None = None,
        db_backoff: Backoff | None = None,
        session_factory: Callable[..., MqttSession] = MqttSession,
        metrics: Metrics | None = None,
    ) -> None:
        self.ledger = ledger
        self.broker = broker
        self.settings = settings or RunSettings()
        self.clock = clock or SystemClock()
        self.log = log or EventLog()
        self.projector = Projector(ledger, group_topics=self.settings.group_topics, shard=self.settings.shard)
        self.lease: Lease | None = None
        self.started_at = floor_second(self.clock.now())
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.session: MqttSession | None = None
        self._session_factory = session_factory
        self._connect_backoff = connect_backoff or Backoff()
        self._db_backoff = db_backoff or Backoff(0.5, 30.0)
        self._next_connect = self.started_at
        self._next_db: datetime | None = None
        self._started = False
        self._republish_all = False
        self._status_stale = False
        self._refresh: list[tuple[datetime, str]] = []
        self._refresh_at: dict[str, datetime] = {}
        self._outgoing: deque[_Outgoing] = deque()
        self._watcher: PgWatcher | None = None
        self.failures: list[str] = []
        self._lease_lost = False
        self._backlog: deque[tuple[str, str]] = deque()
        self._queued: set[str] = set()
        self._republishing: Iterator[str] | None = None
        self._once = False
        self._next_lease_check = self.started_at
        self.metrics = metrics or Metrics()
        self.receipts = DeliveryLog(ledger)
        self.checkpoints = CheckpointStore(ledger)
        self._next_checkpoint = self.started_at + timedelta(seconds=self.settings.checkpoint_every)
        self._last_transition = self.started_at
        self._next_follow = self.started_at
        self._latencies: list[float] = []
        self._receipts_ok = True
        self._sessions_opened = 0
        self._seen: dict[str, bytes] = {}  # topic -> what the broker holds (self-check sweep)
        self._probe: str | None = None  # the sweep in progress ends when this topic echoes
        self._probe_seen = False
        self._sweep_started = self.started_at
        self._acked_at: dict[str, datetime] = {}
        # The first sweep one period after the start: the start has just published everything.
        self._next_check = self.started_at + timedelta(seconds=self._check_every)
        self._next_lag = self.started_at
        self._refresh_delta = timedelta(seconds=self.settings.refresh_every)
        # Published freshly (transition, refresh, repair) this round or since the republish of
        # everyone in progress began: that republish must not send them again.
        self._fresh: set[str] = set()
        self._high_stamp = self.started_at
        self._stamped: tuple[datetime, tuple[datetime, int, datetime]] | None = None

    # Topics.

    def topic(self, name: str) -> str:
        p = self.settings.prefix
        if name.startswith("groups/"):
            return f"{p}/groups/{name.removeprefix('groups/')}/power/intent"
        return f"{p}/{name}/power/intent"

    @property
    def status_topic(self) -> str:
        shard = self.settings.shard
        if shard.count == 1:
            return f"{self.settings.prefix}/server/status"
        return f"{self.settings.prefix}/server/{shard.index}-of-{shard.count}/status"

    def _status(self, status: str) -> bytes:
        return json.dumps({"status": status, "started_at": format_instant(self.started_at)}).encode()

    # The loop.

    def run(self, lease: Lease | None = None) -> None:
        """Work until `stop()`; then publish `offline` and disconnect cleanly.

        With a `lease`, wait as a hot standby until it is ours, and stop (without
        an `offline`: somebody else is active) if it is ever lost.
        """
        self._announce()
        if lease is not None and not self._take(lease):
            return
        if is_postgres(self.ledger.db_url):
            channel = getattr(self.ledger.recorder, "channel_name", "ledger_events")
            self._watcher = PgWatcher(self.ledger.db_url, channel, self.wake, self.stopping)
            self._watcher.start()
        try:
            while not self.stopping.is_set():
                self.wake.clear()  # before the round: a NOTIFY during it must not be lost
                if self.lease is not None and not self._still_ours():
                    break
                self.tick()
                seconds = (self.next_deadline() - self.clock.now()).total_seconds()
                # No collector passes while a burst is in flight: what it allocates lives until
                # acknowledged, so the passes would scan it again and again (15 % of a burst).
                _collector(enabled=not (self._outgoing or self._waiting))
                if self._outgoing:
                    # A burst in flight: sleep until its newest publish is acknowledged, so
                    # paho's thread has the GIL to itself. New ledger changes wait at most
                    # 0.25 s; a due boundary or refresh does not wait.
                    timer = self.next_timer()
                    due = 0.25 if timer is None else (timer - self.clock.now()).total_seconds()
                    self._await_newest(max(0.0, min(due, 0.25)))
                else:
                    self.clock.wait(self.wake, seconds)
        finally:
            _collector(enabled=True)
            self.shutdown()

    def _take(self, lease: Lease) -> bool:
        """Wait (as a standby) until the lease is ours; False if stopped first."""
        shard = str(self.settings.shard)
        announced = False
        while not self.stopping.is_set():
            if lease.try_acquire():
                self.lease = lease
                self.started_at = self._high_stamp = floor_second(self.clock.now())
                self._stamped = None
                self._next_connect = self._next_lag = self.started_at
                self._next_check = self.started_at + timedelta(seconds=self._check_every)
                self.log.emit("role", role="active", shard=shard)
                return True
            if not announced:
                self.log.emit("role", role="standby", shard=shard)
                announced = True
            self.clock.wait(self.wake, self.settings.standby_poll)
        return False

    def _still_ours(self) -> bool:
        assert self.lease is not None
        if self.clock.now() < self._next_lease_check:
            return True
        self._next_lease_check = self.clock.now() + timedelta(seconds=1)
        if self.lease.held():
            return True
        # Somebody else may be active now: leave quietly, the supervisor restarts us as a standby.
        self.log.emit("role", role="lost", shard=str(self.settings.shard))
        self._lease_lost = True
        return False

    @property
    def lease_lost(self) -> bool:
        return self._lease_lost

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()

    def run_once(self, timeout: float = 60.0) -> list[str]:
        """Publish every intent once and wait for every PUBACK; returns the failures."""
        self._announce()
        self._once = True
        self.receipts.track_ages = False
        # One burst, then exit: the collector would only scan the same objects over and over.
        with paused_gc():
            self._follow(self.clock.now(), strict=True)
            self._connect(self.clock.now(), strict=True, status=False)
            self.tick()
            self.settle(timeout)
            self._write_receipts(complete=True)
            self._save_checkpoint(self.clock.now(), force=True)
            # Or the first collection after the pause scans everything allocated during it
            # (0.6 s at 100,000 clients), in whatever the caller does next.
            promote_all()
        for item in self._outgoing:
            self.failures.append(f"{item.delivery.topic}: no PUBACK within {timeout:g} s")
        if self._waiting:  # the connection dropped before they could be sent
            left = len(self._backlog) + sum(1 for _ in self._republishing or ())
            self.failures.append(f"{left} intents not published: the broker connection was lost")
        if self.session is not None:
            self.session.close()
        return self.failures

    def settle(self, timeout: float) -> bool:
        """Wait until every publish in flight is acknowledged or failed (True).

        Gives up after `timeout`, but not while acknowledgements are still coming in:
        a very large burst simply takes longer than any fixed timeout.
        """
        deadline = time.monotonic() + timeout
        while self._outgoing or (self._waiting and self._connected):
            now = time.monotonic()
            flowing = self.session is not None and now - self.session.last_ack < self.settings.ack_timeout
            if now >= deadline and not flowing:
                break
            self._await_newest(0.25)
            self._reap()
            busy = bool(self._outgoing or self._waiting)
            self._write_receipts(during_burst=busy, complete=not busy)
            self._drain_backlog(self.clock.now())
        return not self._outgoing and not self._waiting

    def _await_newest(self, seconds: float) -> None:
        # Acks come in order: one wake-up when the newest is acknowledged (or, with a
        # backlog waiting, the middle one: refill while paho still has half a window to
        # send). Being woken once per PUBACK (or polling) takes the GIL from paho's thread.
        if seconds > 0 and self._outgoing:
            self._progress_mark().wait(seconds)

    def _progress_mark(self) -> Delivery:
        index = len(self._outgoing) // 2 if self._waiting else -1
        return self._outgoing[index].delivery

    @property
    def _waiting(self) -> bool:
        """Publishes wait for room in the window (the backlog, or a republish of everyone)."""
        return bool(self._backlog) or self._republishing is not None

    def _drain_backlog(self, now: datetime) -> None:
        if not self._connected:
            return  # kept: a reconnect republishes everyone, --once reports them unpublished
        while len(self._outgoing) < self.settings.window:
            if self._backlog:
                name, kind = self._backlog.popleft()
                self._queued.discard(name)
                self._publish(name, now, kind)
                continue
            if self._republishing is None:
                return
            following = next(self._republishing, None)
            if following is None:
                self._republishing = None
            elif following not in self._queued:  # queued: it goes out anyway, as it is then
                self._publish(following, now, "republish")

    def _follow_due(self, now: datetime) -> bool:
        # While a burst is in flight the loop wakes to refill paho's queue, not to poll the
        # ledger: every query gives the GIL to paho's thread and waits for it back. Changes
        # then wait at most BURST_POLL; a due boundary does not wait.
        if not self._started or not (len(self._outgoing) >= BURST or self._waiting):
            return True
        timer = self.projector.next_wakeup()
        if now >= self._next_follow or (timer is not None and timer <= now):
            self._next_follow = now + BURST_POLL
            return True
        return False

    def next_timer(self) -> datetime | None:
        """The next boundary or refresh, whichever comes first (None: nothing scheduled)."""
        boundary = self.projector.next_wakeup()
        refresh = self._refresh[0][0] if self._refresh else None
        return min((t for t in (boundary, refresh) if t is not None), default=None)

    def tick(self) -> None:
        """One round: connection, ledger, refreshes, acknowledgements."""
        now = self.clock.now()
        if self._republishing is None:
            self._fresh = set()
        self._connect(now)
        self._reap()
        self._drain_backlog(now)
        if self._follow_due(now):
            self._follow(now)
        if self._republish_all and self._started and self._connected:
            # Everyone, as the window allows: an iterator, not 100,000 queued entries.
            self._republish_all = False
            self._republishing = iter(self.projector.names())
            self._drain_backlog(now)
        if self._status_stale and self._connected:
            self._status_stale = False
            self._send_status("online")
        while self._refresh and self._refresh[0][0] <= now:
            due, name = heapq.heappop(self._refresh)
            if self._refresh_at.get(name) == due:
                del self._refresh_at[name]
                self._publish(name, now, "refresh")
        self._reap()
        # The self-check reads back every retained intent: never during a burst (and not in
        # --once), where the echo would compete with paho's sending for the network thread.
        sweeping = self._probe is not None or not self._outgoing
        if self.settings.self_check and self._connected and self._started and not self._once and sweeping:
            self._sweep(now)
        self._write_receipts(during_burst=bool(self._outgoing or self._waiting))
        if not self._outgoing and not self._waiting and self._started and not self._once:
            self._idle(now)

    def next_deadline(self) -> datetime:
        """When `tick()` must run again at the latest."""
        now = self.clock.now()
        poll = 0.5 if self._watcher is not None else self.settings.poll_interval
        if self._waiting or (self.receipts.pending() and self._receipts_ok and not self._outgoing):
            poll = 0.0  # publishes waiting for the window, or receipts still to write
        deadline = now + timedelta(seconds=poll)
        timer = self.next_timer()
        return deadline if timer is None else min(deadline, timer)

    def shutdown(self) -> None:
        self.settle(self.settings.ack_timeout)  # log what is in flight before saying goodbye
        self._write_receipts(complete=True)
        if self._started and not self._lease_lost:  # lost: another instance is active now
            self._save_checkpoint(self.clock.now(), force=True)
        session, self.session = self.session, None
        if session is not None and session.connected and not self._lease_lost:
            try:
                delivery = session.publish(self.status_topic, self._status("offline"))
                delivery.wait(5.0)
            except NotConnected:
                pass
            self.log.emit("status", status="offline", started_at=format_instant(self.started_at))
        if session is not None:
            session.close()
        self._drain_lost()
        self._write_receipts(complete=True)
        if self.lease is not None:
            self.lease.release()

    # Connection.

    @property
    def _connected(self) -> bool:
        return self.session is not None and self.session.connected

    def _announce(self) -> None:
        self.log.emit(
            "start",
            broker=self.broker.redacted(),
            mqtt_version=self.broker.mqtt_version,
            prefix=self.settings.prefix,
            ttl=self.settings.ttl,
            refresh=self.settings.refresh_every,
            group_topics=self.settings.group_topics,
        )
        if self.broker.mqtt_version != "5":
            self.log.emit(
                "notice",
                message="MQTT 3.1.1: no Message Expiry Interval; expiry lives in the payload's "
                "expires_at alone, which clients must enforce",
            )

    def _connect(self, now: datetime, *, strict: bool = False, status: bool = True) -> None:
        if self.session is not None:
            if not self.session.lost.is_set():
                return
            # A lost session is never reused: its paho queue (stale intents) dies with it.
            self.session.close()
            self.session = None
            self._drain_lost()
            self._backlog.clear()  # the reconnect republishes everything anyway
            self._queued.clear()
            self._republishing = None
            self.metrics.connected.set(0)
            self.log.emit("broker", state="disconnected")
            self._next_connect = now + timedelta(seconds=self._connect_backoff.next())
        if now < self._next_connect and not strict:
            return
        will = (self.status_topic, self._status("offline")) if status else None
        session = self._session_factory(
            self.broker, will=will, on_message=self._on_message, inflight=self.settings.inflight
        )
        try:
            session.connect()
        except BrokerUnavailable as e:
            if strict:
                raise
            self._next_connect = now + timedelta(seconds=self._connect_backoff.next())
            self.log.emit("broker", state="unavailable", error=str(e))
            return
        self._connect_backoff.reset()
        self.session = session
        self._sessions_opened += 1
        if self._sessions_opened > 1:
            self.metrics.reconnects.inc()
        self.metrics.connected.set(1)
        self.log.emit("broker", state="connected", broker=self.broker.redacted())
        if status:
            session.subscribe(self.status_topic, qos=0)
            self._send_status("online")
        self._probe = None  # a sweep does not survive its session
        self._republish_all = True

    def _on_message(self, topic: str, payload: bytes) -> None:
        # Network thread: store or flag, nothing more.
        if topic == self.status_topic:
            self._on_status(payload)
        elif topic == self._probe:
            self._probe_seen = True
            self.wake.set()
        else:
            self._seen[topic] = payload

    def _on_status(self, payload: bytes) -> None:
        # Only flag it. A retained `offline` (an old Will arriving
        # late, a previous instance's goodbye) is corrected by the owner thread.
        try:
            body = json.loads(payload)
        except ValueError:
            body = {}
        # Only an `offline` is corrected: another instance's `online` is never fought over.
        if body.get("status") != "online":
            self._status_stale = True
            self.wake.set()

    def _send_status(self, status: str) -> None:
        assert self.session is not None
        try:
            delivery = self.session.publish(self.status_topic, self._status(status))
        except NotConnected:
            return
        self._outgoing.append(_Outgoing(delivery, "server", "status", {"status": status}))

    # The ledger.

    def _follow(self, now: datetime, *, strict: bool = False) -> None:
        if self._next_db is not None and now < self._next_db and not strict:
            return
        head = None
        try:
            if now >= self._next_lag:
                head = self.ledger.max_notification_id()  # lag: what existed before this read
            if not self._started:
                with paused_gc():
                    issued = self._start(now)
                self._started = True
                self._republish_all = True
                if not self._once:
                    # The rebuilt view lives as long as the process: keep the collector off it.
                    gc.collect()
                    gc.freeze()
            else:
                with paused_gc():  # a boundary of thousands: no collector passes mid-way
                    issued = self.projector.step(now)
        except DB_ERRORS as e:
            if strict:
                raise
            # Keep refreshing what we hold; retry the ledger after a backoff.
            self._next_db = now + timedelta(seconds=self._db_backoff.next())
            self.metrics.ledger_errors.inc()
            self.log.emit("ledger", state="error", error=_one_line(e), retry_at=format_instant(self._next_db))
            return
        if self._next_db is not None:
            self.log.emit("ledger", state="ok")
        self._next_db = None
        self._db_backoff.reset()
        if head is not None:
            self._next_lag = now + timedelta(seconds=1)
            self.metrics.ledger_lag.set(max(0, head - self.projector.view.position))
        for event in issued:
            self.metrics.transition(event.reason, event.desired_state).inc()
            self._log_transition(event)
            self._publish(IntentLog.name_for(event.client_id, event.group_id), now, "transition")
        if issued:
            self.log.flush()
            self._last_transition = now

    def _start(self, now: datetime) -> list[IntentIssued]:
        # From the checkpoint when nothing overtook it: every current intent is known
        # without folding the ledger (a target whose boundary passed is simply due).
        # A retry after a database error goes on from wherever the last attempt got to.
        if not self.projector.partial and self.projector.view.position == 0:
            saved = self.checkpoints.load(self.projector.key)
            if saved is not None and self.projector.resume(saved):
                self.log.emit("checkpoint", state="resumed", position=saved.position, logs=len(saved.logs))
        if self.projector.partial:
            return self.projector.step(now)
        return self.projector.start(now)

    def _idle(self, now: datetime) -> None:
        """Housekeeping while nothing is in flight: fold the schedule after a resume, checkpoint."""
        if self.projector.partial:
            if self._next_db is not None and now < self._next_db:
                return  # the ledger is away: retried with _follow's backoff, not every round
            try:
                with paused_gc():
                    self.projector.complete()
            except DB_ERRORS as e:
                self._next_db = now + timedelta(seconds=self._db_backoff.next())
                self.metrics.ledger_errors.inc()
                self.log.emit(
                    "ledger", state="error", error=_one_line(e), retry_at=format_instant(self._next_db)
                )
                return
        if now >= self._next_checkpoint and now - self._last_transition >= QUIET:
            self._save_checkpoint(now)

    def _save_checkpoint(self, now: datetime, *, force: bool = False) -> None:
        if not self.projector.dirty or not (force or now >= self._next_checkpoint):
            return
        self._next_checkpoint = now + timedelta(seconds=self.settings.checkpoint_every)
        checkpoint = self.projector.checkpoint(floor_second(now))
        if checkpoint is None:
            return
        try:
            size = self.checkpoints.save(checkpoint)
        except DB_ERRORS as e:
            self.projector.dirty = True  # saved later
            self.metrics.ledger_errors.inc()
            self.log.emit("checkpoint", state="error", error=_one_line(e))
            return
        self.log.emit(
            "checkpoint", state="saved", position=checkpoint.position, logs=len(checkpoint.logs), bytes=size
        )

    def _log_transition(self, e: IntentIssued) -> None:
        self.log.emit(
            "transition",
            client_id=e.client_id,
            group_id=e.group_id,
            intent_id=e.intent_id,
            seq=e.seq,
            desired_state=e.desired_state,
            reason=e.reason,
            effective_at=format_instant(e.effective_at),
            event_window=e.event_window,
            cause=e.cause,
            flush=False,  # flushed once after the round's transitions
        )

    # Publishing.

    def _publish(self, name: str, now: datetime, kind: str) -> None:
        if kind == "republish" and name in self._fresh:
            return  # a transition since the republish began already published it, freshly stamped
        if len(self._outgoing) >= self.settings.window and kind != "clear":
            if name not in self._queued:  # published later, with whatever is current then
                self._queued.add(name)
                self._backlog.append((name, kind))
            return
        log = self.projector.view.logs.get(name)
        if log is None or log.last is None:
            return
        fields = log.last["fields"]
        if fields["reason"] == "client_deregistered" and kind != "transition":
            # A removed client's current intent is "no intent": keep its topic cleared.
            self._refresh_at.pop(name, None)
            self._clear(name)
            return
        if not self._connected:
            return  # the reconnect republishes everything, freshly stamped
        assert self.session is not None
        stamp, expiry, refresh_at = self._stamping(now)
        payload = build_payload(
            intent_id=log.last["intent_id"], fields=fields, issued_at=stamp, ttl=self.settings.ttl
        )
        record = {
            "client_id": fields["client_id"],
            "group_id": fields["group_id"],
            "intent_id": payload.intent_id,
            "seq": log.last["seq"],
            "desired_state": fields["desired_state"],
            "reason": fields["reason"],
            "issued_at": payload.issued_at,
            "expires_at": payload.expires_at,
        }
        try:
            delivery = self.session.publish(self.topic(name), encode_payload(payload), expiry=expiry)
        except NotConnected:
            return
        self._outgoing.append(_Outgoing(delivery, name, kind, record))
        if kind != "republish":
            self._fresh.add(name)
        if fields["reason"] == "client_deregistered":
            self._refresh_at.pop(name, None)  # removed: cleared after this, never refreshed
        elif not self._once:  # --once exits after this burst: no refreshes, no timers to hold
            self._schedule_refresh(name, refresh_at)

    def _stamping(self, now: datetime) -> tuple[datetime, int, datetime]:
        """issued_at, the MQTT expiry (s) and the next refresh for a publish at `now` (once per `now`)."""
        if self._stamped is None or self._stamped[0] != now:
            # issued_at never goes backwards (a clock stepped back would make clients drop us as stale).
            stamp = self._high_stamp = max(floor_second(now), self._high_stamp)
            # The broker's expiry ends no later than expires_at: the seconds left, rounded down.
            left = stamp + timedelta(seconds=self.settings.ttl) - now
            self._stamped = (now, (stamp, max(1, int(left.total_seconds())), stamp + self._refresh_delta))
        return self._stamped[1]

    def _clear(self, name: str) -> None:
        if not self._connected:
            return
        assert self.session is not None
        try:
            delivery = self.session.publish(self.topic(name), b"")
        except NotConnected:
            return
        self._outgoing.append(_Outgoing(delivery, name, "clear", {"client_id": name}))

    def _schedule_refresh(self, name: str, at: datetime) -> None:
        self._refresh_at[name] = at
        heapq.heappush(self._refresh, (at, name))

    def _reap(self) -> None:
        """Log finished publishes; a removed client's final `off`, once acknowledged, clears its topic.

        Only once the newest publish is settled (or the oldest is overdue): logging while
        paho still drains a burst takes the GIL from its network thread in bursts, and the
        convoy that follows slowed acknowledgements several-fold.
        """
        if not self._outgoing:
            return
        if not (self._progress_mark().done or self._overdue(self._outgoing[0].delivery)):
            return
        now = self.clock.now()
        try:
            while self._outgoing:
                item = self._outgoing[0]
                if not item.delivery.done:
                    if not self._overdue(item.delivery):
                        return
                    item.delivery.resolve(f"no PUBACK within {self.settings.ack_timeout:g} s")
                self._outgoing.popleft()
                self._finish(item, now)
        finally:
            self._flush_batch()

    def _overdue(self, delivery: Delivery) -> bool:
        # Measured from the later of its publish and the last PUBACK of any kind: a burst of
        # 100,000 waits in paho's queue (20 in flight) far longer than the timeout while
        # acknowledgements keep flowing; only a stall is a failure.
        progress = self.session.last_ack if self.session is not None else 0.0
        return max(delivery.started, progress) + self.settings.ack_timeout <= time.monotonic()

    def _drain_lost(self) -> None:
        now = self.clock.now()
        while self._outgoing:
            item = self._outgoing.popleft()
            item.delivery.resolve("connection lost before PUBACK")
            self._finish(item, now)
        self._flush_batch()

    def _flush_batch(self) -> None:
        # One write of the log and one pass over the latency histogram per settled batch.
        self.log.flush()
        if self._latencies:
            self.metrics.observe_acks(self._latencies)
            self._latencies = []

    @property
    def _wildcards(self) -> list[str]:
        p = self.settings.prefix
        return [f"{p}/+/power/intent", f"{p}/groups/+/power/intent"]

    def _sweep(self, now: datetime) -> None:
        """The self-check, now and then: read back every retained intent, compare, repair.

        A sweep subscribes at QoS 0 (a QoS 1 wildcard subscriber gets only the
        broker's first max_queued_messages retained messages, 1,000 by default),
        publishes a probe that arrives after the retained messages, compares,
        and unsubscribes: a permanent subscription would echo every publish
        back to us and halve the publishing rate.
        """
        assert self.session is not None
        if self._probe is None:
            if now < self._next_check:
                return
            self._seen, self._probe_seen = {}, False
            self._probe = f"{self.settings.prefix}/server/probe/{uuid.uuid4().hex}"
            self._sweep_started = now
            for topic in [*self._wildcards, self._probe]:
                self.session.subscribe(topic, qos=0)
            try:
                self.session.publish(self._probe, b"", retain=False)
            except NotConnected:
                self._probe = None
            return
        if not self._probe_seen and now - self._sweep_started < timedelta(seconds=60):
            return
        for topic in [*self._wildcards, self._probe]:
            self.session.unsubscribe(topic)
        complete, self._probe = self._probe_seen, None
        self._next_check = now + timedelta(seconds=self._check_every)
        if complete:
            self._check_retained(now)

    def _write_receipts(self, *, during_burst: bool = False, complete: bool = False) -> None:
        pending = self.receipts.pending()
        # While paho's thread is busy, a database write per row gives the GIL away and waits
        # for it back (a convoy: 20,000 receipts took 1 s instead of 0.04 s): during a burst,
        # only a large buffer (bounded memory) is written. After it, RECEIPTS_TICK a round:
        # the 10,000 receipts of a burst in one write held the loop 0.3 s on PostgreSQL.
        if not pending or (during_burst and pending < RECEIPTS_BATCH):
            return
        try:
            self.receipts.flush(None if during_burst or complete else RECEIPTS_TICK)
            self._receipts_ok = True
        except DB_ERRORS as e:
            self._receipts_ok = False
            self.metrics.ledger_errors.inc()
            self.log.emit("receipts", state="error", error=_one_line(e), pending=self.receipts.pending())

    @property
    def _check_every(self) -> float:
        return self.settings.check_every or max(5, self.settings.refresh_every // 2)

    def _check_retained(self, now: datetime) -> None:
        """Compare what the broker held with what it should hold; republish what differs."""
        # Only what was acknowledged before the sweep began is surely in its answer.
        settled = self._sweep_started - timedelta(seconds=1)
        oldest: str | None = None  # YYYY-MM-DDTHH:MM:SSZ sorts as text: parsed once, at the end
        for name in self.projector.names():
            log = self.projector.view.logs.get(name)
            if log is None or log.last is None or self._acked_at.get(name, now) > settled:
                continue
            held = self._seen.get(self.topic(name))
            removed = log.last["fields"]["reason"] == "client_deregistered"
            seen = _held_intent(held) if held else None
            if removed:
                ok = not held
            else:
                ok = seen is not None and seen.intent_id == log.last["intent_id"]
                if ok and seen is not None and (oldest is None or seen.issued_at < oldest):
                    oldest = seen.issued_at
            if not ok:
                self.metrics.mismatches.inc()
                self.log.emit(
                    "mismatch",
                    topic=self.topic(name),
                    expected=log.last["intent_id"],
                    held=None if seen is None else seen.intent_id,
                )
                self._publish(name, now, "repair")
        age = 0.0
        if oldest is not None:
            age = (now - datetime.fromisoformat(oldest.replace("Z", "+00:00"))).total_seconds()
        self.metrics.retained_age.set(age)

    def _finish(self, item: _Outgoing, now: datetime) -> None:
        delivery, kind = item.delivery, item.kind
        ok = delivery.ok
        result = "acked" if ok else "failed"
        latency = delivery.latency
        latency_ms = None if latency is None else round(latency * 1000, 3)
        if kind == "status":
            extra = {"error": delivery.error} if delivery.error else {}
            self.log.emit("status", **item.record, result=result, flush=False, **extra)
            return
        self.metrics.publish_result(result, kind).inc()
        if ok and latency is not None:
            self._latencies.append(latency)  # observed once the batch is reaped
            if not self._once:  # only the self-check sweep reads it
                self._acked_at[item.name] = now
            if kind != "clear":
                self.receipts.acked(item.name, item.record, kind, now, latency_ms)
        elif not ok:
            self.receipts.failed(item.name, item.record.get("intent_id"), now, delivery.error or "failed")
        # One dict, written as it is (emit(**...) would copy it three times).
        line = {
            "kind": kind,
            "topic": delivery.topic,
            **item.record,
            "result": result,
            "latency_ms": latency_ms,
        }
        if delivery.error:
            line["error"] = delivery.error
        self.log.write("publish" if kind != "clear" else "clear", line)
        if not ok:
            self.failures.append(f"{delivery.topic}: {delivery.error}")
        elif kind == "transition" and item.record.get("reason") == "client_deregistered":
            self._clear(item.name)


class _Held(msgspec.Struct):
    # The two fields the self-check reads from a retained payload (anything else ignored);
    # without a well-formed issued_at it is not a payload of ours: a mismatch, repaired.
    intent_id: str
    issued_at: Timestamp


_held_decoder = msgspec.json.Decoder(_Held)


def _held_intent(payload: bytes) -> _Held | None:
    try:
        return _held_decoder.decode(payload)
    except msgspec.DecodeError:
        return None  # not ours, or damaged: a mismatch, repaired


def _collector(*, enabled: bool) -> None:
    if enabled != gc.isenabled():
        if enabled:
            gc.enable()
        else:
            gc.disable()


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__
