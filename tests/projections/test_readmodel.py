"""The SQL read model on each store: incremental equals rebuilt, crashes lose nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from freezegun import freeze_time

from ledger import Ledger, Meta, TargetRef, Window
from ledger.intent import CurrentIntent
from ledger.persistence import engine_of
from ledger.values import format_instant
from projections import delivery
from projections.projector import Projector
from projections.queries import replay_rows
from projections.readmodel import ReadModel
from publisher.receipts import DeliveryLog
from tests.conftest import ME

T0 = datetime(2026, 3, 31, tzinfo=UTC)
T_RECEIPTS = datetime(2026, 3, 31, 7, tzinfo=UTC)


def at(h: float) -> datetime:
    return T0 + timedelta(hours=h)


def _day(ledger: Ledger, upto: float) -> None:
    with freeze_time(at(5)):
        ledger.add_client("c1", "lobby", ME)
        ledger.add_client("c2", "lobby", Meta("alice", "second screen"))
        ledger.add_event("a", TargetRef("group", "lobby"), Window(at(8), at(10)), ME)
        ledger.add_override(
            "o", TargetRef("client", "c2"), "off", Window(at(9), at(9.5)), Meta("bob", "oops")
        )
        projector = Projector(ledger)
        projector.start(at(5))
    while (wake := projector.next_wakeup()) is not None and wake <= at(upto):
        with freeze_time(wake):
            projector.step(wake)


def test_incremental_catch_up_equals_a_rebuild(ledger: Ledger) -> None:
    """Caught up in several steps or rebuilt at once: identical tables."""
    model = ReadModel(ledger)
    _day(ledger, 9)
    model.catch_up(batch=7)
    _day_more(ledger)
    model.catch_up(batch=3)
    incremental = model.dump()
    assert model.rebuild() > 0
    assert model.dump() == incremental
    assert model.position() == ledger.max_notification_id()


def _day_more(ledger: Ledger) -> None:
    with freeze_time(at(9.75)):
        ledger.cancel_event("a", Meta("carol", "room closed"))
        projector = Projector(ledger)
        projector.start(at(9.75))


def test_replay_from_the_read_model_equals_the_ledger(ledger: Ledger) -> None:
    """The model's transitions are the recorded IntentIssued, in seq order, with the same ids."""
    _day(ledger, 12)
    model = ReadModel(ledger)
    model.catch_up()
    for client in ("c1", "c2"):
        assert model.replay(client) == replay_rows(ledger, client)
    assert [r["desired_state"] for r in model.replay("c2", since=at(8), until=at(10))] == ["on", "off", "on"]


def test_a_crash_between_the_ledger_and_the_model_loses_nothing(ledger: Ledger, db_url: str) -> None:
    """Changes appended while no model writer ran are picked up by the next one, exactly once."""
    first = ReadModel(ledger)
    _day(ledger, 8.5)
    first.catch_up()
    _day_more(ledger)  # the daemon wrote these, then died before any model write
    other = Ledger(db_url)
    try:
        second = ReadModel(other)
        assert second.catch_up() > 0
        assert second.catch_up() == 0
        with engine_of(other).connect() as conn:
            from sqlalchemy import func, select

            from projections.readmodel import changes

            (count,) = conn.execute(select(func.count()).select_from(changes)).one()
        assert count == sum(
            1
            for _, e in ledger.read()
            if type(e).__name__
            not in (
                "ClientIdClaimed",
                "GroupNamed",
                "PolicyOpened",
                "EventIdClaimed",
                "OverrideIdClaimed",
                "IntentLogOpened",
                "IntentIssued",
            )
        )
        cancelled = [r for r in second.dump()["audit_changes"] if r[2] == "EventCancelled"]
        assert [(r[3], r[4], r[5]) for r in cancelled] == [("group lobby", "carol", "room closed")]
    finally:
        other.close()


def test_two_writers_catching_up_at_once_write_each_position_once(ledger: Ledger, db_url: str) -> None:
    """A model writer that lost the race reads on from the winner's position."""
    _day(ledger, 12)
    a, other = ReadModel(ledger), Ledger(db_url)
    try:
        b = ReadModel(other)
        a.catch_up(batch=4)
        b.catch_up(batch=5)
        a.catch_up()
        assert a.dump() == b.dump()
        assert a.position() == ledger.max_notification_id()
    finally:
        other.close()


def test_delivery_receipts_keep_the_first_ack_the_latest_publish_and_the_largest_age(
    ledger: Ledger,
) -> None:
    """Receipts on each store: first PUBACK per intent kept, refreshes upserted, failures listed."""
    with freeze_time(T_RECEIPTS):
        ledger.add_client("c1", None, ME)
        (issued,) = Projector(ledger).start(T_RECEIPTS)
    receipts = DeliveryLog(ledger)

    def publish(minutes: int) -> tuple[CurrentIntent, str, str]:
        stamp = T_RECEIPTS + timedelta(minutes=minutes)
        return issued.current(), format_instant(stamp), format_instant(stamp + timedelta(minutes=10))

    receipts.acked("c1", *publish(0), "transition", T_RECEIPTS + timedelta(seconds=1), 3.5)
    receipts.flush()
    receipts.acked("c1", *publish(5), "refresh", T_RECEIPTS + timedelta(minutes=5, seconds=1), 2.0)
    receipts.acked("c1", *publish(7), "refresh", T_RECEIPTS + timedelta(minutes=7, seconds=1), 2.0)
    refused = "broker refused: Not authorized"
    receipts.failed("c1", issued.intent_id, T_RECEIPTS + timedelta(minutes=8), refused)
    receipts.flush()
    assert receipts.pending() == 0

    report = delivery.delivery(ledger, "c1")
    (row,) = report["transitions"]
    assert (row["first_acked_at"], row["latency_ms"]) == ("2026-03-31T07:00:01.000Z", 3.5)
    assert row["flags"] == ["failed"]
    assert report["latest_publish"]["last_issued_at"] == "2026-03-31T07:07:00Z"
    assert report["largest_retained_age_seconds"] == 300  # 07:00 -> 07:05, then only 2 minutes
    assert [f["error"] for f in report["failures"]] == [refused]
