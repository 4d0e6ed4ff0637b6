"""Report ingestion on a real Mosquitto: every acceptance and rejection rule of DESIGN 13.

The component alone here (its clock injected through `tick(now)`); the daemon
composing it is tested in test_daemon_observe.py.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as paho
import pytest
import sqlalchemy
from eventsourcing.persistence import PersistenceError
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from prometheus_client import CollectorRegistry, generate_latest

from ledger import Ledger
from ledger.values import format_instant
from projections.observation_reads import runs_between
from publisher.observe import RESULTS
from publisher.report import build_report, encode_report
from tests.publisher.broker import Mosquitto, wait_for
from tests.publisher.helpers import make_log, observer_on

T = datetime(2027, 3, 29, 5, 30, tzinfo=UTC)
ERRORS = (PersistenceError, sqlalchemy.exc.SQLAlchemyError, OSError)
ON_ID = "0f0c7a4e-6b0c-5d8e-9a51-3a2f1c9d4b7e"


def report(client_id: str, at: datetime = T, state: str = "on", **changes: object) -> bytes:
    body = build_report(client_id=client_id, reported_at=at, intent_id=ON_ID, tv_state=state, since=at)  # type: ignore[arg-type]
    document = json.loads(encode_report(body)) | changes
    return json.dumps(document).encode()


class Screens:
    """One MQTT 5 connection that publishes reports (retained, QoS 1) as any screen would."""

    def __init__(self, port: int) -> None:
        self.client = paho.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def send(self, client_id: str, payload: bytes) -> None:
        info = self.client.publish(f"infoscreen/{client_id}/power/state", payload, qos=1, retain=True)
        info.wait_for_publish(5)
        assert info.is_published()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def screens(mosquitto: Mosquitto) -> Iterator[Screens]:
    s = Screens(mosquitto.port)
    yield s
    s.close()


class Rig:
    def __init__(self, ledger: Ledger, mosquitto: Mosquitto) -> None:
        self.registry = CollectorRegistry()
        self.log, self.capture = make_log()
        self.registered = {"lobby-1", "lobby-2"}
        self.intents: list[tuple[str, str, datetime, int]] = []
        self.observer = observer_on(
            ledger,
            mosquitto,
            self.log,
            self.registry,
            errors=ERRORS,
            registered=self.registered.__contains__,
            intended=lambda: self.intents,
        )
        self.observer.start()
        self.link = self.observer.link
        assert self.link is not None
        wait_for(self.link.subscribed.is_set, what="the SUBACK")
        self.ledger = ledger

    def count(self, result: str) -> float:
        return self.registry.get_sample_value("intent_ledger_reports_total", {"result": result}) or 0.0

    def counts(self) -> dict[str, float]:
        return {r: self.count(r) for r in RESULTS if self.count(r)}

    def until(self, now: datetime, total: int) -> dict[str, float]:
        def done() -> bool:
            self.observer.tick(now)
            return sum(self.counts().values()) >= total

        wait_for(done, what=f"{total} reports classified")
        return self.counts()

    def runs(self, client_id: str) -> list[tuple[str, str, str]]:
        engine = self.ledger.factory.datastore.engine  # type: ignore[attr-defined]
        found = runs_between(engine, "2027-03-29T00:00:00Z", "2027-03-30T00:00:00Z", [client_id])
        return [(r.started_at, r.tv_state, r.last_reported_at) for r in found.get(client_id, [])]

    def close(self) -> None:
        self.observer.close()


@pytest.fixture
def rig(ledger: Ledger, mosquitto: Mosquitto) -> Iterator[Rig]:
    r = Rig(ledger, mosquitto)
    yield r
    r.close()


def test_each_rule_accepts_or_rejects_and_only_accepted_reports_are_stored(
    rig: Rig, screens: Screens
) -> None:
    screens.send("lobby-1", report("lobby-1"))
    screens.send("lobby-2", report("lobby-2", state="off", detail="cec: standby"))
    screens.send("lobby-1", report("lobby-1", padding="x" * 4096))  # over 4 KB
    screens.send("lobby-2", b"\x00\xffgarbage")
    screens.send("lobby-2", report("lobby-1", at=T + timedelta(seconds=1)))  # another client's report
    screens.send("ghost", report("ghost"))  # not registered
    screens.send("lobby-1", report("lobby-1", at=T + timedelta(seconds=361)))  # 301 s ahead
    screens.send("lobby-2", report("lobby-2", at=T - timedelta(seconds=241)))  # 301 s behind
    screens.send("lobby-1", report("lobby-1", at=T + timedelta(seconds=60), state="off"))
    counts = rig.until(T + timedelta(seconds=60), 9)
    assert counts == {"accepted": 3, "invalid": 2, "mismatched_id": 1, "unknown_client": 1, "skewed": 2}
    rig.observer.tick(T + timedelta(seconds=62))  # the write is due a second after the first report
    assert rig.observer.writer.pending() == 0
    assert rig.runs("lobby-1") == [
        ("2027-03-29T05:30:00Z", "on", "2027-03-29T05:30:00Z"),
        ("2027-03-29T05:31:00Z", "off", "2027-03-29T05:31:00Z"),
    ]
    assert rig.runs("lobby-2") == [("2027-03-29T05:30:00Z", "off", "2027-03-29T05:30:00Z")]
    assert rig.runs("ghost") == []
    logged = [(r["result"], r["topic"]) for r in rig.capture.records("report")]
    # At most one line a minute per topic: lobby-2's second and third rejections are not logged.
    assert logged == [
        ("invalid", "infoscreen/lobby-1/power/state"),
        ("invalid", "infoscreen/lobby-2/power/state"),
        ("unknown_client", "infoscreen/ghost/power/state"),
    ]
    assert all(
        "\n" not in r["error"] and "Traceback" not in r["error"] for r in rig.capture.records("report")
    )


def test_a_rejection_is_logged_again_after_a_minute(rig: Rig, screens: Screens) -> None:
    screens.send("ghost", report("ghost"))
    rig.until(T, 1)
    screens.send("ghost", report("ghost", at=T + timedelta(seconds=30)))
    rig.until(T + timedelta(seconds=30), 2)
    screens.send("ghost", report("ghost", at=T + timedelta(seconds=61)))
    rig.until(T + timedelta(seconds=61), 3)
    assert [r["result"] for r in rig.capture.records("report")] == ["unknown_client", "unknown_client"]


@pytest.mark.usefixtures("mosquitto")
def test_a_retained_copy_seen_again_is_a_duplicate_not_a_new_report(rig: Rig, screens: Screens) -> None:
    """A new session receives the retained report it already stored: counted, not stored twice."""
    screens.send("lobby-1", report("lobby-1"))
    rig.until(T, 1)
    link = rig.observer.link
    assert link is not None
    assert link.session is not None
    link.session.client.disconnect()  # the session is lost; the link opens a new one
    wait_for(lambda: link.opened == 2 and link.subscribed.is_set(), what="a new session")
    assert rig.until(T + timedelta(seconds=5), 2) == {"accepted": 1, "duplicate": 1}
    screens.send("lobby-1", report("lobby-1", at=T - timedelta(seconds=10)))  # older than the latest
    assert rig.until(T + timedelta(seconds=5), 3) == {"accepted": 1, "duplicate": 2}


def test_metrics_screens_by_match_and_the_age_of_each_latest_report(rig: Rig, screens: Screens) -> None:
    rig.registered.add("lobby-3")
    rig.intents = [
        ("lobby-1", "on", T, 30),
        ("lobby-2", "off", T - timedelta(seconds=5), 30),  # on, but within grace: a match
        ("lobby-3", "off", T - timedelta(hours=1), 30),  # never reported
    ]
    screens.send("lobby-1", report("lobby-1"))
    screens.send("lobby-2", report("lobby-2"))
    rig.until(T + timedelta(seconds=5), 2)
    rig.observer.tick(T + timedelta(seconds=20))  # the gauge is counted every 15 s
    value = rig.registry.get_sample_value
    assert [value("intent_ledger_screens", {"state": s}) for s in ("match", "mismatch", "unknown")] == [
        2,
        0,
        1,
    ]
    rig.observer.tick(T + timedelta(seconds=40))  # lobby-2's grace is over
    assert [value("intent_ledger_screens", {"state": s}) for s in ("match", "mismatch", "unknown")] == [
        1,
        1,
        1,
    ]
    assert value("intent_ledger_screen_report_age_seconds", {"client_id": "lobby-1"}) == 40
    rig.observer.tick(T + timedelta(seconds=900 + 20))
    assert value("intent_ledger_screens", {"state": "unknown"}) == 3  # stale after 900 s
    assert b"intent_ledger_reports_total" in generate_latest(rig.registry)


def test_reports_wait_while_the_database_is_away(
    tmp_path: Path, mosquitto: Mosquitto, screens: Screens
) -> None:
    path = tmp_path / "ledger.db"
    ledger = Ledger(f"sqlite:///{path}?timeout=0.2")
    rig = Rig(ledger, mosquitto)
    blocker = sqlite3.connect(path)
    try:
        blocker.execute("BEGIN EXCLUSIVE")
        screens.send("lobby-1", report("lobby-1"))
        rig.until(T, 1)
        for seconds in (2, 5, 10):  # the first write, then its retries (after 2 s, then 4 s)
            rig.observer.tick(T + timedelta(seconds=seconds))
        wait_for(lambda: rig.capture.records("reports"), what="the write error")
        assert rig.capture.records("reports")[0]["state"] == "error"
        assert rig.observer.writer.pending() == 1
    finally:
        blocker.rollback()
        blocker.close()
    rig.observer.tick(T + timedelta(seconds=60))
    assert rig.observer.writer.pending() == 0
    assert rig.runs("lobby-1") == [("2027-03-29T05:30:00Z", "on", "2027-03-29T05:30:00Z")]
    # Logged once an episode: the first failure, then one line when writing recovers.
    assert [r["state"] for r in rig.capture.records("reports")] == ["error", "ok"]
    assert rig.capture.records("reports")[-1]["failed_attempts"] == 3
    rig.close()
    ledger.close()


def test_close_writes_what_is_left(rig: Rig, screens: Screens) -> None:
    screens.send("lobby-1", report("lobby-1"))
    rig.until(T, 1)
    assert rig.observer.writer.pending() == 1
    rig.observer.close()
    assert rig.runs("lobby-1") == [("2027-03-29T05:30:00Z", "on", "2027-03-29T05:30:00Z")]
    assert format_instant(T) == "2027-03-29T05:30:00Z"


def test_the_screens_gauge_is_counted_a_slice_a_round(rig: Rig) -> None:
    """4,500 screens: three rounds (2,000 a round), then the gauge says all are unknown."""
    rig.intents = [(f"s{i}", "off", T, 30) for i in range(4_500)]
    value = rig.registry.get_sample_value
    rig.observer.tick(T)
    rig.observer.tick(T)
    assert value("intent_ledger_screens", {"state": "unknown"}) is None
    rig.observer.tick(T)
    assert value("intent_ledger_screens", {"state": "unknown"}) == 4_500


def test_in_the_background_writes_leave_the_round_and_wait_out_a_database_away(
    tmp_path: Path, mosquitto: Mosquitto, screens: Screens
) -> None:
    """As the daemon runs it: tick() only hands reports over; the writer's thread retries."""
    path = tmp_path / "ledger.db"
    ledger = Ledger(f"sqlite:///{path}?timeout=0.2")
    log, capture = make_log()
    observer = observer_on(
        ledger,
        mosquitto,
        log,
        CollectorRegistry(),
        registered=lambda name: name == "lobby-1",
        background=True,
    )
    observer.start()
    link, writer = observer.link, observer.background
    assert link is not None
    assert writer is not None
    wait_for(link.subscribed.is_set, what="the SUBACK")
    blocker = sqlite3.connect(path)
    engine = ledger.factory.datastore.engine  # type: ignore[attr-defined]
    try:
        blocker.execute("BEGIN EXCLUSIVE")
        screens.send("lobby-1", report("lobby-1"))

        def handed_over() -> int:
            observer.tick(T)
            return writer.pending()

        wait_for(handed_over, what="the report handed over")
        wait_for(lambda: writer.failures >= 2, what="a retry that fails too")
        assert [r["state"] for r in capture.records("reports")] == ["error"]
    finally:
        blocker.rollback()
        blocker.close()
    found = wait_for(
        lambda: runs_between(engine, "2027-03-29T00:00:00Z", "2027-03-30T00:00:00Z"), 60, "stored"
    )
    assert [r.tv_state for r in found["lobby-1"]] == ["on"]
    wait_for(lambda: len(capture.records("reports")) == 2, what="the recovery logged")
    assert [r["state"] for r in capture.records("reports")] == ["error", "ok"]
    observer.close()
    ledger.close()
