"""A step committed in chunks (`Projector.step(now, limit)`), on each store: it records what one
step records, in the same order; one client's transitions stay in order; a failed chunk is
retried like a failed step, losing nothing; a start in chunks shares its intents' values."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ledger import Ledger, TargetRef, Window
from ledger.events import IntentIssued
from projections.prepared import evaluate
from projections.projector import Projector
from publisher.settings import DB_ERRORS
from tests.conftest import ME, PG_URL, STORES, reset_postgres
from tests.projections.test_projector import LOBBY, T0, at, clock  # noqa: F401 (the fixture)
from tests.publisher.test_lease_faults import own_url, terminate

CLIENTS = [f"c{i}" for i in range(1, 8)]


def fleet(ledger: Ledger) -> None:
    """Seven clients of one group, switched on at 08:00 and off at 09:00; c7 (a window of its
    own) off at 10:00."""
    for client in CLIENTS:
        ledger.add_client(client, "lobby", ME)
    ledger.add_event("lobby", LOBBY, Window(at(1), at(2)), ME)
    ledger.add_event("own", TargetRef("client", "c7"), Window(at(1.5), at(3)), ME)


def row(e: IntentIssued) -> tuple[Any, ...]:
    return (e.client_id, e.seq, e.intent_id, e.desired_state, e.effective_at, e.cause)


def chunked(projector: Projector, now: datetime, limit: int) -> list[list[IntentIssued]]:
    """One step at `now`, chunk by chunk until nothing is pending."""
    chunks = [projector.step(now, limit)]
    while projector.pending:
        chunks.append(projector.step(now + timedelta(minutes=1), limit))  # goes on at the step's now
    return chunks


def first_chunk(ledger: Ledger) -> tuple[Projector, list[IntentIssued]]:
    """The fleet started at T0, and the first chunk of 2 of its 08:00 boundary (c1, c2; more pending)."""
    fleet(ledger)
    projector = Projector(ledger)
    projector.start(T0)
    first = projector.step(at(1), 2)
    assert [e.client_id for e in first] == ["c1", "c2"]
    assert projector.pending
    return projector, first


@pytest.mark.usefixtures("clock")
def test_chunks_record_what_one_step_records_in_its_order(ledger: Ledger, tmp_path: Path) -> None:
    """Every boundary stepped in chunks of 3 records the very transitions of a plain step."""
    reference = Ledger(f"sqlite:///{tmp_path / 'reference.db'}")
    plain, split = Projector(reference), Projector(ledger)
    for led, projector in ((reference, plain), (ledger, split)):
        fleet(led)
        projector.start(T0)
    expected, got = [], []
    while (wake := plain.next_wakeup()) is not None:
        assert split.next_wakeup() == wake
        one = plain.step(wake)
        chunks = chunked(split, wake, 3)
        assert all(len(c) <= 3 for c in chunks)
        assert [row(e) for c in chunks for e in c] == [row(e) for e in one]
        expected += one
        got += [e for c in chunks for e in c]
    assert len(got) == len(expected) == 2 * len(CLIENTS)  # on and off for each
    assert [row(e) for e in ledger.issued("c7")] == [row(e) for e in reference.issued("c7")]
    assert ledger.issued("c7")[-1].effective_at == at(3)
    reference.close()


@pytest.mark.usefixtures("clock")
def test_a_change_during_the_chunks_comes_after_them_in_order(ledger: Ledger) -> None:
    """A change committed while a step's chunks are pending is read once they are recorded:
    each client's seqs stay in order, and the change's transition follows its boundary's."""
    projector, _ = first_chunk(ledger)
    assert projector.checkpoint(at(1)) is None  # unsettled: a checkpoint now would lose the rest
    ledger.add_override("late", TargetRef("client", "c5"), "off", Window(at(0), at(5)), ME)
    rest = [e for chunk in chunked(projector, at(1), 2) for e in chunk]
    assert [e.client_id for e in rest] == ["c3", "c4", "c5", "c6", "c7"]
    (change,) = projector.step(at(1) + timedelta(seconds=1))
    assert (change.client_id, change.desired_state, change.cause["event"]) == ("c5", "off", "OverrideSet")
    assert [(e.seq, e.desired_state) for e in ledger.issued("c5")] == [(1, "off"), (2, "on"), (3, "off")]


@contextmanager
def sqlite_locked(path: Path) -> Iterator[None]:
    blocker = sqlite3.connect(path)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        blocker.rollback()
        blocker.close()


