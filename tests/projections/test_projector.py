"""The intent projector on each store: transitions, fresh ids, catch-up, rebuild."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from eventsourcing.persistence import PersistenceError
from freezegun import freeze_time
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import Ledger, TargetRef, Window
from ledger.domain import IntentLog, intent_id_for
from ledger.events import IntentIssued
from projections.projector import Projector
from tests.conftest import ME

T0 = datetime(2026, 3, 31, 7, tzinfo=UTC)
LOBBY = TargetRef("group", "lobby")


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def win(a: float, b: float) -> Window:
    return Window(at(a), at(b))


def drive(projector: Projector, until: datetime) -> list[IntentIssued]:
    """Step the projector through every boundary up to `until`, the clock frozen at each."""
    issued: list[IntentIssued] = []
    while (wake := projector.next_wakeup()) is not None and wake <= until:
        with freeze_time(wake):
            issued += projector.step(wake)
    return issued


@pytest.fixture
def clock() -> Iterator[object]:
    with freeze_time(T0) as frozen:
        yield frozen


@pytest.mark.usefixtures("clock")
def test_adjacent_and_overlapping_windows_record_one_on_transition(ledger: Ledger) -> None:
    """Stepping through every boundary of 08-09, 09-10, 09:30-10:30 records exactly one `on`."""
    ledger.add_client("lobby-1", "lobby", ME)
    ledger.add_event("a", LOBBY, win(1, 2), ME)
    ledger.add_event("b", LOBBY, win(2, 3), ME)
    ledger.add_event("c", TargetRef("client", "lobby-1"), win(2.5, 3.5), ME)
    projector = Projector(ledger)
    projector.start(T0)
    issued = drive(projector, at(12))
    assert [(e.desired_state, e.effective_at, e.cause["kind"]) for e in issued] == [
        ("on", at(1), "boundary"),
        ("off", at(3.5), "boundary"),
    ]
    assert issued[0].event_window == {"start": "2026-03-31T08:00:00Z", "end": "2026-03-31T10:30:00Z"}
    assert [e.seq for e in ledger.issued("lobby-1")] == [1, 2, 3]


@pytest.mark.usefixtures("clock")
def test_intent_ids_are_uuid5_of_client_and_seq(ledger: Ledger) -> None:
    """intent_id = uuid5(NAMESPACE, "{client_id}/{seq}"); group logs use "groups/{id}/{seq}"."""
    ledger.add_client("lobby-1", "lobby", ME)
    projector = Projector(ledger, group_topics=True)
    projector.start(T0)
    (client_intent,) = ledger.issued("lobby-1")
    (group_intent,) = ledger.issued("groups/lobby")
    assert client_intent.intent_id == intent_id_for("lobby-1", 1)
    assert group_intent.intent_id == intent_id_for("groups/lobby", 1)
    assert (group_intent.client_id, group_intent.group_id) == (None, "lobby")
    assert len({client_intent.intent_id, group_intent.intent_id}) == 2


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda lg: lg.move_event("a", win(0, 3), ME), ("on", "event_window_active")),
        (lambda lg: lg.cancel_event("a", ME), ("off", "no_active_event")),
        (
            lambda lg: lg.add_override("o", TargetRef("client", "lobby-1"), "off", win(0, 1), ME),
            ("off", "client_override"),
        ),
        (lambda lg: lg.add_override("g", LOBBY, "off", win(0, 1), ME), ("off", "group_override")),
        (lambda lg: lg.set_policy({"grace_seconds": 5}, ME), ("on", "event_window_active")),
        (lambda lg: lg.assign_client("lobby-1", "cafe", ME), ("off", "no_active_event")),
        (lambda lg: lg.remove_client("lobby-1", ME), ("off", "client_deregistered")),
    ],
)
@pytest.mark.usefixtures("clock")
def test_edits_that_change_the_intent_now_issue_a_fresh_id(
    ledger: Ledger, edit: object, expected: tuple[str, str]
) -> None:
    """Moves, cancels, overrides, policy and membership changes at now each give a new intent_id."""
    ledger.add_client("lobby-1", "lobby", ME)
    ledger.add_event("a", LOBBY, win(0, 2), ME)
    projector = Projector(ledger)
    (first,) = projector.start(T0)
    edit(ledger)  # type: ignore[operator]
    (second,) = projector.step(T0 + timedelta(seconds=1))
    assert second.intent_id != first.intent_id
    assert (second.desired_state, second.reason) == expected
    assert second.cause["kind"] == "ledger"
    assert second.cause["actor"] == ME.actor


@pytest.mark.usefixtures("clock")
def test_edits_that_leave_the_intent_unchanged_issue_nothing(ledger: Ledger) -> None:
    """An event next week, another client's override or an identical repeat: no transition."""
    ledger.add_client("lobby-1", "lobby", ME)
    ledger.add_client("other", None, ME)
    ledger.add_event("a", LOBBY, win(0, 2), ME)
    projector = Projector(ledger)
    projector.start(T0)
    ledger.add_event("next-week", LOBBY, win(24 * 7, 24 * 7 + 1), ME)
    ledger.add_override("o", TargetRef("client", "other"), "on", win(48, 49), ME)
    ledger.add_event("a", LOBBY, win(0, 2), ME)
    assert projector.step(T0 + timedelta(seconds=1)) == []


