"""Report ingestion in a process of its own (publisher.reportproc), on a real Mosquitto, both stores.

Through the daemon composed as `run` composes it (`report_process`): reports
accepted and stored, rejections counted in the daemon's metrics, a client
registered while running is known at once, a killed child is restarted; and
through the real `intent-ledger run`: the child is gone after SIGTERM and after
the parent is SIGKILLed.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from ledger import Ledger
from projections.observation_reads import latest_reports
from projections.shard import Shard
from publisher.config import BrokerConfig
from publisher.daemon import Daemon, RunSettings
from publisher.reportchild import ChildSpec
from publisher.reportproc import HANG_AFTER, RECEIVE_AT_MOST, ReportProcess
from publisher.settings import Backoff
from tests.conftest import ME
from tests.publisher.broker import Mosquitto, free_port, wait_for
from tests.publisher.helpers import fast, make_log, running
from tests.publisher.test_daemon_observe import report, reports_counted, switch_on_now
from tests.publisher.test_observe import Screens


@pytest.fixture
def screens(mosquitto: Mosquitto) -> Iterator[Screens]:
    s = Screens(mosquitto.port)
    yield s
    s.close()


def alive(pid: int) -> bool:
    """A process that runs (a zombie waiting for its parent to reap it does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (FileNotFoundError, ProcessLookupError):
                continue
            if int(stat[1]) == pid and stat[0] not in ("Z", "X"):
                found.append(int(entry.name))
    return found


def test_the_report_process_classifies_stores_counts_and_comes_back(
    ledger: Ledger, mosquitto: Mosquitto, screens: Screens
) -> None:
    ledger.add_client("lobby-1", "lobby", ME)
    log, capture = make_log()
    settings = RunSettings(report_process=True)
    daemon = Daemon(ledger, BrokerConfig.from_url(mosquitto.url), settings, log=log, **fast())
    observer = daemon.observer
    assert isinstance(observer, ReportProcess)
    engine = ledger.factory.datastore.engine  # type: ignore[attr-defined]
    with running(daemon):
        wait_for(lambda: observer.process is not None, what="the report process")
        child = observer.process.pid
        screens.send("lobby-1", report("lobby-1", "off"))
        screens.send("lobby-2", b"\xff\xfe not json")
        screens.send("ghost", report("ghost"))
        wait_for(lambda: sum(reports_counted(daemon).values()) >= 3, timeout=30, what="classified")
        assert reports_counted(daemon) == {"accepted": 1, "invalid": 1, "unknown_client": 1}
        wait_for(lambda: "lobby-1" in latest_reports(engine), what="the report stored")
        # Registered while the process runs: its first report is accepted, not unknown.
        ledger.add_client("lobby-2", "lobby", ME)
        screens.send("lobby-2", report("lobby-2", "on"))
        wait_for(lambda: reports_counted(daemon).get("accepted") == 2, what="lobby-2 accepted")
        ages = daemon.metrics.registry.get_sample_value
        wait_for(
            lambda: ages("intent_ledger_screen_report_age_seconds", {"client_id": "lobby-2"}) is not None,
            what="lobby-2's report age",
        )
        # A child that dies is started again (one log line), and the daemon publishes throughout.
        os.kill(child, signal.SIGKILL)
        wait_for(lambda: capture.records("reports_process"), what="the child's death logged")
        switch_on_now(ledger, "lobby-1")
        wait_for(
            lambda: any(r.get("desired_state") == "on" for r in capture.records("publish")),
            what="the override's publish",
        )
        wait_for(lambda: observer.restarts == 1 and observer.process, what="the restart")
        restarted = observer.process.pid
        screens.send("lobby-1", report("lobby-1", "on"))
        wait_for(lambda: latest_reports(engine)["lobby-1"]["tv_state"] == "on", timeout=30, what="stored")
    (line,) = capture.records("reports_process")
    assert line["state"] == "exited"
    # The child's own log lines come out in the daemon's log: its session, twice (the restart).
    assert [r["state"] for r in capture.records("reports_broker")] == ["subscribed", "subscribed"]
    assert not alive(child)
    assert not alive(restarted)  # stopped with the daemon


def _run(db: str, mqtt: str, metrics: int) -> subprocess.Popen[str]:
    env = {**os.environ, "INTENT_LEDGER_DB": db, "INTENT_LEDGER_MQTT_URL": mqtt}
    return subprocess.Popen(
        # The console script, as operators run it (the report process is spawned from it).
        [str(Path(sys.executable).parent / "intent-ledger"), "run", "--metrics-port", str(metrics)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _metric(port: int, line: str) -> float | None:
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    except OSError:
        return None
    for row in text.splitlines():
        if row.startswith(line + " "):
            return float(row.split()[-1])
    return None


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_run_ingests_in_a_child_that_never_outlives_it(
    sqlite_ledger: Ledger, sqlite_url: str, mosquitto: Mosquitto, screens: Screens, how: signal.Signals
) -> None:
    sqlite_ledger.add_client("c1", None, ME)
    port = free_port()
    process = _run(sqlite_url, mosquitto.url, port)
    try:
        # The report process (and multiprocessing's resource tracker beside it).
        spawned = wait_for(lambda: children(process.pid), timeout=30, what="the report process")
        screens.send("c1", report("c1", "off"))
        screens.send("ghost", report("ghost"))
        accepted = 'intent_ledger_reports_total{result="accepted"}'
        unknown = 'intent_ledger_reports_total{result="unknown_client"}'
        wait_for(lambda: _metric(port, accepted) == 1.0, timeout=30, what="accepted, on the daemon's port")
        wait_for(lambda: _metric(port, unknown) == 1.0, what="unknown_client counted")
        engine = sqlite_ledger.factory.datastore.engine  # type: ignore[attr-defined]
        wait_for(lambda: "c1" in latest_reports(engine), what="stored")
        process.send_signal(how)
        code = process.wait(30)
        wait_for(lambda: not any(alive(p) for p in spawned), timeout=30, what="the children gone")
    finally:
        process.kill()
    assert code == (0 if how == signal.SIGTERM else -signal.SIGKILL)
    assert process.stderr is not None
    assert process.stderr.read() == ""  # no traceback from either process


def test_a_child_that_cannot_start_says_why_in_one_line_and_is_tried_again(tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    spec = ChildSpec(f"sqlite:///{missing}", {}, BrokerConfig(port=free_port()), "infoscreen", Shard(), 900)
    log, capture = make_log()
    process = ReportProcess(spec, registry=CollectorRegistry(), log=log, backoff=Backoff(0.05, 0.1))
    process.start()

    def tried_twice() -> bool:
        process.tick(datetime.now(UTC))
        return process.restarts >= 2 and process.process is None

    wait_for(tried_twice, timeout=60, what="two restarts")
    process.close()
    lines = capture.records("reports_process")
    failed = [r for r in lines if r["state"] == "failed"]
    assert len(failed) >= 2
    assert str(missing) in failed[0]["error"]
    assert "\n" not in failed[0]["error"]
    assert [r["error"] for r in lines if r["state"] == "exited"][:2] == ["exited with code 1"] * 2
    assert not missing.exists()  # never created by the child


def test_a_flood_of_the_childs_log_records_does_not_hold_back_its_tallies(tmp_path: Path) -> None:
    # Thousands of topics rejected at once log a record each: the parent takes them beside the
    # tallies, so a tally sent after them is counted at the next look, not hundreds of looks later.
    db = f"sqlite:///{tmp_path / 'l.db'}"
    spec = ChildSpec(db, {}, BrokerConfig(port=free_port()), "infoscreen", Shard(), 900)
    log, capture = make_log()
    registry = CollectorRegistry()
    process = ReportProcess(spec, registry=registry, log=log)
    ours, theirs = multiprocessing.Pipe()
    process._conn = ours  # the child's pipe, without a child: what arrives on it is the test
    for i in range(200):  # within what the pipe buffers, so all of it is there before the look
        theirs.send(("log", "report", {"result": "unknown_client", "topic": f"infoscreen/s{i}/power/state"}))
    theirs.send(("tally", {"unknown_client": 200}, []))
    process._receive(RECEIVE_AT_MOST)
    counted = registry.get_sample_value("intent_ledger_reports_total", {"result": "unknown_client"})
    assert counted == 200
    assert len(capture.records("report")) == 200
    ours.close()
    theirs.close()


def test_a_child_that_hangs_is_killed_and_started_again(tmp_path: Path, mosquitto: Mosquitto) -> None:
    # A stopped process never exits: only its silence tells. It is killed, said in one line,
    # and a new child subscribes in its place.
    db = f"sqlite:///{tmp_path / 'l.db'}"
    Ledger(db).close()
    spec = ChildSpec(db, {}, mosquitto.config(), "infoscreen", Shard(), 900)
    log, capture = make_log()
    process = ReportProcess(spec, registry=CollectorRegistry(), log=log, backoff=Backoff(0.05, 0.1))
    process.start()

    def ticked(ready: Callable[[], Any]) -> Callable[[], Any]:
        def tick_then_ask() -> Any:
            process.tick(datetime.now(UTC))
            return ready()

        return tick_then_ask

    try:
        wait_for(ticked(lambda: process.subscribed and process.said_alive), timeout=60, what="the child up")
        hung = process.process.pid
        os.kill(hung, signal.SIGSTOP)
        process.hang_after = 1.0  # from its last word, after the stop or a moment before it
        wait_for(ticked(lambda: process.restarts == 1), timeout=30, what="the restart")
        process.hang_after = HANG_AFTER
        wait_for(ticked(lambda: process.subscribed), timeout=60, what="the new child subscribed")
        assert process.process.pid != hung
        assert not alive(hung)
    finally:
        process.close()
    (line,) = capture.records("reports_process")
    assert line == {**line, "state": "exited", "error": "not alive for 1 s: killed"}
