"""`intent-ledger run` as operators use it: --once, ACLs, credentials, MQTT 3.1.1, signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from cli.main import cli
from ledger import Ledger
from publisher.config import BrokerConfig
from publisher.errors import NotConnected
from publisher.mqtt import MqttSession
from publisher.outbox import Kind
from tests.conftest import ME
from tests.publisher.broker import Mosquitto, Subscriber, retained, wait_for


def run(db: str, mqtt: str, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--db", db, "--mqtt-url", mqtt, "run", *args])


def publishes(result: Result) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return [r for r in lines if r["event"] == "publish"]


def test_once_publishes_every_intent_and_exits_0(
    sqlite_ledger: Ledger, sqlite_url: str, mosquitto: Mosquitto
) -> None:
    """--once: every client published, every PUBACK waited for, exit 0."""
    for i in range(25):
        sqlite_ledger.add_client(f"c{i}", "lobby", ME)
    result = run(sqlite_url, mosquitto.url, "--once", "--group-topics")
    assert result.exit_code == 0, result.stderr
    records = publishes(result)
    assert len(records) == 26
    assert {r["result"] for r in records} == {"acked"}
    assert retained(mosquitto.port, "infoscreen/c7/power/intent") is not None
    assert retained(mosquitto.port, "infoscreen/groups/lobby/power/intent") is not None


@pytest.fixture
def acl_broker(tmp_path: Path) -> Iterator[Mosquitto]:
    folder = tmp_path / "acl-broker"
    folder.mkdir()
    passwords, acl = folder / "passwd", folder / "acl"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(passwords), "intent-server", "s3cret-pw"], check=True)
    acl.write_text(
        "user intent-server\n"
        "topic write infoscreen/allowed-1/power/intent\n"
        "topic readwrite infoscreen/server/status\n"
    )
    broker = Mosquitto(folder, f"allow_anonymous false\npassword_file {passwords}\nacl_file {acl}\n")
    broker.start()
    yield broker
    broker.stop()


def test_acl_denied_publish_is_a_failure_and_once_exits_1(
    sqlite_ledger: Ledger, sqlite_url: str, acl_broker: Mosquitto
) -> None:
    """Under MQTT 5 a denied publish is acknowledged 'Not authorized': counted, logged, exit 1."""
    sqlite_ledger.add_client("allowed-1", None, ME)
    sqlite_ledger.add_client("denied-1", None, ME)
    url = f"mqtt://intent-server:s3cret-pw@127.0.0.1:{acl_broker.port}"
    result = run(sqlite_url, url, "--once")
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
    assert "infoscreen/denied-1/power/intent" in result.stderr
    assert "Not authorized" in result.stderr
    by_client = {r["client_id"]: r for r in publishes(result)}
    assert by_client["allowed-1"]["result"] == "acked"
    assert by_client["denied-1"]["result"] == "failed"
    assert "Not authorized" in str(by_client["denied-1"]["error"])
    assert "s3cret-pw" not in result.stdout + result.stderr


def test_wrong_credentials_are_one_line_and_exit_1(
    sqlite_ledger: Ledger, sqlite_url: str, acl_broker: Mosquitto
) -> None:
    """A refused CONNECT names the broker (without the password) and the reason."""
    sqlite_ledger.add_client("allowed-1", None, ME)
    result = run(sqlite_url, f"mqtt://intent-server:wrong-pw@127.0.0.1:{acl_broker.port}", "--once")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: broker mqtt://intent-server:***@127.0.0.1")
    assert "refused the connection" in result.stderr
    assert "wrong-pw" not in result.stderr


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://127.0.0.1", "invalid broker URL"),
        ("mqtt://h:99999", "bad port"),
        ("mqtt://h?color=red", "unknown broker URL option"),
        ("mqtt://[::1", "malformed host"),
    ],
)
def test_bad_broker_urls_exit_2(sqlite_url: str, url: str, message: str) -> None:
    """A malformed --mqtt-url is bad input."""
    result = run(sqlite_url, url, "--once")
    assert result.exit_code == 2
    assert message in result.stderr


@pytest.mark.parametrize(
    ("prefix", "message"),
    [
        ("p" * 201, "longer than 200 characters"),
        ("p" * 70_000 + "/+", "longer than 200 characters"),
        ("site\x01/screens", "control characters"),
        ("site/+/screens", "levels without + #"),
    ],
    ids=["long", "long-wildcard", "control", "wildcard"],
)
def test_a_bad_topic_prefix_is_bad_input(sqlite_url: str, prefix: str, message: str) -> None:
    result = run(sqlite_url, "mqtt://127.0.0.1:1", "--once", "--prefix", prefix)
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.splitlines()
    assert message in line
    assert len(line) < 300


def test_refresh_must_be_shorter_than_ttl(sqlite_url: str, mosquitto: Mosquitto) -> None:
    """Refreshing less often than the ttl would let intents expire: refused."""
    result = run(sqlite_url, mosquitto.url, "--ttl", "60", "--refresh", "60")
    assert result.exit_code == 2
    assert "shorter than --ttl" in result.stderr


def test_mqtt_3_1_1_publishes_without_expiry_and_says_so(
    sqlite_ledger: Ledger, sqlite_url: str, mosquitto: Mosquitto, subscribe: Callable[..., Subscriber]
) -> None:
    """--mqtt-version 3.1.1: expiry lives in the payload alone, and the daemon says so."""
    sqlite_ledger.add_client("c1", None, ME)
    sub = subscribe("infoscreen/c1/power/intent")
    result = run(sqlite_url, mosquitto.url, "--once", "--mqtt-version", "3.1.1")
    assert result.exit_code == 0
    assert any('"notice"' in line and "3.1.1" in line for line in result.stdout.splitlines())
    (message,) = sub.wait(lambda s: s.on("infoscreen/c1/power/intent"), what="the intent")
    assert message.expiry is None
    assert message.json()["expires_at"]


def test_a_session_never_queues_while_disconnected(mosquitto: Mosquitto) -> None:
    """After the connection is lost, publish raises NotConnected and paho holds nothing."""
    session = MqttSession(BrokerConfig.from_url(mosquitto.url))
    session.connect()
    assert session.publish("infoscreen/x/power/intent", b"{}", expiry=60).wait(5)
    mosquitto.kill()
    wait_for(lambda: session.lost.is_set(), what="the disconnect to be noticed")
    with pytest.raises(NotConnected):
        session.publish("infoscreen/x/power/intent", b"stale", expiry=60)
    assert session.client._out_messages == {}  # nothing paho could send after a reconnect
    session.close()


def _daemon_process(db: str, mqtt: str) -> subprocess.Popen[str]:
    env = {**os.environ, "INTENT_LEDGER_DB": db, "INTENT_LEDGER_MQTT_URL": mqtt}
    return subprocess.Popen(
        [sys.executable, "-c", "from cli.main import main; main()", "run"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _status(port: int) -> dict[str, str] | None:
    message = retained(port, "infoscreen/server/status")
    return None if message is None else json.loads(message.payload)


def test_sigterm_publishes_offline_and_exits_0(
    sqlite_ledger: Ledger, sqlite_url: str, mosquitto: Mosquitto
) -> None:
    """The real process: `online` while it runs; SIGTERM -> `offline` (same start time), exit 0."""
    sqlite_ledger.add_client("c1", None, ME)
    process = _daemon_process(sqlite_url, mosquitto.url)
    try:
        online = wait_for(
            lambda: (s := _status(mosquitto.port)) and s["status"] == "online" and s,
            timeout=20,
            what="status online",
        )
        wait_for(lambda: retained(mosquitto.port, "infoscreen/c1/power/intent"), what="c1's intent")
        process.send_signal(signal.SIGTERM)
        assert process.wait(15) == 0
    finally:
        process.kill()
    assert _status(mosquitto.port) == {"status": "offline", "started_at": online["started_at"]}


@pytest.mark.usefixtures("sqlite_ledger")
def test_a_killed_daemon_leaves_its_will(sqlite_url: str, mosquitto: Mosquitto) -> None:
    """SIGKILL: the broker publishes the Last Will `offline`, with the dead server's start time."""
    process = _daemon_process(sqlite_url, mosquitto.url)
    try:
        online = wait_for(
            lambda: (s := _status(mosquitto.port)) and s["status"] == "online" and s,
            timeout=20,
            what="status online",
        )
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        wait_for(lambda: (_status(mosquitto.port) or {}).get("status") == "offline", what="the Will")
    finally:
        process.kill()
    assert _status(mosquitto.port) == {"status": "offline", "started_at": online["started_at"]}


