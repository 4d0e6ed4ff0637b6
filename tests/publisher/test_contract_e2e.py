"""Simulated screens follow the client contract against the daemon and a real Mosquitto.

The daemon runs in virtual time exactly as in test_daemon.py (`drive`), and
each screen is a `ScreenContract` fed, in arrival order, by a real paho
subscriber that stamps every message with the virtual instant of its receipt.
The assertions are on what the simulated TV did, and when.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from freezegun import freeze_time

from ledger import Ledger, TargetRef
from publisher.contract import ScreenContract, Verdict
from publisher.daemon import Daemon
from tests.conftest import ME
from tests.publisher.broker import Message, Mosquitto, Subscriber, wait_for
from tests.publisher.helpers import (
    TOPIC,
    LogCapture,
    VirtualClock,
    at,
    check_no_off_gap,
    drive,
    ts,
    virtual_daemon,
    win,
)

pytestmark = pytest.mark.usefixtures("daemon_sessions")  # each kind of broker session

STATUS = "infoscreen/server/status"


class Feed(Subscriber):
    """A real subscriber to one intent topic and the status topic.

    `on()` counts what `drive(..., Sent(capture))` counts: the messages the current
    daemon sent on the topic, clears included (`restart()` starts the count afresh
    for a new daemon). `messages` keeps everything, in arrival order.
    """

    _base = 0

    def restart(self) -> None:
        with self._cond:
            self._base = len(self.messages)

    def on(self, topic: str) -> list[Message]:
        with self._cond:
            return [m for m in self.messages[self._base :] if m.topic == topic]

    def everything(self) -> list[Message]:
        with self._cond:
            return list(self.messages)


class Sent:
    """The daemon's log as `drive()` reads it, with clears (empty payloads) counted as
    publishes: so `drive()` also waits for them before it moves the clock on."""

    def __init__(self, capture: LogCapture) -> None:
        self.capture = capture

    def records(self, event: str | None = None) -> list[dict[str, Any]]:
        if event == "publish":
            return self.capture.records("publish") + self.capture.records("clear")
        return self.capture.records(event)


class Screen:
    """A simulated screen: a ScreenContract fed by a Feed, with the virtual receipt instants."""

    def __init__(self, feed: Feed) -> None:
        self.feed = feed
        self.client = ScreenContract()
        self.log: list[tuple[str, datetime, Verdict]] = []  # (topic, received_at, verdict)
        self._fed = 0

    def catch_up(self, now: datetime | None = None) -> None:
        """Hand over every message received so far, then let the screen's time reach `now`."""
        new = self.feed.everything()[self._fed :]
        self._fed += len(new)
        for m in new:
            receive = self.client.receive_status if m.topic == STATUS else self.client.receive
            self.log.append((m.topic, m.received_at, receive(m.payload, m.received_at)))
        if now is not None:
            self.client.advance(now)

    @property
    def actions(self) -> list[tuple[datetime, str]]:
        return list(self.client.actions)

    @property
    def seen(self) -> list[tuple[datetime, Verdict]]:
        """The verdicts on intent messages."""
        return [(t, v) for topic, t, v in self.log if topic != STATUS]


@pytest.fixture
def screen_for(mosquitto: Mosquitto) -> Iterator[Callable[[str, VirtualClock], Screen]]:
    """Screens for clients, each on its own subscriber; every intent seen must have been valid."""
    feeds: list[Feed] = []

    def make(client_id: str, clock: VirtualClock) -> Screen:
        feed = Feed(mosquitto.port, TOPIC.format(client_id), clock.now, extra=STATUS)
        feeds.append(feed)
        return Screen(feed)

    yield make
    for feed in feeds:
        feed.close()
    violations = [v for feed in feeds for v in feed.violations]
    assert violations == [], violations


def s(hours: float, seconds: int = 0) -> datetime:
    return at(hours) + timedelta(seconds=seconds)


def run_to(daemon: Daemon, clock: VirtualClock, until: datetime, screen: Screen, capture: LogCapture) -> None:
    """drive() to `until`, stop the clock there (for an edit at that instant), feed the screen."""
    drive(daemon, clock, until, screen.feed, Sent(capture))
    clock.t = until
    screen.catch_up(until)


