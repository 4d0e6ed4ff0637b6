"""Incident review on each store: why, as-of (bitemporal), fleet, changes, gaps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner
from freezegun import freeze_time

from cli.main import cli
from ledger import Ledger, Meta, TargetRef, Window
from ledger.errors import ClientNotFound
from projections import audit
from tests.conftest import ME

T0 = datetime(2026, 3, 31, tzinfo=UTC)


def at(h: float) -> datetime:
    return T0 + timedelta(hours=h)


def win(a: float, b: float) -> Window:
    return Window(at(a), at(b))


def test_why_names_the_mistaken_override_its_actor_and_note(ledger: Ledger) -> None:
    """The lobby TV was dark during the 10:00 assembly: a client override set by mistake."""
    with freeze_time(at(8)):
        ledger.add_client("lobby-1", "lobby", Meta("alice", "new screen"))
        ledger.add_event("assembly", TargetRef("group", "lobby"), win(10, 11), Meta("scheduler"))
    with freeze_time(at(9.5)):
        ledger.add_override(
            "oops", TargetRef("client", "lobby-1"), "off", win(9.5, 12), Meta("bob", "testing the panel")
        )
    answer = audit.why(ledger, "lobby-1", at(10.25))
    assert (answer["desired_state"], answer["reason"]) == ("off", "client_override")
    assert answer["decided_by"] == ["override oops"]
    (override,) = answer["overrides"]
    assert override["made_by"]["actor"] == "bob"
    assert override["made_by"]["note"] == "testing the panel"
    assert override["made_by"]["at"] == "2026-03-31T09:30:00Z"
    (event,) = answer["events"]
    assert (event["event_id"], event["made_by"]["actor"]) == ("assembly", "scheduler")
    assert answer["membership"]["made_by"]["note"] == "new screen"


def test_why_is_bitemporal(ledger: Ledger) -> None:
    """An event added at 10:05 for 10:00-11:00: as of 10:03 off, as of 10:06 on."""
    with freeze_time(at(9)):
        ledger.add_client("c1", None, ME)
    with freeze_time(at(10) + timedelta(minutes=5)):
        ledger.add_event("late", TargetRef("client", "c1"), win(10, 11), ME)
    t = at(10) + timedelta(minutes=2)
    before = audit.why(ledger, "c1", t, at(10) + timedelta(minutes=3))
    after = audit.why(ledger, "c1", t, at(10) + timedelta(minutes=6))
    assert (before["desired_state"], before["reason"], before["events"]) == ("off", "no_active_event", [])
    assert (after["desired_state"], after["reason"]) == ("on", "event_window_active")
    assert after["decided_by"] == ["event late"]
    with pytest.raises(ClientNotFound, match="was not known at 2026-03-31T08:00:00Z"):
        audit.why(ledger, "c1", t, at(8))


def test_fleet_changes_and_gaps(ledger: Ledger) -> None:
    """fleet lists each client's state; changes filter by actor/client; gaps find short offs."""
    with freeze_time(at(7)):
        ledger.add_client("a", "g", Meta("alice"))
        ledger.add_client("b", "g", Meta("alice"))
        ledger.add_client("c", None, Meta("carol"))
        ledger.add_event("e1", TargetRef("group", "g"), win(8, 9), Meta("bob"))
        ledger.add_event("e2", TargetRef("group", "g"), win(9.1, 10), Meta("bob"))
        ledger.add_event("e3", TargetRef("client", "c"), win(8, 12), Meta("carol"))
    rows = audit.fleet_at(ledger, at(8.5))
    assert [(r["client_id"], r["desired_state"]) for r in rows] == [("a", "on"), ("b", "on"), ("c", "on")]
    assert [r["client_id"] for r in audit.fleet_at(ledger, at(8.5), "g")] == ["a", "b"]
    by_bob = audit.changes(ledger, actor="bob")
    assert [(r["change"], r["event_id"]) for r in by_bob] == [
        ("EventScheduled", "e1"),
        ("EventScheduled", "e2"),
    ]
    assert [r["change"] for r in audit.changes(ledger, client_id="c")] == [
        "ClientRegistered",
        "EventScheduled",
    ]
    assert audit.changes(ledger, since=at(8)) == []
    found = audit.gaps(ledger, "g", max_gap=600)
    assert [(g["client_id"], g["start"], g["seconds"]) for g in found] == [
        ("a", "2026-03-31T09:00:00Z", 360),
        ("b", "2026-03-31T09:00:00Z", 360),
    ]
    assert audit.gaps(ledger, "g", max_gap=300) == []


def test_audit_commands_print_and_answer_json(sqlite_url: str) -> None:
    """The CLI over the same queries: text for people, --json for tools."""
    runner = CliRunner()
    base = ["--db", sqlite_url]
    runner.invoke(cli, [*base, "client", "add", "lobby-1", "--group", "lobby"])
    runner.invoke(
        cli,
        [
            *base,
            "event",
            "add",
            "e1",
            "--group",
            "lobby",
            "--start",
            "2026-03-31T10:00:00Z",
            "--end",
            "2026-03-31T11:00:00Z",
        ],
    )
    runner.invoke(
        cli,
        [
            *base,
            "override",
            "add",
            "oops",
            "--client",
            "lobby-1",
            "--state",
            "off",
            "--start",
            "2026-03-31T10:00:00Z",
            "--end",
            "2026-03-31T10:30:00Z",
            "--actor",
            "bob",
            "--note",
            "testing",
        ],
    )
    text = runner.invoke(cli, [*base, "audit", "why", "lobby-1", "--at", "2026-03-31T10:10:00Z"]).stdout
    assert "off (client_override)" in text
    assert "override oops" in text
    assert "by bob" in text
    assert '"testing"' in text
    fleet = runner.invoke(cli, [*base, "audit", "fleet", "--at", "2026-03-31T10:45:00Z", "--json"])
    assert fleet.exit_code == 0
    assert '"desired_state": "on"' in fleet.stdout
    assert "bob" in runner.invoke(cli, [*base, "audit", "changes", "--actor", "bob"]).stdout
    assert runner.invoke(cli, [*base, "audit", "gaps", "--json"]).stdout.strip() == "[]"
    missing = runner.invoke(cli, [*base, "audit", "why", "ghost", "--at", "2026-03-31T10:10:00Z"])
    assert missing.exit_code == 2
    assert len(missing.stderr.splitlines()) == 1
