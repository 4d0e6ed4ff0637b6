"""Wakes the daemon when another process appends to a PostgreSQL ledger (LISTEN/NOTIFY).

eventsourcing-sqlalchemy sends `NOTIFY <events table>` with every insert on
PostgreSQL. SQLite cannot notify another process; the daemon polls it.
"""

from __future__ import annotations

import threading

import psycopg

from ledger.urls import parse_database_url

__all__ = ["PgWatcher"]


class PgWatcher(threading.Thread):
    """LISTENs on the ledger's channel and sets `wake` on every notification; reconnects on errors."""

    def __init__(self, db_url: str, channel: str, wake: threading.Event, stop: threading.Event) -> None:
        super().__init__(name="ledger-listen", daemon=True)
        self._conninfo = parse_database_url(db_url).conninfo
        self._channel = channel
        self._wake = wake
        self._stopping = stop
        self.connected = threading.Event()

    def run(self) -> None:
        delay = 0.1
        while not self._stopping.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True) as conn:
                    conn.execute(f'LISTEN "{self._channel}"')
                    self.connected.set()
                    delay = 0.1
                    self._wake.set()  # catch up on anything appended while we were away
                    while not self._stopping.is_set():
                        for _ in conn.notifies(timeout=0.5):
                            self._wake.set()
            except psycopg.Error:
                self.connected.clear()
                self._stopping.wait(delay)
                delay = min(delay * 2, 1.0)  # back within a second of the database answering
