"""The ACL and password file of docs/operations.md, taken from the doc unchanged, on a real Mosquitto.

The server may write intents and its status; a screen reads only its own intent,
writes only its own report, and can write no intent at all.
"""

from __future__ import annotations

import re
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from click.testing import CliRunner
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from cli.main import cli
from ledger import Ledger
from tests.conftest import ME
from tests.publisher.broker import Mosquitto, retained, wait_for

DOC = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


def doc_block(marker: str) -> str:
    """The fenced block right after `<!-- marker -->` in docs/operations.md."""
    found = re.search(rf"<!-- {marker} -->\n```\w*\n(.*?)```", DOC.read_text(), re.S)
    assert found, f"no <!-- {marker} --> block in {DOC}"
    return found.group(1)


PASSWORDS = dict(line.split(":", 1) for line in doc_block("passwd").splitlines() if line)


class Client:
    """An MQTT 5 client logged in as `user`, whose publishes report the PUBACK's reason code."""

    def __init__(self, port: int, user: str) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self._cond = threading.Condition()
        self._acks: dict[int, Any] = {}
        self.client = paho.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
        self.client.username_pw_set(user, PASSWORDS[user])
        self.client.on_message = self._on_message
        self.client.on_publish = self._on_publish
        self.client.on_subscribe = self._on_subscribe
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, _c: Any, _u: Any, msg: Any) -> None:
        with self._cond:
            self.messages.append((msg.topic, bytes(msg.payload)))
            self._cond.notify_all()

    def _on_publish(self, _c: Any, _u: Any, mid: int, reason_code: Any, _p: Any) -> None:
        with self._cond:
            self._acks[mid] = reason_code
            self._cond.notify_all()

    def _on_subscribe(self, _c: Any, _u: Any, mid: int, _codes: Any, _p: Any) -> None:
        with self._cond:
            self._acks[mid] = "subscribed"
            self._cond.notify_all()

    def _wait_ack(self, mid: int) -> Any:
        with self._cond:
            assert self._cond.wait_for(lambda: mid in self._acks, 10), "no acknowledgement"
            return self._acks.pop(mid)

    def publish(self, topic: str, payload: bytes = b"x", retain: bool = False) -> bool:
        """True if the broker accepted it (MQTT 5 acknowledges a denied publish 'Not authorized')."""
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        return not self._wait_ack(info.mid).is_failure

    def subscribe(self, *topics: str) -> None:
        _rc, mid = self.client.subscribe([(t, 1) for t in topics])
        assert mid is not None
        self._wait_ack(mid)

    def received(self, topic: str) -> list[bytes]:
        with self._cond:
            return [p for t, p in self.messages if t == topic]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def doc_broker(tmp_path: Path) -> Iterator[Mosquitto]:
    folder = tmp_path / "acl-doc"
    folder.mkdir()
    acl, passwd = folder / "acl", folder / "passwd"
    acl.write_text(doc_block("acl"))
    passwd.write_text(doc_block("passwd"))
    passwd.chmod(0o600)
    subprocess.run(["mosquitto_passwd", "-U", str(passwd)], check=True)
    assert "change-me" not in passwd.read_text()  # hashed in place, as the doc says
    broker = Mosquitto(folder, f"allow_anonymous false\npassword_file {passwd}\nacl_file {acl}\n")
    broker.start()
    yield broker
    broker.stop()


def _as_server(topic: str, broker: Mosquitto) -> Any:
    def configure(c: paho.Client) -> None:
        c.username_pw_set("intent-server", PASSWORDS["intent-server"])

    return retained(broker.port, topic, configure, probes="infoscreen/server/probe")


