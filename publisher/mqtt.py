"""One broker session over paho-mqtt 2.x, with acknowledged QoS 1 publishes.

A `MqttSession` is one connection and is never reconnected: paho keeps QoS 1
messages published during an outage and sends them after the next CONNACK,
so a stale intent could overwrite a fresh one and stay retained. Dropping
the whole client after a disconnect drops that queue with it; the daemon
opens a new session and republishes everything freshly stamped.

The `_on_*` callbacks run on paho's network thread and only set flags and
resolve deliveries; nothing here calls paho while holding `_lock`, which the
callbacks take (paho runs them under its own locks).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTErrorCode

from publisher.config import BrokerConfig
from publisher.errors import BrokerUnavailable, NotConnected
from publisher.pahoclient import ExpiryCache, before_connack, new_client, open_connection
from publisher.pahoclient import client_id as new_client_id

__all__ = ["Delivery", "MqttSession"]


class Delivery:
    """One QoS 1 publish; `ok` once the broker acknowledged it with a success code."""

    __slots__ = ("_cond", "_waited", "acked_at", "done", "error", "mid", "started", "topic")

    def __init__(self, topic: str, cond: threading.Condition | None = None) -> None:
        self.topic = topic
        self.mid = 0
        self.started = time.monotonic()
        self.done = False
        self.error: str | None = None
        self.acked_at: float | None = None
        self._waited = False
        # One condition per session, not an Event per message: 10,000 publishes
        # would otherwise allocate 10,000 locks.
        self._cond = cond or threading.Condition()

    @property
    def ok(self) -> bool:
        return self.done and self.error is None

    def wait(self, timeout: float) -> bool:
        with self._cond:
            self._waited = True
            return self._cond.wait_for(lambda: self.done, timeout)

    def resolve(self, error: str | None) -> None:
        with self._cond:
            if not self.done:
                self.error = error
                self.acked_at = time.monotonic()
                self.done = True
                if self._waited:  # waking waiters on every PUBACK would starve paho's thread
                    self._cond.notify_all()

    @staticmethod
    def resolve_all(cond: threading.Condition, settled: list[tuple[Delivery, str | None]]) -> None:
        """Resolve a batch of one session's deliveries (`cond` theirs) at once: one lock, one wake-up."""
        wake = False
        now = time.monotonic()
        with cond:
            for delivery, error in settled:
                if not delivery.done:
                    delivery.error = error
                    delivery.acked_at = now
                    delivery.done = True
                    wake = wake or delivery._waited
            if wake:
                cond.notify_all()

    @property
    def latency(self) -> float | None:
        return None if self.acked_at is None else self.acked_at - self.started


