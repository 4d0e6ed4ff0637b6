"""Snapshot sync: minimal changes, idempotent, prune, dry run, all-or-nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from ledger import Ledger, Meta, TargetRef, Window
from ledger.errors import ClientNotFound, EmptySnapshot, IdConflict, InvalidSnapshot
from ledger.sync import parse_snapshot
from tests.conftest import ME

NOW = datetime(2026, 3, 31, 12, tzinfo=UTC)
SYNC = Meta("sync:fleet.json")
WINDOW = Window.parse("2026-03-31T13:00:00Z", "2026-03-31T14:00:00Z")


def snapshot(**parts: Any) -> bytes:
    base: dict[str, Any] = {
        "clients": [{"client_id": "lobby-1", "group_id": "lobby"}, {"client_id": "desk-1"}],
        "events": [
            {
                "event_id": "e1",
                "group_id": "lobby",
                "start": "2026-03-31T13:00:00Z",
                "end": "2026-03-31T14:00:00Z",
            },
            {
                "event_id": "e2",
                "client_id": "desk-1",
                "start": "2026-03-31T15:00:00.000Z",
                "end": "2026-03-31T16:00:00Z",
            },
        ],
        "overrides": [
            {
                "override_id": "o1",
                "client_id": "lobby-1",
                "desired_state": "off",
                "start": "2026-03-31T13:30:00Z",
                "end": "2026-03-31T13:45:00Z",
                "note": "maintenance",
            },
        ],
    }
    base.update(parts)
    return json.dumps(base).encode()


def sync(ledger: Ledger, data: bytes, prune: bool = False, dry_run: bool = False) -> int:
    return ledger.sync(parse_snapshot(data), prune=prune, now=NOW, meta=SYNC, dry_run=dry_run).appended


def test_sync_twice_appends_nothing_the_second_time(ledger: Ledger) -> None:
    """The second identical sync is a no-op, with and without prune."""
    assert sync(ledger, snapshot()) > 0
    position = ledger.max_notification_id()
    assert sync(ledger, snapshot()) == 0
    assert sync(ledger, snapshot(), prune=True) == 0
    assert ledger.max_notification_id() == position


def test_sync_appends_the_minimal_changes(ledger: Ledger) -> None:
    """Only what differs is appended: a moved event is one EventRescheduled."""
    sync(ledger, snapshot())
    moved = json.loads(snapshot())
    moved["events"][0]["end"] = "2026-03-31T14:30:00Z"
    receipt = ledger.sync(parse_snapshot(json.dumps(moved)), prune=False, now=NOW, meta=SYNC)
    assert [type(e).__name__ for e in receipt.events] == ["EventRescheduled"]


def test_override_notes_and_sync_actor_are_recorded(ledger: Ledger) -> None:
    """Each item's note and the `sync:<file>` actor reach the ledger."""
    receipt = ledger.sync(parse_snapshot(snapshot()), prune=False, now=NOW, meta=SYNC)
    (override_set,) = [e for e in receipt.events if type(e).__name__ == "OverrideSet"]
    assert (override_set.actor, override_set.note) == ("sync:fleet.json", "maintenance")


def test_dry_run_reports_without_appending(ledger: Ledger) -> None:
    """--dry-run lists the change set and leaves the ledger untouched."""
    planned = ledger.sync(parse_snapshot(snapshot()), prune=False, now=NOW, meta=SYNC, dry_run=True)
    assert planned.appended > 0
    assert ledger.max_notification_id() == 0
    assert sync(ledger, snapshot()) == planned.appended


def test_prune_removes_absent_clients_and_cancels_only_future_items(ledger: Ledger) -> None:
    """Absent clients go; absent events/overrides not yet ended are cancelled; the past stays."""
    ledger.add_client("old-1", "lobby", ME)
    sync(
        ledger,
        snapshot(
            events=[
                *json.loads(snapshot())["events"],
                {
                    "event_id": "past",
                    "group_id": "lobby",
                    "start": "2026-03-31T08:00:00Z",
                    "end": "2026-03-31T09:00:00Z",
                },
                {
                    "event_id": "running",
                    "group_id": "lobby",
                    "start": "2026-03-31T11:00:00Z",
                    "end": "2026-03-31T12:30:00Z",
                },
            ]
        ),
    )
    assert sync(ledger, snapshot(events=[], overrides=[]), prune=True) > 0
    group = ledger.group("lobby")
    assert group is not None
    assert {k: e.cancelled for k, e in group.events.items()} == {"e1": True, "past": False, "running": True}
    assert ledger.client("desk-1").events["e2"].cancelled
    assert ledger.client("lobby-1").overrides["o1"].cleared
    assert not ledger.client("old-1").registered
    assert ledger.client("lobby-1").registered


