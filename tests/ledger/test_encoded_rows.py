"""A chunk's intents recorded with their rows encoded a statement at a time: the stored
bytes, ids and order are those of rows encoded all at once by the stock mapper."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import Mapper, StoredEvent
from sqlalchemy import event, select

from ledger import Ledger, bulk
from ledger.domain import IntentLog
from ledger.encoded import EncodedRows
from ledger.intent import IntentFields
from ledger.persistence import engine_of, events_table, transaction

T0 = datetime(2026, 3, 31, 7, tzinfo=UTC)


def _issued_logs(count: int, first: int = 0) -> list[IntentLog]:
    logs = [IntentLog.open(f"c{i}", "lobby" if i % 2 else None) for i in range(first, first + count)]
    for i, log in enumerate(logs):
        state = "on" if i % 3 else "off"
        log.issue(
            IntentFields(log.client_id, log.group_id, state, "no_event", 30, None), T0, {"kind": "start"}
        )
    return logs


def _rows(ledger: Ledger, after: int) -> list[tuple[int, StoredEvent]]:
    c = events_table(ledger).c
    query = select(c.id, c.originator_id, c.originator_version, c.topic, c.state).where(c.id > after)
    with transaction(ledger, commit=False) as session:
        rows = session.execute(query.order_by(c.id)).all()
    return [(i, StoredEvent(o, v, t, bytes(s))) for i, o, v, t, s in rows]


@pytest.mark.parametrize("count", [1, 70, 300])
def test_rows_written_a_statement_at_a_time_are_the_stock_mappers_in_order(
    ledger: Ledger, count: int
) -> None:
    """Both stores: every row the stock mapper's bytes, the ids ascending in the events' order."""
    before = ledger.max_notification_id() or 0
    receipt = ledger.record_intents(_issued_logs(count))
    stock: Mapper[UUID] = Mapper(transcoder=ledger.construct_transcoder())
    rows = _rows(ledger, before)
    assert [s for _, s in rows] == [stock.to_stored_event(e) for e in receipt.events]
    assert len(rows) == 2 * count
    assert receipt.last_notification_id == rows[-1][0] == ledger.max_notification_id()


def test_sqlite_encodes_each_statements_rows_as_it_sends_it(
    sqlite_ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite: when a statement goes out, only its rows and those before it are encoded,
    each once (the chunk's rows are never all alive at once)."""
    monkeypatch.setattr(bulk, "SQLITE_STATEMENT_ROWS", 4)
    encode = sqlite_ledger.mapper.to_stored_event
    encoded: list[Any] = []

    def counting(domain_event: Any) -> StoredEvent:
        encoded.append(domain_event)
        return encode(domain_event)

    monkeypatch.setattr(sqlite_ledger.mapper, "to_stored_event", counting)
    seen: list[tuple[int, int]] = []  # (rows in the statement, rows encoded when it is sent)

    def before_insert(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.startswith("INSERT INTO ledger_events"):
            seen.append((statement.count("(?"), len(encoded)))

    engine = engine_of(sqlite_ledger)
    event.listen(engine, "before_cursor_execute", before_insert)
    try:
        receipt = sqlite_ledger.record_intents(_issued_logs(7))  # 14 events: 4 + 4 + 4 + 2
    finally:
        event.remove(engine, "before_cursor_execute", before_insert)
    assert seen == [(4, 4), (4, 8), (4, 12), (2, 14)]
    assert encoded == receipt.events


def test_encoded_rows_encode_on_each_read() -> None:
    """A sequence of the rows: its length, items and slices encoded when read, each read anew."""
    calls: list[int] = []

    def encode(n: int) -> StoredEvent:
        calls.append(n)
        return StoredEvent(UUID(int=n), n, "t", b"%d" % n)

    rows = EncodedRows([1, 2, 3], encode)
    assert len(rows) == 3
    assert not calls
    assert [r.originator_version for r in rows] == [1, 2, 3]
    assert rows[1].state == b"2"
    assert [r.state for r in rows[1:]] == [b"2", b"3"]
    assert [r.state for r in rows] == [b"1", b"2", b"3"]
    assert calls == [1, 2, 3, 2, 2, 3, 1, 2, 3]
