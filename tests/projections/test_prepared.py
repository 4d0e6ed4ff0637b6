"""A boundary evaluated ahead (`Projector.prepare`), on each store: the step at the boundary
records exactly what an unprepared one records (ids, seqs, causes, effective instants, order),
nothing is recorded ahead, and a change landing between the preparation and the boundary is
honoured."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ledger import Ledger, TargetRef, Window
from projections.projector import Projector
from tests.conftest import ME
from tests.projections.test_projector import LOBBY, at, clock  # noqa: F401 (the fixture)
from tests.projections.test_projector_chunks import CLIENTS, chunked, fleet, row

AHEAD = timedelta(minutes=5)


def prepare(projector: Projector, now: datetime, budget: int = 2) -> None:
    """Evaluate the next boundary ahead, a few targets a round, until it is all done."""
    while projector.prepare(now, AHEAD, budget):
        pass


def stored(ledger: Ledger) -> list[tuple[Any, ...]]:
    """Every intent recorded, in the order of the notification log."""
    return [row(e) for c in CLIENTS for e in ledger.issued(c)]


def counting(projector: Projector) -> list[str]:
    """The names whose timeline the projector builds from now on."""
    built: list[str] = []
    timeline = projector.timeline

    def spy(name: str) -> Any:
        built.append(name)
        return timeline(name)

    projector.timeline = spy  # type: ignore[method-assign]
    return built


@pytest.mark.usefixtures("clock")
@pytest.mark.parametrize("group_topics", [False, True])
def test_prepared_boundaries_record_what_unprepared_ones_record(
    ledger: Ledger, tmp_path: Path, group_topics: bool
) -> None:
    """Every boundary prepared ahead and stepped in chunks records the very rows, in the very
    order, of a plain step; the preparation itself records nothing and builds the timelines
    the boundary then does not."""
    reference = Ledger(f"sqlite:///{tmp_path / 'reference.db'}")
    plain = Projector(reference, group_topics=group_topics)
    ahead = Projector(ledger, group_topics=group_topics)
    for led, projector in ((reference, plain), (ledger, ahead)):
        fleet(led)
        projector.start(at(0))
    prepared = 0
    while (wake := plain.next_wakeup()) is not None:
        assert ahead.next_wakeup() == wake
        head = ledger.max_notification_id()
        prepare(ahead, wake - timedelta(seconds=1))
        assert ledger.max_notification_id() == head  # nothing recorded before the boundary
        built = counting(ahead)
        one = plain.step(wake)
        got = [e for c in chunked(ahead, wake, 3) for e in c]
        del ahead.timeline
        assert [row(e) for e in got] == [row(e) for e in one]
        assert [e.originator_version for e in got] == [e.originator_version for e in one]
        assert built == []  # every due target was evaluated ahead
        prepared += len(got)
    assert prepared >= 2 * len(CLIENTS)  # every client's on and off
    assert stored(ledger) == stored(reference)
    reference.close()


def changes(ledger: Ledger) -> None:
    """An override, a move to another group, a moved window: c7's own window now opens with the lobby's."""
    ledger.add_override("late", TargetRef("client", "c5"), "off", Window(at(0), at(5)), ME)
    ledger.assign_client("c3", "hall", ME)
    ledger.move_event("own", Window(at(1), at(3)), ME)


def changed_fleet(ledger: Ledger) -> Projector:
    fleet(ledger)
    ledger.add_client("c8", "lobby", ME)
    ledger.add_event("hall", TargetRef("group", "hall"), Window(at(5), at(6)), ME)
    projector = Projector(ledger)
    projector.start(at(0))
    return projector


@pytest.mark.usefixtures("clock")
@pytest.mark.parametrize("read_at_boundary", [False, True])
def test_a_change_after_the_preparation_is_honoured(
    ledger: Ledger, tmp_path: Path, read_at_boundary: bool
) -> None:
    """Changes committed after the boundary was prepared (read by a step before it, or by the
    boundary's own step) decide what the boundary records, as without the preparation; the
    targets they did not touch still use their prepared evaluations."""
    reference = Ledger(f"sqlite:///{tmp_path / 'reference.db'}")
    results = []
    for led, ahead in ((reference, False), (ledger, True)):
        projector = changed_fleet(led)
        assert projector.next_wakeup() == at(1)
        if ahead:
            prepare(projector, at(1) - timedelta(seconds=10))
        changes(led)
        if not read_at_boundary:
            projector.step(at(1) - timedelta(seconds=5))  # the override: c5 off by it
        built = counting(projector)
        issued = [row(e) for c in chunked(projector, at(1), 3) for e in c]
        results.append((issued, [row(e) for c in [*CLIENTS, "c8"] for e in led.issued(c)]))
    assert results[1] == results[0]
    on = {r[0]: r for r in results[1][0] if r[3] == "on"}
    assert sorted(on) == ["c1", "c2", "c4", "c6", "c7", "c8"]  # c3 moved away, c5 overridden
    assert {r[4] for c, r in on.items() if c != "c7"} == {at(1)}  # c7's: its change's, if read with it
    # Changed (so evaluated again where they would be), or due at the boundary: nothing else.
    assert sorted(built) == (["c3", "c5", "c7"] if read_at_boundary else ["c7"])
    reference.close()


@pytest.mark.usefixtures("clock")
def test_a_late_step_evaluates_afresh(ledger: Ledger, tmp_path: Path) -> None:
    """A step past the prepared boundary (the process stalled) evaluates at its own instant,
    as an unprepared step does (one catch-up transition)."""
    reference = Ledger(f"sqlite:///{tmp_path / 'reference.db'}")
    results = []
    for led, ahead in ((reference, False), (ledger, True)):
        fleet(led)
        projector = Projector(led)
        projector.start(at(0))
        if ahead:
            prepare(projector, at(1) - timedelta(seconds=10))
        built = counting(projector)
        results.append([row(e) for e in projector.step(at(2.5))])
    assert results[1] == results[0]
    assert [(r[0], r[3]) for r in results[1]] == [("c7", "on")]
    assert len(built) == len(CLIENTS)
    reference.close()


def test_nothing_is_prepared_too_far_ahead_or_while_unsettled(ledger: Ledger) -> None:
    """A boundary beyond the horizon, or a step still in chunks, is not prepared."""
    fleet(ledger)
    projector = Projector(ledger)
    projector.start(at(0))
    assert not projector.prepare(at(0), timedelta(minutes=30), 100)
    assert projector.step(at(1), 2)
    assert projector.pending
    assert not projector.prepare(at(1), AHEAD, 100)
