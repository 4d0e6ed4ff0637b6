"""Hot standby and shards: one active daemon per shard, a standby takes over after SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ledger import Ledger, TargetRef, Window
from ledger.values import floor_second
from projections.projector import Projector
from projections.shard import Shard
from tests.conftest import ME
from tests.publisher.broker import Mosquitto, Subscriber, retained, wait_for


def test_shards_cover_every_client_exactly_once(sqlite_ledger: Ledger) -> None:
    """Three shards' logs are disjoint and together are the whole fleet (group topics too)."""
    for i in range(60):
        sqlite_ledger.add_client(f"c{i}", f"g{i % 4}", ME)
    shards = []
    for index in range(3):
        projector = Projector(sqlite_ledger, group_topics=True, shard=Shard(index, 3))
        projector.pull()
        shards.append(set(projector.names()))
    everyone = {f"c{i}" for i in range(60)} | {f"groups/g{g}" for g in range(4)}
    assert set().union(*shards) == everyone
    assert sum(len(s) for s in shards) == len(everyone)
    assert all(shards)  # crc32 spreads 64 names over 3 shards


def _daemon(db: str, mqtt: str, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "INTENT_LEDGER_DB": db, "INTENT_LEDGER_MQTT_URL": mqtt}
    return subprocess.Popen(
        [sys.executable, "-c", "from cli.main import main; main()", "run", "--ttl", "10"],
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )


def _records(log: Path, event: str) -> list[dict[str, object]]:
    text = log.read_text()
    complete = text[: text.rfind("\n") + 1]  # the daemon may be mid-line: only whole lines
    lines = [line for line in complete.splitlines() if line.startswith("{")]
    return [r for r in map(json.loads, lines) if r["event"] == event]


def _status(port: int) -> dict[str, str]:
    message = retained(port, "infoscreen/server/status")
    return {} if message is None else json.loads(message.payload)


def test_standby_takes_over_after_sigkill_with_the_same_intent_ids(
    ledger: Ledger, db_url: str, mosquitto: Mosquitto, subscribe: Callable[..., Subscriber], tmp_path: Path
) -> None:
    """Two real processes; the active one is SIGKILLed; the standby takes over (how fast: bench_failover)."""
    now = floor_second(datetime.now(UTC))
    for i in range(20):
        ledger.add_client(f"c{i}", "lobby", ME)
    ledger.add_event(
        "on", TargetRef("group", "lobby"), Window(now - timedelta(minutes=5), now + timedelta(hours=1)), ME
    )
    sub = subscribe("infoscreen/+/power/intent")
    a_log, b_log = tmp_path / "a.log", tmp_path / "b.log"
    a = _daemon(db_url, mosquitto.url, a_log)
    b = None
    try:
        first = wait_for(
            lambda: (s := _status(mosquitto.port)).get("status") == "online" and s, 20, "A online"
        )
        wait_for(lambda: len({m.topic for m in sub.messages}) == 20, 20, "A's 20 intents")
        before = {m.topic: m.json()["intent_id"] for m in sub.messages}
        b = _daemon(db_url, mosquitto.url, b_log)
        wait_for(lambda: _records(b_log, "role"), 20, "B to report its role")
        assert _records(b_log, "role")[0]["role"] == "standby"
        assert _records(a_log, "role")[0]["role"] == "active"

        a.send_signal(signal.SIGKILL)
        a.wait(10)
        wait_for(
            lambda: [r for r in _records(b_log, "publish") if r["result"] == "acked"], 10, "B's publishes"
        )
        second = wait_for(
            lambda: (s := _status(mosquitto.port)).get("status") == "online" and s, 10, "B online"
        )
        assert second["started_at"] >= first["started_at"]
        wait_for(
            lambda: len([r for r in _records(b_log, "publish") if r["result"] == "acked"]) >= 20, 10, "all 20"
        )
        after = {r["topic"]: r["intent_id"] for r in _records(b_log, "publish")}
        assert after == before  # same intent ids: nothing changed semantically
        assert all(m.json()["power"]["desired_state"] == "on" for m in sub.messages)  # no off gap
    finally:
        for process in (a, b):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(15)
