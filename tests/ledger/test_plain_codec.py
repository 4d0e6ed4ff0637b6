"""The fast write path (event builders, msgspec mapper, driver insert) writes what the library writes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4, uuid5

import pytest
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import Mapper, StoredEvent
from freezegun import freeze_time
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from ledger import Ledger, TargetRef, Window
from ledger import events as ev
from ledger.domain import IntentLog
from ledger.intent import IntentFields
from ledger.names import INTENT_NAMESPACE, NAMESPACE, intent_id_for, uuid5_of
from ledger.persistence import events_table, transaction
from ledger.plainjson import PlainJsonMapper
from ledger.recurrence import Recurrence
from projections.projector import Projector
from tests.conftest import ME

T0 = datetime(2026, 3, 31, 7, tzinfo=UTC)
FIELDS = IntentFields("c1", "lobby", "on", "event_window_active", 30, {"start": "a", "end": "b"})


class _StockLog(Aggregate):
    """The intent log as the library builds it: `_create` and `trigger_event`."""

    def __init__(self, client_id: str | None, group_id: str | None) -> None:
        self.client_id, self.group_id, self.seq, self.last = client_id, group_id, 0, None


class StockLedger(Ledger):
    """A ledger writing through the library's own mapper and recorder (what older versions wrote)."""

    name = "ledger"  # the same tables (the library names an application after its class)

    def __init__(self, db_url: str) -> None:
        super().__init__(db_url, {"PERSISTENCE_MODULE": "eventsourcing_sqlalchemy"})

    def construct_mapper(self) -> Mapper[UUID]:
        return Mapper(transcoder=self.construct_transcoder())


def _stock(ledger: Ledger) -> Mapper[UUID]:
    return Mapper(transcoder=ledger.construct_transcoder())


def _rows(ledger: Ledger) -> list[tuple[int, StoredEvent]]:
    c = events_table(ledger).c
    query = select(c.id, c.originator_id, c.originator_version, c.topic, c.state).order_by(c.id)
    with transaction(ledger, commit=False) as session:
        rows = session.execute(query).all()
    return [(i, StoredEvent(o, v, t, bytes(s))) for i, o, v, t, s in rows]


def _fleet(ledger: Ledger) -> None:
    """Every kind of change, and the intents a projector records for them."""
    with freeze_time(T0):
        ledger.add_client("c1", "lobby", ME)
        ledger.add_client("c2", None, ME)
        ledger.add_event(
            "e1", TargetRef("group", "lobby"), Window(T0 + timedelta(hours=1), T0 + timedelta(hours=2)), ME
        )
        ledger.add_override("o1", TargetRef("client", "c2"), "on", Window(T0, T0 + timedelta(hours=3)), ME)
        recurrence = Recurrence.parse(
            "Europe/Paris", "2026-03-31T10:00", "2026-03-31T11:00", "FREQ=DAILY;COUNT=3"
        )
        ledger.schedule_series("s1", TargetRef("client", "c1"), recurrence, ME)
        ledger.skip_series("s1", [date(2026, 4, 1)], ME)
        ledger.set_policy({"pre_roll": 60}, ME)
        projector = Projector(ledger, group_topics=True)
        projector.start(T0)
    while (wake := projector.next_wakeup()) is not None and wake < T0 + timedelta(days=3):
        with freeze_time(wake):
            projector.step(wake)


def test_every_row_written_is_what_the_stock_mapper_writes_for_its_event(ledger: Ledger) -> None:
    """Decode each stored row with the stock mapper, encode it again: the very same bytes."""
    _fleet(ledger)
    stock = _stock(ledger)
    rows = _rows(ledger)
    assert {type(stock.to_domain_event(s)) for _, s in rows} >= {
        ev.IntentIssued,
        ev.IntentLogOpened,
        ev.SeriesSkipped,
    }
    for _, stored in rows:
        again = stock.to_stored_event(stock.to_domain_event(stored))
        assert again == stored


