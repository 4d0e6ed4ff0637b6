"""CPU seconds of other processes, from /proc: the report process, the broker, PostgreSQL's backends.

Wall-clock latencies move with the machine's load; the CPU a part of the
system spent on a burst hardly does. Linux only (a figure that cannot be read
is None, never an error).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import sqlalchemy

__all__ = ["Backends", "cpu_seconds"]

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU seconds of process `pid` so far (None: gone or unreadable)."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / _TICK


def _local_ports(pids: Iterable[int]) -> set[int]:
    """The local TCP ports of the sockets processes `pids` hold open."""
    inodes = set()
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:["):
                inodes.add(link[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                lines = f.readlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[9] in inodes:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


class Backends:
    """CPU seconds spent by the PostgreSQL backends serving processes `pids` (their connections
    over TCP), from one reading to the next: others' sessions on the same server do not count.
    A backend that ends in between takes its share with it; one that starts counts in full."""

    def __init__(self, engine: Any, pids: Iterable[int | None]) -> None:
        self._engine = engine
        self._pids = [p for p in pids if p is not None]
        self._last = self._read()

    def _read(self) -> dict[int, float] | None:
        if self._engine.dialect.name != "postgresql":
            return None
        ports = _local_ports(self._pids)
        query = "select pid, client_port from pg_stat_activity where datname = current_database()"
        with self._engine.connect() as connection:
            rows = list(connection.execute(sqlalchemy.text(query)))
        seconds = {pid: cpu_seconds(pid) for pid, port in rows if port in ports}
        if seconds and all(s is None for s in seconds.values()):
            return None  # the server's processes are not readable here (a remote server)
        return {pid: s for pid, s in seconds.items() if s is not None}

    def spent(self) -> float | None:
        """Seconds since the last reading (None: not PostgreSQL, or not readable here)."""
        before, now = self._last, self._read()
        self._last = now
        if before is None or now is None:
            return None
        return round(sum(s - before.get(pid, 0.0) for pid, s in now.items()), 2)
