"""The intent log aggregate keeps its current intent as a typed record, also across snapshot versions."""

from __future__ import annotations

import copy
import pickle
import uuid
from datetime import UTC, datetime

import pytest
from eventsourcing.domain import Snapshot
from eventsourcing.utils import get_topic

from ledger.intent import CurrentIntent, IntentFields
from ledger.intentlog import NOTHING_PENDING, IntentLog
from ledger.names import INTENT_NAMESPACE, intent_id_for

T0 = datetime(2026, 3, 31, 7, tzinfo=UTC)
FIELDS = {
    "client_id": "c1",
    "group_id": "lobby",
    "desired_state": "on",
    "reason": "event_window_active",
    "grace_seconds": 30,
    "event_window": {"start": "2026-03-31T08:00:00Z", "end": "2026-03-31T09:00:00Z"},
}


def test_a_version_1_snapshot_restores_a_typed_current_intent() -> None:
    """Snapshots taken before the record (`last` a plain dict, no class_version) are upcast."""
    last = {"seq": 3, "intent_id": intent_id_for("c1", 3), "effective_at": T0, "fields": dict(FIELDS)}
    state = {
        "_created_on": T0,
        "_modified_on": T0,
        "client_id": "c1",
        "group_id": None,
        "seq": 3,
        "last": last,
    }
    log = IntentLog.id_for("c1")
    snapshot = Snapshot(
        originator_id=log, originator_version=4, timestamp=T0, topic=get_topic(IntentLog), state=state
    )
    restored = snapshot.mutate(None)
    assert isinstance(restored, IntentLog)
    assert restored.last == CurrentIntent(3, T0, IntentFields(**FIELDS))  # type: ignore[arg-type]
    assert restored.last.intent_id == intent_id_for("c1", 3)
    assert restored.last.removed is False


def test_the_current_intent_s_derived_id_is_the_recorded_one() -> None:
    """`CurrentIntent.intent_id` is not held but derived: it equals the id each issue records,
    for a client's log and a group's, at every seq."""
    client, group = IntentLog.open("c1", None), IntentLog.open(None, "lobby")
    fields = {**FIELDS, "group_id": "lobby"}
    for log, own in ((client, fields), (group, {**fields, "client_id": None})):
        for seq, state in enumerate(("on", "off", "on"), start=1):
            log.issue(IntentFields(**{**own, "desired_state": state}), T0, {"kind": "start"})  # type: ignore[arg-type]
            recorded = log.collect_events()[-1]
            assert log.last is not None
            assert log.last.intent_id == recorded.intent_id == intent_id_for(log.name, seq)  # type: ignore[attr-defined]
            assert recorded.current() == log.last  # type: ignore[attr-defined]
    assert intent_id_for(group.name, 1) != intent_id_for(client.name, 1)


def test_open_and_issue_build_what_the_library_s_mutate_builds() -> None:
    """`open` and `issue` skip the library's generic `mutate`: the log they leave is the one its
    `mutate` builds from the same events (every attribute, in the same order)."""
    log = IntentLog.open("c1", "lobby", T0)
    opened = log.pending_events[0]
    library = opened.mutate(None)
    assert isinstance(library, IntentLog)
    assert list(vars(library).items())[:4] == list(vars(log).items())[:4]  # id, version, instants
    assert [k for k in vars(library)] == [k for k in vars(log)]
    assert {k: v for k, v in vars(library).items() if k != "_pending_events"} == {
        k: v for k, v in vars(log).items() if k != "_pending_events"
    }
    stamp = datetime(2026, 3, 31, 7, 0, 1, 250_000, tzinfo=UTC)
    for state in ("on", "off"):
        log.issue(IntentFields(**{**FIELDS, "desired_state": state}), T0, {"kind": "start"}, stamp)
        issued = log.pending_events[-1]
        issued.mutate(library)
        assert {k: v for k, v in vars(library).items() if k != "_pending_events"} == {
            k: v for k, v in vars(log).items() if k != "_pending_events"
        }
    assert (log.version, log.modified_on, log.created_on) == (3, stamp, T0)
    assert [e.originator_version for e in log.collect_events()] == [1, 2, 3]


def test_intent_ids_derived_again_are_the_uuid5_of_their_log_and_seq() -> None:
    """Ids derived for many logs, each twice: every one is uuid5 of "{log}/{seq}"."""
    keys = [(f"c{i}", 1 + i % 3) for i in range(5_000)]
    for _ in range(2):
        for name, seq in keys:
            assert intent_id_for(name, seq) == str(uuid.uuid5(INTENT_NAMESPACE, f"{name}/{seq}"))


def test_logs_with_nothing_pending_share_one_list_that_refuses_appends() -> None:
    """After its events are collected a log holds the shared empty list; its next event goes to
    a list of its own, and collecting again yields only that event."""
    one, two = IntentLog.open("c1", None), IntentLog.open("c2", None)
    assert [type(e).__name__ for e in one.collect_events()] == ["IntentLogOpened"]
    two.collect_events()
    assert one._pending_events is two._pending_events is NOTHING_PENDING
    assert one.collect_events() == []
    assert NOTHING_PENDING == []
    with pytest.raises(TypeError):
        NOTHING_PENDING.append(object())
    one.issue(IntentFields(**FIELDS), T0, {"kind": "start"})  # type: ignore[arg-type]
    assert two._pending_events is NOTHING_PENDING
    (issued,) = one.collect_events()
    assert issued.seq == 1  # type: ignore[attr-defined]
    assert one._pending_events is NOTHING_PENDING


def test_the_shared_empty_pending_list_refuses_every_addition_and_survives_copies() -> None:
    """Extending, inserting or assigning into the shared list would give an event to every log
    holding it: each refuses. A log copied or pickled after collecting still issues."""
    shared, event = NOTHING_PENDING, object()
    with pytest.raises(TypeError):
        shared.extend([event])
    with pytest.raises(TypeError):
        shared.insert(0, event)
    with pytest.raises(TypeError):
        shared += [event]
    with pytest.raises(TypeError):
        shared[0:0] = [event]
    assert NOTHING_PENDING == []
    log = IntentLog.open("c1", None)
    log.collect_events()
    copies: list[IntentLog] = [copy.copy(log), copy.deepcopy(log), pickle.loads(pickle.dumps(log))]
    for copied in copies:
        assert copied._pending_events is NOTHING_PENDING
        copied.issue(IntentFields(**FIELDS), T0, {"kind": "start"})  # type: ignore[arg-type]
        assert [e.seq for e in copied.collect_events()] == [1]  # type: ignore[attr-defined]
    assert log.collect_events() == []
