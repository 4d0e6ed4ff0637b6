"""The projector's checkpoint: a restart from it equals a full start, and an overtaken one is refused."""

from __future__ import annotations

import sys
import tracemalloc
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import msgspec
import pytest
from freezegun import freeze_time
from sqlalchemy import delete, func, select, update

from ledger import Ledger, TargetRef
from ledger.domain import intent_id_for
from ledger.intent import IntentFields
from ledger.intentlog import IntentLog
from projections import checkpoint as checkpoint_module
from projections.checkpoint import CheckpointStore, SavedLog, checkpoints, restore_log, saved_log
from projections.projector import Projector
from projections.shard import Shard
from tests.conftest import ME
from tests.projections.test_projector import LOBBY, T0, at, win


@pytest.fixture
def fleet(ledger: Ledger) -> Iterator[Ledger]:
    """Two lobby screens on the group's 08-10 window, one with its own 11-12 event, one café screen."""
    with freeze_time(T0):
        for c in ("lobby-1", "lobby-2"):
            ledger.add_client(c, "lobby", ME)
        ledger.add_client("cafe-1", "cafe", ME)
        ledger.add_event("a", LOBBY, win(1, 3), ME)
        ledger.add_event("own", TargetRef("client", "lobby-2"), win(4, 5), ME)
        yield ledger


def saved_after_start(ledger: Ledger, now: datetime, **kwargs: object) -> CheckpointStore:
    projector = Projector(ledger, **kwargs)  # type: ignore[arg-type]
    projector.start(now)
    checkpoint = projector.checkpoint(now)
    assert checkpoint is not None
    assert not projector.dirty
    store = CheckpointStore(ledger)
    store.save(checkpoint)
    return store


def transitions(projector: Projector, until: datetime) -> list[tuple[str | None, str, datetime, str]]:
    out = []
    while (wake := projector.next_wakeup()) is not None and wake <= until:
        with freeze_time(wake):
            out += [(e.client_id, e.desired_state, e.effective_at, e.intent_id) for e in projector.step(wake)]
    return sorted(out, key=lambda t: (t[2], t[0] or ""))


def test_a_resumed_projector_publishes_the_same_intents_and_records_the_same_future(fleet: Ledger) -> None:
    """From the checkpoint: the same logs and ids without folding the schedule, then the same boundaries."""
    store = saved_after_start(fleet, T0)
    full = Projector(fleet)
    full.start(T0)  # records nothing: the first projector did
    resumed = Projector(fleet)
    assert resumed.resume(store.load(resumed.key))  # type: ignore[arg-type]
    assert resumed.partial
    assert resumed.view.clients == {}
    assert sorted(resumed.names()) == sorted(full.names())
    assert {n: log.last for n, log in resumed.view.logs.items()} == {
        n: log.last for n, log in full.view.logs.items()
    }
    assert resumed.next_wakeup() == full.next_wakeup() == at(1)
    assert resumed.step(at(0.5)) == []
    assert resumed.partial
    assert transitions(resumed, at(12)) == [
        ("lobby-1", "on", at(1), intent_id_for("lobby-1", 2)),
        ("lobby-2", "on", at(1), intent_id_for("lobby-2", 2)),
        ("lobby-1", "off", at(3), intent_id_for("lobby-1", 3)),
        ("lobby-2", "off", at(3), intent_id_for("lobby-2", 3)),
        ("lobby-2", "on", at(4), intent_id_for("lobby-2", 4)),
        ("lobby-2", "off", at(5), intent_id_for("lobby-2", 5)),
    ]
    assert not resumed.partial  # the first boundary needed the schedule


def test_a_change_after_the_checkpoint_means_a_full_start(fleet: Ledger) -> None:
    """A schedule change appended after the checkpoint's position: resume refuses, nothing adopted."""
    store = saved_after_start(fleet, T0)
    with freeze_time(T0):
        fleet.cancel_event("a", ME)
    projector = Projector(fleet)
    assert not projector.resume(store.load(projector.key))  # type: ignore[arg-type]
    assert projector.view.logs == {}
    assert not projector.partial
    issued = projector.start(T0)
    assert issued == []  # still off at 07:00; the cancellation matters at 08:00
    assert transitions(projector, at(12)) == [
        ("lobby-2", "on", at(4), intent_id_for("lobby-2", 2)),
        ("lobby-2", "off", at(5), intent_id_for("lobby-2", 3)),
    ]


def test_an_intent_recorded_after_the_checkpoint_by_another_instance_is_not_lost(fleet: Ledger) -> None:
    """Another projector recorded past the checkpoint: resume refuses instead of reusing a seq."""
    store = saved_after_start(fleet, T0)
    other = Projector(fleet)
    other.start(T0)
    with freeze_time(at(1)):
        assert len(other.step(at(1))) == 2
    projector = Projector(fleet)
    assert not projector.resume(store.load(projector.key))  # type: ignore[arg-type]
    projector.start(at(1.5))
    assert projector.view.logs["lobby-1"].seq == 2


def test_a_boundary_passed_while_stopped_is_recorded_at_its_instant(fleet: Ledger) -> None:
    """Resumed at 08:30: the due targets get their 08:00 `on`, the others stay as saved."""
    store = saved_after_start(fleet, T0)
    projector = Projector(fleet)
    assert projector.resume(store.load(projector.key))  # type: ignore[arg-type]
    with freeze_time(at(1.5)):
        issued = projector.step(at(1.5))
    assert sorted((e.client_id, e.desired_state, e.effective_at, e.cause["kind"]) for e in issued) == [
        ("lobby-1", "on", at(1), "boundary"),
        ("lobby-2", "on", at(1), "boundary"),
    ]
    assert projector.view.logs["cafe-1"].seq == 1


