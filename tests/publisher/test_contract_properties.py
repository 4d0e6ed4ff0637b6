"""The client contract under random message sequences (hypothesis): its invariants always hold.

Pure and clock-injected: every step is an input at an instant; after each one the
contract's state is checked against the rules of docs/client-contract.md.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from publisher.contract import ScreenContract

T0 = datetime(2026, 3, 31, 12, tzinfo=UTC)


def z(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def payload(state: str, intent_id: str, issued: datetime, ttl: int, grace: int, window_end: int) -> bytes:
    body: dict[str, Any] = {
        "schema_version": "1.0",
        "intent_id": intent_id,
        "issued_at": z(issued),
        "expires_at": z(issued + timedelta(seconds=ttl)),
        "target": {"client_id": "c1", "group_id": None},
        "power": {"desired_state": state, "reason": "no_active_event", "grace_seconds": grace},
        "event_window": None,
    }
    if state == "on":
        body["power"]["reason"] = "event_window_active"
        body["event_window"] = {"start": z(issued), "end": z(issued + timedelta(seconds=window_end))}
    return json.dumps(body).encode()


step = st.one_of(
    st.tuples(
        st.just("intent"),
        st.integers(0, 400),  # seconds since the previous step
        st.sampled_from(["on", "off"]),
        st.sampled_from(["a", "b", "c"]),
        st.integers(-300, 30),  # issued_at relative to the arrival (late, redelivered, early)
        st.sampled_from([1, 60, 600]),  # ttl
        st.sampled_from([0, 30, 90]),  # grace
        st.sampled_from([0, 120, 3600]),  # event window length
    ),
    st.tuples(st.just("empty"), st.integers(0, 400)),
    st.tuples(st.just("advance"), st.integers(0, 900)),
)


def check(c: ScreenContract, now: datetime) -> None:
    times = [t for t, _ in c.actions]
    assert times == sorted(times)
    assert all(t <= now for t in times)
    assert all(a[1] != b[1] for a, b in zip(c.actions, c.actions[1:], strict=False)), "toggled twice"
    if c.actions:
        assert c.actions[-1][1] == c.tv
    if c.tv == "off":
        assert c.off_at is None, "a pending off while the TV is off"
    held = c.held
    assert c.following == (None if held is None or c.expired else held.intent_id)
    if held is not None and not c.expired:
        assert held.expires_at > now
        if held.desired_state == "on":
            assert c.tv == "on", "an on holds but the TV is off"
        elif now >= held.received_at + held.grace:
            assert c.tv == "off", "an off held past its grace but the TV is on"
    if held is not None and c.expired and held.desired_state == "on":
        end = max(held.expires_at, held.window_end or held.expires_at)
        if now >= end + held.grace:
            assert c.tv == "off", "an expired on outlived its window and grace"
    wake = c.next_wakeup()
    assert wake is None or wake > now


@settings(max_examples=400, deadline=None)
@given(st.lists(step, min_size=1, max_size=40))
def test_invariants_hold_for_any_sequence(steps: list[tuple[Any, ...]]) -> None:
    """Whatever arrives, in whatever order and timing: level never toggled twice, an `on` that
    holds keeps the TV on, an `off` held past its grace has switched it off, expiry ends it."""
    c = ScreenContract()
    now = T0
    for s in steps:
        now += timedelta(seconds=s[1])
        if s[0] == "intent":
            _, _, state, intent_id, offset, ttl, grace, length = s
            issued = now + timedelta(seconds=offset)
            verdict = c.receive(payload(state, f"{intent_id}-{state}", issued, ttl, grace, length), now)
            assert verdict in ("accepted", "duplicate", "stale", "expired")
            if issued + timedelta(seconds=ttl) <= now:
                assert verdict == "expired"
        elif s[0] == "empty":
            assert c.receive(b"", now) == "removed"
            assert (c.tv, c.held) == ("off", None)
        else:
            c.advance(now)
        check(c, now)
