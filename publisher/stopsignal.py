"""SIGTERM and Ctrl-C stop a process, through a handler that takes no lock.

Python runs a signal handler in the main thread between two bytecodes, and that thread may
hold a lock just then: a daemon's loop spends its life in `Event.wait`, which holds the
event's own lock on the way in and out. A handler that calls `Event.set()` there waits for
that lock forever, and the process never stops. So the handler only writes a byte to a pipe;
a thread of ours reads it and calls `stop`, as any other thread would, waiting its turn.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterable

__all__ = ["STOP_SIGNALS", "stop_on_signals"]

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class _Watch:
    """One pipe and one thread per process; each signal calls the latest `stop`."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.stop: Callable[[], None] = lambda: None
        self._read, self._write = os.pipe()
        os.set_blocking(self._write, False)
        threading.Thread(target=self._run, name="stop-signal", daemon=True).start()

    def on_signal(self, _signum: int, _frame: object) -> None:
        with contextlib.suppress(BlockingIOError):  # a byte waits already: a stop is coming
            os.write(self._write, b"\0")

    def _run(self) -> None:
        while os.read(self._read, 1):
            self.stop()


_watch: _Watch | None = None


def stop_on_signals(stop: Callable[[], None], signals: Iterable[int] = STOP_SIGNALS) -> None:
    """From now on each of `signals` calls `stop()` (on a thread of ours, never in the handler).

    Call it from the main thread, as `signal.signal` must be.
    """
    global _watch
    if _watch is None or _watch.pid != os.getpid():  # a forked child has no thread of ours
        _watch = _Watch()
    _watch.stop = stop
    for number in signals:
        signal.signal(number, _watch.on_signal)
