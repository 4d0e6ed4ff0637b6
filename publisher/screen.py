"""Screens on a real broker: the contract and the report rules, driven by MQTT and a clock.

`ScreenLoop` runs one or many screens (`intent-ledger screen` runs one with a
`CommandTv`, `simulate` many with `SimulatedTv`s) in one thread. Each screen
has its own MQTT connection (`_Link`, over `MqttSession`): paho's callbacks
only queue `(screen, topic, payload)`; the loop stamps every message with the
clock when it takes it, feeds the contract, drives the TV on every switch,
and publishes what the report rules say is due. A lost connection is
replaced with backoff; the first thing sent on the new one is a fresh report.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from publisher.config import BrokerConfig
from publisher.contract import ScreenContract
from publisher.errors import BrokerUnavailable, NotConnected
from publisher.logs import EventLog
from publisher.mqtt import MqttSession
from publisher.reporting import REPORT_EVERY, Reporter, ScreenReport, encode_report
from publisher.settings import Backoff
from publisher.topics import status_shard
from publisher.tv import Reading, Tv

__all__ = ["Screen", "ScreenLoop", "ScreenSettings"]

_POLL = 1.0


@dataclass(frozen=True)
class ScreenSettings:
    """What every screen of a loop shares."""

    prefix: str = "infoscreen"
    report_every: int = REPORT_EVERY
    mqtt_client_id: Callable[[str], str] = str  # the MQTT client id for a screen id


class Screen:
    """One screen: its contract, its report rules, its TV and (while connected) its session."""

    def __init__(self, client_id: str, tv: Tv, settings: ScreenSettings) -> None:
        self.client_id = client_id
        self.tv = tv
        self.contract = ScreenContract()
        self.reporter = Reporter(client_id, settings.report_every)
        self.intent_topic = f"{settings.prefix}/{client_id}/power/intent"
        self.status_topic = f"{settings.prefix}/server/status"
        # A sharded server has one status topic a shard; the screen listens to its own shard's.
        self.shard_status_topics = f"{settings.prefix}/server/+/status"
        self.prefix = settings.prefix
        self.state_topic = f"{settings.prefix}/{client_id}/power/state"
        self.mqtt_client_id = settings.mqtt_client_id(client_id)
        self.reading = Reading("unknown", "no intent yet: the TV is left alone")
        self.tried = False  # whether the TV was ever switched (the first intent always is)
        self.session: MqttSession | None = None
        self.retry_at: datetime | None = None  # when to connect again
        self.backoff = Backoff(0.5, 30.0)

    def serves_status(self, topic: str) -> bool:
        """Whether `topic` is the status of the shard that publishes this screen's intents."""
        shard = status_shard(self.prefix, topic)
        return shard is not None and shard.owns(self.client_id)


