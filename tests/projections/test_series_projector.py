"""Series through the projector, the checkpoint and the audit, on each store."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
from freezegun import freeze_time

from ledger import Ledger, Recurrence, TargetRef, Window
from projections.audit import why
from projections.checkpoint import CheckpointStore
from projections.pictures import rows_for
from projections.projector import Projector
from projections.queries import replay_rows
from tests.conftest import ME
from tests.projections.test_projector import drive

T0 = datetime(2027, 3, 25, 12, tzinfo=UTC)  # Thursday; Berlin springs forward on Sunday 28 March
HOURS = Recurrence.parse(
    "Europe/Berlin", "2027-01-04T07:30", "2027-01-04T16:00", "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR"
)


def z(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.fixture
def lobby(ledger: Ledger) -> Iterator[Ledger]:
    with freeze_time(T0):
        ledger.add_client("lobby-1", "lobby", ME)
        ledger.schedule_series("lobby-hours", TargetRef("group", "lobby"), HOURS, ME)
        ledger.skip_series("lobby-hours", [date(2027, 3, 30)], ME)
        yield ledger


def test_the_projector_follows_a_weekday_series_across_the_clock_change(lobby: Ledger) -> None:
    projector = Projector(lobby)
    with freeze_time(T0):
        projector.start(T0)
    drive(projector, z("2027-04-01T00:00:00Z"))
    rows = replay_rows(lobby, "lobby-1")
    assert [(r["desired_state"], r["effective_at"], r["cause"].get("windows")) for r in rows] == [
        ("on", "2027-03-25T12:00:00Z", None),  # the start, inside Thursday's hours (still winter time)
        ("off", "2027-03-25T15:00:00Z", ["series lobby-hours@2027-03-25"]),
        ("on", "2027-03-26T06:30:00Z", ["series lobby-hours@2027-03-26"]),
        ("off", "2027-03-26T15:00:00Z", ["series lobby-hours@2027-03-26"]),
        ("on", "2027-03-29T05:30:00Z", ["series lobby-hours@2027-03-29"]),  # summer time: an hour earlier
        ("off", "2027-03-29T14:00:00Z", ["series lobby-hours@2027-03-29"]),
        ("on", "2027-03-31T05:30:00Z", ["series lobby-hours@2027-03-31"]),  # the 30th is skipped
        ("off", "2027-03-31T14:00:00Z", ["series lobby-hours@2027-03-31"]),
    ]
    assert rows[2]["event_window"] == {"start": "2027-03-26T06:30:00Z", "end": "2027-03-26T15:00:00Z"}


def test_a_resumed_projector_knows_the_next_series_boundary(lobby: Ledger) -> None:
    first = Projector(lobby)
    with freeze_time(T0):
        first.start(T0)
    saved = first.checkpoint(T0)
    assert saved is not None
    CheckpointStore(lobby).save(saved)
    resumed = Projector(lobby)
    assert resumed.resume(CheckpointStore(lobby).load(resumed.key))  # type: ignore[arg-type]
    assert resumed.next_wakeup() == z("2027-03-25T15:00:00Z")
    drive(resumed, z("2027-03-29T06:00:00Z"))
    assert [r["effective_at"] for r in replay_rows(lobby, "lobby-1")][1:] == [
        "2027-03-25T15:00:00Z",
        "2027-03-26T06:30:00Z",
        "2027-03-26T15:00:00Z",
        "2027-03-29T05:30:00Z",
    ]
    assert resumed.next_wakeup() == z("2027-03-29T14:00:00Z")


def test_why_names_the_occurrences_and_the_change_behind_them(lobby: Ledger) -> None:
    with freeze_time(T0):
        party = Window.parse("2027-03-29T14:00:00Z", "2027-03-29T18:00:00Z")
        lobby.add_event("party", TargetRef("group", "lobby"), party, ME)
    found = why(lobby, "lobby-1", z("2027-03-29T16:00:00Z"))
    assert found["decided_by"] == ["series lobby-hours@2027-03-29", "event party"]
    assert found["event_window"] == {"start": "2027-03-29T05:30:00Z", "end": "2027-03-29T18:00:00Z"}
    (occurrence,) = found["occurrences"]
    assert occurrence["occurrence"] == "lobby-hours@2027-03-29"
    assert occurrence["local_start"] == "2027-03-29T07:30:00"
    assert occurrence["tz"] == "Europe/Berlin"
    assert occurrence["made_by"]["change"] == "SeriesSkipped"
    assert occurrence["made_by"]["actor"] == "tester"
    assert why(lobby, "lobby-1", z("2027-03-30T10:00:00Z"))["decided_by"] == []  # skipped


def test_pictures_name_the_occurrences(lobby: Ledger) -> None:
    (row,) = rows_for(lobby, z("2027-03-26T00:00:00Z"), z("2027-03-30T00:00:00Z"), ["lobby-1"])
    assert [i.name for i in row.items] == ["lobby-hours@2027-03-26", "lobby-hours@2027-03-29"]
    assert [s.state for s in row.schedule] == ["off", "on", "off", "on", "off"]
