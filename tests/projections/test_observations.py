"""The observation tables on each store: runs, the latest report, batches, a database away."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
from eventsourcing.persistence import PersistenceError

from ledger import Ledger
from ledger.bulk import SQLITE_STATEMENT_ROWS
from ledger.values import format_instant
from projections.observation_reads import latest_reports, run_rows, runs_between
from projections.observations import ObservationLog, Seen, observations, reports

T0 = datetime(2026, 3, 31, 10, tzinfo=UTC)


def seen(seconds: int, state: str = "on", intent_id: str | None = None, client_id: str = "c1") -> Seen:
    stamp = format_instant(T0 + timedelta(seconds=seconds))
    return Seen(client_id, stamp, format_instant(T0), intent_id, state, f"at {seconds}", stamp + ".5")


def _runs(ledger: Ledger, client_id: str = "c1") -> list[tuple[str, str, str, int]]:
    engine = ledger.factory.datastore.engine  # type: ignore[attr-defined]
    runs = runs_between(engine, "2026-03-31T00:00:00Z", "2026-04-01T00:00:00Z", [client_id])
    return [(r.started_at[11:19], r.tv_state, r.last_reported_at[11:19], r.reports) for r in runs[client_id]]


def test_a_run_per_change_and_per_silence_longer_than_split_after(ledger: Ledger) -> None:
    writer = ObservationLog(ledger, split_after=900)
    for s in (0, 300, 600):
        writer.add(seen(s))
    writer.flush()
    writer.add(seen(900))  # continues the stored run
    writer.add(seen(1200, "off"))  # a change
    writer.add(seen(1500, "off"))
    writer.add(seen(3000, "off"))  # 1,500 s of silence: a new run, though nothing changed
    writer.flush()
    assert _runs(ledger) == [
        ("10:00:00", "on", "10:15:00", 4),
        ("10:20:00", "off", "10:25:00", 2),
        ("10:50:00", "off", "10:50:00", 1),
    ]
    engine = ledger.factory.datastore.engine  # type: ignore[attr-defined]
    latest = latest_reports(engine)["c1"]
    assert (latest["reported_at"], latest["tv_state"], latest["detail"]) == (
        "2026-03-31T10:50:00Z",
        "off",
        "at 3000",
    )
    assert latest["run_started_at"] == "2026-03-31T10:50:00Z"


def test_a_new_writer_continues_the_stored_run(ledger: Ledger, db_url: str) -> None:
    """After a daemon restart the next report extends the run it continues."""
    first = ObservationLog(ledger)
    first.add(seen(0, intent_id="0f0c7a4e-6b0c-5d8e-9a51-3a2f1c9d4b7e"))
    first.flush()
    other = Ledger(db_url)
    try:
        second = ObservationLog(other)
        second.add(seen(300, intent_id="0f0c7a4e-6b0c-5d8e-9a51-3a2f1c9d4b7e"))
        second.add(seen(300, "off", client_id="c2"))
        second.flush()
    finally:
        other.close()
    assert _runs(ledger) == [("10:00:00", "on", "10:05:00", 2)]
    assert _runs(ledger, "c2") == [("10:05:00", "off", "10:05:00", 1)]


def test_a_change_within_the_same_second_replaces_that_run(ledger: Ledger) -> None:
    writer = ObservationLog(ledger)
    writer.add(seen(0))
    writer.flush()
    writer.add(seen(0, "off"))
    writer.flush()
    assert _runs(ledger) == [("10:00:00", "off", "10:00:00", 1)]


def test_reports_stay_buffered_while_the_database_is_away(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    ledger = Ledger(f"sqlite:///{path}?timeout=0.2")
    writer = ObservationLog(ledger)
    writer.add(seen(0))
    blocker = sqlite3.connect(path)
    try:
        blocker.execute("BEGIN EXCLUSIVE")
        with pytest.raises((PersistenceError, sqlalchemy.exc.SQLAlchemyError)):
            writer.flush()
        writer.add(seen(300))
        writer.add(seen(600, "off"))
        assert writer.pending() == 2
    finally:
        blocker.rollback()
        blocker.close()
    writer.flush()
    assert writer.pending() == 0
    assert _runs(ledger) == [("10:00:00", "on", "10:05:00", 2), ("10:10:00", "off", "10:10:00", 1)]
    ledger.close()


def test_the_buffer_is_bounded_and_counts_what_it_dropped(sqlite_ledger: Ledger) -> None:
    writer = ObservationLog(sqlite_ledger)
    writer.LIMIT = 3
    for s in range(5):
        writer.add(seen(s * 60, "on" if s % 2 else "off"))
    assert (writer.pending(), writer.dropped) == (3, 2)


def _rows(ledger: Ledger) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    """Every stored row of both tables, in key order (the times cut to HH:MM:SS)."""
    engine = ledger.factory.datastore.engine  # type: ignore[attr-defined]
    short = lambda v: v[11:19] if isinstance(v, str) and v.startswith("2026-") else v  # noqa: E731
    with engine.connect() as conn:
        runs = conn.execute(sqlalchemy.select(observations).order_by(*observations.primary_key.columns))
        latest = conn.execute(sqlalchemy.select(reports).order_by(reports.c.client_id))
        return [tuple(map(short, r)) for r in runs], [tuple(map(short, r)) for r in latest]


def test_one_batch_of_every_kind_stores_the_same_rows_on_each_store(ledger: Ledger) -> None:
    """Runs started, continued from the store, replaced within their second, split by a change
    and by a silence, in one batch beside screens never seen: the rows each store holds (the
    writes take a different shape per store, one statement a table on PostgreSQL)."""
    x = "0f0c7a4e-6b0c-5d8e-9a51-3a2f1c9d4b7e"
    writer = ObservationLog(ledger, split_after=900)
    for client_id, state in (("a", "on"), ("b", "on"), ("c", "on"), ("d", "off")):
        writer.add(seen(0, state, intent_id=x if client_id == "b" else None, client_id=client_id))
    writer.flush()
    batch = [
        seen(300, client_id="a"),
        seen(600, client_id="a"),  # a: the stored run continued by two reports
        seen(0, "off", client_id="b"),  # b: a change within the stored run's second replaces it
        seen(300, client_id="c"),  # c: the stored run continued, then a change, then a silence
        seen(600, "off", client_id="c"),
        seen(900, "off", client_id="c"),
        seen(2000, "off", client_id="c"),
        seen(2000, "off", client_id="d"),  # d: a silence longer than split_after, nothing changed
        seen(100, "unknown", client_id="e"),  # e, f: never seen; f changes within one second
        seen(5, "on", intent_id=x, client_id="f"),
        seen(5, "off", client_id="f"),
    ]
    for s in batch:
        writer.add(s)
    writer.flush()
    runs, latest = _rows(ledger)
    assert runs == [
        ("a", "10:00:00", "10:00:00", None, "on", "at 0", "10:10:00", 3, "10:00:00"),
        ("b", "10:00:00", "10:00:00", None, "off", "at 0", "10:00:00", 1, "10:00:00"),
        ("c", "10:00:00", "10:00:00", None, "on", "at 0", "10:05:00", 2, "10:00:00"),
        ("c", "10:10:00", "10:00:00", None, "off", "at 600", "10:15:00", 2, "10:10:00"),
        ("c", "10:33:20", "10:00:00", None, "off", "at 2000", "10:33:20", 1, "10:33:20"),
        ("d", "10:00:00", "10:00:00", None, "off", "at 0", "10:00:00", 1, "10:00:00"),
        ("d", "10:33:20", "10:00:00", None, "off", "at 2000", "10:33:20", 1, "10:33:20"),
        ("e", "10:01:40", "10:00:00", None, "unknown", "at 100", "10:01:40", 1, "10:01:40"),
        ("f", "10:00:05", "10:00:00", None, "off", "at 5", "10:00:05", 1, "10:00:05"),
    ]
    assert latest == [
        ("a", "10:10:00", "10:00:00", None, "on", "at 600", "10:10:00", "10:00:00"),
        ("b", "10:00:00", "10:00:00", None, "off", "at 0", "10:00:00", "10:00:00"),
        ("c", "10:33:20", "10:00:00", None, "off", "at 2000", "10:33:20", "10:33:20"),
        ("d", "10:33:20", "10:00:00", None, "off", "at 2000", "10:33:20", "10:33:20"),
        ("e", "10:01:40", "10:00:00", None, "unknown", "at 100", "10:01:40", "10:01:40"),
        ("f", "10:00:05", "10:00:00", None, "off", "at 5", "10:00:05", "10:00:05"),
    ]
    assert writer.pending() == 0


@pytest.mark.postgres
def test_the_latest_reports_leave_room_in_their_pages_on_postgres(pg_url: str) -> None:
    """Each screen's row is replaced every 300 s: with room in its page PostgreSQL writes the new
    version there (a HOT update), without a new entry in the primary key's index."""
    ledger = Ledger(pg_url)
    try:
        ObservationLog(ledger)
        engine = ledger.factory.datastore.engine  # type: ignore[attr-defined]
        query = "select reloptions from pg_class where oid = 'audit_reports'::regclass"
        with engine.connect() as conn:
            assert conn.execute(sqlalchemy.text(query)).scalar() == ["fillfactor=50"]
    finally:
        ledger.close()


