"""A broker session whose paho client runs in a process of its own (publisher.netchild).

A drop-in for `MqttSession` (the same methods, errors and Deliveries): paho's
work (building packets, writing them, reading PUBACKs, about as much CPU a
message as the daemon's own) runs in the child's interpreter, on the other
core, instead of competing with the fold, evaluation and recording for the
daemon's GIL. Like an `MqttSession` it is one connection, never reconnected:
its process ends with it, and the daemon opens a new session.

Publishes go to the child in batches: every `FLUSH_EVERY`, and whenever the
session's owner would otherwise wait (`flush()`, which the daemon calls at the
end of a round, and any `Delivery.wait`). A reader thread takes the child's
reports (one message a pass of the child's loop) and resolves their Deliveries
in one batch each. The child dying is a lost session; the parent dying (even
by SIGKILL) ends the child at once without a DISCONNECT, so the Will stands.
"""

from __future__ import annotations

import contextlib
import dataclasses
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any

from publisher.config import BrokerConfig
from publisher.errors import BrokerUnavailable, NotConnected
from publisher.mqtt import Delivery
from publisher.netchild import ABANDON, CLOSE, PUBLISH, SUBSCRIBE, UNSUBSCRIBE, Pipe
from publisher.netstart import NetworkProcess
from publisher.pahoclient import before_connack
from publisher.pahoclient import client_id as new_client_id

__all__ = ["FLUSH_EVERY", "ProcSession"]

FLUSH_EVERY = 64  # publishes sent to the child in one message at most
STOP_WAIT = 5.0  # seconds the child has at close to write its DISCONNECT and exit
START_WAIT = 30.0  # seconds a child has to start and open the connection (CONNECT sent)


class _Sent(Delivery):
    """A Delivery of a `ProcSession`: waiting for it sends what the session batched first."""

    __slots__ = ("_session",)

    def __init__(self, topic: str, cond: threading.Condition, session: ProcSession) -> None:
        super().__init__(topic, cond)
        self._session = session

    def wait(self, timeout: float) -> bool:
        if not self.done:
            self._session.flush()
        return super().wait(timeout)


