"""CPU seconds of other processes, from /proc: the report process, the broker, PostgreSQL's backends.

Wall-clock latencies move with the machine's load; the CPU a part of the
system spent on a burst hardly does. Linux only (a figure that cannot be read
is None, never an error).
"""

from __future__ import annotations

import os
from typing import Any

import sqlalchemy

__all__ = ["backends_cpu", "cpu_seconds"]

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


def backends_cpu(engine: Any) -> float | None:
    """CPU seconds so far of the PostgreSQL backends serving `engine`'s database (but the one
    asking): a backend that exits between two readings takes its share with it. None: not
    PostgreSQL, or the server's processes are not readable here (a remote server)."""
    if engine.dialect.name != "postgresql":
        return None
    query = "select pid from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()"
    with engine.connect() as connection:
        pids = [row[0] for row in connection.execute(sqlalchemy.text(query))]
    seconds = [cpu_seconds(pid) for pid in pids]
    if pids and all(s is None for s in seconds):
        return None
    return sum(s for s in seconds if s is not None)