def test_old_rows_and_new_rows_read_the_same_both_ways(db_url: str) -> None:
    """A ledger written by the stock mapper and recorder reads as ours does, and ours reads with stock."""
    old = StockLedger(db_url)
    try:
        _fleet(old)
        old_rows = _rows(old)
    finally:
        old.close()
    new = Ledger(db_url)
    try:
        assert [e for _, e in new.read()] == [old.mapper.to_domain_event(s) for _, s in old_rows]
        assert new.issued("c1") == [
            e for e in new.events.get(IntentLog.id_for("c1")) if isinstance(e, ev.IntentIssued)
        ]
        later = T0 + timedelta(days=4)
        with freeze_time(later):
            new.add_client("c3", None, ME)
            assert Projector(new, group_topics=True).start(later)  # c3's log opened and issued
        rows = _rows(new)
    finally:
        new.close()
    reader = StockLedger(db_url)
    try:
        stock = reader.mapper
        assert [(i, stock.to_domain_event(s)) for i, s in rows] == [(i, e) for i, e in reader.read()]
        assert [i for i, _ in rows] == sorted({i for i, _ in rows})
    finally:
        reader.close()


def test_issue_and_open_build_the_events_the_library_builds() -> None:
    """Same fields in the same order (the JSON key order), same aggregate state."""
    with freeze_time(T0):
        log = IntentLog.open("c1", "lobby")
        log.issue(FIELDS, T0, {"kind": "start"})
        stock = _StockLog._create(
            ev.IntentLogOpened, id=IntentLog.id_for("c1"), client_id="c1", group_id="lobby"
        )
        stock.trigger_event(
            ev.IntentIssued,
            seq=1,
            intent_id=intent_id_for("c1", 1),
            effective_at=T0,
            cause={"kind": "start"},
            **{k: getattr(FIELDS, k) for k in FIELDS.__struct_fields__},
        )
    ours = log.collect_events()
    theirs = stock.collect_events()
    assert [list(vars(e)) for e in ours] == [list(vars(e)) for e in theirs]
    expected_opened = {**vars(theirs[0]), "originator_topic": "ledger.intentlog:IntentLog"}
    assert vars(ours[0]) == expected_opened
    assert vars(ours[1]) == vars(theirs[1])
    assert isinstance(theirs[1], ev.IntentIssued)
    assert (log.version, log.modified_on, log.seq, log.last) == (2, T0, 1, theirs[1].current())


@given(st.text(), st.integers(min_value=0, max_value=10**7))
@settings(max_examples=300, deadline=None)
def test_intent_ids_are_uuid5_of_the_name_and_seq(name: str, seq: int) -> None:
    try:
        expected = str(uuid5(INTENT_NAMESPACE, f"{name}/{seq}"))
    except UnicodeEncodeError:  # lone surrogates: neither can name a log
        with pytest.raises(UnicodeEncodeError):
            intent_id_for(name, seq)
        return
    assert intent_id_for(name, seq) == expected
    assert uuid5_of(name) == uuid5(NAMESPACE, name)


def _containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=4), inner, max_size=3)
        | st.tuples(inner)
        | st.dictionaries(st.integers(), inner, max_size=2)
    )


_scalars = (
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.text() | st.floats()
)
_json = st.recursive(_scalars, _containers, max_leaves=8)
_odd = st.sampled_from([T0, uuid4(), Decimal("1.5"), date(2026, 1, 1), {"at": T0}, [T0], frozenset()])


@pytest.fixture(scope="module")
def mappers() -> Iterator[tuple[Mapper[UUID], Mapper[UUID]]]:
    ledger = Ledger("sqlite://")
    try:
        assert isinstance(ledger.mapper, PlainJsonMapper)
        yield ledger.mapper, _stock(ledger)
    finally:
        ledger.close()


@given(cause=_json | _odd, state=st.text())
@settings(max_examples=400, deadline=None)
def test_any_cause_is_stored_exactly_as_the_stock_mapper_stores_it(
    mappers: tuple[Mapper[UUID], Mapper[UUID]], cause: Any, state: str
) -> None:
    """Plain or not: the same bytes, or the same error (what is not plain takes the stock path)."""
    ours, stock = mappers
    event = _issued(T0, T0, state, cause)
    try:
        expected: Any = stock.to_stored_event(event)
    except Exception as e:
        expected = type(e)
    try:
        got: Any = ours.to_stored_event(event)
    except Exception as e:
        got = type(e)
    assert got == expected


