"""When the daemon writes its receipts during a burst: once the buffer holds the receipts of
RECEIPTS_BATCH publishes (each publish buffers up to two rows), not before (each store)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from freezegun import freeze_time

from ledger import Ledger
from ledger.values import format_instant
from projections import delivery
from projections.projector import Projector
from publisher import receipts as module
from publisher.logs import EventLog
from publisher.metrics import Metrics
from publisher.receipts import DeliveryLog, ReceiptWriter
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
    assert receipts.pending() == 0  # the third publish made a batch: written during the burst
    for client in ("c1", "c2", "c3"):
        (row,) = delivery.delivery(ledger, client)["transitions"]
        assert row["first_acked_at"] == "2026-03-31T07:00:01.000Z"