def test_a_burst_longer_than_the_ack_timeout_is_not_a_failure(
    sqlite_ledger: Ledger, mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Thousands of publishes wait in paho's queue past the ack timeout; acks keep flowing: all good."""
    from ledger import Meta
    from ledger.sync import parse_snapshot
    from publisher import acks, mqtt
    from publisher.daemon import Daemon, RunSettings
    from tests.publisher.helpers import PacedMonotonic, make_log

    fleet = {"clients": [{"client_id": f"c{i:05d}", "group_id": "g"} for i in range(8000)]}
    sqlite_ledger.sync(parse_snapshot(json.dumps(fleet)), prune=False, now=datetime.now(UTC), meta=Meta("t"))
    # The PUBACK bookkeeping on a clock paced by paho's thread: two PUBACKs are a few steps
    # apart, the last of 8,000 publishes queued at once waits thousands (see PacedMonotonic).
    clock = PacedMonotonic()
    monkeypatch.setattr(mqtt, "time", clock)
    monkeypatch.setattr(acks, "time", clock)
    timeout = 200.0  # steps: far above the gap between two PUBACKs, far below a burst's wait
    log, capture = make_log()
    settings = RunSettings(ack_timeout=timeout, window=8000)  # all 8,000 queued in paho at once
    daemon = Daemon(sqlite_ledger, BrokerConfig.from_url(mosquitto.url), settings, log=log)
    assert daemon.run_once() == []
    acked = [r for r in capture.records("publish") if r["result"] == "acked"]
    assert len(acked) == 8000
    assert max(r["latency_ms"] for r in acked) / 1000 > timeout  # waited past the timeout


def test_a_publish_window_bounds_what_waits_for_a_puback(sqlite_ledger: Ledger, mosquitto: Mosquitto) -> None:
    """With window 300, 2,000 intents go out 300 at a time at most; all are acknowledged."""
    from ledger import Meta
    from ledger.sync import parse_snapshot
    from publisher.daemon import Daemon, RunSettings
    from tests.publisher.helpers import make_log

    fleet = {"clients": [{"client_id": f"c{i:05d}", "group_id": "g"} for i in range(2000)]}
    sqlite_ledger.sync(parse_snapshot(json.dumps(fleet)), prune=False, now=datetime.now(UTC), meta=Meta("t"))
    log, capture = make_log()
    daemon = Daemon(sqlite_ledger, BrokerConfig.from_url(mosquitto.url), RunSettings(window=300), log=log)
    peak = 0
    publish = daemon.outbox.publish

    def watched(name: str, now: datetime, kind: Kind, known: tuple[int, str] | None = None) -> None:
        nonlocal peak
        publish(name, now, kind, known)
        peak = max(peak, len(daemon.outbox.outgoing))

    daemon.outbox.publish = watched  # type: ignore[method-assign]
    assert daemon.run_once() == []
    assert peak == 300
    acked = [r["client_id"] for r in capture.records("publish") if r["result"] == "acked"]
    assert sorted(acked) == [f"c{i:05d}" for i in range(2000)]
