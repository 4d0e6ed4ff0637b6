"""`intent-ledger simulate` end to end: the real daemon (which ingests the reports), a real
Mosquitto, and the compliance it prints equal to `audit compliance` for the same range."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

from cli.main import cli
from ledger import Ledger, TargetRef, Window
from projections.shard import Shard
from publisher import simulation
from publisher.config import BrokerConfig
from publisher.daemon import Daemon
from publisher.errors import PublisherError
from publisher.screen import ScreenSettings
from publisher.settings import RunSettings
from publisher.simulation import simulated_client_id
from tests.conftest import ME
from tests.publisher.broker import Mosquitto, free_port, retained
from tests.publisher.helpers import fast, make_log, running


@pytest.fixture
def deployment(sqlite_ledger: Ledger, mosquitto: Mosquitto) -> Iterator[Ledger]:
    """Three lobby screens: two with an event running now, one without; the daemon and ingestion."""
    now = datetime.now(UTC).replace(microsecond=0)
    for c in ("lobby-1", "lobby-2", "lobby-3"):
        sqlite_ledger.add_client(c, "lobby", ME)
    running_now = Window(now - timedelta(hours=1), now + timedelta(hours=1))
    for c in ("lobby-1", "lobby-2"):
        sqlite_ledger.add_event(f"show-{c}", TargetRef("client", c), running_now, ME)
    daemon = Daemon(sqlite_ledger, BrokerConfig.from_url(mosquitto.url), log=make_log()[0], **fast())
    with running(daemon):  # it ingests the reports too
        yield sqlite_ledger


def simulate(db: str, mqtt: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "INTENT_LEDGER_DB": db, "INTENT_LEDGER_MQTT_URL": mqtt}
    return subprocess.run(
        [sys.executable, "-c", "from cli.main import main; main()", "simulate", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.usefixtures("deployment")
def test_simulate_prints_the_compliance_of_the_run_as_audit_compliance_does(
    sqlite_url: str, mosquitto: Mosquitto
) -> None:
    """Simulated screens obey at once: the scheduled ones are observed on for the whole run,
    the unscheduled one never on; the JSON equals `audit compliance` for the same range; each
    screen's last report says the simulation ended."""
    done = simulate(sqlite_url, mosquitto.url, "--group", "lobby", "--duration", "4", "--json")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # every last report was stored in time
    answer = json.loads(done.stdout)
    by_client = {c["client_id"]: c for c in answer["clients"]}
    assert sorted(by_client) == ["lobby-1", "lobby-2", "lobby-3"]
    span = (datetime.fromisoformat(answer["to"]) - datetime.fromisoformat(answer["from"])).total_seconds()
    assert span >= 4
    for c in ("lobby-1", "lobby-2"):
        row = by_client[c]
        assert row["scheduled_on_s"] == span
        # The range starts once every screen follows its intent: on throughout.
        assert (row["observed_on_s"], row["unknown_s"], row["coverage"]) == (span, 0, 1.0)
        assert (row["unscheduled_on_s"], row["mismatches"]) == (0, [])
    quiet = by_client["lobby-3"]
    assert (quiet["scheduled_on_s"], quiet["observed_on_s"], quiet["unscheduled_on_s"]) == (0, 0, 0)
    audit = CliRunner().invoke(
        cli,
        [
            "--db",
            sqlite_url,
            "audit",
            "compliance",
            "--group",
            "lobby",
            "--from",
            answer["from"],
            "--to",
            answer["to"],
            "--json",
        ],
    )
    assert audit.exit_code == 0, audit.stderr
    assert json.loads(audit.stdout) == answer
    last = retained(mosquitto.port, "infoscreen/lobby-1/power/state")
    assert last is not None
    assert json.loads(last.payload)["tv_state"] == "unknown"
    assert json.loads(last.payload)["detail"] == "simulation ended"


@pytest.mark.usefixtures("deployment")
def test_simulate_text_output_and_bad_input(sqlite_url: str, mosquitto: Mosquitto) -> None:
    """Text: the compliance table and the fleet line. An unknown client or no selection: exit 2
    with one line, nothing simulated."""
    done = simulate(sqlite_url, mosquitto.url, "--client", "lobby-1", "--duration", "1")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].split()[:2] == ["client_id", "scheduled_on_s"]
    assert "fleet (1 clients" in done.stdout
    for args in (["--client", "nobody"], ["--group", "empty"], [], ["--all", "--group", "lobby"]):
        bad = simulate(sqlite_url, mosquitto.url, *args, "--duration", "1")
        assert bad.returncode == 2, bad.stderr
        assert len(bad.stderr.splitlines()) == 1, bad.stderr


def test_a_broker_that_cannot_be_reached_fails_the_simulation_not_an_empty_audit(
    sqlite_ledger: Ledger, mosquitto: Mosquitto
) -> None:
    """No screen connected by the end of the warm-up: one line naming the broker, nothing audited.
    Connected but given no intent (no daemon publishes): one line asking whether one runs."""
    sqlite_ledger.add_client("lobby-1", "lobby", ME)
    settings = ScreenSettings(prefix="infoscreen", report_every=300, mqtt_client_id=simulated_client_id)
    dead = BrokerConfig.from_url(f"mqtt://127.0.0.1:{free_port()}")
    with pytest.raises(
        PublisherError, match=r"cannot reach broker mqtt://127\.0\.0\.1:\d+: no simulated screen"
    ):
        simulation.simulate(sqlite_ledger, dead, ["lobby-1"], 1, settings, warm_up=1.0)
    alive = BrokerConfig.from_url(mosquitto.url)
    with pytest.raises(PublisherError, match=r"1 simulated screen\(s\) received no intent .*\(lobby-1\)"):
        simulation.simulate(sqlite_ledger, alive, ["lobby-1"], 1, settings, warm_up=1.0)


def test_some_screens_without_an_intent_are_audited_not_a_failure(
    sqlite_ledger: Ledger, mosquitto: Mosquitto
) -> None:
    """A daemon of shard 0/2 publishes only its own client's intent: the other screen follows
    none, and the run is still audited (its seconds unknown), not refused."""
    shard = Shard(0, 2)
    mine = next(f"lobby-{i}" for i in range(100) if shard.owns(f"lobby-{i}"))
    other = next(f"lobby-{i}" for i in range(100) if not shard.owns(f"lobby-{i}"))
    for c in (mine, other):
        sqlite_ledger.add_client(c, "lobby", ME)
    broker = BrokerConfig.from_url(mosquitto.url)
    daemon = Daemon(sqlite_ledger, broker, RunSettings(shard=shard), log=make_log()[0], **fast())
    settings = ScreenSettings(prefix="infoscreen", report_every=300, mqtt_client_id=simulated_client_id)
    with running(daemon):
        run = simulation.simulate(sqlite_ledger, broker, [mine, other], 1, settings, warm_up=2.0)
    assert run.clients == [mine, other]
    assert run.end > run.start
