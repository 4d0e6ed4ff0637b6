"""`sync --ics` through click's CliRunner: files and a local HTTP server, on both stores."""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.test_cli import notifications, run
from tests.feed_server import FeedServer, serve_feeds

FEEDS = Path(__file__).parents[1] / "ledger" / "feeds"
TIMETABLE = str(FEEDS / "timetable.ics")


@pytest.fixture
def room(db_url: str) -> str:
    """A ledger with one client, `kiosk`, and nothing scheduled."""
    assert run(db_url, "client", "add", "kiosk").exit_code == 0
    return db_url


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with serve_feeds() as s:
        s.bodies["/room-101.ics"] = (FEEDS / "timetable.ics").read_bytes()
        s.bodies["/page.html"] = b"<html><body>Sign in</body></html>"
        yield s


def one_error_line(result_stderr: str) -> str:
    lines = result_stderr.splitlines()
    assert len(lines) == 1, result_stderr
    assert lines[0].startswith("Error: "), result_stderr
    assert "Traceback" not in result_stderr
    return lines[0]


def test_import_then_reimport_appends_nothing(room: str) -> None:
    first = run(room, "sync", "--ics", TIMETABLE, "--group", "room-101", "--json")  # the listing: --json
    assert first.exit_code == 0, first.output
    body = json.loads(first.stdout)
    assert body["appended"] == 10
    assert body["feed"] == {"events": 2, "series": 2, "not_imported": 0}
    again = run(room, "sync", "--ics", TIMETABLE, "--group", "room-101", "--prune")
    assert again.exit_code == 0
    assert again.stdout.splitlines() == [
        f"sync --ics {TIMETABLE}: appended 0 ledger events (the feed: 2 events, 2 series, 0 not imported)"
    ]
    assert {r["actor"] for r in body["changes"] if "actor" in r} == {"sync:timetable.ics"}


def test_json_and_dry_run(room: str) -> None:
    before = notifications(room)
    dry = run(room, "sync", "--ics", TIMETABLE, "--group", "room-101", "--dry-run", "--json")
    assert dry.exit_code == 0
    body = json.loads(dry.stdout)
    assert body["dry_run"] is True
    assert body["appended"] == 0
    assert len(body["changes"]) == 10
    assert body["feed"] == {"events": 2, "series": 2, "not_imported": 0}
    assert notifications(room) == before


def test_a_url_is_imported_and_credentials_stay_out_of_the_actor(room: str, server: FeedServer) -> None:
    url = server.url("/room-101.ics?token=s3cret")
    result = run(room, "sync", "--ics", url, "--client", "kiosk", "--json")
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert {c["actor"] for c in body["changes"] if "actor" in c} == {"sync:127.0.0.1"}
    assert "s3cret" not in result.output


@pytest.mark.parametrize(
    ("path", "extra", "message"),
    [
        ("/missing.ics", [], "answered HTTP 404"),
        ("/declared-huge.ics", [], "larger than 10 MB"),
        ("/silent.ics", ["--timeout", "0.2"], "did not answer within 0.2 s"),
    ],
)
def test_an_unavailable_feed_is_exit_1_one_line_and_changes_nothing(
    room: str, server: FeedServer, path: str, extra: list[str], message: str
) -> None:
    before = notifications(room)
    result = run(room, "sync", "--ics", server.url(path), "--client", "kiosk", *extra)
    assert result.exit_code == 1
    line = one_error_line(result.stderr)
    assert message in line
    assert f"127.0.0.1:{server.port}/..." in line
    assert path not in line
    assert notifications(room) == before


def test_bad_input_is_exit_2_one_line_and_changes_nothing(
    room: str, server: FeedServer, tmp_path: Path
) -> None:
    empty = tmp_path / "empty.ics"
    empty.write_bytes(b"")
    floating = tmp_path / "floating.ics"
    floating.write_bytes(
        b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:f\r\nDTSTART:20270601T090000\r\n"
        b"DTEND:20270601T100000\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    cases = [
        (["--ics", server.url("/page.html"), "--client", "kiosk"], "not an iCalendar file"),
        (["--ics", str(empty), "--client", "kiosk"], "not an iCalendar file"),
        (["--ics", str(tmp_path / "nope.ics"), "--client", "kiosk"], "no such file"),
        (["--ics", str(floating), "--client", "kiosk"], "give --tz ZONE"),
        (["--ics", TIMETABLE, "--client", "ghost"], "client 'ghost' is not registered"),
        (["--ics", TIMETABLE, "--client", "kiosk", "--tz", "Mars/Base"], "invalid --tz 'Mars/Base'"),
        (["--ics", TIMETABLE, "--client", "kiosk", "--id-prefix", "a/b"], "invalid --id-prefix 'a/b'"),
        (["--ics", TIMETABLE], "exactly one of --client and --group"),
        (["--ics", TIMETABLE, "--client", "kiosk", "--group", "g"], "exactly one of --client and --group"),
        (["--ics", TIMETABLE, "fleet.json", "--client", "kiosk"], "FILE or --ics SOURCE, not both"),
        (["fleet.json", "--client", "kiosk"], "--client goes with --ics only"),
        ([], "missing FILE (or --ics SOURCE)"),
        (["--ics", "ftp://example.org/x.ics", "--client", "kiosk"], "unsupported feed ftp://"),
    ]
    before = notifications(room)
    for args, message in cases:
        result = run(room, "sync", *args)
        assert result.exit_code == 2, (args, result.output)
        assert message in one_error_line(result.stderr), args
        assert result.stdout == ""
    assert notifications(room) == before