def test_checkpoints_are_kept_per_shard_and_topic_kind(fleet: Ledger) -> None:
    """Shard 0/2 never resumes from shard 1/2's checkpoint, nor group topics from client topics."""
    saved_after_start(fleet, T0, shard=Shard(1, 2))
    store = saved_after_start(fleet, T0, group_topics=True)
    assert store.load(Projector(fleet, shard=Shard(0, 2)).key) is None
    checkpoint = store.load(Projector(fleet, group_topics=True).key)
    assert checkpoint is not None
    assert {log.group_id for log in checkpoint.logs if log.client_id is None} == {"lobby", "cafe"}
    assert not Projector(fleet).resume(checkpoint)


def test_an_unreadable_checkpoint_is_ignored(fleet: Ledger) -> None:
    """A damaged row (or an older format) is a cache miss, never an error."""
    store = saved_after_start(fleet, T0)
    with store.engine.begin() as conn:
        conn.execute(update(checkpoints).values(body=b"\x00garbage"))
    assert store.load(Projector(fleet).key) is None
    with store.engine.begin() as conn:
        conn.execute(update(checkpoints).values(format=0))
    assert store.load(Projector(fleet).key) is None


def test_a_log_that_does_not_decode_means_a_full_start(fleet: Ledger) -> None:
    """Logs are decoded one at a time at the resume: a damaged one refuses the checkpoint there."""
    store = saved_after_start(fleet, T0)
    with store.engine.begin() as conn:
        conn.execute(update(checkpoints).values(body=msgspec.msgpack.encode([["not", "a", "log"]])))
    saved = store.load(Projector(fleet).key)
    assert saved is not None
    assert len(saved.logs) == 1
    projector = Projector(fleet)
    assert not projector.resume(saved)
    assert projector.view.logs == {}
    assert not projector.partial


def test_no_checkpoint_while_a_failed_recording_waits_for_its_retry(fleet: Ledger) -> None:
    """A projector with evaluations still to retry does not checkpoint (it would skip them)."""
    projector = Projector(fleet)
    projector.start(T0)
    projector._retry["lobby-1"] = lambda _t, _i: (T0, {"kind": "start"})  # as a failed save leaves it
    assert projector.checkpoint(T0) is None


def test_a_checkpoint_is_stored_in_parts_and_a_missing_part_is_a_miss(
    fleet: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Parts of PART logs each come back as one checkpoint; without one of them, none at all."""
    monkeypatch.setattr(checkpoint_module, "PART", 2)
    store = saved_after_start(fleet, T0)
    projector = Projector(fleet)
    loaded = store.load(projector.key)
    assert loaded is not None
    assert sorted(log.client_id or "" for log in loaded.logs) == ["cafe-1", "lobby-1", "lobby-2"]
    with store.engine.begin() as conn:
        assert conn.execute(select(func.count()).select_from(checkpoints)).scalar() == 2
        conn.execute(delete(checkpoints).where(checkpoints.c.part == 1))
    assert store.load(projector.key) is None


def test_a_saved_part_is_not_kept_once_written(fleet: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each part's encoded body is passed as a parameter: the first is not kept after the save
    (built into the statement, it stayed in SQLAlchemy's compiled cache with it)."""
    monkeypatch.setattr(checkpoint_module, "PART", 2)
    bodies: list[bytes] = []
    original = checkpoint_module._encoder

    class Keeping:
        def encode(self, value: Any) -> bytes:
            bodies.append(original.encode(value))
            return bodies[-1]

    monkeypatch.setattr(checkpoint_module, "_encoder", Keeping())
    saved_after_start(fleet, T0)
    assert len(bodies) == 2
    held = [sys.getrefcount(body) for body in bodies]
    assert held[0] == held[1]  # the first part held no longer than the next (not by a cache)


def _allocated_per_item(make: Callable[[], list[Any]]) -> float:
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        made = make()
        return (tracemalloc.get_traced_memory()[0] - base) / len(made)
    finally:
        tracemalloc.stop()


def test_a_restored_log_equals_the_saved_one_and_shares_its_class_key_table() -> None:
    def made(i: int) -> IntentLog:
        log = IntentLog.open(f"c-{i}", None)
        log.issue(
            IntentFields(f"c-{i}", "lobby", "on", "event_window_active", 0, None), T0, {"kind": "start"}
        )
        log.collect_events()
        return log

    def own_dict(s: SavedLog) -> IntentLog:  # what an assigned `__dict__` costs
        log = object.__new__(IntentLog)
        state = {"client_id": s.client_id, "group_id": s.group_id, "seq": s.seq, "last": restore_log(s).last}
        log.__dict__ = {
            "_id": s.id,
            "_version": s.version,
            "_created_on": s.created_on,
            "_modified_on": s.modified_on,
            "_pending_events": [],
            **state,
        }
        return log

    originals = [made(i) for i in range(200)]
    saved = [saved_log(log, None) for log in originals]
    restored: list[IntentLog] = []

    def restore_all() -> list[IntentLog]:
        restored.extend(map(restore_log, saved))
        return restored

    per_log = _allocated_per_item(restore_all)
    per_own = _allocated_per_item(lambda: [own_dict(s) for s in saved])
    for log, back in zip(originals, restored, strict=True):
        assert type(back) is IntentLog
        assert back.pending_events == []
        assert (back.id, back.version, back.created_on, back.modified_on) == (
            log.id,
            log.version,
            log.created_on,
            log.modified_on,
        )
        assert (back.client_id, back.group_id, back.seq, back.last) == (
            log.client_id,
            log.group_id,
            log.seq,
            log.last,
        )
    # Held for every log of a restart: the class's shared keys, not a dict of its own.
    assert per_log < per_own - 100
