"""Shared by the daemon benchmark: a Mosquitto of its own, a raw paho publisher, log capture.

Not a benchmark itself (imported as `_broker`, like `_common`).

- `mosquitto(folder)`: a broker on a free port, configured for bulk retained
  QoS 1 traffic (`set_tcp_nodelay true`, `max_queued_messages 100000`, no
  persistence), logging to a file in `folder`; stopped at the end.
- `RawPublisher`: the baseline. Plain paho-mqtt 2.x (CallbackAPIVersion.VERSION2,
  MQTT 5, one connection, paho's default inflight window of 20) publishing
  retained QoS 1 messages and counting PUBACKs in `on_publish`.
- `CaptureStream`: a stream for the daemon's `EventLog` that keeps every line
  with the `time.monotonic()` at which it was written (parsed afterwards).
- `recording_factory`: the daemon's own sessions (paho in a process of its own,
  the first started ahead as `intent-ledger run` has it, or in ours), unchanged, that also keep
  `(topic, payload, Delivery)` of every publish, so the benchmark reads each
  PUBACK's instant (`Delivery.acked_at`, monotonic, set when the daemon's
  process learns of the PUBACK: on paho's network thread, or on the reader
  thread of a session in a process of its own).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import statistics
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from publisher.mqtt import Delivery, MqttSession
from publisher.session import BrokerSession, ProcSessions, SessionFactory


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Broker:
    port: int
    folder: Path
    process: subprocess.Popen[bytes]

    @property
    def log_file(self) -> Path:
        return self.folder / "mosquitto.log"


def _accepting(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


@contextmanager
def mosquitto(folder: Path) -> Iterator[Broker]:
    """A Mosquitto of our own on a free port in `folder`; terminated at the end."""
    if shutil.which("mosquitto") is None:
        raise SystemExit("mosquitto is not installed (apt-get install mosquitto)")
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = folder / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\n"
        "allow_anonymous true\n"
        "set_tcp_nodelay true\n"
        "max_queued_messages 100000\n"
        "persistence false\n"
        f"log_dest file {folder}/mosquitto.log\n" + ("user root\n" if os.geteuid() == 0 else "")
        # Started as root, mosquitto would drop to its own user and not write our folder.
    )
    process = subprocess.Popen(["mosquitto", "-c", str(conf)])
    try:
        deadline = time.monotonic() + 10
        while not _accepting(port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"mosquitto did not start; see {folder}/mosquitto.log")
            time.sleep(0.02)
        yield Broker(port, folder, process)
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


class RawPublisher:
    """The baseline: one paho connection, MQTT 5, retained QoS 1, PUBACKs counted in on_publish."""

    def __init__(self, port: int, ttl: int = 600, inflight: int | None = None) -> None:
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"rawbench-{os.getpid()}-{id(self)}",
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        if inflight is not None:
            self.client.max_inflight_messages_set(inflight)
        self.properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        self.properties.MessageExpiryInterval = ttl
        self._connected = threading.Event()
        self._done = threading.Event()
        self._target = 0
        self.acked = 0
        self.failed = 0
        self.last_ack = 0.0
        self.client.on_connect = lambda *_: self._connected.set()
        self.client.on_publish = self._on_publish
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        if not self._connected.wait(10):
            raise SystemExit("raw publisher: no CONNACK")

    def _on_publish(self, _c: Any, _u: Any, _mid: int, reason_code: Any, _p: Any) -> None:
        if reason_code.is_failure:
            self.failed += 1
        self.acked += 1
        self.last_ack = time.monotonic()
        if self.acked >= self._target:
            self._done.set()

    def burst(self, messages: list[tuple[str, bytes]], timeout: float = 120.0) -> float:
        """Seconds from the first publish to the last PUBACK of `messages` (all in a row)."""
        self.acked = self.failed = 0
        self._target = len(messages)
        self._done.clear()
        publish, props = self.client.publish, self.properties
        started = time.monotonic()
        # paho's message ids are 16-bit: at most 65,535 in flight, so larger bursts go in chunks.
        chunk = 50_000
        for first in range(0, len(messages), chunk):
            part = messages[first : first + chunk]
            if first:
                deadline = time.monotonic() + timeout
                while self.acked < first and time.monotonic() < deadline:
                    time.sleep(0.001)
            for topic, payload in part:
                publish(topic, payload, qos=1, retain=True, properties=props)
        if not self._done.wait(timeout):
            raise SystemExit(f"raw publisher: {self.acked}/{len(messages)} PUBACKs within {timeout} s")
        if self.failed:
            raise SystemExit(f"raw publisher: {self.failed} publishes refused")
        return self.last_ack - started

    def bursts(self, messages: list[tuple[str, bytes]], count: int) -> list[float]:
        """`count` bursts of `messages`, one after the other."""
        return [self.burst(messages) for _ in range(count)]

    @contextmanager
    def closed_on_error(self) -> Iterator[None]:
        """Close the connection if the block raises (it stays open otherwise)."""
        try:
            yield
        except BaseException:
            self.close()
            raise

    def round_trips(self, topic: str, payload: bytes, count: int) -> list[float]:
        """Seconds of `count` publish -> PUBACK round trips, one in flight at a time."""
        out = []
        for _ in range(count):
            self.acked, self._target = 0, 1
            self._done.clear()
            started = time.monotonic()
            self.client.publish(topic, payload, qos=1, retain=True, properties=self.properties)
            if not self._done.wait(10):
                raise SystemExit("raw publisher: no PUBACK within 10 s")
            out.append(self.last_ack - started)
        return out

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class CaptureStream(io.StringIO):
    """A stream for `EventLog`: keeps `(time.monotonic(), line)`; parsing waits until the end."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[tuple[float, str]] = []

    def write(self, text: str) -> int:
        self.lines.append((time.monotonic(), text))
        return len(text)

    def flush(self) -> None:
        pass

    def records(self, event: str | None = None, start: int = 0) -> list[tuple[float, dict[str, Any]]]:
        out = []
        for t, line in self.lines[start:]:
            if event is not None and f'"{event}"' not in line:
                continue  # cheap pre-filter; the exact test is on the parsed record
            record = json.loads(line)
            if event is None or record.get("event") == event:
                out.append((t, record))
        return out


def recording_factory(
    sink: list[Any], connects: list[float], keep: bool = True, net_process: bool = True
) -> SessionFactory:
    """The daemon's own sessions (paho in a process of its own, the first one started now, as
    `intent-ledger run` has it; or in ours), unchanged, that also keep `(topic, payload,
    Delivery)` of every publish in `sink` (`keep=False`: not the Deliveries) and time connect."""
    base: SessionFactory = ProcSessions(ahead=True) if net_process else MqttSession

    def make(*args: Any, **kwargs: Any) -> BrokerSession:
        session = base(*args, **kwargs)
        connect, publish = session.connect, session.publish

        def timed_connect(timeout: float = 10.0) -> None:
            started = time.monotonic()
            connect(timeout)
            connects.append(time.monotonic() - started)

        def recorded_publish(
            topic: str, payload: bytes, *, expiry: int | None = None, retain: bool = True
        ) -> Delivery:
            delivery = publish(topic, payload, expiry=expiry, retain=retain)
            sink.append((topic, payload, delivery if keep else None))
            return delivery

        session.connect = timed_connect  # type: ignore[method-assign]
        session.publish = recorded_publish  # type: ignore[method-assign]
        return session

    return make


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100), linear between closest ranks."""
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] if q < 100 else max(values)
