"""The fleet view folds the ledger like the write model does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from eventsourcing.domain import OriginatorVersionError

from ledger import Ledger, TargetRef, Window
from projections.fleet import Affected, FleetView
from projections.timeline import client_timeline
from tests.conftest import ME
from tests.rich_fleet import T0 as RICH_T0
from tests.rich_fleet import fill

T0 = datetime(2026, 3, 31, tzinfo=UTC)


def win(a: float, b: float) -> Window:
    return Window(T0 + timedelta(hours=a), T0 + timedelta(hours=b))


def test_view_timelines_equal_timelines_from_the_aggregates(ledger: Ledger) -> None:
    """Shared group timelines give the same segments as each client's own fold."""
    ledger.add_client("plain", "g", ME)
    ledger.add_client("own-event", "g", ME)
    ledger.add_client("own-override", "g", ME)
    ledger.add_client("loner", None, ME)
    ledger.add_client("gone", "g", ME)
    ledger.remove_client("gone", ME)
    ledger.add_event("g1", TargetRef("group", "g"), win(1, 2), ME)
    ledger.add_event("c1", TargetRef("client", "own-event"), win(1.5, 3), ME)
    ledger.add_override("o1", TargetRef("client", "own-override"), "off", win(1.2, 1.4), ME)
    ledger.add_override("o2", TargetRef("group", "g"), "on", win(5, 6), ME)
    ledger.set_policy({"post_roll": 600}, ME)
    view = FleetView()
    for position, event in ledger.read():
        view.apply(position, event)
    assert set(view.clients) == {"plain", "own-event", "own-override", "loner", "gone"}
    for client_id in view.clients:
        client = ledger.client(client_id)
        group = ledger.group(client.group_id) if client.group_id else None
        expected = client_timeline(client, group, ledger.policy()).segments(T0, T0 + timedelta(hours=8))
        assert view.timeline(client_id).segments(T0, T0 + timedelta(hours=8)) == expected, client_id


def test_group_changes_affect_only_that_groups_members(ledger: Ledger) -> None:
    """A group's event marks its members (and the group) affected, nobody else."""
    ledger.add_client("a1", "a", ME)
    ledger.add_client("a2", "a", ME)
    ledger.add_client("b1", "b", ME)
    view = FleetView()
    for position, event in ledger.read():
        view.apply(position, event)
    ledger.add_event("e", TargetRef("group", "a"), win(1, 2), ME)
    affected = Affected()
    for position, event in ledger.read(view.position):
        view.apply(position, event, affected)
    assert set(affected.clients) == {"a1", "a2"}
    assert set(affected.groups) == {"a"}


def test_folding_an_event_twice_changes_nothing(ledger: Ledger) -> None:
    """The fold is idempotent: re-reading the log from the start is harmless."""
    ledger.add_client("a1", "a", ME)
    ledger.add_event("e", TargetRef("group", "a"), win(1, 2), ME)
    view = FleetView()
    events = list(ledger.read())
    for position, event in events + events:
        view.apply(position, event)
    assert view.groups["a"].version == 2
    assert len(view.groups["a"].events) == 1


def test_client_rows_hold_what_the_client_aggregates_hold(ledger: Ledger) -> None:
    """The compact rows fold to the aggregates' state, and give the same timelines (states, reasons,
    windows, boundaries, named items) on a fleet with series, overrides, groups, moved and removed clients."""
    fill(ledger)
    view = FleetView()
    for position, event in ledger.read():
        view.apply(position, event)
    policy = ledger.policy()
    start, end = RICH_T0 - timedelta(days=1), RICH_T0 + timedelta(days=15)
    assert set(view.clients) == {f"c{i}" for i in range(6)} | {"loner"}
    for client_id, row in view.clients.items():
        client = ledger.client(client_id)
        assert (row.id, row.version, row.registered, row.group_id) == (
            client.id,
            client.version,
            client.registered,
            client.group_id,
        )
        assert (dict(row.events), dict(row.overrides), dict(row.series)) == (
            client.events,
            client.overrides,
            client.series,
        )
        group = ledger.group(client.group_id) if client.group_id else None
        expected = client_timeline(client, group, policy)
        got = view.timeline(client_id)
        assert got.segments(start, end) == expected.segments(start, end), client_id
        for segment in expected.segments(start, end)[1:]:
            assert segment.start is not None
            assert got.named_at(segment.start) == expected.named_at(segment.start), client_id


def test_a_client_row_refuses_an_event_out_of_order(ledger: Ledger) -> None:
    """As the aggregate does: a version gap is an error, never a silent skip."""
    ledger.add_client("a1", "a", ME)
    ledger.assign_client("a1", "b", ME)
    ledger.assign_client("a1", "c", ME)
    client_id = ledger.client("a1").id
    events = [(p, e) for p, e in ledger.read() if e.originator_id == client_id]
    assert [e.originator_version for _, e in events] == [1, 2, 3, 4]
    view = FleetView()
    view.apply(*events[0])
    with pytest.raises(OriginatorVersionError):
        view.apply(*events[-1])


def test_groups_and_the_policy_fold_to_what_the_library_folds(ledger: Ledger) -> None:
    """Later events of groups and the policy are stepped without the library's generic `mutate`:
    the aggregates end as its repository's do, attribute by attribute (on the rich fleet)."""
    fill(ledger)
    ledger.set_policy({"post_roll": 600}, ME)
    view = FleetView()
    for position, event in ledger.read():
        view.apply(position, event)
    assert view.groups
    for group_id, group in view.groups.items():
        expected = ledger.group(group_id)
        assert vars(group) == vars(expected), group_id
    assert view.policy == ledger.policy()


def test_a_group_refuses_an_event_out_of_order(ledger: Ledger) -> None:
    """As the library's `mutate`: a version gap in a group's events is an error."""
    ledger.add_event("e1", TargetRef("group", "a"), win(1, 2), ME)
    ledger.add_event("e2", TargetRef("group", "a"), win(3, 4), ME)
    group = ledger.group("a")
    assert group is not None
    group_id = group.id
    events = [(p, e) for p, e in ledger.read() if e.originator_id == group_id]
    assert [e.originator_version for _, e in events] == [1, 2, 3]
    view = FleetView()
    view.apply(*events[0])
    with pytest.raises(OriginatorVersionError):
        view.apply(*events[-1])