@pytest.fixture(params=STORES)
def failing_ledger(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[Ledger, Callable[[], AbstractContextManager[None]]]]:
    """A real ledger, and a context in which its next write fails (a locked file; a dropped session)."""
    if request.param == "sqlite":
        path = tmp_path / "ledger.db"
        ledger = Ledger(f"sqlite:///{path}?timeout=0.2")
        yield ledger, lambda: sqlite_locked(path)
        ledger.close()
        return
    reset_postgres()
    tag = f"chunks-{uuid.uuid4().hex[:12]}"
    ledger = Ledger(own_url(PG_URL, tag))

    @contextmanager
    def dropped() -> Iterator[None]:
        terminate(PG_URL, tag)
        yield

    yield ledger, dropped
    ledger.close()
    reset_postgres()


@pytest.mark.usefixtures("clock")
def test_a_failed_chunk_is_retried_with_the_rest_losing_nothing(
    failing_ledger: tuple[Ledger, Callable[[], AbstractContextManager[None]]],
) -> None:
    """The second chunk's write fails: what the first recorded stays, nothing is pending, and the
    next step records the failed chunk and the rest, each seq once."""
    ledger, failing = failing_ledger
    fleet(ledger)
    projector = Projector(ledger)
    projector.start(T0)
    assert [e.client_id for e in projector.step(at(1), 2)] == ["c1", "c2"]
    with failing(), pytest.raises(DB_ERRORS):
        projector.step(at(1), 2)
    assert not projector.pending
    retried = projector.step(at(1) + timedelta(seconds=5))
    assert [e.client_id for e in retried] == ["c3", "c4", "c5", "c6", "c7"]
    assert {e.effective_at for e in retried} == {at(1)}  # still the boundary's transitions
    for client in CLIENTS:
        assert [(e.seq, e.desired_state) for e in ledger.issued(client)] == [(1, "off"), (2, "on")]
    assert Projector(ledger).start(at(1) + timedelta(seconds=6)) == []


@pytest.mark.usefixtures("clock")
def test_a_start_s_intents_share_their_window_and_instant(ledger: Ledger) -> None:
    """A group's members recorded by one start hold one window dict and one effective instant
    (held for every client until its next transition), not a copy each."""
    fleet(ledger)
    projector = Projector(ledger)
    projector.start(at(1.5), 3)
    while projector.pending:
        projector.step(at(1.5), 3)
    lobby = [projector.current(c) for c in CLIENTS[:-1]]  # c7 has a window of its own
    assert all(
        i is not None
        and i.fields.event_window == {"start": "2026-03-31T08:00:00Z", "end": "2026-03-31T09:00:00Z"}
        for i in lobby
    )
    assert len({id(i.fields.event_window) for i in lobby if i is not None}) == 1
    assert len({id(i.effective_at) for i in lobby if i is not None}) == 1


@pytest.mark.usefixtures("clock")
def test_a_chunk_s_logs_share_one_record_instant(ledger: Ledger) -> None:
    """The events a chunk records (one transaction) carry one timestamp, and the logs it opens
    hold that one object as their created and modified instants, not two of their own each."""
    fleet(ledger)
    projector = Projector(ledger)
    chunks = [projector.start(at(1.5), 3)]
    while projector.pending:
        chunks.append(projector.step(at(1.5), 3))
    assert [len(c) for c in chunks] == [3, 3, 1]
    for chunk in chunks:
        logs = [projector.view.logs[e.client_id] for e in chunk if e.client_id is not None]
        assert len({id(log.created_on) for log in logs} | {id(log.modified_on) for log in logs}) == 1
        assert len({e.timestamp for e in chunk}) == 1
        assert {log.modified_on for log in logs} == {e.timestamp for e in chunk}
    assert Projector(ledger).start(at(1.5)) == []  # what the chunks recorded is what a start holds


@pytest.mark.usefixtures("clock")
def test_a_step_s_chunks_evaluate_a_group_s_followers_once(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A start in chunks of 2 evaluates the lobby's timeline once for its six followers (c7 has
    a window of its own), not once a chunk; a later step evaluates it anew (each follower: a
    boundary's causes are each target's own)."""
    fleet(ledger)
    evaluated: list[str | None] = []
    real = evaluate

    def counted(timeline: Any, *args: Any) -> Any:
        evaluated.append(timeline.client_id)
        return real(timeline, *args)

    monkeypatch.setattr("projections.followers.evaluate", counted)
    projector = Projector(ledger)
    chunks = [projector.start(at(1.5), 2)]
    while projector.pending:
        chunks.append(projector.step(at(1.5), 2))
    assert [len(c) for c in chunks] == [2, 2, 2, 1]
    assert evaluated == ["c1"]  # the first follower's, shared by the other five
    assert {e.client_id: e.desired_state for c in chunks for e in c} == {c: "on" for c in CLIENTS}
    assert [e.desired_state for e in projector.step(at(2), 2)] == ["off", "off"]  # 09:00
    while projector.pending:
        projector.step(at(2), 2)
    assert evaluated == ["c1", *CLIENTS[:-1]]