@pytest.mark.usefixtures("clock")
def test_membership_change_moves_the_client_onto_the_new_groups_schedule(ledger: Ledger) -> None:
    """After `client assign` the client follows its new group's windows only."""
    ledger.add_client("c1", "lobby", ME)
    ledger.add_event("lobby-ev", LOBBY, win(1, 2), ME)
    ledger.add_event("cafe-ev", TargetRef("group", "cafe"), win(3, 4), ME)
    projector = Projector(ledger)
    projector.start(T0)
    ledger.assign_client("c1", "cafe", ME)
    issued = projector.step(T0) + drive(projector, at(12))
    assert [(e.desired_state, e.group_id, e.effective_at) for e in issued] == [
        ("off", "cafe", T0),
        ("on", "cafe", at(3)),
        ("off", "cafe", at(4)),
    ]


@pytest.mark.usefixtures("clock")
def test_a_late_start_records_one_catch_up_not_the_missed_transitions(ledger: Ledger) -> None:
    """After downtime the projector records the state at its start; the audit shows the gap."""
    ledger.add_client("c1", "lobby", ME)
    ledger.add_event("a", LOBBY, win(1, 2), ME)
    ledger.add_event("b", LOBBY, win(3, 5), ME)
    projector = Projector(ledger)
    projector.start(T0)
    assert drive(projector, at(1))[0].desired_state == "on"
    restarted = Projector(ledger)  # the daemon was down from 08:00 to 11:00
    (caught_up,) = restarted.start(at(4))
    assert (caught_up.seq, caught_up.effective_at, caught_up.cause) == (3, at(4), {"kind": "start"})
    assert caught_up.event_window == {"start": "2026-03-31T10:00:00Z", "end": "2026-03-31T12:00:00Z"}


@pytest.mark.usefixtures("clock")
def test_a_stalled_step_past_several_boundaries_records_one_catch_up(ledger: Ledger) -> None:
    """A step long after a boundary that was followed by others is a catch-up at now."""
    ledger.add_client("c1", None, ME)
    ledger.add_event("a", TargetRef("client", "c1"), win(1, 2), ME)
    ledger.add_event("b", TargetRef("client", "c1"), win(3, 4), ME)
    projector = Projector(ledger)
    projector.start(T0)
    (late,) = projector.step(at(3.5))
    assert (late.desired_state, late.effective_at, late.cause["kind"]) == ("on", at(3.5), "catch_up")


@pytest.mark.usefixtures("clock")
def test_rebuild_reads_the_same_ids_and_records_nothing(ledger: Ledger) -> None:
    """A new projector on the same ledger re-reads the intent logs: no new ids."""
    ledger.add_client("c1", "lobby", ME)
    ledger.add_event("a", LOBBY, win(1, 2), ME)
    projector = Projector(ledger)
    projector.start(T0)
    drive(projector, at(1.5))
    before = [e.intent_id for e in ledger.issued("c1")]
    rebuilt = Projector(ledger)
    assert rebuilt.start(at(1.5)) == []
    assert rebuilt.current("c1").intent_id == before[-1]  # type: ignore[union-attr]
    drive(rebuilt, at(3))
    assert [e.intent_id for e in ledger.issued("c1")][:2] == before