def test_sync_reinstates_a_cancelled_event_that_comes_back(ledger: Ledger) -> None:
    """An id pruned earlier and present again is moved back, not refused."""
    sync(ledger, snapshot())
    sync(ledger, snapshot(events=[]), prune=True)
    assert ledger.group("lobby").events["e1"].cancelled  # type: ignore[union-attr]
    sync(ledger, snapshot())
    assert not ledger.group("lobby").events["e1"].cancelled  # type: ignore[union-attr]


def test_later_override_in_the_file_outranks_an_earlier_one(ledger: Ledger) -> None:
    """File order is the order of setting."""
    overrides = [
        {
            "override_id": "first",
            "client_id": "lobby-1",
            "desired_state": "off",
            "start": "2026-03-31T13:00:00Z",
            "end": "2026-03-31T14:00:00Z",
        },
        {
            "override_id": "second",
            "client_id": "lobby-1",
            "desired_state": "on",
            "start": "2026-03-31T13:00:00Z",
            "end": "2026-03-31T14:00:00Z",
        },
    ]
    sync(ledger, snapshot(overrides=overrides))
    client = ledger.client("lobby-1")
    assert client.overrides["second"].rank > client.overrides["first"].rank


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"{not json", "invalid snapshot"),
        (b'{"clients": [{"client_id": "a/b"}]}', "invalid client_id 'a/b'"),
        (b'{"clients": [{"client_id": "a", "grup_id": "x"}]}', "unknown field `grup_id`"),
        (b'{"clients": [{"client_id": "a"}, {"client_id": "a"}]}', "appears twice"),
        (
            b'{"events": [{"event_id": "e", "start": "2026-03-31T13:00:00Z", '
            b'"end": "2026-03-31T14:00:00Z"}]}',
            "exactly one of client_id and group_id",
        ),
        (
            b'{"events": [{"event_id": "e", "group_id": "g", "start": "2026-03-31T13:00:00", '
            b'"end": "2026-03-31T14:00:00Z"}]}',
            "no UTC offset",
        ),
        (
            b'{"overrides": [{"override_id": "o", "group_id": "g", "desired_state": "dim", '
            b'"start": "2026-03-31T13:00:00Z", "end": "2026-03-31T14:00:00Z"}]}',
            "Invalid enum value 'dim'",
        ),
    ],
)
def test_malformed_snapshots_are_rejected_in_one_line(data: bytes, message: str) -> None:
    """Every problem of the file is one clear line."""
    with pytest.raises(InvalidSnapshot, match=message) as info:
        parse_snapshot(data)
    assert "\n" not in str(info.value)


def test_a_sync_that_fails_half_way_appends_nothing(ledger: Ledger) -> None:
    """An unknown client or a conflicting id late in the file rejects the whole file."""
    ledger.add_event("taken", TargetRef("group", "other"), WINDOW, ME)
    unknown = snapshot(
        events=[
            *json.loads(snapshot())["events"],
            {
                "event_id": "x",
                "client_id": "ghost",
                "start": "2026-03-31T13:00:00Z",
                "end": "2026-03-31T14:00:00Z",
            },
        ]
    )
    position = ledger.max_notification_id()
    with pytest.raises(ClientNotFound, match="ghost"):
        sync(ledger, unknown)
    conflicting = snapshot(
        events=[
            {
                "event_id": "taken",
                "group_id": "lobby",
                "start": "2026-03-31T13:00:00Z",
                "end": "2026-03-31T14:00:00Z",
            }
        ]
    )
    with pytest.raises(IdConflict, match="'taken' already exists: group other"):
        sync(ledger, conflicting)
    assert ledger.max_notification_id() == position


@pytest.mark.parametrize(
    "data", [b"{}", b'{"clients": []}', snapshot(clients=[])], ids=["{}", "no clients", "events only"]
)
def test_prune_with_no_clients_is_refused_unless_allowed(ledger: Ledger, data: bytes) -> None:
    """An empty or truncated fleet file must not deregister the fleet: nothing applied, unless allowed."""
    sync(ledger, snapshot())
    position = ledger.max_notification_id()
    with pytest.raises(EmptySnapshot, match="would deregister all 2 registered clients; nothing applied"):
        sync(ledger, data, prune=True)
    assert ledger.max_notification_id() == position
    assert sync(ledger, data, prune=False) >= 0  # without --prune nothing is removed: no guard needed
    allowed = ledger.sync(parse_snapshot(data), prune=True, now=NOW, meta=SYNC, allow_empty=True)
    assert allowed.appended > 0
    assert not ledger.client("lobby-1").registered


def test_a_notes_control_characters_are_refused_naming_its_item(ledger: Ledger) -> None:
    data = snapshot(events=[{**json.loads(snapshot())["events"][0], "note": "bell\x07"}])
    with pytest.raises(InvalidSnapshot, match="event 'e1': invalid note: control characters"):
        sync(ledger, data)
    assert ledger.max_notification_id() == 0
