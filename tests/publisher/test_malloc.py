"""The daemon's process keeps to one malloc arena (glibc)."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

_CHILD = """
import ctypes, sys, threading
from publisher.malloc import one_arena
if sys.argv[1] == "one":
    assert one_arena()
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
thread = threading.Thread(target=lambda: libc.malloc(100_000))
thread.start()
thread.join()
libc.malloc_stats()  # on stderr: one "Arena N:" a malloc arena
"""


def _arenas(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", _CHILD, mode], capture_output=True, text=True, check=True)
    return out.stderr.count("Arena ")


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt and malloc_stats")
def test_a_thread_allocates_from_the_main_arena_once_limited() -> None:
    assert _arenas("default") >= 2  # a thread's own arena, as glibc gives it
    assert _arenas("one") == 1
