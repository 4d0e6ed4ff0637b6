"""Test helpers: a real Mosquitto on a free port, and a recording MQTT 5 subscriber."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from publisher.config import BrokerConfig
from publisher.payload import json_schema

VALIDATOR = jsonschema.Draft202012Validator(json_schema())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def accepting(port: int) -> bool:
    """Something listens on 127.0.0.1:`port`."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll `predicate` until it returns something truthy, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


class Mosquitto:
    """A broker of our own, so tests can kill and restart it."""

    v5 = True
    mqtt_version = "5"

    def __init__(self, folder: Path, extra: str = "") -> None:
        self.folder = folder
        self.port = free_port()
        self.conf = folder / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            f"persistence true\npersistence_location {folder}/\n"
            "set_tcp_nodelay true\nmax_queued_messages 100000\n"
            f"log_dest file {folder}/mosquitto.log\n"
            # Started as root, mosquitto would drop to its own user and not write our folder.
            + ("user root\n" if os.geteuid() == 0 else "")
            + (extra or "allow_anonymous true\n")
        )
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def config(self) -> BrokerConfig:
        return BrokerConfig.from_url(self.url, self.mqtt_version)

    def start(self) -> None:
        self.process = subprocess.Popen(["mosquitto", "-c", str(self.conf)])
        wait_for(lambda: accepting(self.port), 10, "mosquitto to accept connections")

    def pause(self) -> None:
        """SIGSTOP: the broker hangs with its sockets open (a wedged process, not a dead one)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL: nothing saved, retained messages since the last autosave are gone."""
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


class Nats(Mosquitto):
    """NATS server's MQTT gateway (MQTT 3.1.1 only), with JetStream in `folder`, on free ports.

    Retained messages and sessions live in JetStream streams, so they survive a kill.
    """

    v5 = False
    mqtt_version = "3.1.1"

    def __init__(self, folder: Path, extra: str = "") -> None:
        self.folder = folder
        self.port = free_port()
        self.conf = folder / "nats.conf"
        self.conf.write_text(
            f'server_name: "intent-ledger-test-{self.port}"\n'  # JetStream requires one
            f'listen: "127.0.0.1:{free_port()}"\n'
            f'mqtt {{ listen: "127.0.0.1:{self.port}" }}\n' + extra
        )
        self.process = None

    def start(self) -> None:
        log = (self.folder / "nats.log").open("a")
        command = ["nats-server", "-c", str(self.conf), "-js", "-sd", str(self.folder / "js")]
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        wait_for(lambda: accepting(self.port), 20, "nats-server's MQTT listener")


def tls_listener(ca: Path, cert: Path, key: Path, *, require_certificate: bool = False) -> str:
    """Mosquitto settings (after the listener line) making the listener TLS-only.

    With `require_certificate` a client must show a certificate `ca` signed, and its
    common name becomes its user name (so an ACL can name it).
    """
    text = f"cafile {ca}\ncertfile {cert}\nkeyfile {key}\nallow_anonymous true\n"
    if require_certificate:
        text += "require_certificate true\nuse_identity_as_username true\n"
    return text


@dataclass
class Message:
    topic: str
    payload: bytes
    retain: bool
    received_at: datetime
    expiry: int | None

    def json(self) -> dict[str, Any]:
        return json.loads(self.payload)  # type: ignore[no-any-return,unused-ignore]


class Subscriber:
    """Records every message under a topic filter; checks every intent payload as it arrives.

    `now` says what "now" is at receipt (a virtual clock in virtual-time tests).
    """

    def __init__(
        self,
        port: int,
        topic: str = "#",
        now: Callable[[], datetime] | None = None,
        extra: str | None = None,
        configure: Callable[[paho.Client], None] | None = None,
        v5: bool = True,
    ) -> None:
        self.topic = topic
        self.messages: list[Message] = []
        self.violations: list[str] = []
        self._now = now or (lambda: datetime.now(UTC))
        self._cond = threading.Condition()
        self._subscribed = threading.Event()
        protocol = MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311
        self.client = paho.Client(CallbackAPIVersion.VERSION2, protocol=protocol)
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        if configure is not None:  # credentials, TLS
            configure(self.client)
        self.client.connect("127.0.0.1", port)
        self.client.subscribe([(t, 1) for t in (topic, extra) if t])
        self.client.loop_start()
        assert self._subscribed.wait(10), "no SUBACK"

    def _on_message(self, _c: Any, _u: Any, msg: Any) -> None:
        expiry = getattr(msg.properties, "MessageExpiryInterval", None) if msg.properties else None
        message = Message(msg.topic, bytes(msg.payload), bool(msg.retain), self._now(), expiry)
        if msg.topic.endswith("/power/intent") and message.payload:
            self._check(message)
        with self._cond:
            self.messages.append(message)
            self._cond.notify_all()

    def _check(self, message: Message) -> None:
        try:
            body = message.json()
            VALIDATOR.validate(body)
            for key in ("issued_at", "expires_at"):
                assert body[key].endswith("Z"), f"{key} not in Z"
            expires = datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))
            assert expires > message.received_at, f"expired at receipt: {body['expires_at']}"
        except (AssertionError, ValueError, jsonschema.ValidationError) as e:
            self.violations.append(f"{message.topic}: {e}")

    def on(self, topic: str) -> list[Message]:
        with self._cond:
            return [m for m in self.messages if m.topic == topic]

    def count(self, topic: str) -> int:
        """How many messages have arrived on topics `topic` (a filter) matches."""
        with self._cond:
            return sum(1 for m in self.messages if paho.topic_matches_sub(topic, m.topic))

    def intents(self, topic: str) -> list[dict[str, Any]]:
        return [m.json() for m in self.on(topic) if m.payload]

    def wait(
        self, predicate: Callable[[Subscriber], Any], timeout: float = 10.0, what: str = "messages"
    ) -> Any:
        return wait_for(lambda: predicate(self), timeout, what)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def retained(
    port: int,
    topic: str,
    configure: Callable[[paho.Client], None] | None = None,
    probes: str = "probe",
    v5: bool = True,
) -> Message | None:
    """What a fresh subscriber gets on `topic` (None: nothing retained).

    A sentinel published after the SUBACK arrives after any retained message,
    so its arrival proves the retained answer is complete (no waiting on a timer).
    """
    sentinel = f"{probes}/{uuid.uuid4()}"
    sub = Subscriber(port, topic, extra=sentinel, configure=configure, v5=v5)
    try:
        sub.client.publish(sentinel, b"x", qos=1)
        sub.wait(lambda s: s.on(sentinel), 10, "the probe sentinel")
        found = [m for m in sub.on(topic) if m.retain]
        return found[0] if found else None
    finally:
        sub.close()
