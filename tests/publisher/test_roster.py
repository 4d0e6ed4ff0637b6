"""The report process's roster: who is registered, folded from the ledger's membership events."""

from __future__ import annotations

from ledger import Ledger
from publisher.roster import Roster
from tests.conftest import ME


def test_the_roster_follows_registration_removal_and_return(ledger: Ledger) -> None:
    ledger.add_client("lobby-1", "lobby", ME)
    roster = Roster(ledger)
    assert roster.refresh()
    assert roster.registered("lobby-1")
    # Registered after the last read: a report from it looks again before calling it unknown.
    ledger.add_client("lobby-2", None, ME)
    assert roster.registered("lobby-2")
    assert not roster.registered("ghost")
    ledger.remove_client("lobby-1", ME)
    assert roster.refresh()
    assert not roster.registered("lobby-1")
    assert len(roster) == 1
    ledger.add_client("lobby-1", None, ME)  # back again
    assert roster.registered("lobby-1")
    assert len(roster) == 2


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
