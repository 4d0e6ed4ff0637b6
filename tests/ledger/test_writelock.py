"""SQLite's write lock taken at a write transaction's start and polled for (ledger.writelock)."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest
from eventsourcing.persistence import OperationalError

from ledger import Ledger
from ledger.errors import ClientNotFound
from ledger.persistence import transaction
from ledger.writelock import POLL, WAL_PAGES, begin_immediate, immediate_writes, wal_pages
from publisher.config import BrokerConfig
from publisher.daemon import Daemon
from tests.conftest import ME


def _lock_is_free(db: Path) -> bool:
    with closing(sqlite3.connect(db, timeout=0, isolation_level=None)) as probe:
        try:
            probe.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError:
            return False
        probe.execute("ROLLBACK")
        return True


def _holder(path: Path) -> sqlite3.Connection:
    """Another connection (another process's, as far as SQLite can tell) holding the write lock."""
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    return other


def _wal_file(tmp_path: Path) -> Path:
    path = tmp_path / "lock.db"
    setup = sqlite3.connect(path, isolation_level=None)
    setup.execute("PRAGMA journal_mode = WAL")
    setup.execute("CREATE TABLE t (x)")
    setup.close()
    return path


def test_it_waits_for_a_held_lock_in_polls_and_restores_the_busy_timeout(tmp_path: Path) -> None:
    path = _wal_file(tmp_path)
    other = _holder(path)
    mine = sqlite3.connect(path, isolation_level=None, timeout=5)
    slept: list[float] = []

    def sleep(seconds: float) -> None:  # the third poll finds the lock released
        slept.append(seconds)
        if len(slept) == 3:
            other.execute("COMMIT")

    assert begin_immediate(mine, sleep=sleep) == 3
    assert slept == [POLL, POLL, POLL]
    assert mine.in_transaction
    assert mine.execute("PRAGMA busy_timeout").fetchone()[0] == 5000
    assert not _lock_is_free(path)  # the lock is ours now
    mine.execute("COMMIT")


def test_past_the_busy_timeout_it_says_locked_as_sqlite_would(tmp_path: Path) -> None:
    path = _wal_file(tmp_path)
    other = _holder(path)  # held while the name lives
    mine = sqlite3.connect(path, isolation_level=None, timeout=0.25)
    now = [0.0]

    def sleep(seconds: float) -> None:  # a virtual clock: no real waiting
        now[0] += seconds

    with pytest.raises(sqlite3.OperationalError, match="locked"):
        begin_immediate(mine, sleep=sleep, clock=lambda: now[0])
    assert 0.25 <= now[0] < 0.25 + 2 * POLL
    assert not mine.in_transaction
    assert mine.execute("PRAGMA busy_timeout").fetchone()[0] == 250
    other.execute("ROLLBACK")


def test_a_transaction_begun_already_is_left_alone(tmp_path: Path) -> None:
    mine = sqlite3.connect(_wal_file(tmp_path), isolation_level=None)
    mine.execute("BEGIN")
    assert begin_immediate(mine, sleep=lambda _s: pytest.fail("no poll")) == 0


def test_the_ledgers_writes_hold_the_lock_from_their_start_only_when_asked(
    sqlite_ledger: Ledger, tmp_path: Path
) -> None:
    """A write transaction of `immediate_writes` holds the lock before it writes anything."""
    app, db = sqlite_ledger, tmp_path / "ledger.db"  # the fixture's file
    app.add_client("room-1", None, ME)  # tables and WAL mode in place
    with transaction(app, commit=True):
        assert _lock_is_free(db)  # the stock begin is deferred
    immediate_writes(app)
    with transaction(app, commit=True):
        assert not _lock_is_free(db)
    with transaction(app, commit=False):
        assert _lock_is_free(db)  # reads never take it
    app.add_client("room-2", None, ME)
    assert app.client("room-2") is not None


def test_a_ledger_write_past_the_busy_timeout_fails_as_writes_do_and_changes_nothing(
    sqlite_ledger: Ledger, tmp_path: Path
) -> None:
    app, db = sqlite_ledger, tmp_path / "ledger.db"  # the fixture's file
    app.add_client("room-1", None, ME)
    immediate_writes(app)
    with transaction(app, commit=False) as session:  # the pool's connection, its timeout shortened
        dbapi = session.connection().connection.driver_connection
        assert dbapi is not None
        dbapi.execute("PRAGMA busy_timeout = 50")
    other = _holder(db)
    with pytest.raises(OperationalError, match="locked"):
        app.add_client("room-2", None, ME)
    other.execute("ROLLBACK")
    with pytest.raises(ClientNotFound):
        app.client("room-2")
    app.add_client("room-2", None, ME)  # and the next write goes through
    assert app.client("room-2") is not None


def test_the_daemon_asks_for_it(sqlite_ledger: Ledger, tmp_path: Path) -> None:
    app, db = sqlite_ledger, tmp_path / "ledger.db"  # the fixture's file
    app.add_client("room-1", None, ME)
    Daemon(app, BrokerConfig())  # not started: nothing connects
    with transaction(app, commit=True):
        assert not _lock_is_free(db)


def _checkpoint_pages(app: Ledger) -> list[int]:
    """wal_autocheckpoint of each connection in the ledger's pool (each checked out at once)."""
    engine = app.factory.datastore.engine  # type: ignore[attr-defined]
    held = [engine.raw_connection() for _ in range(engine.pool.checkedin())]
    try:
        return [c.driver_connection.execute("PRAGMA wal_autocheckpoint").fetchone()[0] for c in held]
    finally:
        for c in held:
            c.close()


def test_wal_pages_is_set_on_a_connection_at_its_next_write_and_set_back(sqlite_ledger: Ledger) -> None:
    app = sqlite_ledger
    immediate_writes(app)
    app.add_client("room-1", None, ME)
    assert _checkpoint_pages(app) == [WAL_PAGES]
    wal_pages(app, 10_000)
    assert _checkpoint_pages(app) == [WAL_PAGES]  # not before a write
    app.add_client("room-2", None, ME)
    assert _checkpoint_pages(app) == [10_000]
    wal_pages(app, WAL_PAGES)
    app.add_client("room-3", None, ME)
    assert _checkpoint_pages(app) == [WAL_PAGES]


def test_wal_pages_changes_nothing_without_immediate_writes(sqlite_ledger: Ledger) -> None:
    app = sqlite_ledger
    wal_pages(app, 10_000)
    app.add_client("room-1", None, ME)
    assert _checkpoint_pages(app) == [WAL_PAGES]


def test_the_daemons_start_records_with_a_larger_log_and_sets_it_back(sqlite_ledger: Ledger) -> None:
    """While the start's chunks are recorded (three of one client each) the datastore asks for
    START_WAL_PAGES at every one; once they are, for WAL_PAGES again (the follower alone: no
    broker)."""
    from publisher.follower import START_WAL_PAGES

    app = sqlite_ledger
    for name in ("room-1", "room-2", "room-3"):
        app.add_client(name, None, ME)
    daemon = Daemon(app, BrokerConfig())
    daemon.follower.chunk = 1
    asked: list[int] = []
    record = app.record_intents

    def recording(*args: Any, **kwargs: Any) -> Any:
        asked.append(app.factory.datastore.wal_pages)  # type: ignore[attr-defined]
        return record(*args, **kwargs)

    with patch.object(app, "record_intents", recording):
        daemon.follower.follow(daemon.clock.now(), strict=True)
        while daemon.follower.pending:
            daemon.follower.follow(daemon.clock.now(), strict=True)
    assert asked == [START_WAL_PAGES] * 3
    assert app.factory.datastore.wal_pages == WAL_PAGES  # type: ignore[attr-defined]