class ProcSession:
    """A single connection to the broker, its paho client in a child process."""

    def __init__(
        self,
        config: BrokerConfig,
        *,
        will: tuple[str, bytes] | None = None,
        on_message: Callable[[str, bytes], None] | None = None,
        inflight: int = 20,
        client_id: str | None = None,
        child: NetworkProcess | None = None,
    ) -> None:
        """`child`: a network process started ahead (ProcSessions), or None to start one at connect."""
        self.config = config
        self._child = child
        self.lost = threading.Event()
        self.lost_reason: str | None = None  # why, once `lost` is set
        self.last_ack = time.monotonic()  # when the broker last acknowledged anything
        self.last_heard = self.last_ack  # when anything last came from the broker
        self.v5 = config.mqtt_version == "5"
        self.process: subprocess.Popen[bytes] | None = None
        client_id = client_id or new_client_id()
        self._spec = [dataclasses.asdict(config), None if will is None else list(will), inflight, client_id]
        self._on_message_cb = on_message
        self._opened = threading.Event()  # the child opened the connection, or will never
        self._connack = threading.Event()
        self._up = False  # a successful CONNACK came
        self._refused: str | None = None  # the CONNACK's failure
        self._unavailable: str | None = None  # why the child could not open the connection
        self._broken: str | None = None  # the child failed, or exited without a word
        self._lock = threading.Lock()  # the deliveries awaiting their PUBACK
        self._pending: dict[int, Delivery] = {}
        self._failed_with: str | None = None  # set once every delivery fails as it is made
        self._acks = threading.Condition()
        self._sending = threading.Lock()  # the batch and the pipe: one writer at a time
        self._batch: list[list[Any]] = []
        self._published = 0  # publishes numbered in order; the child counts the same way
        self._conn: Pipe | None = None
        self._reader: threading.Thread | None = None

    # The session's owner.

    def connect(self, timeout: float = 10.0) -> None:
        """Start the child, connect and wait for a successful CONNACK, or raise BrokerUnavailable."""
        self._start()
        # The timeout is the CONNACK's, as for MqttSession: the child's start-up and the TCP
        # connect come first (paho's connect gives up on its own after a few seconds).
        started = self._opened.wait(START_WAIT)
        answered = started and self._connack.wait(timeout)
        if self._up and not self.lost.is_set():
            return
        # Said before close(), which ends the child (and would read as a child that died).
        if not started:
            problem = (
                f"no connection to broker {self.config.redacted()}: its network process did not "
                f"start within {START_WAIT:g} s"
            )
        elif self._unavailable is not None:
            problem = self._unavailable
        elif self._broken is not None:
            problem = f"no connection to broker {self.config.redacted()}: {self._broken}"
        else:
            problem = before_connack(self.config, answered=answered, refused=self._refused, timeout=timeout)
        self.close()
        raise BrokerUnavailable(problem)

    def _start(self) -> None:
        child, self._child = self._child, None
        if child is None or not child.alive:
            if child is not None:
                child.discard()
            try:
                child = NetworkProcess()
            except OSError as e:
                raise BrokerUnavailable(
                    f"no connection to broker {self.config.redacted()}: cannot start its network process: {e}"
                ) from None
        self.process, self._conn = child.process, child.pipe
        with contextlib.suppress(OSError):  # a child gone already: the reader says so
            self._conn.send(self._spec)
        self._reader = threading.Thread(target=self._read, name="broker-session", daemon=True)
        self._reader.start()

    @property
    def connected(self) -> bool:
        return self._up and not self.lost.is_set()

    def publish(
        self, topic: str, payload: bytes, *, expiry: int | None = None, retain: bool = True
    ) -> Delivery:
        """Publish at QoS 1; the Delivery resolves on PUBACK. Raises NotConnected instead of queueing."""
        if not self.connected:
            raise NotConnected(f"not connected to {self.config.redacted()}: {topic} not published")
        delivery = _Sent(topic, self._acks, self)
        seconds = max(1, int(expiry)) if self.v5 and expiry is not None else 0
        with self._sending:
            self._published += 1
            delivery.mid = number = self._published
            with self._lock:
                failed = self._failed_with
                if failed is None:
                    self._pending[number] = delivery
            self._batch.append([PUBLISH, topic, payload, retain, seconds])
            if len(self._batch) >= FLUSH_EVERY:
                self._send()
        if failed is not None:
            delivery.resolve(failed)
        return delivery

    def flush(self) -> None:
        """Send the child what was published since the last batch."""
        if self._batch:
            with self._sending:
                self._send()

    def _send(self) -> None:
        # Under `_sending`. A child that is gone loses the batch: the reader says so next.
        batch, self._batch = self._batch, []
        if batch and self._conn is not None:
            try:
                self._conn.send(batch)
            except TimeoutError:  # a child that does not read its pipe: ended (the reader says so)
                if self.process is not None:
                    self.process.kill()
            except OSError:
                pass

    def _order(self, operation: list[Any]) -> None:
        with self._sending:
            self._batch.append(operation)
            self._send()

    def subscribe(self, topic: str, qos: int = 0) -> None:
        self._order([SUBSCRIBE, topic, qos])

    def unsubscribe(self, topic: str) -> None:
        self._order([UNSUBSCRIBE, topic])

    def silent_since(self, instant: float) -> bool:
        """Nothing (no PUBACK, message or CONNACK) has come from the broker since `instant` (monotonic)."""
        return self.last_heard < instant

    def abandon(self, reason: str) -> None:
        """Drop a dead connection, sending no DISCONNECT (so the Will stands); nothing more goes out."""
        self.lost_reason = reason
        with self._sending:
            self._batch = [[ABANDON]]
            self._send()
        self.lost.set()
        self._fail_pending(f"connection abandoned before PUBACK: {reason}")

    def close(self) -> None:
        """Disconnect cleanly (the broker then discards the Will) and end the child."""
        process = self.process
        try:
            if process is not None:
                if self._up and not self.lost.is_set():
                    with self._sending:
                        self._batch.append([CLOSE])
                        self._send()
                elif process.poll() is None:
                    process.kill()  # never connected (or lost): nothing to say to the broker
                try:
                    process.wait(STOP_WAIT)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
                if self._reader is not None and self._reader is not threading.current_thread():
                    self._reader.join(STOP_WAIT)
        finally:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            self.lost.set()
            self._fail_pending("session closed before PUBACK")

    def _fail_pending(self, error: str) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
            self._failed_with = self._failed_with or error
        Delivery.resolve_all(self._acks, [(d, error) for d in pending.values()])

    # The reader thread: the child's reports.

    def _read(self) -> None:
        conn, process = self._conn, self.process
        assert conn is not None
        assert process is not None
        try:
            while True:
                heard, acked, refused, messages, events = conn.recv()
                if acked or refused:
                    self.last_ack = self.last_heard = heard
                    self._settle(acked, refused)
                if messages:
                    self.last_heard = heard
                    if self._on_message_cb is not None:
                        for topic, payload in messages:
                            self._on_message_cb(topic, payload)
                for event, text in events:
                    self._event(event, text, heard)
        except (EOFError, OSError):
            pass  # the child is gone
        except Exception as e:  # a message callback failed: this session is lost, said in one line
            self._broken = (
                self._broken or f"its reader failed: {' '.join(str(e).split()) or type(e).__name__}"
            )
            process.kill()
        finally:
            code = process.wait()
            if not self.lost.is_set():
                self._broken = self._broken or f"its network process exited with code {code}"
                self.lost_reason = self.lost_reason or self._broken
                self.lost.set()
            self._opened.set()
            self._connack.set()
            self._fail_pending(f"connection lost before PUBACK ({self.lost_reason})")

    def _settle(self, acked: list[int], refused: list[list[Any]]) -> None:
        with self._lock:
            pop = self._pending.pop
            settled: list[tuple[Delivery, str | None]] = [(pop(n), None) for n in acked if n in self._pending]
            settled += [(pop(n), error) for n, error in refused if n in self._pending]
        Delivery.resolve_all(self._acks, settled)

    def _event(self, event: str, text: str | None, heard: float) -> None:
        if event == "opened":
            self._opened.set()
        elif event == "connack":
            self.last_heard = heard
            if text is None:
                self._up = True
            else:
                self._refused = text
            self._connack.set()
        elif event == "lost":
            self.lost_reason = self.lost_reason or text
            self.lost.set()
            self._connack.set()
            self._fail_pending(f"connection lost before PUBACK ({text})")
        elif event == "unavailable":
            self._unavailable = self.lost_reason = text
            self._opened.set()
            self._connack.set()
        elif event == "failed":
            self._broken = self.lost_reason = f"its network process failed: {text}"
            self.lost.set()
            self._opened.set()
            self._connack.set()
