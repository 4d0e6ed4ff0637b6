"""Events inserted through ledger.bulk: ids in the order given, in few statement texts."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from eventsourcing.persistence import StoredEvent
from sqlalchemy import event, select

from ledger import Ledger, bulk
from ledger.persistence import engine_of, events_table, transaction


def _insert(ledger: Ledger, count: int) -> tuple[list[uuid.UUID], list[int]]:
    originators = [uuid.uuid4() for _ in range(count)]
    stored = [StoredEvent(o, 1, "tests.bulk:Inserted", b'{"n": %d}' % i) for i, o in enumerate(originators)]
    return originators, list(ledger.recorder.insert_events(stored) or ())


def test_inserted_events_get_ids_in_their_order_in_one_statement_text(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL: arrays of `_PG_ROWS` rows at most (3 here), one statement text for any count."""
    monkeypatch.setattr(bulk, "_PG_ROWS", 3)
    inserts: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.startswith("INSERT"):
            inserts.append(statement)

    engine = engine_of(ledger)
    event.listen(engine, "before_cursor_execute", seen)
    try:
        batches = [_insert(ledger, n) for n in (1, 2, 8)]
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    table = events_table(ledger)
    with transaction(ledger, commit=False) as session:
        rows = session.execute(select(table.c.id, table.c.originator_id).order_by(table.c.id)).all()
    by_id: dict[int, uuid.UUID] = {position: originator for position, originator in rows}
    for originators, ids in batches:
        assert ids == sorted(ids)
        assert len(set(ids)) == len(originators)
        assert [by_id[i] for i in ids] == originators
    if engine.dialect.name == "postgresql":
        assert len(set(inserts)) == 1  # the same text for 1, 2 and 8 rows
        assert len(inserts) == 1 + 1 + 3  # 8 rows in arrays of at most 3
