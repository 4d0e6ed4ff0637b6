"""Intent log snapshots are taken off the boundary's path: recording notes the logs that reached
a snapshot version; the daemon takes them after the PUBACKs (`run_once`) or while idle (`run`),
on each store and a real Mosquitto."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any, NoReturn

import pytest
from sqlalchemy.exc import OperationalError

from ledger import Ledger
from ledger.intentlog import IntentLog
from projections.projector import Projector
from publisher.follower import Follower
from publisher.metrics import Metrics
from publisher.mqtt import Delivery, MqttSession
from publisher.settings import Backoff, RunSettings
from tests.projections.test_projector import T0, at
from tests.publisher.broker import Mosquitto, wait_for
from tests.publisher.helpers import make_log
from tests.publisher.test_first_start_chunks import daemon_for, with_fleet


@pytest.fixture(autouse=True)
def every_second_record(monkeypatch: pytest.MonkeyPatch) -> None:
    """Snapshots due at every even version: a first start's issue (version 2) is one."""
    monkeypatch.setattr(Ledger, "snapshotting_intervals", {IntentLog: 2})


def snapshot_versions(ledger: Ledger, client: str) -> list[int]:
    assert ledger.snapshots is not None
    return [s.originator_version for s in ledger.snapshots.get(IntentLog.id_for(client))]


def test_recording_notes_due_snapshots_without_taking_them(ledger: Ledger) -> None:
    """A step that brings every log to a snapshot version writes no snapshot; taking them later
    writes one a log, at that version, and a limit takes the oldest first."""
    with_fleet(ledger)
    projector = Projector(ledger)
    projector.start(T0)
    due = list(ledger.snapshots_due)
    assert len(due) == len(projector.names())
    assert {v for _, v in due} == {2}
    assert all(snapshot_versions(ledger, name) == [] for name in projector.names())
    assert ledger.take_due_snapshots(limit=1) == 1
    assert list(ledger.snapshots_due) == due[1:]
    assert ledger.take_due_snapshots() == len(due) - 1
    assert not ledger.snapshots_due
    assert all(snapshot_versions(ledger, name) == [2] for name in projector.names())


def test_run_once_takes_due_snapshots_after_its_pubacks(ledger: Ledger, mosquitto: Mosquitto) -> None:
    """The first start's publishes all go out before any snapshot is written; at exit none is due."""
    with_fleet(ledger)
    written_at_publish: list[int] = []

    class Counting(MqttSession):
        def publish(self, topic: str, payload: bytes, **kwargs: Any) -> Delivery:
            written_at_publish.append(len(snapshot_versions(ledger, "c1")))
            return super().publish(topic, payload, **kwargs)

    daemon, _ = daemon_for(ledger, mosquitto, None, Counting)
    assert daemon.run_once(10) == []
    assert written_at_publish
    assert set(written_at_publish) == {0}
    assert not ledger.snapshots_due
    assert snapshot_versions(ledger, "c1") == [2]


def test_a_running_daemon_takes_due_snapshots_while_idle(ledger: Ledger, mosquitto: Mosquitto) -> None:
    with_fleet(ledger)
    daemon, _ = daemon_for(ledger, mosquitto, None)

    def ticked() -> bool:
        daemon.tick()
        return not ledger.snapshots_due

    wait_for(ticked, 10, "the due snapshots taken")
    assert snapshot_versions(ledger, "c1") == [2]
    daemon.shutdown()


def _follower_after_first_start(ledger: Ledger) -> Follower:
    log, _ = make_log()
    follower = Follower(ledger, Projector(ledger), RunSettings(), Backoff(5.0, 30.0), T0, Metrics(), log)
    assert follower.follow(at(1.5))  # the first start: every log reaches version 2, a snapshot due each
    assert ledger.snapshots_due
    return follower


def _failing(attempts: dict[str, int], what: str) -> Callable[..., NoReturn]:
    def fail(*_args: Any, **_kwargs: Any) -> NoReturn:
        attempts[what] += 1
        raise OperationalError("SELECT 1", {}, Exception("database is locked"))

    return fail


def test_due_snapshots_wait_while_the_ledger_is_away(
    sqlite_ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database goes away: the follower asks it again only after its backoff, and the idle
    rounds in between attempt no snapshot either."""
    follower = _follower_after_first_start(with_fleet(sqlite_ledger))
    attempts = {"ledger": 0, "snapshot": 0}
    monkeypatch.setattr(sqlite_ledger, "max_notification_id", _failing(attempts, "ledger"))
    monkeypatch.setattr(sqlite_ledger, "take_snapshot", _failing(attempts, "snapshot"))
    for i in range(100):  # a second of rounds at a 10 ms poll
        t = at(1.5) + timedelta(seconds=1 + i * 0.01)
        assert follower.follow(t) == []
        follower.idle(t)
    assert attempts == {"ledger": 1, "snapshot": 0}


def test_a_failed_snapshot_is_retried_after_its_own_backoff(
    sqlite_ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A snapshot fails (a write lock held elsewhere) while reads work: one attempt, then none
    for the rounds that follow; the due snapshots stay due."""
    follower = _follower_after_first_start(with_fleet(sqlite_ledger))
    due = len(sqlite_ledger.snapshots_due)
    attempts = {"snapshot": 0}
    monkeypatch.setattr(sqlite_ledger, "take_snapshot", _failing(attempts, "snapshot"))
    for i in range(100):
        t = at(1.5) + timedelta(seconds=1 + i * 0.01)
        follower.follow(t)
        follower.idle(t)
    assert attempts == {"snapshot": 1}
    assert len(sqlite_ledger.snapshots_due) == due
