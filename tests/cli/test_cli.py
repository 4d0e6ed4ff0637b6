"""The command line through click's CliRunner, on real ledger databases."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from cli.main import cli
from ledger import Ledger

START, END = "2026-03-31T08:00:00Z", "2026-03-31T09:00:00Z"


def run(url: str, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--db", url, *args])


def notifications(url: str) -> list[tuple[int, str, bytes]]:
    ledger = Ledger(url)
    try:
        return [(n.id, n.topic, n.state) for n in ledger.recorder.select_notifications(None, 10**6)]
    finally:
        ledger.close()


@pytest.fixture
def fleet(db_url: str) -> str:
    """A ledger with a client, a group event, a cancelled event and an override."""
    for args in (
        ["client", "add", "lobby-1", "--group", "lobby"],
        ["event", "add", "e1", "--group", "lobby", "--start", START, "--end", END],
        ["event", "add", "gone", "--group", "lobby", "--start", START, "--end", END],
        ["event", "cancel", "gone"],
        ["override", "add", "o1", "--client", "lobby-1", "--state", "off", "--start", START, "--end", END],
    ):
        assert run(db_url, *args).exit_code == 0, args
    return db_url


BAD_INPUT = [
    ["client", "add", "a/b"],
    ["client", "add", "a+b"],
    ["client", "add", "a#b"],
    ["client", "add", "a b"],
    ["client", "add", "écran"],
    ["client", "add", "x" * 65],
    ["client", "add", ""],
    ["event", "add", "n1", "--group", "lobby", "--start", "2026-03-31T08:00:00", "--end", END],
    ["event", "add", "n1", "--group", "lobby", "--start", "2026-03-31T08:00:00.250Z", "--end", END],
    ["event", "add", "n1", "--group", "lobby", "--start", END, "--end", START],
    ["event", "add", "n1", "--group", "lobby", "--start", START, "--end", START],
    ["event", "add", "n1", "--group", "lobby", "--start", START, "--end", "2026-05-02T08:00:00Z"],
    ["event", "add", "n1", "--client", "lobby-l", "--start", START, "--end", END],
    ["event", "add", "n1", "--client", "lobby-1", "--group", "lobby", "--start", START, "--end", END],
    ["event", "add", "e1", "--client", "lobby-1", "--start", START, "--end", END],
    ["event", "add", "gone", "--group", "lobby", "--start", START, "--end", END],
    ["event", "move", "nope", "--start", START, "--end", END],
    ["override", "add", "o1", "--client", "lobby-1", "--state", "on", "--start", START, "--end", END],
    ["override", "add", "o2", "--client", "lobby-1", "--state", "dim", "--start", START, "--end", END],
    ["client", "assign", "lobby-1"],
    ["client", "assign", "ghost", "--group", "lobby"],
    ["client", "add", "lobby-1", "--group", "other"],
    ["policy", "set", "--pre-roll", "-5"],
    ["policy", "set"],
    ["state", "ghost"],
    ["replay", "ghost"],
    ["event", "frobnicate"],
    ["sync", "/nonexistent/fleet.json"],
]


@pytest.mark.parametrize("args", BAD_INPUT, ids=lambda a: " ".join(a)[:60])
def test_bad_input_exits_2_with_one_line_and_changes_nothing(fleet: str, args: list[str]) -> None:
    """Every bad input of DESIGN section 2: exit 2, one `Error:` line, ledger unchanged."""
    before = notifications(fleet)
    result = run(fleet, *args)
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: "), result.stderr
    assert "Traceback" not in result.stderr
    assert notifications(fleet) == before


@pytest.mark.parametrize(
    "content",
    [
        b"{broken",
        b'{"clients": [{"client_id": "a b"}]}',
        b'{"events": [{"event_id": "x"}]}',
        b'{"clients": [], "events": [{"event_id": "x", "client_id": "ghost", '
        b'"start": "2026-03-31T08:00:00Z", "end": "2026-03-31T09:00:00Z"}]}',
    ],
)
def test_malformed_sync_file_exits_2_and_changes_nothing(fleet: str, tmp_path: Path, content: bytes) -> None:
    """A bad snapshot file is one line, exit 2, and nothing appended."""
    path = tmp_path / "fleet.json"
    path.write_bytes(content)
    before = notifications(fleet)
    result = run(fleet, "sync", str(path))
    assert result.exit_code == 2
    assert len(result.stderr.splitlines()) == 1
    assert notifications(fleet) == before


def test_runtime_failure_exits_1_with_one_line(tmp_path: Path) -> None:
    """An unusable database is a runtime failure (exit 1), still one line."""
    result = run(f"sqlite:///{tmp_path}/missing-dir/x.db", "client", "list")
    assert result.exit_code == 1
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith("Error: ")


def test_fleet_commands_report_and_list(sqlite_url: str) -> None:
    """Changes say what they appended; repeats say there was nothing to append."""
    first = run(sqlite_url, "client", "add", "lobby-1", "--group", "lobby", "--note", "new")
    assert first.exit_code == 0
    assert "appended" in first.stdout
    again = run(sqlite_url, "client", "add", "lobby-1", "--group", "lobby")
    assert "nothing to append" in again.stdout
    run(sqlite_url, "event", "add", "e1", "--group", "lobby", "--start", START, "--end", END)
    run(
        sqlite_url,
        "override",
        "add",
        "o1",
        "--group",
        "lobby",
        "--state",
        "off",
        "--start",
        START,
        "--end",
        END,
        "--actor",
        "alice",
    )
    assert json.loads(run(sqlite_url, "client", "list", "--json").stdout) == [
        {"client_id": "lobby-1", "group_id": "lobby", "status": "registered"}
    ]
    (event_row,) = json.loads(run(sqlite_url, "event", "list", "--json").stdout)
    assert event_row == {
        "event_id": "e1",
        "target": "group lobby",
        "start": START,
        "end": END,
        "status": "scheduled",
    }
    (override_row,) = json.loads(run(sqlite_url, "override", "list", "--json").stdout)
    assert (override_row["override_id"], override_row["status"]) == ("o1", "active")
    assert "e1" in run(sqlite_url, "event", "list").stdout


def test_policy_show_and_set(sqlite_url: str) -> None:
    """policy set changes only the named values; policy show prints all four."""
    assert run(sqlite_url, "client", "add", "c0").exit_code == 0  # a ledger to read
    assert json.loads(run(sqlite_url, "policy", "show", "--json").stdout)["grace_seconds"] == 30
    assert run(sqlite_url, "policy", "set", "--pre-roll", "300", "--grace", "10").exit_code == 0
    assert json.loads(run(sqlite_url, "policy", "show", "--json").stdout) == {
        "pre_roll": 300,
        "post_roll": 0,
        "bridge_gap": 0,
        "grace_seconds": 10,
    }


def test_state_at_an_instant(fleet: str) -> None:
    """state --at answers what the TV should do then, and when that changes."""
    run(fleet, "override", "clear", "o1")
    row = json.loads(run(fleet, "state", "lobby-1", "--at", "2026-03-31T08:30:00Z", "--json").stdout)
    assert (row["desired_state"], row["reason"], row["next_boundary"]) == ("on", "event_window_active", END)
    text = run(fleet, "state", "lobby-1", "--at", "2026-03-31T10:00:00+02:00").stdout
    assert text.startswith("lobby-1 at 2026-03-31T08:00:00Z: on")


def test_sync_twice_prune_and_dry_run(sqlite_url: str, tmp_path: Path) -> None:
    """The CLI sync: dry run appends nothing, second run appends nothing, prune removes."""
    path = tmp_path / "fleet.json"
    path.write_text(
        json.dumps(
            {
                "clients": [{"client_id": "lobby-1", "group_id": "lobby"}, {"client_id": "old"}],
                "events": [
                    {
                        "event_id": "e1",
                        "group_id": "lobby",
                        "start": "2099-01-01T08:00:00Z",
                        "end": "2099-01-01T09:00:00Z",
                    }
                ],
            }
        )
    )
    dry = json.loads(run(sqlite_url, "sync", str(path), "--dry-run", "--json").stdout)
    assert dry["dry_run"]
    assert dry["appended"] == 0
    assert len(dry["changes"]) > 0
    assert notifications(sqlite_url) == []
    assert f"appended {len(dry['changes'])} ledger events" in run(sqlite_url, "sync", str(path)).stdout
    assert "appended 0 ledger events" in run(sqlite_url, "sync", str(path)).stdout
    path.write_text(json.dumps({"clients": [{"client_id": "lobby-1", "group_id": "lobby"}]}))
    pruned = json.loads(run(sqlite_url, "sync", str(path), "--prune", "--json").stdout)
    assert sorted(c["event"] for c in pruned["changes"]) == ["ClientDeregistered", "EventCancelled"]
    assert all(c["actor"] == "sync:fleet.json" for c in pruned["changes"])


def test_replay_prints_recorded_transitions(sqlite_url: str) -> None:
    """replay --json lists seq, intent_id, effective_at, state, reason, window, cause."""
    from datetime import UTC, datetime

    from projections.projector import Projector

    run(sqlite_url, "client", "add", "lobby-1")
    ledger = Ledger(sqlite_url)
    Projector(ledger).start(datetime(2026, 3, 31, tzinfo=UTC))
    ledger.close()
    (row,) = json.loads(run(sqlite_url, "replay", "lobby-1", "--json").stdout)
    assert set(row) == {
        "seq",
        "intent_id",
        "effective_at",
        "desired_state",
        "reason",
        "event_window",
        "cause",
    }
    assert (row["seq"], row["effective_at"], row["cause"]) == (1, "2026-03-31T00:00:00Z", {"kind": "start"})
    assert (
        json.loads(run(sqlite_url, "replay", "lobby-1", "--json", "--since", "2026-04-01T00:00:00Z").stdout)
        == []
    )
    assert "no_active_event" in run(sqlite_url, "replay", "lobby-1").stdout


def test_schema_prints_the_payload_json_schema() -> None:
    """`schema` is the JSON Schema generated from the Struct."""
    from publisher.payload import json_schema

    result = CliRunner().invoke(cli, ["schema"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == json_schema()


def _commands(
    group: click.Group, prefix: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], click.Command]]:
    found: list[tuple[tuple[str, ...], click.Command]] = []
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, name
        path = (*prefix, name)
        found.append((path, command))
        if isinstance(command, click.Group):
            found += _commands(command, path)
    return found


@pytest.mark.parametrize("path", [p for p, _ in _commands(cli)], ids=" ".join)
def test_every_command_has_help_with_an_example(path: tuple[str, ...]) -> None:
    """-h works everywhere and shows a description and an `Example:` with the real command."""
    result = CliRunner().invoke(cli, [*path, "-h"])
    assert result.exit_code == 0
    assert "Example:" in result.stdout
    assert f"intent-ledger {' '.join(path)}" in result.stdout


def test_every_listing_command_takes_json() -> None:
    """Listings and queries offer --json."""
    for path in [
        ("client", "list"),
        ("event", "list"),
        ("override", "list"),
        ("policy", "show"),
        ("state",),
        ("replay",),
        ("sync",),
    ]:
        assert "--json" in CliRunner().invoke(cli, [*path, "-h"]).stdout, path


@pytest.mark.parametrize(
    "path", [p for p, c in _commands(cli) if not isinstance(c, click.Group)], ids=" ".join
)
def test_every_command_appears_in_the_docs(path: tuple[str, ...]) -> None:
    """docs/ names every command an operator can run."""
    docs = "\n".join(p.read_text() for p in (Path(__file__).parents[2] / "docs").glob("*.md"))
    assert f"intent-ledger {' '.join(path)}" in docs
