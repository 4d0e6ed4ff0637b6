"""The client contract, rule by rule (docs/client-contract.md), on hand-made payloads."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from publisher.contract import ScreenContract

T0 = datetime(2026, 3, 31, 12, tzinfo=UTC)


def t(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def z(instant: datetime) -> str:
    return instant.strftime("%Y-%m-%dT%H:%M:%SZ")


def intent(
    state: str,
    issued: float,
    *,
    intent_id: str | None = None,
    ttl: int = 600,
    grace: int = 30,
    window: tuple[float, float] | None = None,
    **extra: Any,
) -> bytes:
    """A v1 payload issued `issued` seconds after T0 (an `on` gets a window unless given)."""
    if state == "on" and window is None:
        window = (issued, issued + 3600)
    body = {
        "schema_version": "1.0",
        "intent_id": intent_id or f"id-{state}",
        "issued_at": z(t(issued)),
        "expires_at": z(t(issued + ttl)),
        "target": {"client_id": "lobby-1", "group_id": "lobby"},
        "power": {
            "desired_state": state,
            "reason": "event_window_active" if state == "on" else "no_active_event",
            "grace_seconds": grace,
        },
        "event_window": None if window is None else {"start": z(t(window[0])), "end": z(t(window[1]))},
    }
    return json.dumps(body | extra).encode()


def status(state: str, started: float) -> bytes:
    return json.dumps({"status": state, "started_at": z(t(started))}).encode()


def on_at(seconds: float = 0) -> ScreenContract:
    """A client whose TV went on at `seconds`."""
    screen = ScreenContract()
    screen.receive(intent("on", seconds), t(seconds))
    return screen


# Which intent holds.


def test_keeps_the_intent_with_the_newest_issued_at() -> None:
    """An intent issued before the held one is stale, even when it arrives later."""
    screen = on_at(0)
    assert screen.receive(intent("off", -5, intent_id="older"), t(1)) == "stale"
    assert screen.held is not None
    assert screen.held.intent_id == "id-on"
    assert screen.advance(t(3600)) == "on"


def test_a_newer_issued_at_of_the_same_intent_is_a_refresh() -> None:
    """The same intent_id with a later issued_at is accepted and moves the expiry."""
    screen = on_at(0)
    assert screen.receive(intent("on", 300), t(300)) == "accepted"
    assert screen.held is not None
    assert screen.held.expires_at == t(900)


def test_equal_issued_at_with_another_intent_id_later_arrival_wins() -> None:
    """Two intents stamped in the same second: the one that arrives later holds."""
    screen = on_at(0)
    assert screen.receive(intent("off", 0, intent_id="second"), t(0)) == "accepted"
    assert screen.held is not None
    assert screen.held.intent_id == "second"
    assert screen.receive(intent("on", 0, intent_id="third"), t(0)) == "accepted"
    assert screen.held.intent_id == "third"


def test_same_intent_id_not_newer_is_a_duplicate() -> None:
    """A redelivery (equal issued_at) or an older copy of the held intent is ignored."""
    screen = on_at(300)
    assert screen.receive(intent("on", 300), t(301)) == "duplicate"
    assert screen.receive(intent("on", 0), t(302)) == "duplicate"
    assert screen.held is not None
    assert screen.held.received_at == t(300)


def test_an_intent_received_already_expired_is_ignored() -> None:
    """expires_at at or before the receipt: ignored, nothing switches, nothing is held."""
    screen = ScreenContract()
    assert screen.receive(intent("on", 0, ttl=600), t(600)) == "expired"
    assert screen.receive(intent("on", 0, ttl=600), t(700)) == "expired"
    assert (screen.held, screen.actions) == (None, [])


def test_unreadable_or_other_major_payloads_are_ignored() -> None:
    """Malformed JSON, a 2.x payload or a bad timestamp never changes what holds."""
    screen = on_at(0)
    for bad in (
        b"{not json",
        intent("off", 10, intent_id="v2", schema_version="2.0"),
        intent("off", 10, intent_id="offset", issued_at="2026-03-31T12:00:10+00:00"),
    ):
        assert screen.receive(bad, t(10)) == "invalid"
    assert screen.advance(t(100)) == "on"


def test_unknown_fields_of_a_later_minor_version_are_ignored() -> None:
    """A 1.x payload with fields this client does not know is followed as usual."""
    screen = ScreenContract()
    assert screen.receive(intent("on", 0, schema_version="1.4", brightness=80), t(0)) == "accepted"
    assert screen.tv == "on"


# Acting on the level.


def test_on_switches_the_tv_on_at_once() -> None:
    """The TV goes on at the instant the `on` arrives."""
    screen = ScreenContract()
    screen.receive(intent("on", 0), t(2))
    assert screen.actions == [(t(2), "on")]


def test_acts_on_the_level_never_toggles() -> None:
    """Repeated `on`s and an `off` for a TV already off switch nothing."""
    screen = on_at(0)
    screen.receive(intent("on", 300), t(300))
    screen.receive(intent("on", 400, intent_id="other-on"), t(400))
    assert screen.actions == [(t(0), "on")]
    dark = ScreenContract(tv="off")
    dark.receive(intent("off", 0), t(0))
    assert (dark.advance(t(100)), dark.actions) == ("off", [])


def test_off_switches_off_grace_seconds_after_it_arrives() -> None:
    """The TV stays on during the grace and goes off at arrival + grace_seconds."""
    screen = on_at(0)
    screen.receive(intent("off", 100, grace=30), t(100))
    assert screen.advance(t(129)) == "on"
    assert screen.advance(t(500)) == "off"
    assert screen.actions == [(t(0), "on"), (t(130), "off")]


def test_off_with_zero_grace_switches_off_at_once() -> None:
    """grace_seconds 0: off at the instant the `off` arrives."""
    screen = on_at(0)
    screen.receive(intent("off", 100, grace=0), t(100))
    assert screen.actions[-1] == (t(100), "off")


def test_on_cancels_a_pending_off() -> None:
    """An `on` within the grace: the TV never goes off."""
    screen = on_at(0)
    screen.receive(intent("off", 100), t(100))
    screen.receive(intent("on", 120, intent_id="next-on"), t(120))
    assert screen.advance(t(1000)) == "on"
    assert screen.actions == [(t(0), "on")]


def test_on_arriving_at_the_off_deadline_keeps_the_tv_on() -> None:
    """An `on` that arrives at the very instant the grace ends still cancels the off."""
    screen = on_at(0)
    screen.receive(intent("off", 100), t(100))
    screen.receive(intent("on", 130, intent_id="next-on"), t(130))
    assert screen.actions == [(t(0), "on")]


def test_a_refresh_of_the_same_off_does_not_postpone_the_switch() -> None:
    """The grace counts from the first `off`: its refresh inside the grace changes nothing."""
    screen = on_at(0)
    screen.receive(intent("off", 100, grace=90), t(100))
    assert screen.receive(intent("off", 160, grace=90), t(160)) == "accepted"
    screen.advance(t(1000))
    assert screen.actions[-1] == (t(190), "off")


def test_a_later_off_never_postpones_but_may_bring_the_switch_forward() -> None:
    """Another `off` (say reason client_override) with a shorter grace: the earlier deadline."""
    screen = on_at(0)
    screen.receive(intent("off", 100, grace=90), t(100))
    screen.receive(intent("off", 110, intent_id="o2", grace=300), t(110))
    screen.receive(intent("off", 120, intent_id="o3", grace=10), t(120))
    screen.advance(t(1000))
    assert screen.actions[-1] == (t(130), "off")


def test_switches_are_stamped_at_their_own_instant() -> None:
    """A pending off that fell due before a later input is recorded at its deadline."""
    screen = on_at(0)
    screen.receive(intent("off", 100), t(100))
    screen.receive(intent("on", 500, intent_id="next-on"), t(500))
    assert screen.actions == [(t(0), "on"), (t(130), "off"), (t(500), "on")]


# Expiry.


def test_an_expired_on_finishes_its_event_window_then_switches_off_after_grace() -> None:
    """No newer intent: the TV stays on to event_window.end, then off grace_seconds later."""
    screen = ScreenContract()
    screen.receive(intent("on", 0, ttl=600, window=(0, 3600)), t(0))
    assert screen.advance(t(3629)) == "on"
    assert screen.expired
    assert screen.advance(t(9999)) == "off"
    assert screen.actions == [(t(0), "on"), (t(3630), "off")]


def test_an_expired_on_whose_window_ended_switches_off_grace_after_expiry() -> None:
    """The window ends before the expiry: off at expires_at + grace_seconds."""
    screen = ScreenContract()
    screen.receive(intent("on", 0, ttl=600, window=(-3600, 60)), t(0))
    screen.advance(t(9999))
    assert screen.actions == [(t(0), "on"), (t(630), "off")]


def test_an_expired_off_keeps_its_pending_off() -> None:
    """An `off` that expires during its grace is not postponed (and not undone)."""
    screen = on_at(0)
    screen.receive(intent("off", 100, ttl=10, grace=60), t(100))
    screen.advance(t(9999))
    assert screen.actions[-1] == (t(160), "off")


def test_a_fresh_intent_after_expiry_is_followed() -> None:
    """An `on` arriving after the expiry cancels the off that the expiry scheduled."""
    screen = ScreenContract()
    screen.receive(intent("on", 0, ttl=600, window=(0, 700)), t(0))
    screen.advance(t(650))
    assert screen.off_at == t(730)
    assert screen.receive(intent("on", 700), t(700)) == "accepted"
    assert (screen.advance(t(1000)), screen.expired) == ("on", False)
    assert screen.actions == [(t(0), "on")]


def test_an_off_while_finishing_an_expired_window_switches_off_after_its_grace() -> None:
    """The server's `off` beats the expiry fallback that would have waited for the window end."""
    screen = ScreenContract()
    screen.receive(intent("on", 0, ttl=600, window=(0, 3600)), t(0))
    screen.advance(t(1000))
    screen.receive(intent("off", 1200), t(1200))
    screen.advance(t(9999))
    assert screen.actions == [(t(0), "on"), (t(1230), "off")]


