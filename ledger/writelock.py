"""SQLite's write lock taken at a transaction's start, polled for finely instead of by SQLite's backoff.

SQLite's own busy handler, waiting for another process's write lock, sleeps
in growing steps between tries, so a short lock held by the report process
costs the daemon's write several times its length (docs/decisions.md). The
daemon's intents are on the path to a screen, so its write transactions start
with `BEGIN IMMEDIATE` tried every `POLL` seconds (SQLite's busy timeout off
meanwhile, restored after), until the connection's own busy timeout has passed.
Taking the lock at the start also rules out a deferred transaction's failed
upgrade from a read. `Datastore` is the ledger's (ledger.persistence.Factory):
the stock one, whose write transactions do this once `immediate_writes` asked.

The datastore also sets, on each connection it hands out, how large the
write-ahead log may grow before a commit checkpoints it (`wal_pages`): a burst
of records, such as a first start's, rewrites the same index pages commit after
commit, and a larger log copies each one back to the database file once instead
of once every SQLite default of 1,000 pages. After the burst `checkpoint_wal`
copies that log back on a thread of its own, so no commit carries it, and the
file is cut back to what the smaller threshold lets it grow to at its next reset.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing_sqlalchemy.datastore import SQLAlchemyDatastore, Transaction
from sqlalchemy import Engine, event
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session

__all__ = [
    "POLL",
    "WAL_PAGES",
    "Datastore",
    "begin_immediate",
    "checkpoint_wal",
    "immediate_writes",
    "wal_pages",
]

POLL = 0.0005  # seconds between tries for another process's write lock
_SQLITE_BUSY = 5  # the primary result code: another connection holds the lock
WAL_PAGES = 1_000  # SQLite's own wal_autocheckpoint
_PAGE_BYTES = 4_096  # SQLite's default page size, the ledger's
_SET_PAGES = "intent_ledger.wal_pages"  # a pooled connection's setting, in its pool record's info


def begin_immediate(
    dbapi: Any, *, sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic
) -> int:
    """Begin a transaction on the sqlite3 connection `dbapi` holding the write lock; returns
    how many tries found it held. Raises sqlite3's "database is locked" once the connection's
    busy timeout has passed, as a write in a deferred transaction would."""
    if dbapi.in_transaction:
        return 0  # begun already (a write in it took the lock, or will)
    timeout_ms = dbapi.execute("PRAGMA busy_timeout").fetchone()[0]
    deadline = clock() + timeout_ms / 1000
    busy = 0
    dbapi.execute("PRAGMA busy_timeout = 0")
    try:
        while True:
            try:
                dbapi.execute("BEGIN IMMEDIATE")
                return busy
            except sqlite3.OperationalError as e:
                if e.sqlite_errorcode & 0xFF != _SQLITE_BUSY or clock() >= deadline:
                    raise
            busy += 1
            sleep(POLL)
    finally:
        dbapi.execute(f"PRAGMA busy_timeout = {int(timeout_ms)}")


class _ImmediateWrite:
    """A write transaction whose SQLite write lock is taken at its start (`begin_immediate`)."""

    def __init__(self, transaction: Transaction) -> None:
        self._transaction = transaction

    def __enter__(self) -> Session:
        session = self._transaction.__enter__()
        try:
            begin_immediate(session.connection().connection.driver_connection)
        except sqlite3.Error as e:
            # Rolled back and raised as the library raises a failed write (its OperationalError).
            failed = OperationalError("BEGIN IMMEDIATE", None, e)
            self._transaction.__exit__(OperationalError, failed, None)
            raise  # not reached: the library raises its own
        except BaseException as e:
            self._transaction.__exit__(type(e), e, e.__traceback__)
            raise
        return session

    def __exit__(self, *exc: Any) -> None:
        self._transaction.__exit__(*exc)


class Datastore(SQLAlchemyDatastore):
    """The stock datastore; with `immediate` (see `immediate_writes`) an SQLite file's write
    transactions start holding the write lock. Its connections checkpoint past `wal_pages` pages."""

    immediate = False
    wal_pages = WAL_PAGES

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if self.is_sqlite_filedb and isinstance(self.engine, Engine):
            event.listen(self.engine, "checkout", self._on_checkout)

    def _on_checkout(self, dbapi: Any, record: Any, _proxy: Any) -> None:
        # Every connection handed out, the ledger's transactions' and the engine's own (a
        # checkpoint's save, retention): a statement only when the setting changed.
        pages = self.wal_pages
        if record.info.get(_SET_PAGES, WAL_PAGES) != pages:
            dbapi.execute(f"PRAGMA wal_autocheckpoint = {int(pages)}")
            # The file left after a reset: as large as the threshold lets the log grow.
            dbapi.execute(f"PRAGMA journal_size_limit = {int(pages) * _PAGE_BYTES}")
            record.info[_SET_PAGES] = pages

    def transaction(self, commit: bool) -> Any:
        transaction = super().transaction(commit)
        if commit and self.immediate and self.is_sqlite_filedb and transaction.nested_level == 0:
            return _ImmediateWrite(transaction)
        return transaction


def immediate_writes(app: Application[UUID]) -> None:
    """This process's write transactions on the application's SQLite file take the write lock
    at their start, polled for finely: for the daemon, whose writes are on a screen's path;
    other processes, which may wait, keep SQLite's deferred begin."""
    datastore = _sqlite_file(app)
    if datastore is not None:
        datastore.immediate = True


def wal_pages(app: Application[UUID], pages: int) -> None:
    """Checkpoint the application's SQLite write-ahead log when a commit leaves it past `pages`
    pages, on each connection from its next use on (on PostgreSQL nothing changes)."""
    datastore = _sqlite_file(app)
    if datastore is not None:
        datastore.wal_pages = pages


def checkpoint_wal(app: Application[UUID], then_pages: int) -> threading.Thread | None:
    """Copy the application's SQLite write-ahead log back to the database file on a thread of
    its own, then checkpoint past `then_pages` pages (`wal_pages`). The checkpoint is SQLite's
    PASSIVE one: no reader or writer waits for it, and a commit meanwhile, finding the log
    checkpointed already, copies only its own pages. A checkpoint that fails (the file gone, a
    checkpoint running elsewhere) leaves the log to the commits' own checkpoints. Returns the
    thread to join; None on PostgreSQL, and where the log's file is smaller than `then_pages`
    pages: no commit would checkpoint it, so the threshold is set at once."""
    datastore = _sqlite_file(app)
    if datastore is None:
        return None
    engine = datastore.engine
    assert isinstance(engine, Engine)
    try:
        size = os.stat(f"{engine.url.database}-wal").st_size
    except OSError:
        size = 0  # no log (a checkpoint removed it): nothing to copy
    if size < then_pages * _PAGE_BYTES:
        datastore.wal_pages = then_pages
        return None

    def run() -> None:
        try:
            with engine.connect() as connection:
                connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
        except SQLAlchemyError:
            pass  # the commits checkpoint as they always do
        finally:
            datastore.wal_pages = then_pages

    thread = threading.Thread(target=run, name="wal-checkpoint", daemon=True)
    thread.start()
    return thread


def _sqlite_file(app: Application[UUID]) -> Datastore | None:
    """The application's datastore when it is ours and on an SQLite file (else None)."""
    datastore = getattr(app.factory, "datastore", None)
    return datastore if isinstance(datastore, Datastore) and datastore.is_sqlite_filedb else None
