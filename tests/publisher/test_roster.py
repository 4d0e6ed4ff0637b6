"""The report process's roster: who is registered, folded from the ledger's membership events."""

from __future__ import annotations

from ledger import Ledger
from publisher.roster import REREAD, Roster
from publisher.undecided import Undecided
from tests.conftest import ME


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Counted(Roster):
    """A roster that counts its reads of the ledger (each begins with the head's `max(id)`)."""

    def __init__(self, ledger: Ledger, clock: Clock) -> None:
        super().__init__(ledger, clock)
        self.reads = 0

    def _refresh(self) -> bool:
        self.reads += 1
        return super()._refresh()


def test_the_roster_follows_registration_removal_and_return(ledger: Ledger) -> None:
    clock = Clock()
    ledger.add_client("lobby-1", "lobby", ME)
    roster = Roster(ledger, clock)
    assert roster.refresh()
    assert roster.registered("lobby-1")
    # Registered after the last read: a report from it looks again before calling it unknown.
    ledger.add_client("lobby-2", None, ME)
    assert roster.registered("lobby-2")
    clock.now += REREAD
    assert roster.registered("ghost") is False
    ledger.remove_client("lobby-1", ME)
    assert roster.refresh()
    assert not roster.registered("lobby-1")
    assert len(roster) == 1
    ledger.add_client("lobby-1", None, ME)  # back again
    clock.now += REREAD
    assert roster.registered("lobby-1")
    assert len(roster) == 2


def test_reports_from_unknown_clients_read_the_ledger_once_a_second_at_most(ledger: Ledger) -> None:
    """A flood from unregistered screens: one read a REREAD, not one a report. A client still
    unknown within it is undecided, and answered by the first read begun after it was asked."""
    clock = Clock()
    roster = Counted(ledger, clock)
    roster.refresh()
    assert roster.registered("ghost-0") is False  # the first look is at once
    assert roster.reads == 2
    ledger.add_client("late", None, ME)  # after that read
    for i in range(1, 500):
        clock.now += 0.001
        assert roster.registered(f"ghost-{i}") is None
    assert roster.registered("late") is None  # not known yet: never called unknown for the lag
    assert roster.reads == 2
    clock.now += REREAD
    assert roster.registered("ghost-1") is False  # read again: still unknown
    assert roster.reads == 3
    assert roster.registered("late") is True
    assert [roster.registered(f"ghost-{i}") for i in range(2, 500)] == [False] * 498
    assert roster.reads == 3
    # Asked about first after that read: undecided until the next one (the periodic one here).
    assert roster.registered("ghost-0") is None
    roster.refresh()
    assert roster.registered("ghost-0") is False
    assert roster.reads == 4


def test_held_reports_are_released_in_order_up_to_the_first_undecided() -> None:
    held: Undecided[int] = Undecided()
    for n, name in enumerate(["a", "b", "a", "c"]):
        held.hold(name, n)
    assert held.holds("a")
    answers = {"a": True, "b": False}
    assert list(held.release(answers.get)) == [(0, True), (1, False), (2, True)]
    assert (len(held), held.holds("a"), held.holds("c")) == (1, False, True)
    assert list(held.release({"c": False}.get)) == [(3, False)]
    assert len(held) == 0


def test_a_roster_read_again_from_scratch_agrees(ledger: Ledger) -> None:
    for i in range(5):
        ledger.add_client(f"c{i}", None, ME)
    ledger.remove_client("c3", ME)
    incremental = Roster(ledger)
    incremental.refresh()
    ledger.remove_client("c1", ME)
    incremental.refresh()
    fresh = Roster(ledger)
    fresh.refresh()
    names = [f"c{i}" for i in range(5)]
    assert [n for n in names if fresh.registered(n)] == ["c0", "c2", "c4"]
    assert [n for n in names if incremental.registered(n)] == ["c0", "c2", "c4"]


def test_two_held_reports_of_one_unknown_client_cost_one_read(ledger: Ledger) -> None:
    """Clients not yet known, each with two reports held before the roster could answer: one
    read begun after they all arrived answers them all (each client asked about once a pass)."""
    clock = Clock()
    roster = Counted(ledger, clock)
    roster.refresh()
    held: Undecided[str] = Undecided()
    assert roster.registered("first") is False  # the look of this REREAD spent
    for ghost in ("a", "b", "c", "d"):
        assert roster.registered(ghost) is None  # as Observer._classify asks once, then holds
        held.hold(ghost, f"{ghost}1")
        held.hold(ghost, f"{ghost}2")  # a second report: held behind, not asked
    clock.now += REREAD
    released = [item for item, known in held.release(roster.registered)]
    assert released == ["a1", "a2", "b1", "b2", "c1", "c2", "d1", "d2"], released
