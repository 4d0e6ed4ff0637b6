"""With a real Mosquitto ACL (password file, one username per screen), a screen can publish
only its own report, and reads only its own intent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from publisher.config import BrokerConfig
from publisher.mqtt import MqttSession
from tests.publisher.broker import Mosquitto, wait_for

ACL = """\
user intent-server
topic readwrite infoscreen/#

pattern read infoscreen/%u/power/intent
pattern read infoscreen/server/status
pattern write infoscreen/%u/power/state
"""


@pytest.fixture
def acl_broker(tmp_path: Path) -> Iterator[Mosquitto]:
    folder = tmp_path / "acl-broker"
    folder.mkdir()
    passwords, acl = folder / "passwd", folder / "acl"
    for i, (user, password) in enumerate(
        [("intent-server", "server-pw"), ("lobby-1", "l1-pw"), ("lobby-2", "l2-pw")]
    ):
        create = ["-c"] if i == 0 else []
        subprocess.run(["mosquitto_passwd", "-b", *create, str(passwords), user, password], check=True)
    acl.write_text(ACL)
    broker = Mosquitto(folder, f"allow_anonymous false\npassword_file {passwords}\nacl_file {acl}\n")
    broker.start()
    yield broker
    broker.stop()


def session(
    broker: Mosquitto, user: str, password: str, on_message: Callable[[str, bytes], None] | None = None
) -> MqttSession:
    url = f"mqtt://{user}:{password}@127.0.0.1:{broker.port}"
    s = MqttSession(BrokerConfig.from_url(url), on_message=on_message)
    s.connect()
    return s


def server_sees(broker: Mosquitto, topic: str) -> dict[str, Any] | None:
    """The retained report on `topic`, as the server's user reads it (a probe published after
    the SUBACKs arrives after any retained message: no waiting on a timer)."""
    found: list[tuple[str, bytes]] = []
    reader = session(broker, "intent-server", "server-pw", lambda t, p: found.append((t, bytes(p))))
    try:
        reader.subscribe(topic, qos=1)
        reader.subscribe("infoscreen/probe", qos=1)
        reader.publish("infoscreen/probe", b"x", retain=False)
        wait_for(lambda: any(t == "infoscreen/probe" for t, _ in found), what="the probe")
        reports = [p for t, p in found if t == topic and p]
        return json.loads(reports[0]) if reports else None
    finally:
        reader.close()


def test_a_screen_publishes_its_own_report_and_nobody_elses(acl_broker: Mosquitto) -> None:
    """`screen lobby-1` with lobby-1's credentials: its report is stored. The same user
    publishing lobby-2's report is refused (MQTT 5: PUBACK 'Not authorized') and nothing is
    retained there."""
    url = f"mqtt://lobby-1@127.0.0.1:{acl_broker.port}"
    env = {**os.environ, "INTENT_LEDGER_MQTT_URL": url, "INTENT_LEDGER_MQTT_PASSWORD": "l1-pw"}
    process = subprocess.Popen(
        [sys.executable, "-c", "from cli.main import main; main()", "screen", "lobby-1", "--on-cmd", "true"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        own = wait_for(
            lambda: server_sees(acl_broker, "infoscreen/lobby-1/power/state"), 20, "lobby-1's report"
        )
        assert own["client_id"] == "lobby-1"
        assert own["tv_state"] == "unknown"
    finally:
        process.terminate()
        assert process.wait(15) == 0
    assert "l1-pw" not in process.stdout.read()  # type: ignore[union-attr]

    spoof = session(acl_broker, "lobby-1", "l1-pw")
    try:
        forged = dict(own, client_id="lobby-2")
        delivery = spoof.publish("infoscreen/lobby-2/power/state", json.dumps(forged).encode())
        assert delivery.wait(5)
        assert delivery.error is not None
        assert "Not authorized" in delivery.error
    finally:
        spoof.close()
    assert server_sees(acl_broker, "infoscreen/lobby-2/power/state") is None
