"""Transitions built ahead (`projections.prepared.Ahead`), on each store, on a fleet with every
kind of schedule change: the rows a prepared boundary stores (their state bytes, the record
instant spliced in), the logs' current intents and the payloads published from them (from the
templates built ahead, their stamps spliced in) are the very ones of an unprepared step, also
when changes land between the preparation and the boundary, or a chunk's write fails."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import eventsourcing.domain
import pytest
from sqlalchemy import select

from ledger import Ledger, TargetRef, Window
from ledger.persistence import events_table, transaction
from projections.prepared import splitter
from projections.projector import Projector
from publisher.payload import PayloadTemplate, build_payload, encode_payload, payload_template, stamped
from tests.conftest import ME
from tests.projections.test_prepared import prepare
from tests.projections.test_projector_chunks import chunked
from tests.rich_fleet import T0, fill

# Every event's record instant, with microseconds (a clock reading), the same in both ledgers
# (not freezegun's: its datetime class takes the mapper's plain path away).
STAMP = datetime(2026, 3, 30, 7, 59, 58, 123456, tzinfo=UTC)
UNTIL = T0 + timedelta(days=3)


def rows(ledger: Ledger) -> list[tuple[Any, ...]]:
    """Every stored intent row as the database holds it, in the notification log's order."""
    t = events_table(ledger)
    query = select(t.c.originator_id, t.c.originator_version, t.c.topic, t.c.state).order_by(t.c.id)
    with transaction(ledger, commit=False) as session:
        found = session.execute(query.where(t.c.topic.like("%Intent%"))).all()
    return [(str(i), v, topic, bytes(state)) for i, v, topic, state in found]


def published(
    projector: Projector, names: list[str], at: datetime, used: list[str] | None = None
) -> list[bytes | None]:
    """The payload each log's current intent is published as at `at`: as the outbox makes it,
    from the template built ahead for it if there is one (its name then noted in `used`)."""
    out: list[bytes | None] = []
    for name in names:
        current = projector.current(name)
        if current is None:
            out.append(None)
            continue
        template: PayloadTemplate | None = projector.built(name, current)
        if template is not None:
            assert used is not None
            assert template.intent_id == current.intent_id
            used.append(name)
            out.append(stamped(template, at, 600)[0])
            continue
        payload = build_payload(intent_id=current.intent_id, fields=current.fields, issued_at=at, ttl=600)
        out.append(encode_payload(payload))
    return out


def change(ledger: Ledger, k: int) -> None:
    """One of several kinds of change, landing after a boundary was prepared."""
    g = TargetRef("group", "g")
    window = Window(T0 + timedelta(hours=8), T0 + timedelta(hours=30))
    changes: list[Callable[[], Any]] = [
        lambda: ledger.add_override(f"late{k}", g, "on", window, ME),
        lambda: ledger.move_event("ge1", Window(T0 + timedelta(hours=7), T0 + timedelta(hours=12)), ME),
        lambda: ledger.assign_client("c2", "h", ME),
        lambda: ledger.add_event(f"new{k}", TargetRef("client", "c4"), window, ME),
        lambda: ledger.remove_client("c1", ME),
        lambda: ledger.cancel_event("ce1", ME),
    ]
    if k < len(changes):
        changes[k]()


@pytest.mark.parametrize("group_topics", [False, True])
def test_prepared_rows_and_payloads_are_the_unprepared_ones(
    ledger: Ledger, tmp_path: Path, group_topics: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(eventsourcing.domain, "datetime_now_with_tzinfo", lambda: STAMP)
    reference = Ledger(f"sqlite:///{tmp_path / 'reference.db'}")
    plain = Projector(reference, group_topics=group_topics)
    ahead = Projector(ledger, group_topics=group_topics)
    ahead.extra_of = payload_template
    for led, projector in ((reference, plain), (ledger, ahead)):
        fill(led)
        projector.start(T0)
    names = plain.names()
    assert splitter(ledger.mapper) is not None  # the stored states are built ahead too
    used: list[str] = []
    built = 0
    k = 0
    while (wake := plain.next_wakeup()) is not None and wake < UNTIL:
        assert ahead.next_wakeup() == wake
        prepare(ahead, wake - timedelta(seconds=1))
        built += len(ahead._prepared.ahead)
        if k % 2:  # every other boundary, a change after the preparation (to both ledgers)
            for led in (reference, ledger):
                change(led, k // 2)
        k += 1
        one = plain.step(wake)
        got = [e for c in chunked(ahead, wake, 2) for e in c]
        assert [vars(e) for e in got] == [vars(e) for e in one]
        assert [ahead.current(n) for n in names] == [plain.current(n) for n in names]
        assert published(ahead, names, wake, used) == published(plain, names, wake)
        assert not ahead._extras  # each given once, at its publish
    assert built >= 10  # transitions were built ahead, not merely evaluated
    assert len(used) >= 10  # and their payloads published from the templates
    assert rows(ledger) == rows(reference)
    reference.close()
