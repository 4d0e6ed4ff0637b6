"""The typed IntentIssued decoder reads back exactly what the library's mapper does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from freezegun import freeze_time

from ledger import Ledger, TargetRef, Window
from ledger.domain import IntentLog
from ledger.events import IntentIssued
from projections.projector import Projector
from tests.conftest import ME

T0 = datetime(2026, 3, 31, 7, tzinfo=UTC)


def test_issued_equals_the_mapper_down_to_every_field(ledger: Ledger) -> None:
    """Ledger.issued (Core SELECT + msgspec) equals the repository's events, fields and key order."""
    with freeze_time(T0):
        ledger.add_client("c1", "lobby", ME)
        for i in range(3):
            start = T0 + timedelta(hours=1 + 2 * i)
            window = Window(start, start + timedelta(hours=1))
            ledger.add_event(f"e{i}", TargetRef("group", "lobby"), window, ME)
        projector = Projector(ledger)
        projector.start(T0)
    while (wake := projector.next_wakeup()) is not None:
        with freeze_time(wake):
            projector.step(wake)
    expected = [e for e in ledger.events.get(IntentLog.id_for("c1")) if isinstance(e, IntentIssued)]
    got = ledger.issued("c1")
    assert len(got) == 7  # off, then on/off three times
    assert [type(e) for e in got] == [IntentIssued] * 7
    assert [list(vars(e).items()) for e in got] == [list(vars(e).items()) for e in expected]
    assert all(e.effective_at.tzinfo is not None and e.timestamp.utcoffset() == timedelta(0) for e in got)


def test_issued_of_an_unknown_log_is_empty(ledger: Ledger) -> None:
    """A client that never had an intent has an empty history, not an error."""
    assert ledger.issued("nobody") == []