class ScreenLoop:
    """Runs screens until `stop()`; every decision is taken on the loop's thread."""

    def __init__(
        self,
        screens: Sequence[Screen],
        broker: BrokerConfig,
        *,
        log: EventLog | None = None,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self.screens = list(screens)
        self.broker = broker
        self.log = log or EventLog()
        self._clock = now or (lambda: datetime.now(UTC))
        self._inbox: queue.Queue[tuple[Screen, str, bytes] | None] = queue.Queue()
        self._stopping = threading.Event()
        self._last = datetime.min.replace(tzinfo=UTC)

    def now(self) -> datetime:
        """The clock, never backwards (a wall clock stepped back by NTP holds still instead)."""
        self._last = max(self._last, self._clock())
        return self._last

    def stop(self) -> None:
        """Ask the loop to finish (safe from a signal handler or another thread)."""
        self._stopping.set()
        self._inbox.put(None)

    def run(self, until: datetime | None = None, farewell: str | None = None) -> None:
        """Serve every screen until `stop()` (or the clock reaches `until`), then disconnect.

        `farewell`: report `unknown` with this detail before disconnecting (a simulated
        screen that stops can no longer tell).
        """
        try:
            self.serve(until)
        finally:
            self.close(farewell)

    def serve(self, until: datetime | None = None, done: Callable[[], bool] | None = None) -> None:
        """Serve every screen until `stop()`, the clock reaches `until`, or `done()` is true."""
        while not self._stopping.is_set() and (until is None or self.now() < until):
            self._tick()
            if done is not None and done():
                return
            wake = self._next_wakeup(until)
            # A lost connection wakes nobody (paho only sets a flag): look at least every _POLL s.
            timeout = min(_POLL, max(0.0, (wake - self.now()).total_seconds())) if wake else _POLL
            try:
                item = self._inbox.get(timeout=timeout)
            except queue.Empty:
                continue
            while item is not None:
                self._deliver(*item)
                try:
                    item = self._inbox.get_nowait()
                except queue.Empty:
                    break

    @property
    def stopping(self) -> bool:
        """Whether `stop()` was called."""
        return self._stopping.is_set()

    def close(self, farewell: str | None = None) -> None:
        """Disconnect every screen (after the `farewell` report, if given)."""
        if farewell is not None:
            self._farewell(farewell)
        for screen in self.screens:
            self._drop(screen)

    def _farewell(self, detail: str) -> None:
        now = self.now()
        sent = []
        for screen in self.screens:
            report = screen.reporter.observe(now, None, "unknown", detail)
            if report is not None and screen.session is not None:
                try:
                    sent.append(screen.session.publish(screen.state_topic, encode_report(report)))
                except NotConnected:
                    continue
        for delivery in sent:
            delivery.wait(5.0)

    # The loop's steps.

    def _tick(self) -> None:
        """Time alone: reconnects, pending offs and expiries, periodic checks and reports."""
        now = self.now()
        for screen in self.screens:
            if screen.session is not None and screen.session.lost.is_set():
                self._drop(screen)
                self.log.emit("broker", client_id=screen.client_id, state="lost")
            if screen.session is None and (screen.retry_at is None or screen.retry_at <= now):
                self._connect(screen, now)
            screen.contract.advance(now)
            due = screen.reporter.next_due()
            self._act(screen, now, check=due is not None and due <= now)
            report = screen.reporter.due(self.now())
            if report is not None:
                self._send(screen, report)

    def _next_wakeup(self, until: datetime | None) -> datetime | None:
        due = [until] if until is not None else []
        for screen in self.screens:
            due += [t for t in (screen.contract.next_wakeup(), screen.reporter.next_due()) if t]
            if screen.session is None and screen.retry_at is not None:
                due.append(screen.retry_at)
        return min(due, default=None)

    def _deliver(self, screen: Screen, topic: str, payload: bytes) -> None:
        now = self.now()
        if topic == screen.intent_topic:
            verdict = screen.contract.receive(payload, now)
        elif topic == screen.status_topic or screen.serves_status(topic):
            verdict = screen.contract.receive_status(payload, now)
        else:
            return
        self.log.emit("message", client_id=screen.client_id, topic=topic, verdict=verdict)
        screen.contract.verdicts.clear()
        self._act(screen, now)

    def _act(self, screen: Screen, now: datetime, *, check: bool = False) -> None:
        """Drive the TV to the contract's level, then report what changed.

        `check` (once a report period): read the TV again and, when it is not at the
        level (a failed command, the remote control), switch it again.
        """
        contract = screen.contract
        switched = bool(contract.actions)
        contract.actions.clear()
        stray = False
        if check:
            screen.reading = screen.tv.read() or screen.reading
            stray = screen.reading.tv_state != contract.tv
            if stray and contract.decided:
                self._observe(screen, now)  # what the check found, before the TV is switched again
        if contract.decided and (switched or stray or not screen.tried):
            screen.tried = True
            screen.reading = screen.tv.switch(contract.tv)
            self.log.emit(
                "switch",
                client_id=screen.client_id,
                power=contract.tv,
                tv_state=screen.reading.tv_state,
                detail=screen.reading.detail,
            )
            now = self.now()  # a command takes time: the state is known when it is done
        self._observe(screen, now)

    def _observe(self, screen: Screen, now: datetime) -> ScreenReport | None:
        reading, following = screen.reading, screen.contract.following
        report = screen.reporter.observe(now, following, reading.tv_state, reading.detail)
        if report is not None:
            self._send(screen, report)
        return report

    def _send(self, screen: Screen, report: ScreenReport) -> None:
        if screen.session is None:
            return  # the fresh report after the reconnect says it
        try:
            screen.session.publish(screen.state_topic, encode_report(report))
        except NotConnected:
            return
        self.log.emit(
            "report",
            client_id=screen.client_id,
            intent_id=report.intent_id,
            tv_state=report.tv_state,
        )

    # Connections.

    def _connect(self, screen: Screen, now: datetime) -> None:
        session = MqttSession(
            self.broker,
            on_message=lambda topic, payload: self._inbox.put((screen, topic, bytes(payload))),
            client_id=screen.mqtt_client_id,
        )
        try:
            session.connect()
        except BrokerUnavailable as e:
            delay = screen.backoff.next()
            screen.retry_at = now + timedelta(seconds=delay)
            self.log.emit(
                "broker", client_id=screen.client_id, state="unavailable", error=str(e), retry_in=delay
            )
            return
        screen.session, screen.retry_at = session, None
        screen.backoff.reset()
        session.subscribe(screen.intent_topic, qos=1)
        session.subscribe(screen.status_topic, qos=1)
        session.subscribe(screen.shard_status_topics, qos=1)
        self.log.emit("broker", client_id=screen.client_id, state="connected", url=self.broker.redacted())
        screen.reading = screen.tv.read() or screen.reading
        if self._observe(screen, now) is None:
            report = screen.reporter.again(now)  # unchanged, but said afresh on this connection
            if report is not None:
                self._send(screen, report)

    def _drop(self, screen: Screen) -> None:
        if screen.session is not None:
            screen.session.close()
            screen.session = None
