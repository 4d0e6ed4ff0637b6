"""Events inserted through ledger.bulk: ids in the order given, in few statement texts; on SQLite
in statements of a bounded size."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from eventsourcing.persistence import StoredEvent
from sqlalchemy import JSON, Column, Integer, MetaData, String, Table, event, insert, select

from ledger import Ledger, bulk
from ledger.persistence import engine_of, events_table, transaction


def _insert(ledger: Ledger, count: int) -> tuple[list[uuid.UUID], list[int]]:
    originators = [uuid.uuid4() for _ in range(count)]
    stored = [StoredEvent(o, 1, "tests.bulk:Inserted", b'{"n": %d}' % i) for i, o in enumerate(originators)]
    return originators, list(ledger.recorder.insert_events(stored) or ())


@contextmanager
def _inserts(ledger: Ledger, prefix: str | tuple[str, ...] = "INSERT") -> Iterator[list[str]]:
    """The statements beginning with `prefix` sent to the database while the block runs."""
    inserts: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.startswith(prefix):
            inserts.append(statement)

    engine = engine_of(ledger)
    event.listen(engine, "before_cursor_execute", seen)
    try:
        yield inserts
    finally:
        event.remove(engine, "before_cursor_execute", seen)


def _originators_by_id(ledger: Ledger) -> dict[int, uuid.UUID]:
    table = events_table(ledger)
    with transaction(ledger, commit=False) as session:
        rows = session.execute(select(table.c.id, table.c.originator_id)).all()
    return {position: originator for position, originator in rows}


def test_inserted_events_get_ids_in_their_order_in_one_statement_text(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL: arrays of `_PG_ROWS` rows at most (3 here), one statement text for any count."""
    monkeypatch.setattr(bulk, "_PG_ROWS", 3)
    with _inserts(ledger) as inserts:
        batches = [_insert(ledger, n) for n in (1, 2, 8)]
    by_id = _originators_by_id(ledger)
    for originators, ids in batches:
        assert ids == sorted(ids)
        assert len(set(ids)) == len(originators)
        assert [by_id[i] for i in ids] == originators
    if engine_of(ledger).dialect.name == "postgresql":
        assert len(set(inserts)) == 1  # the same text for 1, 2 and 8 rows
        assert len(inserts) == 1 + 1 + 3  # 8 rows in arrays of at most 3