@pytest.mark.parametrize("count", [1, 3, 499, 500, 1537])
def test_record_intents_returns_the_last_id_of_rows_in_order(ledger: Ledger, count: int) -> None:
    """Multi-row INSERTs of any size: ids ascending in the order of the events, the last one returned."""
    before = ledger.max_notification_id()
    logs = [IntentLog.open(f"c{i}", None) for i in range(count)]
    for log in logs:
        log.issue(IntentFields(log.client_id, None, "off", "no_event", 30, None), T0, {"kind": "start"})
    receipt = ledger.record_intents(logs)
    rows = _rows(ledger)
    assert receipt.last_notification_id == rows[-1][0] == ledger.max_notification_id()
    assert len(rows) == 2 * count
    assert rows[0][0] > before
    assert [(s.originator_id, s.originator_version) for _, s in rows] == [
        (e.originator_id, e.originator_version) for e in receipt.events
    ]


@given(
    offset=st.integers(min_value=-14 * 60, max_value=14 * 60),
    seconds=st.integers(min_value=0, max_value=10**9),
)
@settings(max_examples=100, deadline=None)
def test_an_instant_encodes_as_the_stock_mapper_encodes_it_after_an_equal_one(
    mappers: tuple[Mapper[UUID], Mapper[UUID]], offset: int, seconds: int
) -> None:
    """Equal instants in UTC and in another zone, in either order (the UTC ones are remembered):
    each one's own bytes."""
    ours, stock = mappers
    utc = datetime(2001, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds)
    zoned = utc.astimezone(timezone(timedelta(minutes=offset)))
    for effective_at in (utc, zoned, utc, zoned):
        event = _issued(utc, effective_at, "on", {"at": "x"})
        assert ours.to_stored_event(event) == stock.to_stored_event(event)


def _issued(at: datetime, effective_at: datetime, state: str, cause: Any) -> ev.IntentIssued:
    """An `IntentIssued` recorded a little after `at`."""
    return ev.new_event(
        ev.IntentIssued,
        {
            "originator_id": uuid4(),
            "originator_version": 2,
            "timestamp": at + timedelta(microseconds=7),
            "seq": 1,
            "intent_id": "i",
            "effective_at": effective_at,
            "desired_state": state,
            "reason": "r",
            "event_window": None,
            "client_id": "c",
            "group_id": None,
            "grace_seconds": 30,
            "cause": cause,
        },
    )


def test_the_typed_encoders_take_what_intent_logs_build_and_write_the_stock_bytes(
    mappers: tuple[Mapper[UUID], Mapper[UUID]],
) -> None:
    """Opened and issued events of client and group logs (windows or none, every kind of cause,
    a clock reading and whole-second instants) go through the typed encoders, not the fallback,
    and come out as the stock mapper's bytes; an event with its keys in another order falls back."""
    ours, stock = mappers
    assert isinstance(ours, PlainJsonMapper)
    stamp = datetime(2026, 3, 31, 7, 0, 0, 123_456, tzinfo=UTC)
    window = {"start": "2026-03-31T08:00:00Z", "end": "2026-03-31T09:00:00Z"}
    causes: list[dict[str, Any]] = [
        {"kind": "start"},
        {"kind": "boundary", "at": "2026-03-31T08:00:00Z", "windows": ["event e1", "override o1"]},
        {"kind": "ledger", "position": 12, "event": "EventScheduled", "actor": "ünï", "note": None},
    ]
    events: list[Any] = []
    for client, group in (("c1", "lobby"), (None, "lobby"), ("c2", None)):
        log = IntentLog.open(client, group, stamp)
        for i, cause in enumerate(causes):
            on = IntentFields(client, group, "on", "event_window_active", 30, window)
            off = IntentFields(client, group, "off", "no_active_event", 0, None)
            log.issue(on if i % 2 else off, T0 + timedelta(hours=i), cause, stamp)
        events += log.collect_events()
    typed = ours._typed
    for event in events:
        assert typed(event) is not None, type(event).__name__
        assert ours.to_stored_event(event) == stock.to_stored_event(event)
    reordered = ev.new_event(ev.IntentIssued, dict(reversed(list(vars(events[1]).items()))))
    assert typed(reordered) is None
    assert ours.to_stored_event(reordered) == stock.to_stored_event(reordered)
