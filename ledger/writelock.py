"""SQLite's write lock taken at a transaction's start, polled for finely instead of by SQLite's backoff.

SQLite's own busy handler, waiting for another process's write lock, sleeps
1, 2, 5, 10, 15, 20, 25 ms and so on between tries: a lock held 9 ms by the
report process cost the daemon's write 18.6 ms, one held 0.5 ms 3.2 ms. The
daemon's intents are on the path to a screen, so its write transactions start
with `BEGIN IMMEDIATE` tried every `POLL` seconds (SQLite's busy timeout off
meanwhile, restored after), until the connection's own busy timeout has passed.
Taking the lock at the start also rules out a deferred transaction's failed
upgrade from a read. `Datastore` is the ledger's (ledger.persistence.Factory):
the stock one, whose write transactions do this once `immediate_writes` asked.

Those transactions also set how large the write-ahead log may grow before a
commit checkpoints it (`wal_pages`): a burst of records, such as a first start's,
rewrites the same index pages commit after commit, and a larger log copies each
one back to the database file once instead of once every SQLite default of
1,000 pages.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing_sqlalchemy.datastore import SQLAlchemyDatastore, Transaction
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

__all__ = ["POLL", "WAL_PAGES", "Datastore", "begin_immediate", "immediate_writes", "wal_pages"]

POLL = 0.0005  # seconds between tries for another process's write lock
_SQLITE_BUSY = 5  # the primary result code: another connection holds the lock
WAL_PAGES = 1_000  # SQLite's own wal_autocheckpoint
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

    def __init__(self, transaction: Transaction, pages: int) -> None:
        self._transaction, self._pages = transaction, pages

    def __enter__(self) -> Session:
        session = self._transaction.__enter__()
        try:
            pooled = session.connection().connection
            dbapi: Any = pooled.driver_connection
            if pooled.info.get(_SET_PAGES) != self._pages:  # a statement only when it changes
                dbapi.execute(f"PRAGMA wal_autocheckpoint = {int(self._pages)}")
                pooled.info[_SET_PAGES] = self._pages
            begin_immediate(dbapi)
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
    transactions start holding the write lock, and checkpoint past `wal_pages` pages."""

    immediate = False
    wal_pages = WAL_PAGES

    def transaction(self, commit: bool) -> Any:
        transaction = super().transaction(commit)
        if commit and self.immediate and self.is_sqlite_filedb and transaction.nested_level == 0:
            return _ImmediateWrite(transaction, self.wal_pages)
        return transaction


def immediate_writes(app: Application[UUID]) -> None:
    """This process's write transactions on the application's SQLite file take the write lock
    at their start, polled for finely: for the daemon, whose writes are on a screen's path;
    other processes, which may wait, keep SQLite's deferred begin."""
    datastore = getattr(app.factory, "datastore", None)
    if isinstance(datastore, Datastore):
        datastore.immediate = True


def wal_pages(app: Application[UUID], pages: int) -> None:
    """Checkpoint the application's SQLite write-ahead log when a commit leaves it past `pages`
    pages, from each connection's next write on (a process with `immediate_writes`; else, and
    on PostgreSQL, nothing changes)."""
    datastore = getattr(app.factory, "datastore", None)
    if isinstance(datastore, Datastore):
        datastore.wal_pages = pages
