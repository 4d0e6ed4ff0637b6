"""The broker session: connect with a Will, reconnect after a backoff, keep the server status right.

A lost session is never reused (its paho queue of stale intents dies with it);
the next one is opened after the backoff. Every session of a running daemon
carries the Will `offline` on the status topic, subscribes to it, and says
`online`; a retained `offline` seen there later (an old Will arriving late, a
previous instance's goodbye) is corrected by the owner thread.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable
from concurrent.futures import Future
from datetime import datetime, timedelta

from ledger.values import format_instant
from publisher.config import BrokerConfig
from publisher.errors import BrokerUnavailable, NotConnected
from publisher.logs import EventLog
from publisher.metrics import Metrics
from publisher.mqtt import Delivery
from publisher.session import BrokerSession, SessionFactory
from publisher.settings import Backoff, RunSettings
from publisher.topics import Topics

__all__ = ["Connection"]


class Connection:
    """Owns the current broker session (None between sessions) and the server's status topic."""

    def __init__(
        self,
        broker: BrokerConfig,
        topics: Topics,
        *,
        inflight: int,
        started_at: datetime,
        wake: threading.Event,
        on_message: Callable[[str, bytes], None],
        session_factory: SessionFactory,
        backoff: Backoff,
        metrics: Metrics,
        log: EventLog,
    ) -> None:
        self.broker, self.topics, self.inflight = broker, topics, inflight
        self.started_at = started_at
        self.wake = wake
        self.metrics, self.log = metrics, log
        self.session: BrokerSession | None = None
        self.next_connect = started_at
        self.status_stale = False  # an `offline` was seen on our status topic
        self._on_other = on_message
        self._factory = session_factory
        self._backoff = backoff
        self._opened = 0
        self._reason: str | None = None  # why the last session was lost
        self._opening: _Opening | None = None  # a connect begun ahead (`begin`), finished by `open`

    @property
    def connected(self) -> bool:
        return self.session is not None and self.session.connected

    @property
    def lost(self) -> bool:
        """A session was open and has been lost (call `drop` next)."""
        return self.session is not None and self.session.lost.is_set()

    def flush(self) -> None:
        """Send what the session batched: the loop is about to wait."""
        if self.session is not None:
            self.session.flush()

    def drop(self) -> None:
        """Close the lost session (its paho queue with it)."""
        if self.session is not None:
            self._reason = self.session.lost_reason
            self.session.close()
            self.session = None

    def dropped(self, now: datetime) -> None:
        """Say so (and why), and wait the backoff before the next attempt."""
        self.metrics.connected.set(0)
        self.log.emit("broker", state="disconnected", reason=self._reason)
        self.next_connect = now + timedelta(seconds=self._backoff.next())

    def begin(self, *, status: bool = True) -> None:
        """Begin the next session's connect on a thread (it is nearly all waiting for the broker):
        the caller reads the ledger meanwhile; the next `open` (with the same `status`) waits for
        it and goes on as if it had connected then."""
        if self._opening is None and self.session is None:
            self._opening = _Opening(self._new_session(status), status)

    def open(self, now: datetime, *, strict: bool = False, status: bool = True) -> bool:
        """Open a session once the backoff allows (strict: now, raising BrokerUnavailable); True if opened.

        With `status`, the session has the Will `offline` and subscribes to the status topic.
        """
        if now < self.next_connect and not strict:
            return False
        opening = self._opening
        if opening is not None and opening.status != status:
            self._cancel_opening()
            opening = None
        try:
            if opening is not None:
                session = opening.session
                # Still ours while it is awaited: whatever interrupts the wait leaves it to close().
                opening.result()
                self._opening = None
            else:
                session = self._new_session(status)
                session.connect()
        except BrokerUnavailable as e:
            self._opening = None  # the failed connect closed its session
            if strict:
                raise
            self.next_connect = now + timedelta(seconds=self._backoff.next())
            self.log.emit("broker", state="unavailable", error=str(e))
            return False
        self._backoff.reset()
        self.session = session
        self._opened += 1
        if self._opened > 1:
            self.metrics.reconnects.inc()
        self.metrics.connected.set(1)
        self.log.emit("broker", state="connected", broker=self.broker.redacted())
        if status:
            session.subscribe(self.topics.status, qos=0)
        return True

    def _new_session(self, status: bool) -> BrokerSession:
        will = (self.topics.status, self.status_payload("offline")) if status else None
        return self._factory(self.broker, will=will, on_message=self._on_message, inflight=self.inflight)

    def announce(self, settings: RunSettings) -> None:
        """The first log line: where to, and how."""
        self.log.emit(
            "start",
            broker=self.broker.redacted(),
            mqtt_version=self.broker.mqtt_version,
            prefix=settings.prefix,
            ttl=settings.ttl,
            refresh=settings.refresh_every,
            group_topics=settings.group_topics,
        )
        if self.broker.mqtt_version != "5":
            self.log.emit(
                "notice",
                message="MQTT 3.1.1: no Message Expiry Interval; expiry lives in the payload's "
                "expires_at alone, which clients must enforce",
            )

    # The status topic.

    def status_payload(self, status: str) -> bytes:
        return json.dumps({"status": status, "started_at": format_instant(self.started_at)}).encode()

    def send_status(self, status: str) -> Delivery | None:
        """Publish `status` (retained); None if the session cannot take it."""
        assert self.session is not None
        try:
            return self.session.publish(self.topics.status, self.status_payload(status))
        except NotConnected:
            return None

    def goodbye(self) -> None:
        """Close the session; `offline` first when it is still connected (a clean stop)."""
        self._cancel_opening()
        session, self.session = self.session, None
        if session is not None and session.connected:
            with contextlib.suppress(NotConnected):
                session.publish(self.topics.status, self.status_payload("offline")).wait(5.0)
            self.log.emit("status", status="offline", started_at=format_instant(self.started_at))
        if session is not None:
            session.close()

    def close(self) -> None:
        self._cancel_opening()
        session, self.session = self.session, None
        if session is not None:
            session.close()

    def _cancel_opening(self) -> None:
        """Wait for a connect begun ahead and close what it opened (it is not wanted)."""
        if self._opening is not None:
            self._opening.cancel()
            self._opening = None

    def _on_message(self, topic: str, payload: bytes) -> None:
        # Network thread: store or flag, nothing more.
        if topic == self.topics.status:
            self._on_status(payload)
        else:
            self._on_other(topic, payload)

    def _on_status(self, payload: bytes) -> None:
        try:
            body = json.loads(payload)
        except ValueError:
            body = {}
        # Only an `offline` is corrected: another instance's `online` is never fought over.
        if body.get("status") != "online":
            self.status_stale = True
            self.wake.set()


class _Opening:
    """A session's `connect()` running on a thread of its own; `result()` waits for it and
    raises what it raised (BrokerUnavailable: the session is closed already, as a connect leaves it)."""

    def __init__(self, session: BrokerSession, status: bool) -> None:
        self.session, self.status = session, status
        self._done: Future[None] = Future()
        threading.Thread(target=self._connect, name="broker-connect", daemon=True).start()

    def _connect(self) -> None:
        try:
            self.session.connect()
        except BaseException as e:  # raised again by result(), on the owner's thread
            self._done.set_exception(e)
        else:
            self._done.set_result(None)

    def result(self) -> None:
        self._done.result()

    def cancel(self) -> None:
        """Not wanted after all: wait for the connect to end, then close what it opened."""
        self._done.exception()  # waits; an error is not the caller's any more
        self.session.close()
