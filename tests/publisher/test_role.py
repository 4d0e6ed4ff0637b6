"""The daemon's role under its lease (publisher.role): pure logic, a scripted lease, virtual time."""

from __future__ import annotations

import threading
from datetime import timedelta

from publisher.role import CHECK_EVERY, Role
from tests.publisher.helpers import T0, LogCapture, VirtualClock, make_log


class ScriptedLease:
    """A lease that answers as told: free after `busy` tries; held while `holding`, taken again
    (as after its connection dropped) at the next look when `retake`."""

    def __init__(self, busy: int = 0) -> None:
        self.busy, self.tries, self.retakes, self.holding, self.retake = busy, 0, 0, True, False

    def try_acquire(self) -> bool:
        self.tries += 1
        return self.tries > self.busy

    def held(self) -> bool:
        if self.retake:
            self.retake, self.retakes = False, self.retakes + 1
        return self.holding

    def release(self) -> None:
        pass


def roles(capture: LogCapture) -> list[dict[str, object]]:
    return [{k: v for k, v in r.items() if k != "ts"} for r in capture.records("role")]


def test_a_standby_says_so_once_and_is_active_when_the_lease_is_free() -> None:
    clock = VirtualClock(T0)
    log, capture = make_log(clock)
    role, lease = Role(clock, log, "0/1", T0), ScriptedLease(busy=3)
    assert role.take(lease, threading.Event(), threading.Event(), 0.0)
    assert role.lease is lease
    assert lease.tries == 4
    assert [r["role"] for r in roles(capture)] == ["standby", "active"]


def test_a_standby_stopped_first_takes_nothing() -> None:
    clock = VirtualClock(T0)
    log, _ = make_log(clock)
    stopping = threading.Event()
    stopping.set()
    role = Role(clock, log, "0/1", T0)
    assert not role.take(ScriptedLease(busy=10**9), stopping, threading.Event(), 0.0)
    assert role.lease is None


def test_it_looks_at_the_lease_once_a_second_says_a_retake_and_a_loss() -> None:
    clock = VirtualClock(T0)
    log, capture = make_log(clock)
    role, lease = Role(clock, log, "1/2", T0), ScriptedLease()
    role.take(lease, threading.Event(), threading.Event(), 0.0)
    assert role.still_ours()
    lease.holding = False
    assert role.still_ours()  # within the second: not looked at
    lease.holding, lease.retake = True, True
    clock.t = T0 + CHECK_EVERY
    assert role.still_ours()
    lease.holding = False
    clock.t += CHECK_EVERY + timedelta(milliseconds=1)
    assert not role.still_ours()
    assert role.lost
    assert roles(capture)[1:] == [
        {"event": "role", "role": "active", "shard": "1/2", "lease": "retaken"},
        {"event": "role", "role": "lost", "shard": "1/2"},
    ]