def test_the_server_writes_intents_and_status(
    sqlite_ledger: Ledger, sqlite_url: str, doc_broker: Mosquitto
) -> None:
    """`run --once` as intent-server: every intent acknowledged (no 'Not authorized'), exit 0."""
    for name in ("lobby-1", "lobby-2"):
        sqlite_ledger.add_client(name, "lobby", ME)
    url = f"mqtt://intent-server:{PASSWORDS['intent-server']}@127.0.0.1:{doc_broker.port}"
    args = ["--db", sqlite_url, "--mqtt-url", url, "run", "--once", "--group-topics"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.stderr
    assert _as_server("infoscreen/lobby-2/power/intent", doc_broker) is not None
    assert _as_server("infoscreen/groups/lobby/power/intent", doc_broker) is not None
    server = Client(doc_broker.port, "intent-server")
    try:
        assert server.publish("infoscreen/server/status", b'{"status":"online"}', retain=True)
        assert not server.publish("elsewhere/topic")  # and nothing else
    finally:
        server.close()


@pytest.fixture
def server_and_screen(doc_broker: Mosquitto) -> Iterator[tuple[Client, Client]]:
    """intent-server, having published both screens' intents, and screen lobby-1."""
    server = Client(doc_broker.port, "intent-server")
    screen = Client(doc_broker.port, "lobby-1")
    for name in ("lobby-1", "lobby-2"):
        assert server.publish(f"infoscreen/{name}/power/intent", f"intent {name}".encode(), retain=True)
    yield server, screen
    screen.close()
    server.close()


def test_a_screen_reads_only_its_own_intent_and_writes_only_its_own_report(
    server_and_screen: tuple[Client, Client],
) -> None:
    server, screen = server_and_screen
    screen.subscribe("infoscreen/lobby-2/power/intent", "infoscreen/lobby-1/power/intent")
    # Delivered in order: once lobby-1's second message is here, lobby-2's would have been too.
    assert server.publish("infoscreen/lobby-2/power/intent", b"later", retain=True)
    assert server.publish("infoscreen/lobby-1/power/intent", b"later", retain=True)
    wait_for(lambda: b"later" in screen.received("infoscreen/lobby-1/power/intent"), what="own intent")
    assert screen.received("infoscreen/lobby-1/power/intent") == [b"intent lobby-1", b"later"]
    assert screen.received("infoscreen/lobby-2/power/intent") == []

    report = uuid.uuid4().hex.encode()
    assert screen.publish("infoscreen/lobby-1/power/state", report)
    assert not screen.publish("infoscreen/lobby-2/power/state", report)
    server.subscribe("infoscreen/+/power/state")
    assert screen.publish("infoscreen/lobby-1/power/state", report)
    wait_for(lambda: server.received("infoscreen/lobby-1/power/state"), what="the report at the server")


def test_a_screen_cannot_write_any_intent(
    doc_broker: Mosquitto, server_and_screen: tuple[Client, Client]
) -> None:
    """Neither another screen's intent nor its own: the retained intent stays the server's."""
    _server, screen = server_and_screen
    assert not screen.publish("infoscreen/lobby-2/power/intent", b"forged", retain=True)
    assert not screen.publish("infoscreen/lobby-1/power/intent", b"forged", retain=True)
    assert not screen.publish("infoscreen/groups/lobby/power/intent", b"forged", retain=True)
    assert not screen.publish("infoscreen/server/status", b"forged", retain=True)
    for name in ("lobby-1", "lobby-2"):
        held = _as_server(f"infoscreen/{name}/power/intent", doc_broker)
        assert held is not None
        assert held.payload == f"intent {name}".encode()


def test_a_wrong_password_is_refused(doc_broker: Mosquitto) -> None:
    client = paho.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
    client.username_pw_set("lobby-1", "guess")
    codes: list[Any] = []
    client.on_connect = lambda _c, _u, _f, rc, _p: codes.append(rc)
    client.connect("127.0.0.1", doc_broker.port)
    client.loop_start()
    try:
        wait_for(lambda: codes, what="CONNACK")
        assert codes[0].is_failure
    finally:
        client.loop_stop()