@pytest.mark.usefixtures("clock")
def test_intent_log_snapshots_keep_long_histories_fast(sqlite_ledger: Ledger) -> None:
    """A client with hundreds of transitions loads from a snapshot plus a few events."""
    ledger = sqlite_ledger
    ledger.add_client("c1", None, ME)
    for i in range(130):
        ledger.add_event(f"e{i}", TargetRef("client", "c1"), win(2 * i + 1, 2 * i + 2), ME)
    projector = Projector(ledger)
    projector.start(T0)
    drive(projector, at(300))
    assert [version for _, version in ledger.snapshots_due] == [100, 200]  # noted, not yet taken
    assert ledger.take_due_snapshots() == 2
    log_id = IntentLog.id_for("c1")
    assert ledger.snapshots is not None
    snapshots = list(ledger.snapshots.get(log_id, desc=True, limit=1))
    assert snapshots
    assert snapshots[0].originator_version == 200
    log = ledger.intent_log("c1")
    assert log is not None
    assert log.seq == 261
    assert len(list(ledger.events.get(log_id, gt=snapshots[0].originator_version))) == 62


def _run_fleet(url: str, schedule: list[tuple[int, int, bool]]) -> list[str]:
    with freeze_time(T0):
        ledger = Ledger(url)
        ledger.add_client("c1", "g", ME)
        for i, (start, length, for_group) in enumerate(schedule):
            target = TargetRef("group", "g") if for_group else TargetRef("client", "c1")
            window = Window(T0 + timedelta(minutes=start), T0 + timedelta(minutes=start + length))
            ledger.add_event(f"e{i}", target, window, ME)
        projector = Projector(ledger)
        projector.start(T0)
    drive(projector, T0 + timedelta(days=2))
    with freeze_time(T0 + timedelta(days=2)):
        assert Projector(ledger).start(T0 + timedelta(days=2)) == []  # rebuild: nothing new
    ids = [e.intent_id for e in ledger.issued("c1")]
    ledger.close()
    return ids


@settings(max_examples=15, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 600), st.integers(1, 120), st.booleans()), max_size=8))
def test_intent_ids_are_deterministic_across_ledgers_and_rebuilds(
    tmp_path_factory: pytest.TempPathFactory, schedule: list[tuple[int, int, bool]]
) -> None:
    """The same schedule stepped in two ledgers gives byte-identical intent ids."""
    first = _run_fleet(f"sqlite:///{tmp_path_factory.mktemp('a') / 'l.db'}", schedule)
    second = _run_fleet(f"sqlite:///{tmp_path_factory.mktemp('b') / 'l.db'}", schedule)
    assert first == second
    assert first == [intent_id_for("c1", seq) for seq in range(1, len(first) + 1)]


@pytest.mark.usefixtures("clock")
def test_a_failed_recording_is_retried_without_losing_or_skipping_a_seq(tmp_path: Path) -> None:
    """With the database locked the step fails; the next step records the same transition."""
    path = tmp_path / "ledger.db"
    ledger = Ledger(f"sqlite:///{path}?timeout=0.2")
    ledger.add_client("c1", None, ME)
    projector = Projector(ledger)
    projector.start(T0)
    ledger.add_event("now", TargetRef("client", "c1"), win(0, 1), ME)
    blocker = sqlite3.connect(path)
    blocker.execute("BEGIN EXCLUSIVE")
    with pytest.raises(PersistenceError):
        projector.step(T0 + timedelta(seconds=5))
    blocker.rollback()
    blocker.close()
    (retried,) = projector.step(T0 + timedelta(seconds=6))
    assert (retried.seq, retried.desired_state, retried.cause["event"]) == (2, "on", "EventScheduled")
    assert [e.seq for e in ledger.issued("c1")] == [1, 2]
    assert Projector(ledger).start(T0 + timedelta(seconds=7)) == []
    ledger.close()


@pytest.mark.usefixtures("clock")
def test_a_step_moves_past_its_own_intents_so_scans_stay_short(ledger: Ledger) -> None:
    """After a step the position is the ledger's head: the next read starts after our own records."""
    ledger.add_client("c1", None, ME)
    ledger.add_event("a", TargetRef("client", "c1"), win(1, 2), ME)
    projector = Projector(ledger)
    projector.start(T0)
    drive(projector, at(3))
    projector.step(at(3))
    assert projector.view.position == ledger.max_notification_id()
    ledger.add_event("b", TargetRef("client", "c1"), win(4, 5), ME)  # still seen after the jump
    assert projector.step(at(3)) == []  # folds b: its boundaries are now on the timer heap
    drive(projector, at(6))
    assert [e.desired_state for e in ledger.issued("c1")] == ["off", "on", "off", "on", "off"]