def test_a_full_batch_on_sqlite_is_whole_multi_row_statements(sqlite_ledger: Ledger) -> None:
    """No row of a full batch goes in a statement of its own: each would give the GIL away and
    take it back while the transaction holds SQLite's write lock (the daemon waiting for it)."""
    writer = ObservationLog(sqlite_ledger)
    for n in range(writer.batch):
        writer.add(seen(0, client_id=f"s{n:04d}"))
    writes: list[tuple[str, bool]] = []

    def record(_conn: Any, _cursor: Any, sql: str, _params: Any, _context: Any, many: bool) -> None:
        if sql.startswith(("INSERT", "UPDATE")):
            writes.append((sql[:30], many))

    engine = sqlite_ledger.factory.datastore.engine  # type: ignore[attr-defined]
    sqlalchemy.event.listen(engine, "before_cursor_execute", record)
    try:
        writer.flush(writer.batch)
    finally:
        sqlalchemy.event.remove(engine, "before_cursor_execute", record)
    assert writer.pending() == 0
    assert not [w for w in writes if w[1]]  # no executemany: one multi-row statement at a time
    assert 0 < len(writes) <= 2 * writer.batch // SQLITE_STATEMENT_ROWS  # the runs, the latest
    assert len(latest_reports(engine)) == writer.batch


