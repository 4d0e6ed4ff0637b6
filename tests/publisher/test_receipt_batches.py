"""When the daemon writes its receipts during a burst: once the buffer holds the receipts of
RECEIPTS_BATCH publishes (each publish buffers up to two rows), not before; in the background,
by a thread of its own, forgotten only when collected (each store)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from freezegun import freeze_time
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from ledger import Ledger
from ledger.persistence import engine_of
from ledger.values import format_instant
from projections import delivery
from projections.projector import Projector
from projections.readmodel import deliveries, refreshes
from publisher import receipts as module
from publisher.logs import EventLog
from publisher.metrics import Metrics
from publisher.receipts import Batch, DeliveryLog, ReceiptWriter
from tests.conftest import ME
from tests.publisher.helpers import LogCapture

T = datetime(2026, 3, 31, 7, tzinfo=UTC)


def test_a_burst_writes_receipts_by_publishes_not_rows(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(module, "RECEIPTS_BATCH", 3)
    with freeze_time(T):
        for client in ("c1", "c2", "c3"):
            ledger.add_client(client, None, ME)
        issued = {e.client_id: e.current() for e in Projector(ledger).start(T)}
    receipts = DeliveryLog(ledger)
    writer = ReceiptWriter(receipts, Metrics(), EventLog(LogCapture()))
    stamp = format_instant(T), format_instant(T + timedelta(minutes=10))
    for n, client in enumerate(("c1", "c2", "c3")):
        receipts.acked(client, issued[client], *stamp, "transition", T + timedelta(seconds=1), 1.5)
        writer.write(during_burst=True)
        if n < 2:  # two publishes: four rows, fewer publishes than a batch
            assert receipts.pending() == 2 * (n + 1)
    writer.wait()  # PostgreSQL: the batch is written by a thread of its own
    assert receipts.pending() == 0  # the third publish made a batch: written during the burst
    for client in ("c1", "c2", "c3"):
        (row,) = delivery.delivery(ledger, client)["transitions"]
        assert row["first_acked_at"] == "2026-03-31T07:00:01.000Z"


def _fleet(ledger: Ledger, clients: tuple[str, ...]) -> dict[str | None, Any]:
    with freeze_time(T):
        for client in clients:
            ledger.add_client(client, None, ME)
        return {e.client_id: e.current() for e in Projector(ledger).start(T)}


def _stored(ledger: Ledger) -> tuple[dict[str, str], dict[str, str]]:
    """first_acked_at by log of audit_deliveries, last_acked_at by log of audit_refreshes."""
    with engine_of(ledger).connect() as conn:
        firsts = conn.execute(select(deliveries.c.log_name, deliveries.c.first_acked_at)).all()
        latest = conn.execute(select(refreshes.c.log_name, refreshes.c.last_acked_at)).all()
    return dict(firsts), dict(latest)  # type: ignore[arg-type]


def test_a_burst_batch_written_by_a_thread_stays_buffered_until_collected(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In the background (PostgreSQL's default; forced here on each store), a burst's batch is
    forgotten only once the loop collects its write: what was buffered meanwhile, a client's
    newer latest row included, is kept for the next write."""
    monkeypatch.setattr(module, "RECEIPTS_BATCH", 2)
    issued = _fleet(ledger, ("c1", "c2", "c3"))
    receipts = DeliveryLog(ledger)
    writer = ReceiptWriter(receipts, Metrics(), EventLog(LogCapture()), background=True)
    stamp = format_instant(T), format_instant(T + timedelta(minutes=10))
    first, later = T + timedelta(seconds=1), T + timedelta(seconds=2)
    for client in ("c1", "c2"):
        receipts.acked(client, issued[client], *stamp, "transition", first, 1.5)
    writer.write(during_burst=True)  # two publishes: a batch, taken by a thread
    assert receipts.pending() == 4  # not forgotten before the loop collects the write
    receipts.acked("c3", issued["c3"], *stamp, "transition", later, 1.5)
    receipts.acked("c1", issued["c1"], *stamp, "refresh", later, 1.5)  # c1's latest row replaced
    writer.wait()
    assert receipts.pending() == 3  # c3's two rows and c1's newer latest row
    assert _stored(ledger) == (
        {"c1": "2026-03-31T07:00:01.000Z", "c2": "2026-03-31T07:00:01.000Z"},
        {"c1": "2026-03-31T07:00:01.000Z", "c2": "2026-03-31T07:00:01.000Z"},
    )
    writer.write(complete=True)
    assert receipts.pending() == 0
    firsts, latest = _stored(ledger)
    assert firsts["c1"] == "2026-03-31T07:00:01.000Z"  # the first PUBACK of the intent stays
    assert latest["c1"] == latest["c3"] == firsts["c3"] == "2026-03-31T07:00:02.000Z"


def test_a_failed_background_write_keeps_its_batch_and_is_one_episode(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(module, "RECEIPTS_BATCH", 1)
    issued = _fleet(ledger, ("c1",))
    receipts = DeliveryLog(ledger)
    capture = LogCapture()
    metrics = Metrics()
    writer = ReceiptWriter(receipts, metrics, EventLog(capture), background=True)
    stamp = format_instant(T), format_instant(T + timedelta(minutes=10))
    receipts.acked("c1", issued["c1"], *stamp, "transition", T + timedelta(seconds=1), 1.5)
    store = DeliveryLog.store

    def failing(_self: DeliveryLog, _batch: Batch) -> None:
        raise OperationalError("INSERT", {}, Exception("the server went away"))

    monkeypatch.setattr(DeliveryLog, "store", failing)
    writer.write(during_burst=True)
    writer.wait()
    assert not writer.ok
    assert receipts.pending() == 2  # kept: written again later
    assert metrics.ledger_errors._value.get() == 1
    (error,) = capture.records("ledger")
    assert error["state"] == "error"
    assert "the server went away" in error["error"]
    monkeypatch.setattr(DeliveryLog, "store", store)
    writer.write(complete=True)
    assert writer.ok
    assert receipts.pending() == 0
    assert [r["state"] for r in capture.records("ledger")] == ["error", "ok"]
    assert _stored(ledger)[0] == {"c1": "2026-03-31T07:00:01.000Z"}
