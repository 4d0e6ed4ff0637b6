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
from ledger.writelock import POLL, WAL_PAGES, begin_immediate, checkpoint_wal, immediate_writes, wal_pages
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


def _settings(app: Ledger) -> list[tuple[int, int]]:
    """(wal_autocheckpoint, journal_size_limit) of each connection in the ledger's pool, each
    checked out at once, as the engine hands them out."""
    engine = app.factory.datastore.engine  # type: ignore[attr-defined]
    held = [engine.raw_connection() for _ in range(max(1, engine.pool.checkedin()))]
    try:
        return [
            (
                c.driver_connection.execute("PRAGMA wal_autocheckpoint").fetchone()[0],
                c.driver_connection.execute("PRAGMA journal_size_limit").fetchone()[0],
            )
            for c in held
        ]
    finally:
        for c in held:
            c.close()


def test_wal_pages_is_set_on_every_connection_handed_out_and_set_back(sqlite_ledger: Ledger) -> None:
    """The ledger's transactions' connections and the engine's own (a checkpoint's save,
    retention): each checkpoints past the pages asked for, and keeps a file of as many."""
    app = sqlite_ledger
    app.add_client("room-1", None, ME)
    assert _settings(app) == [(WAL_PAGES, -1)]  # SQLite's own: nothing set before it is asked
    wal_pages(app, 10_000)
    assert _settings(app) == [(10_000, 10_000 * 4_096)]
    engine = app.factory.datastore.engine  # type: ignore[attr-defined]
    with engine.begin() as connection:
        assert connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar_one() == 10_000
    app.add_client("room-2", None, ME)
    wal_pages(app, WAL_PAGES)
    assert _settings(app) == [(WAL_PAGES, WAL_PAGES * 4_096)]


def test_on_postgresql_wal_pages_and_checkpoint_wal_do_nothing(pg_url: str) -> None:
    app = Ledger(pg_url)
    try:
        wal_pages(app, 10_000)
        assert app.factory.datastore.wal_pages == WAL_PAGES  # type: ignore[attr-defined]
        assert checkpoint_wal(app, WAL_PAGES) is None
    finally:
        app.close()


def _fill_wal(db: Path, pages: int) -> None:
    """Append about `pages` pages to the file's write-ahead log, none checkpointed."""
    with closing(sqlite3.connect(db, isolation_level=None)) as filler:
        filler.execute("PRAGMA wal_autocheckpoint = 0")
        filler.execute("CREATE TABLE IF NOT EXISTS filler (b BLOB)")
        filler.execute("BEGIN")
        filler.executemany("INSERT INTO filler VALUES (?)", [(bytes(4_000),)] * pages)
        filler.execute("COMMIT")


def _wal_frames(db: Path) -> int:
    with closing(sqlite3.connect(db, isolation_level=None)) as probe:
        frames: int = probe.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1]
        return frames


def test_checkpoint_wal_leaves_a_small_log_to_the_commits(sqlite_ledger: Ledger) -> None:
    """A log smaller than the threshold: no commit would copy it back, no thread is needed."""
    app = sqlite_ledger
    app.add_client("room-1", None, ME)
    wal_pages(app, 10_000)
    assert checkpoint_wal(app, WAL_PAGES) is None
    assert app.factory.datastore.wal_pages == WAL_PAGES  # type: ignore[attr-defined]


@pytest.mark.parametrize("copied", [True, False])
def test_checkpoint_wal_copies_a_large_log_back_so_the_next_write_starts_a_small_one(
    sqlite_ledger: Ledger, tmp_path: Path, copied: bool
) -> None:
    """After a burst's large log, copied back on the thread: the next write starts the log
    again, and cuts its file to what WAL_PAGES lets it grow to. Without it (the threshold
    merely set back) that write checkpoints the whole log in its own commit, which leaves
    the log and its file as large as they were."""
    app, db = sqlite_ledger, tmp_path / "ledger.db"  # the fixture's file
    immediate_writes(app)
    app.add_client("room-1", None, ME)
    wal_pages(app, 10_000)
    _fill_wal(db, 3 * WAL_PAGES)
    if copied:
        thread = checkpoint_wal(app, WAL_PAGES)
        assert thread is not None
        thread.join(timeout=30)
        assert not thread.is_alive()
    else:
        wal_pages(app, WAL_PAGES)
    assert app.factory.datastore.wal_pages == WAL_PAGES  # type: ignore[attr-defined]
    app.add_client("room-2", None, ME)
    wal = db.with_name(db.name + "-wal")
    if copied:
        assert _wal_frames(db) < 100
        assert wal.stat().st_size <= WAL_PAGES * 4_096
    else:
        assert _wal_frames(db) > 3 * WAL_PAGES
        assert wal.stat().st_size > 3 * WAL_PAGES * 4_096


def test_the_daemons_start_records_with_a_larger_log_and_sets_it_back(sqlite_ledger: Ledger) -> None:
    """While the start's chunks are recorded (three of one client each) the datastore asks for
    START_WAL_PAGES at every one; once the log is copied back, for WAL_PAGES again (the
    follower alone: no broker)."""
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
    daemon.follower.close()  # the start's log copied back: the threshold set back after it
    assert app.factory.datastore.wal_pages == WAL_PAGES  # type: ignore[attr-defined]


def test_the_daemons_start_has_its_log_copied_back_on_a_thread(sqlite_ledger: Ledger, tmp_path: Path) -> None:
    """With a threshold of 1 page after the start (so its log is larger), the follower copies
    the log back once the start is recorded, and the next write starts the log again."""
    app, db = sqlite_ledger, tmp_path / "ledger.db"
    for name in ("room-1", "room-2", "room-3"):
        app.add_client(name, None, ME)
    daemon = Daemon(app, BrokerConfig())
    with patch("publisher.follower.WAL_PAGES", 1):
        daemon.follower.follow(daemon.clock.now(), strict=True)
    thread = daemon.follower._wal_checkpoint
    assert thread is not None
    daemon.follower.close()
    assert not thread.is_alive()
    assert app.factory.datastore.wal_pages == 1  # type: ignore[attr-defined]
    app.add_client("room-4", None, ME)
    assert _wal_frames(db) < 10


def test_once_the_start_keeps_the_larger_log_to_its_end(sqlite_ledger: Ledger) -> None:
    """--once: no thread; the larger threshold holds for the writes after the start (the
    ledger's close copies the log back)."""
    from publisher.follower import START_WAL_PAGES

    app = sqlite_ledger
    app.add_client("room-1", None, ME)
    daemon = Daemon(app, BrokerConfig())
    daemon.follower.once = True
    with patch("publisher.follower.WAL_PAGES", 1):
        daemon.follower.follow(daemon.clock.now(), strict=True)
    assert daemon.follower._wal_checkpoint is None
    assert app.factory.datastore.wal_pages == START_WAL_PAGES  # type: ignore[attr-defined]
