"""A group's followers share one evaluation: what the projector records with the shared
evaluations is exactly what it records evaluating every target's own timeline."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from freezegun import freeze_time

import projections.projector as projector_module
from ledger import Ledger
from ledger.events import IntentIssued
from projections.fleet import FleetView
from projections.projector import Projector
from tests.conftest import ME
from tests.rich_fleet import T0, fill


@pytest.fixture
def plain_ledger(tmp_path: Path) -> Iterator[Ledger]:
    ledger = Ledger(f"sqlite:///{tmp_path / 'plain.db'}")
    yield ledger
    ledger.close()


def recorded(projector: Projector) -> list[tuple[Any, ...]]:
    """Start at T0 + 7 h, then step through every boundary of the next two days (chunks of 3)."""
    out: list[tuple[Any, ...]] = []
    now = T0 + timedelta(hours=7)
    out += [row(e) for e in projector.start(now, 3)]
    while True:
        while projector.pending:
            out += [row(e) for e in projector.step(now, 3)]
        wake = projector.next_wakeup()
        if wake is None or wake > T0 + timedelta(days=2):
            return out
        now = wake
        out += [row(e) for e in projector.step(now, 3)]


def row(e: IntentIssued) -> tuple[Any, ...]:
    # Every field but the record instant (a clock reading of each run).
    return (type(e).__name__, *[(k, v) for k, v in vars(e).items() if k != "timestamp"])


def test_shared_evaluations_record_what_each_target_s_own_would(
    ledger: Ledger, plain_ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On the rich fleet (members, a removed client, a moved one, own events and overrides, series,
    a policy change): the start and every boundary step record the same events, ids, seqs, causes."""
    for each in (ledger, plain_ledger):
        with freeze_time(T0):
            fill(each)
            for i in range(4):  # followers of g and h beside c0 (removed) and c3 (moved to h)
                each.add_client(f"f{i}", "g" if i % 2 else "h", ME)
            each.remove_client("f3", ME)
    shared = recorded(Projector(ledger))
    with monkeypatch.context() as patched:
        patched.setattr(projector_module, "follower_evaluation", lambda *_args: None)
        own = recorded(Projector(plain_ledger))
    assert len(shared) > 20
    assert shared == own


def test_a_follower_is_a_client_whose_timeline_is_its_group_s(ledger: Ledger) -> None:
    """`FleetView.follower` names exactly the clients whose timeline is their group's."""
    with freeze_time(T0):
        fill(ledger)
    view = FleetView()
    for position, event in ledger.read():
        view.apply(position, event)
    followers = {c for c in view.clients if view.follower(c) is not None}
    # c1 (an event), c2 (an override), c4 (a series) have their own; c5 and loner no group.
    assert followers == {"c0", "c3"}
    for c in followers:
        client = view.clients[c]
        assert client.group_id is not None
        shared = view.group_timeline(client.group_id)
        assert view.timeline(c).blocks is shared.blocks
    assert view.follower("groups/g") is None