# Removal.


def test_an_empty_payload_means_removed_and_switches_off_at_once() -> None:
    """The final `off` starts a grace; the empty payload after it switches off at once."""
    screen = on_at(0)
    screen.receive(intent("off", 100), t(100))
    assert screen.receive(b"", t(100)) == "removed"
    assert (screen.held, screen.off_at) == (None, None)
    assert screen.advance(t(9999)) == "off"
    assert screen.actions == [(t(0), "on"), (t(100), "off")]


def test_after_a_removal_an_old_intent_stays_ignored_and_a_new_one_holds() -> None:
    """A late copy of the pre-removal intent is a duplicate; the re-registered client's intent holds."""
    screen = on_at(0)
    screen.receive(b"", t(100))
    assert screen.receive(intent("on", 0), t(101)) == "duplicate"
    assert screen.receive(intent("on", 200, intent_id="back"), t(200)) == "accepted"
    assert screen.actions == [(t(0), "on"), (t(100), "off"), (t(200), "on")]


# Server status.


def test_status_online_and_offline_tell_whether_the_server_is_alive() -> None:
    """`online` then that instance's `offline` (same started_at): the server is away."""
    screen = ScreenContract()
    assert screen.receive_status(status("online", 0), t(1)) == "accepted"
    assert (screen.server_online, screen.server_started_at) == (True, t(0))
    assert screen.receive_status(status("offline", 0), t(50)) == "accepted"
    assert screen.server_online is False