@pytest.mark.parametrize("wanted", [3, 501])
def test_run_rows_are_the_runs_fields_up_to_last_reported_at(ledger: Ledger, wanted: int) -> None:
    """What the compliance fold reads: each chosen screen's runs, as `runs_between` has them
    (the last before the range included), for a few screens (an IN list) or many (filtered after)."""
    writer = ObservationLog(ledger, split_after=900)
    for k in range(wanted + 2):
        for s in (-7200, 0, 1200):
            writer.add(seen(s + k, "off" if s < 0 else "on", client_id=f"s{k:03}"))
    writer.flush()
    engine = ledger.factory.datastore.engine  # type: ignore[attr-defined]
    chosen = [f"s{k:03}" for k in range(1, wanted + 1)]
    start, end = format_instant(T0 - timedelta(seconds=60)), format_instant(T0 + timedelta(hours=1))
    runs = runs_between(engine, start, end, chosen)
    rows = run_rows(engine, start, end, chosen)
    assert sorted(rows) == chosen
    assert rows == {c: [tuple(r[:5]) for r in found] for c, found in runs.items()}
    assert [(r[0][11:], r[3]) for r in rows["s001"]] == [
        ("08:00:01Z", "off"),  # the last run before the range
        ("10:00:01Z", "on"),
        ("10:20:01Z", "on"),  # after a silence longer than split_after
    ]
