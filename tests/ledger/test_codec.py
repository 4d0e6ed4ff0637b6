"""The typed decoders read back exactly what the library's mapper does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic, resolve_topic
from freezegun import freeze_time
from sqlalchemy import select

from ledger import Ledger, TargetRef, Window
from ledger.codec import decode_event
from ledger.domain import IntentLog
from ledger.events import ClientDeregistered, IntentIssued, PolicyOpened
from ledger.logread import uuid_of_bytes
from ledger.persistence import events_table, transaction
from ledger.topics import INTENT_TOPICS, TIMELINE_TOPICS
from projections.projector import Projector
from tests.conftest import ME
from tests.rich_fleet import fill

T0 = datetime(2026, 3, 31, 7, tzinfo=UTC)


def test_issued_equals_the_mapper_down_to_every_field(ledger: Ledger) -> None:
    """Ledger.issued (Core SELECT + msgspec) equals the repository's events, fields and key order."""
    with freeze_time(T0):
        ledger.add_client("c1", "lobby", ME)
        for i in range(3):
            start = T0 + timedelta(hours=1 + 2 * i)
            window = Window(start, start + timedelta(hours=1))
            ledger.add_event(f"e{i}", TargetRef("group", "lobby"), window, ME)
        projector = Projector(ledger)
        projector.start(T0)
    while (wake := projector.next_wakeup()) is not None:
        with freeze_time(wake):
            projector.step(wake)
    expected = [e for e in ledger.events.get(IntentLog.id_for("c1")) if isinstance(e, IntentIssued)]
    got = ledger.issued("c1")
    assert len(got) == 7  # off, then on/off three times
    assert [type(e) for e in got] == [IntentIssued] * 7
    assert [list(vars(e).items()) for e in got] == [list(vars(e).items()) for e in expected]
    assert all(e.effective_at.tzinfo is not None and e.timestamp.utcoffset() == timedelta(0) for e in got)


def test_issued_of_an_unknown_log_is_empty(ledger: Ledger) -> None:
    """A client that never had an intent has an empty history, not an error."""
    assert ledger.issued("nobody") == []


def test_every_stored_event_decodes_as_the_mapper_decodes_it(ledger: Ledger) -> None:
    """ledger.codec builds every kind of event the mapper builds: same class, fields and key order."""
    with freeze_time(T0):
        fill(ledger)
        Projector(ledger).start(T0)
    table = events_table(ledger)
    c = table.c
    with transaction(ledger, commit=False) as session:
        rows = session.execute(select(c.originator_id, c.originator_version, c.topic, c.state)).all()
    topics = set()
    for originator_id, version, topic, state in rows:
        expected = ledger.mapper.to_domain_event(StoredEvent(originator_id, version, topic, bytes(state)))
        got = decode_event(resolve_topic(topic), originator_id, version, bytes(state))
        assert got is not None, topic
        assert type(got) is type(expected)
        assert list(vars(got).items()) == list(vars(expected).items()), topic
        topics.add(topic)
    assert topics >= set(TIMELINE_TOPICS + INTENT_TOPICS) - {get_topic(PolicyOpened)}


def test_a_state_the_class_does_not_describe_is_left_to_the_mapper() -> None:
    """An unknown field, a missing one or an upcast: None, and read_rows asks the mapper."""
    instant = b'{"_type_":"datetime_iso","_data_":"2026-03-31T07:00:00+00:00"}'
    known = b'{"timestamp":' + instant + b',"actor":"a","note":null}'
    assert decode_event(ClientDeregistered, uuid4(), 2, known) is not None
    assert decode_event(ClientDeregistered, uuid4(), 2, known[:-1] + b',"extra":1}') is None
    assert decode_event(ClientDeregistered, uuid4(), 2, known.replace(b',"note":null', b"")) is None
    assert decode_event(ClientDeregistered, uuid4(), 2, known[:-1] + b',"class_version":2}') is None