class MqttSession:
    """A single connection to the broker (MQTT 5 by default, 3.1.1 on request)."""

    def __init__(
        self,
        config: BrokerConfig,
        *,
        will: tuple[str, bytes] | None = None,
        on_message: Callable[[str, bytes], None] | None = None,
        inflight: int = 20,
        client_id: str | None = None,
    ) -> None:
        self.config = config
        self.lost = threading.Event()
        self.lost_reason: str | None = None  # why, once `lost` is set
        self._connack = threading.Event()
        self._connack_error: str | None = None
        self._lock = threading.Lock()
        self._acks = threading.Condition()
        self._expiries = ExpiryCache()
        self._pending: dict[int, Delivery] = {}
        self.last_ack = time.monotonic()  # when the broker last acknowledged anything
        self.last_heard = self.last_ack  # when anything last came from the broker
        self._early: dict[int, str | None] = {}
        self._on_message_cb = on_message
        self.v5 = config.mqtt_version == "5"
        self.client = new_client(
            config,
            client_id=client_id or new_client_id(),
            will=will,
            inflight=inflight,
        )
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self.client.on_message = self._on_message

    # Callbacks (network thread): tiny, flags and futures only.

    def _on_connect(self, _c: Any, _u: Any, _flags: Any, reason_code: Any, _p: Any) -> None:
        self.last_heard = time.monotonic()
        if reason_code.is_failure:
            self._connack_error = str(reason_code)
        self._connack.set()

    def _on_disconnect(self, _c: Any, _u: Any, _flags: Any, reason_code: Any, _p: Any) -> None:
        self.lost_reason = self.lost_reason or str(reason_code)
        self.lost.set()
        self._connack.set()
        self._fail_pending(f"connection lost before PUBACK ({reason_code})")

    def _on_publish(self, _c: Any, _u: Any, mid: int, reason_code: Any, _p: Any) -> None:
        self.last_ack = self.last_heard = time.monotonic()
        error = f"broker refused: {reason_code}" if reason_code.is_failure else None
        with self._lock:
            delivery = self._pending.pop(mid, None)
            if delivery is None:
                self._early[mid] = error  # the PUBACK beat publish() to registering the mid
        if delivery is not None:
            delivery.resolve(error)

    def _on_message(self, _c: Any, _u: Any, message: Any) -> None:
        self.last_heard = time.monotonic()
        if self._on_message_cb is not None:
            self._on_message_cb(message.topic, message.payload)

    # The session's owner (one thread).

    def connect(self, timeout: float = 10.0) -> None:
        """Connect and wait for a successful CONNACK, or raise BrokerUnavailable."""
        open_connection(self.client, self.config)
        self.client.loop_start()
        answered = self._connack.wait(timeout)
        if not answered or self._connack_error or self.lost.is_set():
            self.close()
            raise BrokerUnavailable(
                before_connack(self.config, answered=answered, refused=self._connack_error, timeout=timeout)
            )

    @property
    def connected(self) -> bool:
        return self._connack.is_set() and not self.lost.is_set() and self.client.is_connected()

    def publish(
        self, topic: str, payload: bytes, *, expiry: int | None = None, retain: bool = True
    ) -> Delivery:
        """Publish at QoS 1; the Delivery resolves on PUBACK. Raises NotConnected instead of queueing."""
        if not self.connected:
            raise NotConnected(f"not connected to {self.config.redacted()}: {topic} not published")
        properties = None
        if self.v5 and expiry is not None:
            properties = self._expiries.get(max(1, int(expiry)))
        delivery = Delivery(topic, self._acks)
        info = self.client.publish(topic, payload, qos=1, retain=retain, properties=properties)
        delivery.mid = info.mid
        if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS,):
            # Queued inside paho (connection just dropped) or refused: this session is dead
            # anyway, and its queue dies with it.
            delivery.resolve(f"not sent: {paho.error_string(info.rc)}")
            return delivery
        with self._lock:
            if info.mid in self._early:
                early = self._early.pop(info.mid)
            else:
                self._pending[info.mid] = delivery
                return delivery
        delivery.resolve(early)
        return delivery

    def flush(self) -> None:
        """Nothing to do: paho sends as it is called (a session in a process of its own batches)."""

    def subscribe(self, topic: str, qos: int = 0) -> None:
        self.client.subscribe(topic, qos)

    def unsubscribe(self, topic: str) -> None:
        self.client.unsubscribe(topic)

    def silent_since(self, instant: float) -> bool:
        """Nothing (no PUBACK, message or CONNACK) has come from the broker since `instant` (monotonic)."""
        return self.last_heard < instant

    def abandon(self, reason: str) -> None:
        """Drop a dead connection and paho's queue with it, sending no DISCONNECT (so the Will stands)."""
        self.lost_reason = reason
        # Shut the socket down under paho's thread: it sees the end of the stream and stops (its
        # loop would not while QoS 1 messages are unacknowledged); the broker sees a close
        # without DISCONNECT, whenever it hears it, and publishes our Will.
        sock = self.client.socket()
        if isinstance(sock, socket.socket):  # TLS sockets too; a websocket wrapper is not
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self.client.loop_stop()
        self.lost.set()
        self._fail_pending(f"connection abandoned before PUBACK: {reason}")

    def close(self) -> None:
        """Disconnect cleanly (the broker then discards the Will) and stop the network thread."""
        try:
            if not self.lost.is_set() and self.client.is_connected():
                self.client.disconnect()
        finally:
            self.client.loop_stop()
        self.lost.set()
        self._fail_pending("session closed before PUBACK")

    def _fail_pending(self, error: str) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
        for delivery in pending.values():
            delivery.resolve(error)