def test_sqlite_statements_hold_at_most_the_statement_rows(
    sqlite_ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite: events and bulk rows go in statements of at most `SQLITE_STATEMENT_ROWS` rows
    (each distinct statement stays prepared with its last values), every row once, in order."""
    monkeypatch.setattr(bulk, "SQLITE_STATEMENT_ROWS", 4)
    with engine_of(sqlite_ledger).begin() as conn:
        conn.exec_driver_sql("CREATE TABLE bulk_rows (n INTEGER, label TEXT)")
    rows_table = Table("bulk_rows", MetaData(), Column("n", Integer), Column("label", String))
    with _inserts(sqlite_ledger, ("INSERT INTO ledger_events", "INSERT INTO bulk_rows")) as inserts:
        originators, ids = _insert(sqlite_ledger, 11)
        with transaction(sqlite_ledger, commit=True) as session:
            bulk.bulk_insert(session, insert(rows_table), ("n", "label"), [(i, f"r{i}") for i in range(11)])
    assert max(statement.count("(?") for statement in inserts) == 4
    assert ids == sorted(ids)
    assert len(set(ids)) == 11
    table = events_table(sqlite_ledger)
    with transaction(sqlite_ledger, commit=False) as session:
        stored = select(table.c.originator_id).where(table.c.id.in_(ids)).order_by(table.c.id)
        assert [r[0] for r in session.execute(stored)] == originators
        assert [tuple(r) for r in session.execute(select(rows_table))] == [(i, f"r{i}") for i in range(11)]


def test_sqlite_ids_come_from_each_statement_s_last_rowid(
    sqlite_ledger: Ledger, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite: events are inserted without RETURNING (one driver step a statement), and the ids
    given back are the rows' own, also after a row another connection wrote and one deleted
    at the end (the next rowid is one more than the largest there is)."""
    monkeypatch.setattr(bulk, "SQLITE_STATEMENT_ROWS", 4)
    with _inserts(sqlite_ledger, "INSERT INTO ledger_events") as inserts:
        batches = [_insert(sqlite_ledger, 3)]  # statements of 2 and 1 rows
        other = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"))
        columns = "originator_id, originator_version, topic, state"
        row = f"INSERT INTO ledger_events ({columns}) VALUES (?, 1, 't', '')"
        with other:
            other.execute(row, (uuid.uuid4().bytes,))  # id 4
        batches.append(_insert(sqlite_ledger, 2))
        with other:
            other.execute(row, (uuid.uuid4().bytes,))  # id 7, deleted
            other.execute("DELETE FROM ledger_events WHERE id = 7")
        other.close()
        batches.append(_insert(sqlite_ledger, 11))  # statements of 4, 4, 2 and 1 rows
    assert len(inserts) == 2 + 1 + 4  # pieces of 2 and 1; 2; 4, 4, 2 and 1
    assert not any("RETURNING" in statement for statement in inserts)
    by_id = _originators_by_id(sqlite_ledger)
    assert [ids for _, ids in batches] == [[1, 2, 3], [5, 6], list(range(7, 18))]
    for originators, ids in batches:
        assert [by_id[i] for i in ids] == originators


def test_values_are_stored_exactly_whatever_they_hold(ledger: Ledger) -> None:
    """Quotes, backslashes, control and non-ASCII characters, every byte value, JSON given as text
    or as a value: stored as given (on PostgreSQL the rows travel as one JSON array)."""
    odd = "a \"quoted\" \\ back\\slash\n\ttab \x01 € 𝄞 'single'"
    originator = uuid.uuid4()
    stored = [
        StoredEvent(originator, 1, f"tests.bulk:{odd}", bytes(range(256))),
        StoredEvent(originator, 2, "tests.bulk:Empty", b""),
    ]
    ids = list(ledger.recorder.insert_events(stored) or ())
    table = events_table(ledger)
    with transaction(ledger, commit=False) as session:
        query = select(table.c.topic, table.c.state).where(table.c.id.in_(ids)).order_by(table.c.id)
        assert [(t, bytes(s)) for t, s in session.execute(query)] == [(e.topic, e.state) for e in stored]
    engine = engine_of(ledger)
    rows_table = Table(
        "bulk_odd", MetaData(), Column("n", Integer), Column("label", String(80)), Column("doc", JSON)
    )
    rows_table.create(engine)
    try:
        rows = [(1, odd, {"k": odd, "n": [1, 2.5, None]}), (2, "", None), (3, None, "text")]
        with transaction(ledger, commit=True) as session:
            bulk.bulk_insert(session, insert(rows_table), ("n", "label", "doc"), rows)
        encoded = [(4, "x", '{"as": "text"}'), (5, "y", "null"), (6, "z", "1.125")]
        with transaction(ledger, commit=True) as session:
            bulk.bulk_insert(session, insert(rows_table), ("n", "label", "doc"), encoded, encoded=("doc",))
        with transaction(ledger, commit=False) as session:
            back = [tuple(r) for r in session.execute(select(rows_table).order_by(rows_table.c.n))]
        assert back == [*rows, (4, "x", {"as": "text"}), (5, "y", None), (6, "z", 1.125)]
        with engine.connect() as conn:  # JSON null, not SQL NULL, as SQLAlchemy stores None
            nulls = conn.execute(select(rows_table.c.n).where(rows_table.c.doc.is_(None))).all()
        assert nulls == []
    finally:
        rows_table.drop(engine)


def test_sqlite_rows_hold_what_the_columns_bind_processors_make(sqlite_ledger: Ledger) -> None:
    """SQLite: the recorder's rows (ids and states bound without the processors' calls) are the
    rows SQLAlchemy's own insert stores: ids as their 16 bytes, states as blobs, byte for byte."""
    table = events_table(sqlite_ledger)
    ours = [uuid.uuid4() for _ in range(3)]
    states: list[Any] = [b"", bytes(range(256)), bytearray(b'{"n": 1}')]  # bytearray: the processor's
    stored = [StoredEvent(o, 1, "tests.bulk:Ours", s) for o, s in zip(ours, states, strict=True)]
    ids = list(sqlite_ledger.recorder.insert_events(stored) or ())
    stock = [uuid.uuid4() for _ in range(3)]
    with transaction(sqlite_ledger, commit=True) as session:
        session.execute(
            insert(table),
            [
                {"originator_id": o, "originator_version": 1, "topic": "tests.bulk:Stock", "state": bytes(s)}
                for o, s in zip(stock, states, strict=True)
            ],
        )
    columns = "originator_id, typeof(originator_id), originator_version, topic, typeof(state), state"
    with engine_of(sqlite_ledger).connect() as conn:
        rows = conn.exec_driver_sql(f"SELECT {columns} FROM {table.name} ORDER BY id").all()
    assert [r[0] for r in rows] == [o.bytes for o in ours + stock]
    ours_rows, stock_rows = rows[:3], rows[3:]
    assert [(r[1], r[2], r[4], r[5]) for r in ours_rows] == [(r[1], r[2], r[4], r[5]) for r in stock_rows]
    assert [r[5] for r in ours_rows] == [bytes(s) for s in states]
    assert {r[1] for r in rows} == {r[4] for r in rows} == {"blob"}
    assert ids == sorted(ids)