def test_warnings_name_each_skipped_component_and_strict_refuses(room: str) -> None:
    edge = str(FEEDS / "edge.ics")
    before = notifications(room)
    strict = run(room, "sync", "--ics", edge, "--client", "kiosk", "--tz", "Europe/Berlin", "--strict")
    assert strict.exit_code == 2
    *warnings, error = strict.stderr.splitlines()
    assert len(warnings) == 9
    assert all(w.startswith("Warning: UID '") for w in warnings)
    assert "Warning: UID 'hourly' not imported: FREQ=HOURLY is not supported" in strict.stderr
    assert error == "Error: 9 component(s) of the feed cannot be imported (--strict): nothing applied"
    assert notifications(room) == before
    lenient = run(room, "sync", "--ics", edge, "--client", "kiosk", "--tz", "Europe/Berlin", "--dry-run")
    assert lenient.exit_code == 0
    assert lenient.stderr.splitlines() == warnings
    assert "(the feed: 7 events, 1 series, 9 not imported)" in lenient.stdout
    as_json = run(room, "sync", "--ics", edge, "--client", "kiosk", "--tz", "Europe/Berlin", "--json")
    body = json.loads(as_json.stdout)
    assert [f"Warning: {w}" for w in body["not_imported"]] == warnings
    assert body["notes"] == []
    assert body["appended"] == len(body["changes"]) > 0


def test_prune_is_scoped_to_prefix_and_target(room: str) -> None:
    assert run(room, "sync", "--ics", TIMETABLE, "--group", "room-101").exit_code == 0
    assert run(room, "sync", "--ics", TIMETABLE, "--group", "room-101", "--id-prefix", "b-").exit_code == 0
    assert run(room, "sync", "--ics", TIMETABLE, "--client", "kiosk", "--id-prefix", "k-").exit_code == 0
    google = str(FEEDS / "google.ics")
    pruned = run(room, "sync", "--ics", google, "--group", "room-101", "--prune", "--json")
    assert pruned.exit_code == 0
    changes = json.loads(pruned.stdout)["changes"]
    cancelled = [c.get("event_id") or c.get("series_id") for c in changes if c["event"].endswith("Cancelled")]
    assert len(cancelled) == 4
    assert all(i.startswith("ics-") for i in cancelled)
    listed = json.loads(run(room, "event", "list", "--json").stdout)
    live = {e["event_id"] for e in listed if e.get("status", "scheduled") == "scheduled"}
    assert sum(i.startswith("b-") for i in live) == 2
    assert sum(i.startswith("k-") for i in live) == 2


def test_an_empty_feed_with_prune_is_refused_unless_allowed(room: str, tmp_path: Path) -> None:
    """An empty calendar (a feed server in trouble) would cancel the whole import: exit 1, one
    line, nothing appended; `--allow-empty` prunes it as asked."""
    assert run(room, "sync", "--ics", TIMETABLE, "--group", "room-101").exit_code == 0
    empty = tmp_path / "empty.ics"
    empty.write_bytes(b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n")
    before = notifications(room)
    refused = run(room, "sync", "--ics", str(empty), "--group", "room-101", "--prune")
    assert refused.exit_code == 1
    assert "--allow-empty" in one_error_line(refused.stderr)
    assert notifications(room) == before
    allowed = run(room, "sync", "--ics", str(empty), "--group", "room-101", "--prune", "--allow-empty")
    assert allowed.exit_code == 0, allowed.output
    assert len(notifications(room)) == len(before) + 4
    misplaced = run(room, "sync", str(empty), "--strict")
    assert misplaced.exit_code == 2
    assert "--strict goes with --ics only" in one_error_line(misplaced.stderr)


def test_the_readme_ics_example_runs_as_written(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = Path(__file__).parents[2]
    lines = [line for line in (repo / "README.md").read_text().splitlines() if " sync --ics " in line]
    assert lines
    monkeypatch.chdir(repo)
    for line in lines:
        result = run(sqlite_url, *shlex.split(line, comments=True)[1:])
        assert result.exit_code == 0, (line, result.output)
        assert "(the feed: 2 events, 2 series, 0 not imported)" in result.stdout


def test_a_zone_read_from_its_vtimezone_is_a_note(room: str, tmp_path: Path) -> None:
    custom = tmp_path / "custom.ics"  # one series without a SUMMARY: its note is --note
    custom.write_bytes(
        (FEEDS / "outlook-custom-zones.ics").read_bytes().replace(b"SUMMARY:New York office hours\n", b"")
    )
    result = run(room, "sync", "--ics", str(custom), "--client", "kiosk", "--strict")
    assert result.exit_code == 2  # the series no zone agrees with
    result = run(room, "sync", "--ics", str(custom), "--client", "kiosk", "--note", "nightly", "--json")
    assert result.exit_code == 0
    changes = json.loads(result.stdout)["changes"]
    assert {c["note"] for c in changes if "note" in c} == {"nightly", "Reception staffed"}
    notes, warnings = result.stderr.splitlines()[:2], result.stderr.splitlines()[2:]
    assert all(n.startswith("Note: UID ") and " read as " in n for n in notes)
    assert len(warnings) == 1
    assert warnings[0].startswith("Warning: UID ")


def test_the_feeds_docs_show_what_the_commands_print(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = Path(__file__).parents[2]
    text = (repo / "docs" / "schedules.md").read_text().split("## Feeds", 1)[1]
    block = text.split("```text\n", 1)[1].split("```", 1)[0].splitlines()
    monkeypatch.chdir(repo)
    shown = [(line, block[i + 1 :]) for i, line in enumerate(block) if line.startswith("$ intent-ledger ")]
    assert len(shown) == 2
    for line, after in shown:
        result = run(sqlite_url, *shlex.split(line)[2:])
        assert result.exit_code == 0, (line, result.output)
        expected = next(out for out in after if out != "...")
        assert result.stdout.splitlines()[-1] == expected