def test_an_offline_older_than_the_last_online_is_stale() -> None:
    """A previous instance's Will delivered after the new instance's `online` is ignored."""
    screen = ScreenContract()
    screen.receive_status(status("online", 100), t(100))
    assert screen.receive_status(status("offline", 0), t(101)) == "stale"
    assert (screen.server_online, screen.server_started_at) == (True, t(100))
    assert screen.receive_status(status("offline", 200), t(300)) == "accepted"
    assert screen.server_online is False


def test_a_cleared_or_unreadable_status_is_ignored() -> None:
    """An empty status payload, a naive started_at or an unknown status tells nothing."""
    screen = ScreenContract()
    screen.receive_status(status("online", 0), t(0))
    for bad in (b"", b"[]", b'{"status": "offline", "started_at": "2026-03-31T11:00:00"}'):
        assert screen.receive_status(bad, t(1)) == "invalid"
    assert screen.receive_status(json.dumps({"status": "dozing", "started_at": z(t(0))}).encode(), t(2)) == (
        "invalid"
    )
    assert screen.server_online is True


def test_the_server_status_never_switches_the_tv() -> None:
    """An `offline` server leaves the TV to the held intent and its expiry."""
    screen = on_at(0)
    screen.receive_status(status("offline", -100), t(10))
    assert screen.advance(t(500)) == "on"
    assert screen.actions == [(t(0), "on")]


# The clock.


def test_time_never_runs_backwards() -> None:
    """An input earlier than one already processed is a bug in the caller."""
    screen = on_at(100)
    with pytest.raises(ValueError, match="backwards"):
        screen.advance(t(50))
    with pytest.raises(ValueError, match="backwards"):
        screen.receive(intent("on", 60), t(60))


# What the owner of the contract reads.


def test_following_names_the_held_intent_until_it_expires_or_is_removed() -> None:
    """intent_id to report: None before the first intent, after expiry, after removal."""
    screen = ScreenContract()
    assert (screen.following, screen.decided) == (None, False)
    screen.receive(intent("on", 0, ttl=600), t(0))
    assert (screen.following, screen.decided) == ("id-on", True)
    screen.advance(t(600))
    assert screen.following is None  # expired, even while the window is being finished
    screen.receive(intent("on", 700, intent_id="next"), t(700))
    assert screen.following == "next"
    screen.receive(b"", t(800))
    assert (screen.following, screen.decided) == (None, True)


def test_next_wakeup_is_the_earlier_of_the_pending_off_and_the_expiry() -> None:
    """The owner sleeps until next_wakeup(); nothing is due without a held intent or a pending off."""
    screen = ScreenContract()
    assert screen.next_wakeup() is None
    screen.receive(intent("on", 0, ttl=600, window=(0, 3600)), t(0))
    assert screen.next_wakeup() == t(600)  # the expiry
    screen.advance(t(600))
    assert screen.next_wakeup() == t(3630)  # the window's end + grace
    screen.receive(intent("off", 700, ttl=10, grace=60), t(700))
    assert screen.next_wakeup() == t(710)  # its expiry, before the pending off at 760
    screen.advance(t(710))
    assert screen.next_wakeup() == t(760)
    screen.advance(t(760))
    assert (screen.next_wakeup(), screen.tv) == (None, "off")


def test_a_status_without_started_at_or_with_extra_fields() -> None:
    """A status missing started_at tells nothing; unknown extra fields are ignored."""
    screen = ScreenContract()
    assert screen.receive_status(b'{"status": "online"}', t(0)) == "invalid"
    extra = json.dumps({"status": "online", "started_at": z(t(0)), "version": "2"}).encode()
    assert screen.receive_status(extra, t(1)) == "accepted"