def test_equal_schedule_instants_decode_to_one_object_and_stamps_stay_their_own() -> None:
    """Two events scheduled at the same times hold the same start and end objects (a fleet's
    fold holds them for every event); record stamps and non-UTC instants are not shared."""
    from ledger import codec
    from ledger.events import EventScheduled

    def state(stamp: str, start: str, end: str) -> bytes:
        def wrapped(text: str) -> str:
            return '{"_type_":"datetime_iso","_data_":"' + text + '"}'

        return (
            f'{{"timestamp":{wrapped(stamp)},"actor":"a","note":null,"event_id":"e",'
            f'"start":{wrapped(start)},"end":{wrapped(end)}}}'
        ).encode()

    same = state("2026-03-31T07:00:00.000001+00:00", "2026-03-31T08:00:00+00:00", "2026-03-31T09:00:00+00:00")
    one = decode_event(EventScheduled, uuid4(), 2, same)
    two = decode_event(EventScheduled, uuid4(), 2, same)
    assert one is not None
    assert two is not None
    assert (one.start, one.end) == (two.start, two.end) == (T0 + timedelta(hours=1), T0 + timedelta(hours=2))
    assert one.start is two.start
    assert one.end is two.end
    assert one.timestamp == two.timestamp
    assert one.timestamp is not two.timestamp
    other = state("2026-03-31T07:00:00+00:00", "2026-03-31T10:00:00+02:00", "2026-03-31T11:00:00+02:00")
    three, four = (decode_event(EventScheduled, uuid4(), 2, other) for _ in range(2))
    assert three is not None
    assert four is not None
    assert three.start == four.start == T0 + timedelta(hours=1)
    assert three.start is not four.start  # another offset: equal, but not the same value
    for i in range(codec.INSTANTS_KEPT + 1):
        codec.shared_instant(T0 + timedelta(seconds=i))
    assert len(codec._INSTANTS) <= codec.INSTANTS_KEPT  # bounded, whatever the ledger holds


def test_the_log_read_equals_the_mapper_s_events(ledger: Ledger) -> None:
    """`Ledger.read` (the driver's values, one id object an aggregate of a page) gives what the
    stock rows and mapper give: positions, classes, every field and its type, in order."""
    with freeze_time(T0):
        fill(ledger)
        Projector(ledger).start(T0)
    c = events_table(ledger).c
    with transaction(ledger, commit=False) as session:
        query = select(c.id, c.originator_id, c.originator_version, c.topic, c.state).order_by(c.id)
        rows = session.execute(query).all()
    expected = [
        (position, ledger.mapper.to_domain_event(StoredEvent(oid, version, topic, bytes(state))))
        for position, oid, version, topic, state in rows
    ]
    got = list(ledger.read(0, limit=7))  # small pages: some aggregates span two
    assert [p for p, _ in got] == [p for p, _ in expected]
    for (_, g), (_, e) in zip(got, expected, strict=True):
        assert type(g) is type(e)
        assert list(vars(g).items()) == list(vars(e).items())
        assert type(g.originator_id) is type(e.originator_id)


def test_the_log_reads_every_row_as_the_mapper_reads_it(ledger: Ledger) -> None:
    """`Ledger.read` in pages (one statement for them all) and up to a stop: every row's event as
    the mapper makes it, ids included, in order, each page going on where the last one stopped."""
    with freeze_time(T0):
        fill(ledger)
        Projector(ledger).start(T0)
    c = events_table(ledger).c
    with transaction(ledger, commit=False) as session:
        rows = session.execute(select(c.id, c.originator_id, c.originator_version, c.topic, c.state)).all()
    expected = [
        (position, ledger.mapper.to_domain_event(StoredEvent(oid, version, topic, bytes(state))))
        for position, oid, version, topic, state in sorted(rows)
    ]
    got = list(ledger.read(0, limit=7))
    assert [p for p, _ in got] == [p for p, _ in expected]
    for (_, event), (_, want) in zip(got, expected, strict=True):
        assert type(event) is type(want)
        assert list(vars(event).items()) == list(vars(want).items())
        assert type(event.originator_id) is UUID
        assert event.originator_id.is_safe == want.originator_id.is_safe
    middle, stop = expected[10][0], expected[40][0]
    assert [p for p, _ in ledger.read(middle, limit=4, stop=stop)] == [
        p for p, _ in expected if middle < p <= stop
    ]
    topics = (get_topic(ClientDeregistered), get_topic(IntentIssued))
    assert [p for p, _ in ledger.read(0, topics=topics, limit=3)] == [
        p for p, e in expected if type(e) in (ClientDeregistered, IntentIssued)
    ]


def test_a_stored_id_reads_as_the_column_reads_it() -> None:
    """`uuid_of_bytes` is `UUID(bytes=...)`: the same value, safety and hash; a wrong length, its error."""
    for _ in range(20):
        value = uuid4().bytes
        made, expected = uuid_of_bytes(value), UUID(bytes=value)
        assert (made, made.is_safe, hash(made), str(made)) == (
            expected,
            expected.is_safe,
            hash(expected),
            str(expected),
        )
    with pytest.raises(ValueError, match="16-char"):
        uuid_of_bytes(b"short")
