"""The daemon following series against a real Mosquitto: across a clock change, and in real time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from freezegun import freeze_time

from ledger import Ledger, Recurrence, TargetRef, Window
from ledger.occurrences import local_to_utc
from ledger.recurrence import format_local, zone
from ledger.values import floor_second
from projections.queries import replay_rows
from publisher.config import BrokerConfig
from publisher.daemon import Daemon
from tests.conftest import ME
from tests.publisher.broker import Mosquitto, Subscriber
from tests.publisher.helpers import (
    TOPIC,
    VirtualClock,
    acked,
    check_no_off_gap,
    drive,
    fast,
    make_log,
    running,
    ts,
    virtual_daemon,
)

T0 = datetime(2027, 3, 26, 0, tzinfo=UTC)  # Friday; Berlin springs forward on Sunday 28 March
HOURS = Recurrence.parse(
    "Europe/Berlin", "2027-03-22T07:30", "2027-03-22T16:00", "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR"
)


def test_the_daemon_follows_a_weekday_series_across_the_clock_change_in_virtual_time(
    sqlite_ledger: Ledger, mosquitto: Mosquitto, subscribe: Callable[..., Subscriber]
) -> None:
    clock = VirtualClock(T0)
    with freeze_time(T0):
        sqlite_ledger.add_client("c1", "lobby", ME)
        sqlite_ledger.schedule_series("lobby-hours", TargetRef("group", "lobby"), HOURS, ME)
    sub = subscribe(TOPIC.format("c1"), now=clock.now)
    daemon, capture = virtual_daemon(sqlite_ledger, mosquitto, clock, ttl=86_400)  # few refreshes
    drive(daemon, clock, datetime(2027, 3, 30, tzinfo=UTC), sub, capture)
    expected = len(acked(capture, "c1"))
    sub.wait(lambda s: len(s.on(TOPIC.format("c1"))) == expected, what=f"{expected} messages")
    changes = [
        (p["power"]["desired_state"], p["issued_at"], p["event_window"])
        for p in sub.intents(TOPIC.format("c1"))
    ]
    fresh = [c for i, c in enumerate(changes) if i == 0 or c[0] != changes[i - 1][0]]
    assert fresh == [
        ("off", "2027-03-26T00:00:00Z", None),
        ("on", "2027-03-26T06:30:00Z", {"start": "2027-03-26T06:30:00Z", "end": "2027-03-26T15:00:00Z"}),
        ("off", "2027-03-26T15:00:00Z", None),
        ("on", "2027-03-29T05:30:00Z", {"start": "2027-03-29T05:30:00Z", "end": "2027-03-29T14:00:00Z"}),
        ("off", "2027-03-29T14:00:00Z", None),
    ]
    causes = [r["cause"] for r in replay_rows(sqlite_ledger, "c1")]
    assert [c.get("windows") for c in causes[1:]] == [
        ["series lobby-hours@2027-03-26"],
        ["series lobby-hours@2027-03-26"],
        ["series lobby-hours@2027-03-29"],
        ["series lobby-hours@2027-03-29"],
    ]


def test_a_series_occurrence_switches_on_and_off_in_real_time_with_no_off_at_a_touching_event(
    sqlite_ledger: Ledger, mosquitto: Mosquitto, subscribe: Callable[..., Subscriber]
) -> None:
    """A two-second occurrence (Berlin time), then a one-off event touching it: one `on`, then `off`."""
    start = floor_second(datetime.now(UTC)) + timedelta(seconds=2)
    local = start.astimezone(zone("Europe/Berlin")).replace(tzinfo=None)
    rule = Recurrence.parse(
        "Europe/Berlin", format_local(local), format_local(local + timedelta(seconds=2)), "FREQ=DAILY"
    )
    assert local_to_utc(rule.first_start, rule.tz) == start
    sqlite_ledger.add_client("c1", "lobby", ME)
    sqlite_ledger.schedule_series("blink", TargetRef("group", "lobby"), rule, ME)
    sqlite_ledger.add_event(
        "after",
        TargetRef("client", "c1"),
        Window(start + timedelta(seconds=2), start + timedelta(seconds=4)),
        ME,
    )
    sub = subscribe(TOPIC.format("c1"))
    log, _ = make_log()
    daemon = Daemon(sqlite_ledger, BrokerConfig.from_url(mosquitto.url), log=log, **fast())
    end = start + timedelta(seconds=4)
    with running(daemon):
        sub.wait(
            lambda s: any(
                p["power"]["desired_state"] == "off" and ts(p["issued_at"]) >= end
                for p in s.intents(TOPIC.format("c1"))
            ),
            timeout=15,
            what="the off after the occurrence and the event",
        )
    intents = sub.intents(TOPIC.format("c1"))
    check_no_off_gap(intents, end)
    on = next(p for p in intents if p["power"]["desired_state"] == "on")
    assert ts(on["issued_at"]) >= start
    assert on["event_window"] == {"start": f"{start:%Y-%m-%dT%H:%M:%SZ}", "end": f"{end:%Y-%m-%dT%H:%M:%SZ}"}
    rows = replay_rows(sqlite_ledger, "c1")
    assert [r["desired_state"] for r in rows] == ["off", "on", "off"]
    assert rows[1]["cause"]["windows"] == [f"series blink@{local.date().isoformat()}", "event after"]
