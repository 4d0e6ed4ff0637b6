"""The daemon ingesting reports on a real Mosquitto: every rule, and it keeps publishing throughout."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

from cli.main import cli
from ledger import Ledger, TargetRef, Window
from ledger.values import floor_second
from projections.observation_reads import latest_reports
from projections.observed import compliance_report
from publisher.config import BrokerConfig
from publisher.daemon import Daemon, RunSettings
from publisher.ingest import NoObserver
from publisher.observe import Observer
from publisher.report import build_report, encode_report
from tests.conftest import ME
from tests.publisher.broker import Mosquitto, wait_for
from tests.publisher.helpers import fast, make_log, running
from tests.publisher.test_observe import Screens


def now() -> datetime:
    return floor_second(datetime.now(UTC))


def report(
    client_id: str, state: str = "on", intent_id: str | None = None, at: datetime | None = None
) -> bytes:
    t = at or now()
    body = build_report(client_id=client_id, reported_at=t, intent_id=intent_id, tv_state=state, since=t)  # type: ignore[arg-type]
    return encode_report(body)


def switch_on_now(ledger: Ledger, client_id: str) -> None:
    t = now()
    window = Window(t - timedelta(seconds=1), t + timedelta(hours=1))
    ledger.add_override("o1", TargetRef("client", client_id), "on", window, ME)


def reports_counted(daemon: Daemon) -> dict[str, float]:
    registry = daemon.metrics.registry
    found = {}
    for result in ("accepted", "duplicate", "invalid", "unknown_client", "mismatched_id", "skewed"):
        value = registry.get_sample_value("intent_ledger_reports_total", {"result": result})
        if value:
            found[result] = value
    return found


@pytest.fixture
def screens(mosquitto: Mosquitto) -> Iterator[Screens]:
    s = Screens(mosquitto.port)
    yield s
    s.close()


def test_the_daemon_classifies_every_report_and_keeps_publishing(
    ledger: Ledger, mosquitto: Mosquitto, screens: Screens
) -> None:
    ledger.add_client("lobby-1", "lobby", ME)
    ledger.add_client("lobby-2", "lobby", ME)
    log, capture = make_log()
    daemon = Daemon(ledger, BrokerConfig.from_url(mosquitto.url), RunSettings(), log=log, **fast())

    def acked(intent_state: str) -> bool:
        return any(
            r["client_id"] == "lobby-1" and r["desired_state"] == intent_state and r["result"] == "acked"
            for r in capture.records("publish")
        )

    with running(daemon):
        wait_for(lambda: acked("off"), what="the first publish")
        # Reports sent before the SUBACK would reach it only as the retained last one a topic.
        observer = daemon.observer
        assert isinstance(observer, Observer)  # in-process here
        assert observer.link is not None
        wait_for(observer.link.subscribed.is_set, what="the SUBACK of the report session")
        intent_id = ledger.issued("lobby-1")[-1].intent_id
        screens.send("lobby-1", report("lobby-1", "off", intent_id))
        screens.send("lobby-2", b"\xff\xfe not json")
        screens.send("lobby-2", json.dumps({"padding": "x" * 5000}).encode())  # over 4 KB
        screens.send("lobby-2", report("lobby-1"))  # lobby-1's report on lobby-2's topic
        screens.send("ghost", report("ghost"))  # not registered
        screens.send("lobby-1", report("lobby-1", at=now() - timedelta(seconds=600)))  # clock behind
        # A change while the garbage is being handled: published as promptly as ever.
        switch_on_now(ledger, "lobby-1")
        wait_for(lambda: acked("on"), what="the override's publish")
        on_id = ledger.issued("lobby-1")[-1].intent_id
        screens.send("lobby-1", report("lobby-1", "on", on_id))
        wait_for(lambda: sum(reports_counted(daemon).values()) >= 7, what="every report classified")
        assert reports_counted(daemon) == {
            "accepted": 2,
            "invalid": 2,
            "mismatched_id": 1,
            "unknown_client": 1,
            "skewed": 1,
        }
        engine = ledger.factory.datastore.engine  # type: ignore[attr-defined]
        wait_for(lambda: latest_reports(engine).get("lobby-1", {}).get("tv_state") == "on", what="stored")
        value = daemon.metrics.registry.get_sample_value
        wait_for(lambda: value("intent_ledger_screens", {"state": "match"}) is not None, what="the gauge")
    assert "ghost" not in latest_reports(engine)
    assert "lobby-2" not in latest_reports(engine)
    results = {(r["result"], r["topic"].split("/")[1]) for r in capture.records("report")}
    assert results == {
        ("invalid", "lobby-2"),
        ("unknown_client", "ghost"),
        ("skewed", "lobby-1"),
    }  # lobby-2's later rejections within the minute are counted, not logged
    start = now() - timedelta(minutes=5)
    (row,) = compliance_report(ledger, start, now() + timedelta(seconds=1), clients=["lobby-1"])["clients"]
    assert row["scheduled_on_s"] > 0
    assert row["observed_on_s"] > 0


def test_no_observe_subscribes_to_nothing(ledger: Ledger, mosquitto: Mosquitto, screens: Screens) -> None:
    ledger.add_client("lobby-1", None, ME)
    log, capture = make_log()
    daemon = Daemon(
        ledger, BrokerConfig.from_url(mosquitto.url), RunSettings(observe=False), log=log, **fast()
    )
    with running(daemon):
        wait_for(lambda: capture.records("publish"), what="the first publish")
        screens.send("lobby-1", report("lobby-1"))
        # A later change's publish shows the daemon went round its loop since the report arrived.
        switch_on_now(ledger, "lobby-1")
        wait_for(lambda: any(r["desired_state"] == "on" for r in capture.records("publish")), what="the on")
    assert isinstance(daemon.observer, NoObserver)
    assert (
        daemon.metrics.registry.get_sample_value("intent_ledger_reports_total", {"result": "accepted"})
        is None
    )


def test_run_takes_no_observe_and_report_stale() -> None:
    result = CliRunner().invoke(cli, ["run", "--help"])
    assert "--no-observe" in result.stdout
    assert "--report-stale" in result.stdout
    bad = CliRunner().invoke(cli, ["run", "--report-stale", "0"])
    assert bad.exit_code == 2
