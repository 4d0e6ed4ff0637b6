"""The fold of rows (projections.rowfold) holds the very view the fold of events does."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from eventsourcing.utils import get_topic

from ledger import Ledger, TargetRef, Window
from ledger import events as ev
from ledger.app import INTENT_TOPICS, TIMELINE_TOPICS
from ledger.codec import _stored_fields
from projections.fleet import ClientRow, FleetView, empty_schedule
from projections.projector import Projector
from projections.rowfold import STATES, RowFold, fold_rows
from tests.conftest import ME
from tests.rich_fleet import T0, fill

TOPICS = TIMELINE_TOPICS + INTENT_TOPICS


def _state(view: FleetView) -> dict[str, Any]:
    """Everything the view holds, as comparable values (the shared empty schedule by identity)."""
    rows = {
        c: {slot: getattr(row, slot) for slot in ClientRow.__slots__}
        | {"shared": row.events is empty_schedule()}
        for c, row in view.clients.items()
    }
    return {
        "position": view.position,
        "clients": rows,
        "groups": {g: dict(vars(group)) for g, group in view.groups.items()},
        "members": {g: set(m) for g, m in view.members.items()},
        "policy": view.policy,
        "logs": {n: dict(vars(log)) for n, log in view.logs.items()},
        "ids": {k: (type(a), getattr(a, "version", None)) for k, a in view.by_id.items()},
    }


def _by_events(ledger: Ledger, *, limit: int = 1_000, twice: bool = False) -> FleetView:
    view = FleetView()
    for _ in range(2 if twice else 1):
        for position, event in ledger.read(0, topics=TOPICS, limit=limit):
            view.apply(position, event)
    return view


def _by_rows(ledger: Ledger, *, limit: int = 1_000, twice: bool = False) -> FleetView:
    view = FleetView()
    for _ in range(2 if twice else 1):
        fold_rows(view, *ledger.read_pages(0, topics=TOPICS, limit=limit))
    return view


def _varied(ledger: Ledger) -> None:
    """The rich fleet, many plain members, own events of plain clients, a group's later events,
    and recorded intents (the logs' rows: the events' fold)."""
    fill(ledger)
    for i in range(30):
        ledger.add_client(f"m{i:02d}", ("g", "h", "k")[i % 3], ME)
    for n in range(8):
        window = Window(T0 + timedelta(hours=40 + n), T0 + timedelta(hours=40.5 + n))
        ledger.add_event(f"k{n}", TargetRef("group", "k"), window, ME)
        ledger.add_event(f"m{n}", TargetRef("client", f"m{n:02d}"), window, ME)
    ledger.move_event("k1", Window(T0 + timedelta(hours=50), T0 + timedelta(hours=51)), ME)
    ledger.cancel_event("m2", ME)
    ledger.assign_client("m04", "g", ME)
    ledger.remove_client("m05", ME)
    ledger.add_client("m05", "h", ME)  # registered again
    last = Window(T0 + timedelta(hours=60), T0 + timedelta(hours=61))
    ledger.add_event("k9", TargetRef("group", "k"), last, ME)  # a group's last row: its modified instant
    projector = Projector(ledger)
    projector.start(T0 + timedelta(hours=39))
    projector.step(T0 + timedelta(hours=40, minutes=5))


def test_rows_fold_to_the_view_events_fold_to(ledger: Ledger) -> None:
    """Same clients, groups (bookkeeping too), members, policy, logs and position, both stores."""
    _varied(ledger)
    expected = _state(_by_events(ledger))
    assert expected["logs"]
    assert expected["groups"]["k"]["_version"] > 8
    assert _state(_by_rows(ledger)) == expected
    # Pages that split an aggregate's rows, and every row read again (held: skipped, as events are).
    assert _state(_by_rows(ledger, limit=7)) == _state(_by_events(ledger, limit=7))
    assert _state(_by_rows(ledger, twice=True)) == _state(_by_events(ledger, twice=True))


def test_rows_fold_shares_instants_and_timelines(ledger: Ledger) -> None:
    """The timelines of the two views are equal (the rows' windows are the events' windows)."""
    _varied(ledger)
    by_events, by_rows = _by_events(ledger), _by_rows(ledger)
    span = (T0, T0 + timedelta(days=3))
    for client_id in by_events.clients:
        assert by_rows.timeline(client_id).segments(*span) == by_events.timeline(client_id).segments(*span)


def test_rows_the_steps_cannot_take_are_the_events_to_fold(sqlite_ledger: Ledger) -> None:
    """A state with a field the step does not know, a version out of turn, an unknown aggregate:
    the step refuses it with nothing changed, and the event's fold takes it."""
    sqlite_ledger.add_client("a", "g", ME)
    decoding, pages = sqlite_ledger.read_pages(0, topics=TOPICS)
    rows = [row for page in pages for row in page]
    topic = get_topic(ev.ClientRegistered)
    (registered,) = (r for r in rows if r[3] == topic)
    view = FleetView()
    fold = RowFold(view, decoding)
    key = decoding.key(registered[1])
    assert not fold._registered(key, registered[2], registered[4])  # no client row yet
    fold.page([r for r in rows if r is not registered])
    before = _state(view)
    assert not fold._registered(key, registered[2] + 1, registered[4])  # out of turn
    extra = registered[4][:-1] + b',"extra":1}'
    assert not fold._registered(key, registered[2], extra)  # a field the step does not read
    assert _state(view) == before
    fold.page([registered])
    assert _state(view) == _state(_by_events(sqlite_ledger))


def test_each_state_struct_holds_its_events_stored_fields() -> None:
    """A field added to one of these events is read by the struct too (else every row of it
    would silently go the slower way)."""
    for cls, state in STATES.items():
        assert state.__struct_fields__ == tuple(name for name, _ in _stored_fields(cls)), cls


def test_a_plain_fleet_s_rows_are_folded_without_events(ledger: Ledger) -> None:
    """Claims, registrations and scheduled events of a plain fleet never reach `FleetView.apply`."""
    for i in range(12):
        ledger.add_client(f"p{i:02d}", ("g", "h", None)[i % 3], ME)
    for n in range(6):
        window = Window(T0 + timedelta(hours=n), T0 + timedelta(hours=n + 1))
        ledger.add_event(f"e{n}", TargetRef("group", ("g", "h")[n % 2]), window, ME)
        ledger.add_event(f"o{n}", TargetRef("client", f"p{n:02d}"), window, ME)
    view = FleetView()
    folded_as_events: list[type] = []
    apply = view.apply

    def counted(position: int, event: Any) -> None:
        folded_as_events.append(type(event))
        apply(position, event)

    view.apply = counted  # type: ignore[method-assign,assignment]
    fold_rows(view, *ledger.read_pages(0, topics=TOPICS))
    assert not set(folded_as_events) & set(STATES)
    assert _state(view) == _state(_by_events(ledger))
