"""Receipt retention on each store: `projections prune --before T` and what audits say after it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from click.testing import CliRunner
from freezegun import freeze_time
from sqlalchemy import func, select

from cli.main import cli
from ledger import Ledger, TargetRef, Window
from ledger.events import IntentIssued
from ledger.intentlog import IntentLog
from ledger.persistence import engine_of
from ledger.values import format_instant
from projections import delivery, retention
from projections import observations as obs
from projections.projector import Projector
from projections.readmodel import deliveries, failures
from publisher.receipts import DeliveryLog
from tests.conftest import ME

T0 = datetime(2026, 3, 31, 7, tzinfo=UTC)


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def _two_days_of_receipts(ledger: Ledger) -> list[IntentIssued]:
    """c1 on 08-10 on two days: off, on, off, on, off; each acked a second later, one failure."""
    with freeze_time(at(0)):
        ledger.add_client("c1", None, ME)
        ledger.add_event("d1", TargetRef("client", "c1"), Window(at(1), at(3)), ME)
        ledger.add_event("d2", TargetRef("client", "c1"), Window(at(25), at(27)), ME)
        projector = Projector(ledger)
        issued = projector.start(at(0))
    while (wake := projector.next_wakeup()) is not None:
        with freeze_time(wake):
            issued += projector.step(wake)
    receipts = DeliveryLog(ledger)
    for intent in issued:
        stamp, expires = (
            format_instant(intent.effective_at),
            format_instant(intent.effective_at + timedelta(minutes=10)),
        )
        acked = intent.effective_at + timedelta(seconds=1)
        receipts.acked("c1", intent.current(), stamp, expires, "transition", acked, 1.0)
    receipts.failed("c1", issued[1].intent_id, at(1), "broker refused")
    receipts.flush()
    return issued


def _count(ledger: Ledger) -> dict[str, int]:
    engine = engine_of(ledger)
    with engine.connect() as conn:
        return {
            t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
            for t in (deliveries, failures)
        }


def test_prune_deletes_receipts_before_t_but_the_current_one(ledger: Ledger) -> None:
    issued = _two_days_of_receipts(ledger)
    assert [i.desired_state for i in issued] == ["off", "on", "off", "on", "off"]
    assert _count(ledger) == {"audit_deliveries": 5, "audit_failures": 1}

    deleted = retention.prune(ledger, at(24))
    assert deleted == {
        "audit_deliveries": 3,
        "audit_failures": 1,
        "audit_observations": 0,
        "ledger_snapshots": 0,
    }
    assert _count(ledger) == {"audit_deliveries": 2, "audit_failures": 0}

    report = delivery.delivery(ledger, "c1")
    flags = [(r["desired_state"], r["flags"]) for r in report["transitions"]]
    pruned = ["receipt_pruned"]
    assert flags == [("off", pruned), ("on", pruned), ("off", pruned), ("on", []), ("off", [])]

    # Everything before a later T, but the current intent's receipt.
    assert retention.prune(ledger, at(48))["audit_deliveries"] == 1
    assert _count(ledger)["audit_deliveries"] == 1
    assert delivery.delivery(ledger, "c1")["transitions"][-1]["flags"] == []
    # The horizon never moves back.
    retention.prune(ledger, at(1))
    assert retention.horizon(ledger) == "2026-04-02T07:00:00.000Z"


def test_without_a_prune_a_missing_receipt_is_still_missing(ledger: Ledger) -> None:
    with freeze_time(at(0)):
        ledger.add_client("c1", None, ME)
        Projector(ledger).start(at(0))
    assert retention.horizon(ledger) is None
    assert delivery.delivery(ledger, "c1")["transitions"][0]["flags"] == ["missing"]


def test_cli_prune(db_url: str) -> None:
    ledger = Ledger(db_url)
    try:
        _two_days_of_receipts(ledger)
    finally:
        ledger.close()
    runner = CliRunner()
    result = runner.invoke(cli, ["--db", db_url, "projections", "prune", "--before", "2026-04-01T07:00:00Z"])
    assert (result.exit_code, result.output) == (
        0,
        "pruned 3 from audit_deliveries, 1 from audit_failures, 0 from audit_observations,"
        " 0 from ledger_snapshots\n",
    )
    result = runner.invoke(
        cli, ["--db", db_url, "projections", "prune", "--before", "2026-04-03T00:00:00Z", "--json"]
    )
    assert result.exit_code == 0
    assert '"audit_deliveries": 1' in result.output
    assert '"before": "2026-04-03T00:00:00Z"' in result.output


def test_cli_prune_bad_instant_changes_nothing(db_url: str) -> None:
    ledger = Ledger(db_url)
    try:
        _two_days_of_receipts(ledger)
        result = CliRunner().invoke(cli, ["--db", db_url, "projections", "prune", "--before", "yesterday"])
        assert result.exit_code == 2
        assert "invalid" in result.output
        assert "Traceback" not in result.output
        assert _count(ledger) == {"audit_deliveries": 5, "audit_failures": 1}
    finally:
        ledger.close()


def _run(client_id: str, started: str, last: str) -> dict[str, object]:
    return {
        "client_id": client_id,
        "started_at": started,
        "since": started,
        "intent_id": None,
        "tv_state": "on",
        "detail": None,
        "last_reported_at": last,
        "reports": 3,
        "received_at": started.replace("Z", ".000Z"),
    }


def test_prune_deletes_observation_runs_that_ended_before_t_but_each_screens_current_run(
    ledger: Ledger,
) -> None:
    engine = engine_of(ledger)
    obs.metadata.create_all(engine)
    runs = [
        _run("s1", "2026-03-30T08:00:00Z", "2026-03-30T09:00:00Z"),  # old: pruned
        _run("s1", "2026-03-31T08:00:00Z", "2026-04-01T09:00:00Z"),  # ends after T: kept
        _run("s2", "2026-03-29T08:00:00Z", "2026-03-29T09:00:00Z"),  # old but s2's current run: kept
    ]
    latest = {
        "client_id": "s2",
        "reported_at": "2026-03-29T09:00:00Z",
        "since": "2026-03-29T08:00:00Z",
        "intent_id": None,
        "tv_state": "on",
        "detail": None,
        "received_at": "2026-03-29T09:00:00.000Z",
        "run_started_at": "2026-03-29T08:00:00Z",
    }
    with engine.begin() as conn:
        conn.execute(obs.observations.insert(), runs)
        conn.execute(obs.reports.insert(), [latest])
    deleted = retention.prune(ledger, at(24))  # 2026-04-01T07:00Z
    assert deleted["audit_observations"] == 1
    with engine.connect() as conn:
        kept = sorted(conn.execute(select(obs.observations.c.client_id, obs.observations.c.started_at)))
    assert kept == [("s1", "2026-03-31T08:00:00Z"), ("s2", "2026-03-29T08:00:00Z")]


def _snapshot_versions(ledger: Ledger, log_name: str) -> list[int]:
    assert ledger.snapshots is not None
    return [s.originator_version for s in ledger.snapshots.get(IntentLog.id_for(log_name))]


def test_prune_deletes_the_snapshots_a_later_one_supersedes(ledger: Ledger) -> None:
    """Each log keeps its latest snapshot and loads as before; a log with one keeps it."""
    issued = _two_days_of_receipts(ledger)  # c1's log at version 6 (opened, five intents)
    with freeze_time(at(0)):
        ledger.add_client("c2", None, ME)
        Projector(ledger).start(at(0))  # c2's log: opened, one intent (version 2)
    for version in (2, 4, 6):
        ledger.take_snapshot(IntentLog.id_for("c1"), version=version)
    ledger.take_snapshot(IntentLog.id_for("c2"), version=2)
    assert _snapshot_versions(ledger, "c1") == [2, 4, 6]

    assert retention.prune(ledger, at(0))["ledger_snapshots"] == 2
    assert (_snapshot_versions(ledger, "c1"), _snapshot_versions(ledger, "c2")) == ([6], [2])
    log = ledger.intent_log("c1")
    assert log is not None
    assert log.version == 6
    assert log.last is not None
    assert log.last.intent_id == issued[-1].intent_id
    assert retention.prune(ledger, at(0))["ledger_snapshots"] == 0
