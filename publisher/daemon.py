"""The projection runner: follows the ledger, records transitions, keeps retained intents fresh.

Composes the parts (follower, outbox, acks, connection, selfcheck, receipts, observe, the role
under the lease) and owns the loop; one thread owns everything, paho's only resolves
deliveries and queues reports. `tick()` does one round, `next_deadline()` says when the next
is due (tests drive it in virtual time); `run()` sleeps in between.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

from ledger.app import Ledger
from ledger.collector import paused_gc, set_collector
from ledger.names import log_name
from ledger.persistence import notify_channel
from ledger.urls import is_postgres
from ledger.values import floor_second
from ledger.writelock import immediate_writes
from projections.projector import Projector
from publisher.acks import Acks
from publisher.config import BrokerConfig
from publisher.connection import Connection
from publisher.follower import Follower
from publisher.ingest import observer_for
from publisher.lease import Lease
from publisher.logs import EventLog
from publisher.metrics import Metrics
from publisher.outbox import BURST_WAIT, Kind, Outbox
from publisher.receipts import DeliveryLog, ReceiptWriter
from publisher.role import Role
from publisher.selfcheck import SelfCheck
from publisher.session import SessionFactory, default_sessions
from publisher.settings import Backoff, Clock, RunSettings, SystemClock
from publisher.steady import NeverBack
from publisher.topics import Topics
from publisher.watch import PgWatcher

__all__ = ["Backoff", "Clock", "Daemon", "RunSettings", "SystemClock"]

BURST = 100  # publishes in flight from which the ledger is polled at most every BURST_POLL


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
        session_factory: SessionFactory | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.ledger, self.broker = ledger, broker
        immediate_writes(ledger)  # its writes are on a screen's path: never SQLite's busy backoff
        self.settings = s = settings or RunSettings()
        self.log = log = log or EventLog()
        self.clock = NeverBack(clock or SystemClock(), log)  # the daemon's time never goes back
        self.metrics = metrics = metrics or Metrics()
        self.projector = Projector(ledger, group_topics=s.group_topics, shard=s.shard)
        self.topics = Topics(s.prefix, s.shard)
        self.wake = threading.Event()
        self.stopping = threading.Event()
        started_at = floor_second(self.clock.now())
        self.role = Role(self.clock, log, str(s.shard), started_at)
        self.receipts = DeliveryLog(ledger)
        self.connection = Connection(
            broker,
            self.topics,
            inflight=s.inflight,
            started_at=started_at,
            wake=self.wake,
            on_message=lambda topic, payload: self.selfcheck.on_message(topic, payload),
            session_factory=session_factory or default_sessions(s.net_process),
            backoff=connect_backoff or Backoff(),
            metrics=metrics,
            log=log,
        )
        self.outbox = Outbox(s, self.topics, self.projector, self.connection, started_at)
        db_backoff = db_backoff or Backoff(0.5, 2.0)  # publishes within 3 s of the database's return
        self.follower = Follower(ledger, self.projector, s, db_backoff, started_at, metrics, log)
        self.receipt_writer = ReceiptWriter(self.receipts, metrics, log, self.follower.away)
        self.acks = Acks(self.outbox, self.receipt_writer)
        self.selfcheck = SelfCheck(self.outbox, self.acks, self.wake, started_at)
        self.observer = observer_for(ledger, broker, s, self.projector, metrics.registry, log)
        self._watcher: PgWatcher | None = None
        self._republish_all = False
        self._once = False

    def run(self, lease: Lease | None = None) -> None:
        """Work until `stop()`; then publish `offline` and disconnect cleanly.

        With a `lease`, wait as a hot standby until it is ours, and stop (without
        an `offline`: somebody else is active) if it is ever lost.
        """
        self.connection.announce(self.settings)
        if lease is not None and not self._take(lease):
            return
        if is_postgres(self.ledger.db_url):
            self._watcher = PgWatcher(
                self.ledger.db_url, notify_channel(self.ledger), self.wake, self.stopping
            )
            self._watcher.start()
        try:
            while not self.stopping.is_set():
                self.wake.clear()  # before the round: a NOTIFY during it must not be lost
                if self.lease is not None and not self.role.still_ours():
                    break
                self.tick()
                self._sleep()
        finally:
            set_collector(enabled=True)
            self.shutdown()

    def _sleep(self) -> None:
        seconds = (self.next_deadline() - self.clock.now()).total_seconds()
        # No collector passes during a burst: they would rescan what lives until acknowledged.
        set_collector(enabled=not (self.outbox.outgoing or self.outbox.waiting))
        if self.outbox.outgoing and not self.follower.pending:  # pending: record the next chunk now
            # A burst in flight: sleep until its progress mark is acknowledged, so paho's
            # thread has the GIL to itself. New ledger changes wait at most BURST_WAIT; a
            # due boundary or refresh does not wait.
            timer = self.next_timer()
            due = BURST_WAIT if timer is None else (timer - self.clock.now()).total_seconds()
            self.outbox.await_progress(max(0.0, min(due, BURST_WAIT)))
        else:
            self.clock.wait(self.wake, seconds)

    def tick(self) -> None:
        """One round: connection, acknowledgements, ledger, republish, status, refreshes, self-check."""
        now = self.clock.now()
        self.outbox.new_round()
        self._connect(now)
        self.acks.reap(now)
        self.outbox.drain(now)
        if self.follower.due(now, busy=len(self.outbox.outgoing) >= BURST or self.outbox.waiting):
            self._follow(now, strict=self._once)  # --once fails on a database error, never skips
        self._republish(now)
        # The transitions go to the network process now, not after the round's other work (a
        # receipts write and its commit among it).
        self.connection.flush()
        self._correct_status()
        self.outbox.refresh_due(now)
        self.acks.reap(now)
        self._sweep(now)
        self.receipt_writer.write(during_burst=bool(self.outbox.outgoing or self.outbox.waiting))
        self.observer.tick(now)  # last: a bounded amount of the reports that arrived
        self.connection.flush()  # what this round published goes out before the loop waits
        if not (self.outbox.outgoing or self.outbox.waiting or self._once) and self.follower.started:
            self.follower.idle(now)  # housekeeping while nothing is in flight

    def next_timer(self) -> datetime | None:
        """The next boundary or refresh, whichever comes first (None: nothing scheduled)."""
        boundary = self.projector.next_wakeup()
        refresh = self.outbox.next_refresh()
        return min((t for t in (boundary, refresh) if t is not None), default=None)

    def next_deadline(self) -> datetime:
        """When `tick()` must run again at the latest."""
        now = self.clock.now()
        poll = 0.5 if self._watcher is not None else self.settings.poll_interval
        receipts = self.receipt_writer.due() and not self.outbox.outgoing
        if self.outbox.waiting or self.follower.pending or receipts or self.follower.preparing:
            poll = 0.0  # publishes waiting for the window, a step's next chunk, receipts, work ahead
        due = (now + timedelta(seconds=poll), self.next_timer(), self.observer.next_deadline())
        return min(t for t in due if t is not None)

    def run_once(self, timeout: float = 60.0) -> list[str]:
        """Publish every intent once and wait for every PUBACK; returns the failures."""
        self.connection.announce(self.settings)
        self._once = self.outbox.once = self.follower.once = True
        self.receipts.track_ages = False
        # One burst, then exit: the collector would only scan the same objects over and over.
        # Promoted at the end, or the caller's first collection scans all the pause allocated.
        with paused_gc(promote=True):
            try:
                # Connected first: each chunk of the start goes out while the next is recorded.
                # The connect is mostly waiting for the broker: the ledger is read meanwhile,
                # and nothing is recorded before the broker has answered.
                self.connection.begin(status=False)
                self.follower.read_ahead()
                self._connect(self.clock.now(), strict=True, status=False)
                self.tick()
                while self.follower.pending:
                    self.tick()
                self._follow(self.clock.now(), strict=True)  # past our own intents: the checkpoint's position
            except BaseException:
                self.connection.close()
                raise
            if not self.outbox.waiting:
                # Every publish is with the network process: the checkpoint (the projector's
                # state, which no PUBACK changes) is saved while it finishes them.
                self.follower.save_checkpoint(self.clock.now(), force=True)
            self.settle(timeout)
            self.receipt_writer.write(complete=True)
            self.follower.save_checkpoint(self.clock.now(), force=True)  # if not saved above
            self.follower.take_snapshots()  # after the PUBACKs: off the burst's path
            self.follower.close()
        for item in self.outbox.outgoing:
            self.acks.failures.append(f"{item.delivery.topic}: no PUBACK within {timeout:g} s")
        if self.outbox.waiting:  # the connection dropped before they could be sent
            self.acks.failures.append(
                f"{self.outbox.unsent()} intents not published: the broker connection was lost"
            )
        self.connection.close()
        return self.acks.failures

    def settle(self, timeout: float) -> bool:
        """Wait until every publish in flight is acknowledged or failed (True); see `Acks.settle`."""
        return self.acks.settle(timeout, self.clock.now)

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()

    def shutdown(self) -> None:
        self.settle(self.settings.ack_timeout)  # log what is in flight before saying goodbye
        self.observer.close()
        self.receipt_writer.write(complete=True)
        if self.follower.started and not self.role.lost:  # lost: another instance is active now
            self.follower.save_checkpoint(self.clock.now(), force=True)
        if self.role.lost:
            self.connection.close()
        else:
            self.connection.goodbye()
        self.acks.drain_lost(self.clock.now())
        self.receipt_writer.write(complete=True)
        self.follower.close()
        if self.lease is not None:
            self.lease.release()

    # The steps of a round.

    def _connect(self, now: datetime, *, strict: bool = False, status: bool = True) -> None:
        connection = self.connection
        if connection.session is not None:
            if not connection.lost:
                return
            connection.drop()
            self.acks.drain_lost(self.clock.now())
            self.outbox.forget_waiting()
            connection.dropped(now)
        if not connection.open(now, strict=strict, status=status):
            return
        if status:  # a running daemon's session (not --once's)
            self.outbox.send_status("online")
            self.observer.start()  # the reports, on a session of their own
        self.selfcheck.reset()
        self._republish_all = True

    def _follow(self, now: datetime, *, strict: bool = False) -> None:
        started = self.follower.started
        issued = self.follower.follow(now, strict=strict)
        if self.follower.started and not started:
            self._republish_all = True
        for event in issued:
            # The event's id is its log's and seq's (IntentLog.next_state): not derived again.
            known = (event.seq, event.intent_id)
            self.outbox.publish(log_name(event.client_id, event.group_id), now, Kind.TRANSITION, known)

    def _republish(self, now: datetime) -> None:
        if self._republish_all and self.follower.started and self.connection.connected:
            self._republish_all = False
            self.outbox.republish_all()
            self.outbox.drain(now)

    def _correct_status(self) -> None:
        if self.connection.status_stale and self.connection.connected:
            self.connection.status_stale = False
            self.outbox.send_status("online")

    def _sweep(self, now: datetime) -> None:
        # Never during a burst (and not in --once): the echo would compete with paho's sending.
        session = self.connection.session
        if self.settings.self_check and not self._once and self.follower.started and session is not None:
            self.selfcheck.tick(now, session, busy=bool(self.outbox.outgoing))

    # The lease.

    def _take(self, lease: Lease) -> bool:
        """Wait (as a standby) until the lease is ours, then start afresh; False if stopped first."""
        if not self.role.take(lease, self.stopping, self.wake, self.settings.standby_poll):
            return False
        now = floor_second(self.clock.now())
        self.connection.started_at = self.connection.next_connect = now
        self.outbox.restart_stamps(now)
        self.follower.next_lag = now
        self.selfcheck.restart(now)
        return True

    @property
    def lease(self) -> Lease | None:
        """The lease, once ours (None: run without one, or not taken yet)."""
        return self.role.lease

    @property
    def lease_lost(self) -> bool:
        """Another instance may be active now: this one stopped without an `offline`."""
        return self.role.lost
