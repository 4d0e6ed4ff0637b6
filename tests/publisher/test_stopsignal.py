"""A stop signal that arrives while the main thread holds the stop event's lock still stops."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator

import pytest

from publisher.stopsignal import stop_on_signals

# The main thread inside the event's lock (as `Event.wait` holds it on the way in and out)
# when SIGTERM arrives; the Python handler runs at the next call, still inside. A handler that
# called `stopped.set()` itself would wait for that lock forever.
HELD_WHEN_SIGNALLED = textwrap.dedent(
    """
    import os, signal, threading
    from publisher.stopsignal import stop_on_signals

    def call():
        return None

    stopped = threading.Event()
    stop_on_signals(stopped.set)
    with stopped._cond:
        os.kill(os.getpid(), signal.SIGTERM)
        call()
    print("stopped" if stopped.wait(60) else "not stopped", flush=True)
    """
)


@pytest.fixture
def handlers() -> Iterator[None]:
    """This process's own handlers, as they were before the test."""
    before = {number: signal.getsignal(number) for number in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)}
    yield
    for number, handler in before.items():
        signal.signal(number, handler)


def test_a_real_sigterm_inside_the_events_lock_stops_the_process() -> None:
    result = subprocess.run(
        [sys.executable, "-c", HELD_WHEN_SIGNALLED], capture_output=True, text=True, timeout=60
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "stopped\n", "")


@pytest.mark.usefixtures("handlers")
def test_the_handler_returns_while_its_own_thread_holds_the_lock() -> None:
    stopped = threading.Event()
    stop_on_signals(stopped.set)
    handler = signal.getsignal(signal.SIGTERM)
    assert callable(handler)
    with stopped._cond:  # type: ignore[attr-defined]
        handler(signal.SIGTERM, None)  # returns: the stop is left to the thread
        assert not stopped.is_set()
    assert stopped.wait(30)


@pytest.mark.usefixtures("handlers")
def test_a_later_call_takes_over_and_a_signal_calls_the_latest_stop() -> None:
    first, second = threading.Event(), threading.Event()
    stop_on_signals(first.set)
    stop_on_signals(second.set, [signal.SIGUSR1])
    handler = signal.getsignal(signal.SIGTERM)  # installed by the first call
    assert callable(handler)
    handler(signal.SIGTERM, None)
    assert second.wait(30)
    assert not first.is_set()
