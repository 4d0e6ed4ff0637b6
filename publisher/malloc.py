"""The daemon's process allocates from one C heap (glibc's malloc arenas), not one a thread.

glibc gives a thread that contends for the main heap an arena of its own, and
memory freed in an arena is reused only by that arena. The daemon's threads
that allocate through malloc (a first start's chunk writer: SQLite's pages and
statements; the metrics server; the PostgreSQL watcher) each take their piece
of C memory and keep it, on top of the main heap's, for as long as the process
lives. With one arena they reuse each other's freed blocks. They rarely run C
code at the same time (the GIL), and glibc's per-thread caches serve most small
blocks without the arena's lock.

Process-wide, so `intent-ledger run` sets it first thing, before any thread is
started (a thread that has an arena keeps it); the benchmarks that stand for it
do the same.
"""

from __future__ import annotations

import ctypes

__all__ = ["M_ARENA_MAX", "one_arena"]

M_ARENA_MAX = -8  # glibc's <malloc.h>


def one_arena() -> bool:
    """Limit malloc to the main arena; False where that cannot be said (not glibc)."""
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the process's own symbols: its C library's
    except (OSError, AttributeError):  # another C library
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_ARENA_MAX, 1))
