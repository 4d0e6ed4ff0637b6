"""Who may be active: one daemon per shard, the others wait as hot standbys.

PostgreSQL: a session advisory lock on a connection held for the process's
life (the server drops it when the process dies). SQLite: an exclusive
`flock` on a file beside the database (the kernel drops it when the process
dies). Either way a SIGKILLed active daemon frees its lease at once.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from typing import IO, Protocol

import psycopg
from psycopg.conninfo import make_conninfo

from ledger.urls import parse_database_url

__all__ = ["Lease", "lease_for"]


class Lease(Protocol):
    retakes: int  # how often the lease was lost with its connection and taken again

    def try_acquire(self) -> bool: ...

    def held(self) -> bool: ...

    def release(self) -> None: ...


def _key(name: str) -> int:
    # A stable signed 64-bit key for pg_advisory_lock.
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


class PgLease:
    """A session advisory lock. It dies with its connection, which the database may end
    at any time (a restart, a failover, a pgbouncer restart, `pg_terminate_backend`):
    `held` then takes it again, and says False only when another instance has it.
    """

    def __init__(self, db_url: str, name: str) -> None:
        url = parse_database_url(db_url)
        conninfo = url.conninfo
        # Named, so an operator (or a test) can tell the lease's session from the others.
        if "application_name" not in url.parts.query:
            conninfo = make_conninfo(conninfo, application_name="intent-ledger lease")
        self._conninfo = conninfo
        self._key = _key(name)
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None
        self._ours = False
        self.retakes = 0
        self.unreachable = False  # the last check could not reach the database

    def try_acquire(self) -> bool:
        try:
            self._ours = self._lock()
        except psycopg.Error:
            self._drop()
            return False
        return self._ours

    def _lock(self) -> bool:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self._conninfo, autocommit=True, connect_timeout=2)
        row = self._conn.execute("SELECT pg_try_advisory_lock(%s)", (self._key,)).fetchone()
        return bool(row and row[0])

    def held(self) -> bool:
        """Not known to be anyone else's.

        Its connection alive: ours. Connection gone (and the lock with it): taken
        again if free (counted in `retakes`); False if another instance took it.
        While the database cannot be reached nobody can take it there, so it
        counts as ours and is retried on the next check.
        """
        if not self._ours:
            return False
        try:
            if self._conn is not None and self._conn.execute("SELECT 1").fetchone() is not None:
                self.unreachable = False
                return True
        except psycopg.Error:
            self._drop()
        try:
            retaken = self._lock()
        except psycopg.Error:
            self._drop()
            self.unreachable = True
            return True
        self.unreachable = False
        if retaken:
            self.retakes += 1
            return True
        self._ours = False
        self._drop()
        return False

    def release(self) -> None:
        self._ours = False
        self._drop()

    def _drop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None


class FileLease:
    def __init__(self, path: str) -> None:
        self.retakes = 0  # a flock cannot be lost while its file stays open
        self._path = path
        self._file: IO[str] | None = None

    def try_acquire(self) -> bool:
        handle = open(self._path, "a+")  # noqa: SIM115 - held open while the lease is ours
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._file = handle
        return True

    def held(self) -> bool:
        return self._file is not None

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing drops the flock
            self._file = None


def lease_for(db_url: str, name: str) -> Lease:
    """The lease named `name` for this ledger (`name` says prefix and shard)."""
    url = parse_database_url(db_url)
    if url.backend == "postgresql":
        return PgLease(db_url, f"intent-ledger/{name}")
    path = url.path or "intent-ledger.db"
    safe = name.replace("/", "_")
    return FileLease(f"{path}.{safe}.lock")