def test_a_day_of_adjacent_windows_an_override_and_a_group_change(
    ledger: Ledger, mosquitto: Mosquitto, screen_for: Callable[[str, VirtualClock], Screen]
) -> None:
    """Adjacent and overlapping windows keep the TV on; an override off mid-window switches it
    off after the grace (a refresh inside the grace does not postpone it) and back on; a group
    change with the new group's event running switches nothing."""
    c1 = "c42"  # refreshed on the minute: its second of the 60 s refresh interval is 0
    clock = VirtualClock(at(0))  # 07:00
    with freeze_time(at(0)):
        ledger.set_policy({"grace_seconds": 90}, ME)  # longer than the refresh period
        ledger.add_client(c1, "lobby", ME)
        ledger.add_event("a", TargetRef("group", "lobby"), win(1, 2), ME)  # 08-09
        ledger.add_event("b", TargetRef("group", "lobby"), win(2, 3), ME)  # 09-10, adjacent
        ledger.add_event("c", TargetRef("client", c1), win(2.5, 3.5), ME)  # 09:30-10:30
        ledger.add_event("d", TargetRef("group", "lobby"), win(4, 6), ME)  # 11-13
        ledger.add_event("e", TargetRef("group", "cafe"), win(5, 7), ME)  # 12-14
    screen = screen_for(c1, clock)
    daemon, capture = virtual_daemon(ledger, mosquitto, clock, ttl=120)  # refresh every 60 s

    run_to(daemon, clock, at(4.5), screen, capture)  # 11:30
    with freeze_time(clock.t):  # an operator switches c1 off for half an hour, mid-window
        ledger.add_override("o1", TargetRef("client", c1), "off", win(4.5, 5), ME)
    run_to(daemon, clock, at(5.5), screen, capture)  # 12:30
    before = screen.client.held
    with freeze_time(clock.t):  # c1 moves to the cafe, whose event is running
        ledger.assign_client(c1, "cafe", ME)
    run_to(daemon, clock, at(8), screen, capture)  # 15:00
    daemon.shutdown()

    assert screen.actions == [
        (s(1), "on"),  # 08:00
        (s(3.5, 90), "off"),  # 10:30 + grace: never off between a, b and c
        (s(4), "on"),  # 11:00
        (s(4.5, 90), "off"),  # the override, + grace; the refresh at 11:31 did not postpone it
        (s(5), "on"),  # 12:00, the override is over
        (s(7, 90), "off"),  # 14:00 + grace: the cafe's event
    ]
    intents = screen.feed.intents(TOPIC.format(c1))
    check_no_off_gap([p for p in intents if ts(p["issued_at"]) < at(4)], at(3.5))
    same_second = [p["power"]["desired_state"] for p in intents if ts(p["issued_at"]) == at(4.5)]
    assert same_second == ["on", "off"]  # the refresh, then the override: the later arrival won
    refreshed = [p for p in intents if ts(p["issued_at"]) == s(4.5, 60)]
    assert [p["power"]["desired_state"] for p in refreshed] == ["off"]  # inside the grace
    cafe = [p for p in intents if p["target"]["group_id"] == "cafe" and p["power"]["desired_state"] == "on"]
    assert before is not None
    assert ts(cafe[0]["issued_at"]) == at(5.5)
    assert {p["intent_id"] for p in cafe} == {cafe[0]["intent_id"]} != {before.intent_id}
    assert cafe[0]["event_window"] == {"start": "2026-03-31T12:00:00Z", "end": "2026-03-31T14:00:00Z"}
    assert {v for _, v in screen.seen} == {"accepted"}


def test_a_removed_client_switches_off_at_once_and_comes_back_when_registered_again(
    ledger: Ledger, mosquitto: Mosquitto, screen_for: Callable[[str, VirtualClock], Screen]
) -> None:
    """The final `off` and the empty payload arrive together: off at once, not after the
    grace; registered again, the client's own running event switches it on."""
    clock = VirtualClock(at(0))
    with freeze_time(at(0)):
        ledger.add_client("c1", None, ME)
        ledger.add_event("own", TargetRef("client", "c1"), win(1, 3), ME)  # 08-10
    screen = screen_for("c1", clock)
    daemon, capture = virtual_daemon(ledger, mosquitto, clock)

    run_to(daemon, clock, at(2), screen, capture)  # 09:00
    with freeze_time(clock.t):
        ledger.remove_client("c1", ME)
    drive(daemon, clock, clock.t, screen.feed, Sent(capture))
    run_to(daemon, clock, at(2.5), screen, capture)  # 09:30
    with freeze_time(clock.t):
        ledger.add_client("c1", None, ME)
    run_to(daemon, clock, at(4), screen, capture)  # 11:00
    daemon.shutdown()

    assert screen.actions == [
        (s(1), "on"),
        (s(2), "off"),  # at once, not after the grace of the final off
        (s(2.5), "on"),
        (s(3, 30), "off"),
    ]
    at_removal = [
        m for m in screen.feed.everything() if m.topic == TOPIC.format("c1") and m.received_at == at(2)
    ]
    final_off, empty = at_removal[-2:]
    assert (final_off.json()["power"]["reason"], empty.payload) == ("client_deregistered", b"")
    assert [v for t, v in screen.seen if t == at(2)][-2:] == ["accepted", "removed"]
    while_removed = [
        m.payload
        for m in screen.feed.everything()
        if m.topic == TOPIC.format("c1") and at(2) < m.received_at < at(2.5)
    ]
    assert set(while_removed) <= {b""}  # never an intent for a removed client (a clear again, maybe)


