"""Ledger commands on each store: idempotency, unique ids, atomicity, membership."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from ledger import Ledger, Meta, Receipt, TargetRef, Window
from ledger.errors import ClientNotFound, EventNotFound, IdConflict, InvalidId, OverrideNotFound
from ledger.events import ClientRegistered, EventScheduled
from tests.conftest import ME

W1 = Window.parse("2026-03-31T08:00:00Z", "2026-03-31T09:00:00Z")
W2 = Window.parse("2026-03-31T09:00:00Z", "2026-03-31T10:00:00Z")
LOBBY = TargetRef("group", "lobby")


def test_identical_repeats_append_nothing(ledger: Ledger) -> None:
    """Repeating any command with identical content is a no-op, whatever actor and note say."""
    steps: list[Callable[[Meta], Receipt]] = [
        lambda m: ledger.add_client("lobby-1", "lobby", m),
        lambda m: ledger.add_event("e1", LOBBY, W1, m),
        lambda m: ledger.move_event("e1", W2, m),
        lambda m: ledger.add_override("o1", TargetRef("client", "lobby-1"), "off", W1, m),
        lambda m: ledger.set_policy({"pre_roll": 60}, m),
        lambda m: ledger.assign_client("lobby-1", "cafe", m),
        lambda m: ledger.cancel_event("e1", m),
        lambda m: ledger.clear_override("o1", m),
        lambda m: ledger.remove_client("lobby-1", m),
    ]
    for step in steps:
        assert step(ME).appended > 0
        position = ledger.max_notification_id()
        assert step(Meta("someone-else", "a different note")).appended == 0
        assert ledger.max_notification_id() == position


def test_every_change_carries_actor_and_note(ledger: Ledger) -> None:
    """Audits can tell who made each change and why."""
    ledger.add_client("lobby-1", "lobby", Meta("alice", "new screen"))
    ledger.add_event("e1", LOBBY, W1, Meta("bob"))
    changes = [e for _, e in ledger.read() if isinstance(e, ClientRegistered | EventScheduled)]
    assert [(type(e).__name__, e.actor, e.note) for e in changes] == [
        ("ClientRegistered", "alice", "new screen"),
        ("EventScheduled", "bob", None),
    ]


def test_event_ids_are_unique_across_the_whole_ledger(ledger: Ledger) -> None:
    """Reusing an id for another target or window is an error naming the existing record."""
    ledger.add_client("lobby-1", None, ME)
    ledger.add_event("e1", LOBBY, W1, ME)
    with pytest.raises(IdConflict, match=r"event 'e1' already exists: group lobby, 2026-03-31T08:00:00Z"):
        ledger.add_event("e1", TargetRef("client", "lobby-1"), W1, ME)
    with pytest.raises(IdConflict, match="already exists"):
        ledger.add_event("e1", LOBBY, W2, ME)


def test_cancelled_event_id_stays_taken_and_move_reinstates_it(ledger: Ledger) -> None:
    """`event add` of a cancelled id fails naming it; `event move` brings it back."""
    ledger.add_event("e1", LOBBY, W1, ME)
    ledger.cancel_event("e1", ME)
    with pytest.raises(IdConflict, match=r"'e1'.*was cancelled"):
        ledger.add_event("e1", LOBBY, W1, ME)
    assert ledger.move_event("e1", W1, ME).appended == 1
    group = ledger.group("lobby")
    assert group is not None
    assert not group.events["e1"].cancelled


def test_override_ids_are_unique_and_cleared_ids_stay_taken(ledger: Ledger) -> None:
    """Overrides follow the same id rules as events."""
    ledger.add_override("o1", LOBBY, "on", W1, ME)
    with pytest.raises(IdConflict, match=r"override 'o1' .*already exists"):
        ledger.add_override("o1", LOBBY, "off", W1, ME)
    ledger.clear_override("o1", ME)
    with pytest.raises(IdConflict, match="was cleared"):
        ledger.add_override("o1", LOBBY, "on", W1, ME)


def test_unknown_or_removed_clients_cannot_be_scheduled(ledger: Ledger) -> None:
    """A typo is an error, not a new client; a removed client takes no new events."""
    with pytest.raises(ClientNotFound, match="'lobby-l' is not registered"):
        ledger.add_event("e1", TargetRef("client", "lobby-l"), W1, ME)
    ledger.add_client("lobby-1", None, ME)
    ledger.remove_client("lobby-1", ME)
    with pytest.raises(ClientNotFound, match="was removed"):
        ledger.add_override("o1", TargetRef("client", "lobby-1"), "on", W1, ME)
    with pytest.raises(ClientNotFound):
        ledger.assign_client("nobody", "lobby", ME)
    with pytest.raises(EventNotFound):
        ledger.move_event("nope", W1, ME)
    with pytest.raises(OverrideNotFound):
        ledger.clear_override("nope", ME)


def test_failed_commands_append_nothing(ledger: Ledger) -> None:
    """A command that fails half-way (group named, then conflict) leaves no partial change."""
    ledger.add_client("lobby-1", "lobby", ME)
    position = ledger.max_notification_id()
    with pytest.raises(IdConflict, match="already registered in group 'lobby'"):
        ledger.add_client("lobby-1", "brand-new-group", ME)
    with pytest.raises(InvalidId):
        ledger.add_event("bad/id", TargetRef("group", "other-new-group"), W1, ME)
    assert ledger.max_notification_id() == position
    assert ledger.group("brand-new-group") is None


def test_removed_client_can_be_registered_again(ledger: Ledger) -> None:
    """Re-registration is allowed and keeps the same aggregate (and so the same intent log)."""
    ledger.add_client("lobby-1", "lobby", ME)
    ledger.remove_client("lobby-1", ME)
    receipt = ledger.add_client("lobby-1", "cafe", ME)
    assert sorted(type(e).__name__ for e in receipt.events) == ["ClientRegistered", "GroupNamed"]
    client = ledger.client("lobby-1")
    assert (client.registered, client.group_id) == (True, "cafe")


def test_groups_come_into_being_when_first_named(ledger: Ledger) -> None:
    """Naming a group in any command creates it once."""
    assert ledger.group("lobby") is None
    ledger.add_event("e1", LOBBY, W1, ME)
    ledger.add_client("lobby-1", "lobby", ME)
    group = ledger.group("lobby")
    assert group is not None
    assert group.version == 2


def test_policy_changes_keep_unnamed_values(ledger: Ledger) -> None:
    """`policy set --pre-roll` leaves the other values as they were."""
    assert ledger.policy().grace_seconds == 30
    ledger.set_policy({"pre_roll": 120}, ME)
    ledger.set_policy({"grace_seconds": 10}, ME)
    assert ledger.policy().as_dict() == {
        "pre_roll": 120,
        "post_roll": 0,
        "bridge_gap": 0,
        "grace_seconds": 10,
    }
