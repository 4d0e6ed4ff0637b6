"""Series in the ledger: claims, identical repeats, conflicts, skips, cancel, validation, sync."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

import pytest

from ledger import Ledger, Meta, TargetRef
from ledger.errors import ClientNotFound, IdConflict, InvalidInput, InvalidSeries, SeriesNotFound
from ledger.recurrence import Recurrence
from ledger.sync import parse_snapshot
from tests.conftest import ME

HOURS = Recurrence.parse(
    "Europe/Berlin", "2027-01-04T07:30", "2027-01-04T16:00", "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR"
)
LOBBY = TargetRef("group", "lobby")
NOW = datetime(2027, 1, 1, tzinfo=UTC)


def test_schedule_is_claimed_once_and_identical_repeats_append_nothing(ledger: Ledger) -> None:
    """The first add appends a claim and the series; the same add again appends nothing."""
    first = ledger.schedule_series("lobby-hours", LOBBY, HOURS, Meta("alice", "opening hours"))
    assert sorted(type(e).__name__ for e in first.events) == [
        "GroupNamed",
        "SeriesIdClaimed",
        "SeriesScheduled",
    ]
    assert first.events[-1].note == "opening hours"
    assert ledger.schedule_series("lobby-hours", LOBBY, HOURS, Meta("bob")).appended == 0
    group = ledger.group("lobby")
    assert group is not None
    assert group.series["lobby-hours"].recurrence == HOURS


def test_other_content_under_a_taken_id_names_the_existing_series(ledger: Ledger) -> None:
    ledger.schedule_series("lobby-hours", LOBBY, HOURS, ME)
    other = Recurrence.parse("Europe/Berlin", "2027-01-04T08:00", "2027-01-04T16:00", "FREQ=DAILY")
    with pytest.raises(
        IdConflict, match=r"series 'lobby-hours' \(group lobby, Europe/Berlin 2027-01-04T07:30"
    ):
        ledger.schedule_series("lobby-hours", LOBBY, other, ME)
    with pytest.raises(IdConflict, match="already exists"):
        ledger.schedule_series("lobby-hours", TargetRef("group", "cafe"), HOURS, ME)


def test_a_cancelled_id_stays_taken_and_change_reinstates_it(ledger: Ledger) -> None:
    ledger.schedule_series("lobby-hours", LOBBY, HOURS, ME)
    assert ledger.cancel_series("lobby-hours", ME).appended == 1
    assert ledger.cancel_series("lobby-hours", ME).appended == 0
    with pytest.raises(IdConflict, match="was cancelled; its id stays taken"):
        ledger.schedule_series("lobby-hours", LOBBY, HOURS, ME)
    assert ledger.change_series("lobby-hours", HOURS, ME).appended == 1
    group = ledger.group("lobby")
    assert group is not None
    assert not group.series["lobby-hours"].cancelled


def test_change_replaces_the_rule_and_keeps_the_skips(ledger: Ledger) -> None:
    ledger.schedule_series("lobby-hours", LOBBY, HOURS, ME)
    may_day = date(2027, 5, 1)
    assert ledger.skip_series("lobby-hours", [may_day, date(2027, 12, 24)], ME).appended == 1
    assert ledger.skip_series("lobby-hours", [may_day], ME).appended == 0
    later = Recurrence.parse("Europe/Berlin", "2027-01-04T08:00", "2027-01-04T16:00", HOURS.rrule)
    assert ledger.change_series("lobby-hours", later, ME).appended == 1
    assert ledger.change_series("lobby-hours", later, ME).appended == 0
    assert ledger.unskip_series("lobby-hours", [date(2027, 12, 24), date(2027, 1, 1)], ME).appended == 1
    group = ledger.group("lobby")
    assert group is not None
    assert group.series["lobby-hours"].recurrence == later
    assert group.series["lobby-hours"].skip == {may_day}


def test_unknown_series_and_clients_are_errors(ledger: Ledger) -> None:
    with pytest.raises(SeriesNotFound, match="series 'nope' does not exist"):
        ledger.cancel_series("nope", ME)
    with pytest.raises(ClientNotFound):
        ledger.schedule_series("s1", TargetRef("client", "ghost"), HOURS, ME)
    assert ledger.max_notification_id() == 0


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (("Mars/Olympus", "2027-01-04T07:30", "2027-01-04T16:00", "FREQ=DAILY"), "invalid tz 'Mars/Olympus'"),
        (("../etc/passwd", "2027-01-04T07:30", "2027-01-04T16:00", "FREQ=DAILY"), "invalid tz"),
        (
            ("UTC", "2027-02-30T07:30", "2027-03-01T16:00", "FREQ=DAILY"),
            "invalid first_start '2027-02-30T07:30'",
        ),
        (("UTC", "2027-01-04T07:30+01:00", "2027-01-04T16:00", "FREQ=DAILY"), "without offset"),
        (("UTC", "2027-01-04T07:30", "2027-01-04T07:30", "FREQ=DAILY"), "must be after first_start"),
        (("UTC", "2027-01-04T07:30", "2027-02-05T07:30", "FREQ=DAILY"), "longer than 31 days"),
        (("UTC", "2027-01-04T07:30", "2027-01-04T08:00", "FREQ=HOURLY"), "FREQ must be one of"),
        (("UTC", "2027-01-04T07:30", "2027-01-04T08:00", "FREQ=DAILY;BYHOUR=9"), "BYHOUR is not allowed"),
        (("UTC", "2027-01-04T07:30", "2027-01-04T08:00", "FREQ=DAILY;BYMINUTE=9"), "BYMINUTE is not allowed"),
        (("UTC", "2027-01-04T07:30", "2027-01-04T08:00", "FREQ=DAILY;BYSECOND=9"), "BYSECOND is not allowed"),
        (("UTC", "2027-01-04T07:30", "2027-01-04T08:00", "FREQ=WEEKLY;BYDAY=XX"), "invalid rrule"),
        (("UTC", "2027-01-04T07:30", "2027-01-04T08:00", "FREQ=DAILY;UNTIL=2027"), "UNTIL must be"),
        (("UTC", "2027-01-04T07:30", "2027-01-04T08:00", "FREQ=DAILY;COUNT=0"), "COUNT must be"),
        (
            ("UTC", "2027-01-04T07:30", "2027-01-04T08:00", "FREQ=DAILY;COUNT=2;UNTIL=20270301"),
            "COUNT and UNTIL",
        ),
        (
            ("UTC", "2027-01-04T07:30", "2027-01-04T08:00", "FREQ=MONTHLY;BYMONTH=2;BYMONTHDAY=30"),
            "never repeats",
        ),
        (("UTC", "2027-01-04T07:30", "2027-01-04T08:00", "DTSTART=20270101;FREQ=DAILY"), "DTSTART is not"),
    ],
)
def test_bad_zone_rule_or_times_name_the_bad_part(fields: tuple[str, str, str, str], message: str) -> None:
    with pytest.raises(InvalidSeries, match=message.replace("(", r"\(").replace("+", r"\+")) as raised:
        Recurrence.parse(*fields)
    assert "\n" not in str(raised.value)


def test_until_in_utc_local_or_as_a_date_is_accepted() -> None:
    for until in ("20270630T220000Z", "20270630T235900", "20270630"):
        rule = Recurrence.parse(
            "Europe/Berlin", "2027-01-04T07:30", "2027-01-04T16:00", f"FREQ=DAILY;UNTIL={until}"
        )
        assert rule.rrule == f"FREQ=DAILY;UNTIL={until}"
    assert Recurrence.parse(
        "UTC", "2027-01-04T07:30", "2027-01-04T16:00", "rrule:byday=mo;freq=weekly"
    ).rrule == ("FREQ=WEEKLY;BYDAY=MO")


def snapshot(**series: Any) -> bytes:
    item = {
        "series_id": "lobby-hours",
        "group_id": "lobby",
        "tz": "Europe/Berlin",
        "first_start": "2027-01-04T07:30",
        "first_end": "2027-01-04T16:00",
        "rrule": "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR",
        "skip": ["2027-05-01"],
    } | series
    return json.dumps({"clients": [{"client_id": "lobby-1", "group_id": "lobby"}], "series": [item]}).encode()


def sync(ledger: Ledger, data: bytes, prune: bool = False, now: datetime = NOW) -> int:
    return ledger.sync(parse_snapshot(data), prune=prune, now=now, meta=Meta("sync:fleet.json")).appended


def test_sync_adds_changes_and_is_idempotent(ledger: Ledger) -> None:
    assert sync(ledger, snapshot()) > 0
    assert sync(ledger, snapshot()) == 0
    assert (
        sync(ledger, snapshot(first_start="2027-01-04T08:00", skip=["2027-12-24"])) == 3
    )  # rule, skip, unskip
    group = ledger.group("lobby")
    assert group is not None
    assert group.series["lobby-hours"].skip == {date(2027, 12, 24)}
    assert sync(ledger, snapshot(first_start="2027-01-04T08:00", skip=["2027-12-24"])) == 0


def test_sync_prune_cancels_absent_series_unless_ended(ledger: Ledger) -> None:
    sync(ledger, snapshot())
    sync(ledger, snapshot(series_id="past", rrule="FREQ=DAILY;COUNT=3", skip=[]))
    empty = json.dumps({"clients": [{"client_id": "lobby-1", "group_id": "lobby"}]}).encode()
    assert sync(ledger, empty, prune=True, now=datetime(2027, 3, 1, tzinfo=UTC)) == 1
    group = ledger.group("lobby")
    assert group is not None
    assert group.series["lobby-hours"].cancelled
    assert not group.series["past"].cancelled
    assert sync(ledger, snapshot()) == 1  # it comes back: reinstated


@pytest.mark.parametrize(
    ("series", "message"),
    [
        ({"tz": "Berlin"}, "series 'lobby-hours': invalid tz 'Berlin'"),
        ({"skip": ["2027-02-30"]}, "invalid skip date '2027-02-30'"),
        ({"group_id": None}, "needs exactly one of client_id and group_id"),
        ({"rrule": "FREQ=SECONDLY"}, "FREQ must be one of"),
        ({"colour": "red"}, "unknown field"),
    ],
)
def test_a_bad_series_in_a_snapshot_is_refused_whole(
    ledger: Ledger, series: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        sync(ledger, snapshot(**series))
    assert ledger.max_notification_id() == 0


def test_a_series_or_skip_outside_the_ledgers_years_is_refused_but_a_stored_one_reads(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """New changes are checked against the years 1000-8999; events stored before that check
    fold as written."""
    ancient = Recurrence.parse("Europe/Berlin", "0999-01-06T07:30", "0999-01-06T16:00", "FREQ=WEEKLY")
    with pytest.raises(
        InvalidSeries, match="first_start 0999-01-06T07:30:00: outside the years 1000 to 8999"
    ):
        ledger.schedule_series("old-hours", LOBBY, ancient, ME)
    ledger.schedule_series("lobby-hours", LOBBY, HOURS, ME)
    with pytest.raises(InvalidSeries, match="date 9999-12-31: outside the years"):
        ledger.skip_series("lobby-hours", [date(9999, 12, 31)], ME)
    late = Recurrence.parse("Europe/Berlin", "8999-12-31T20:00", "9000-01-01T04:00", "FREQ=WEEKLY")
    with pytest.raises(InvalidSeries, match="invalid first_end 9000-01-01T04:00:00"):
        ledger.schedule_series("late-hours", LOBBY, late, ME)
    # A ledger written before the check: its events are stored, and read back as they are.
    monkeypatch.setattr("ledger.series_target.check_years", lambda _what, _values: None)
    monkeypatch.setattr("ledger.series_target.check_recurrence_years", lambda _recurrence: None)
    ledger.schedule_series("old-hours", LOBBY, ancient, ME)
    ledger.skip_series("lobby-hours", [date(9999, 12, 31)], ME)
    monkeypatch.undo()
    group = ledger.group("lobby")
    assert group is not None
    assert group.series["old-hours"].recurrence == ancient
    assert date(9999, 12, 31) in group.series["lobby-hours"].skip