def statuses(feed: Subscriber, status: str, started_at: datetime) -> list[Message]:
    """The status messages `feed` received with this body (since it subscribed)."""
    wanted = {"status": status, "started_at": started_at.strftime("%Y-%m-%dT%H:%M:%SZ")}
    return [m for m in list(feed.messages) if m.topic == STATUS and m.payload and m.json() == wanted]


def test_a_silent_server_lets_the_screen_finish_its_window_and_an_old_will_is_stale(
    ledger: Ledger, mosquitto: Mosquitto, screen_for: Callable[[str, VirtualClock], Screen]
) -> None:
    """The daemon stops (status offline) mid-window: the held `on` expires, the screen
    finishes the event window and switches off after the grace. A new daemon's `online`
    is not undone, for the screen, by the previous instance's Will arriving late."""
    c1 = "c42"  # refreshed on the 5 minutes: its second of the 300 s refresh interval is 0
    clock = VirtualClock(at(0))
    with freeze_time(at(0)):
        ledger.add_client(c1, None, ME)
        ledger.add_event("own", TargetRef("client", c1), win(1, 3), ME)  # 08-10
    screen = screen_for(c1, clock)
    first, capture = virtual_daemon(ledger, mosquitto, clock)
    run_to(first, clock, s(1, 20 * 60), screen, capture)  # 08:20
    first.shutdown()
    old_will = screen.feed.wait(lambda f: statuses(f, "offline", at(0)), what="the offline status")[0]
    screen.catch_up(clock.t)
    assert screen.client.server_online is False
    held = screen.client.held
    assert held is not None
    assert held.expires_at == s(1, 30 * 60)

    screen.client.advance(at(3.25))  # 10:15: the server stayed away
    assert screen.actions == [(s(1), "on"), (s(3, 30), "off")]  # the window's end (10:00) + grace

    clock.t = at(3.25)
    second, capture = virtual_daemon(ledger, mosquitto, clock)
    screen.feed.restart()  # drive() counts the new daemon's publishes from here
    drive(second, clock, clock.t, screen.feed, Sent(capture))

    def onlines(count: int) -> bool:
        second.tick()  # the daemon answers an `offline` it sees on the status topic
        assert second.settle(10)
        return len(statuses(screen.feed, "online", at(3.25))) >= count

    # The daemon subscribes to the status topic and gets its predecessor's retained
    # `offline`: it says `online` once more.
    wait_for(lambda: onlines(2), what="the new daemon's online, twice")
    screen.catch_up(clock.t)
    assert (screen.client.server_online, screen.client.server_started_at) == (True, at(3.25))

    # The first instance's Will, delivered late: stale for the screen; the daemon restores `online`.
    screen.feed.client.publish(STATUS, old_will.payload, qos=1, retain=True)
    screen.feed.wait(lambda f: len(statuses(f, "offline", at(0))) == 2, what="the late Will")
    wait_for(lambda: onlines(3), what="the daemon's online again after the late Will")
    screen.catch_up(at(4))
    second.shutdown()

    assert [v for topic, _, v in screen.log if topic == STATUS] == [
        "accepted",  # online 07:00
        "accepted",  # offline 07:00: the first daemon stopped
        "accepted",  # online 10:15
        "accepted",  # online 10:15, again
        "stale",  # offline 07:00, late
        "accepted",  # online 10:15, restored
    ]
    assert screen.client.server_online is True
    assert screen.actions == [(s(1), "on"), (s(3, 30), "off")]  # the new daemon's `off` switched nothing
