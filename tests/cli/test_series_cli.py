"""`series` on the command line (CliRunner, real ledgers): add, change, skip, list, show, refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.test_cli import notifications, run

ADD = [
    "series",
    "add",
    "lobby-hours",
    "--group",
    "lobby",
    "--tz",
    "Europe/Berlin",
    "--from",
    "2027-03-22",
    "--start",
    "07:30",
    "--end",
    "16:00",
    "--rrule",
    "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR",
]


@pytest.fixture
def hours(db_url: str) -> str:
    for args in (["client", "add", "lobby-1", "--group", "lobby"], ADD):
        assert run(db_url, *args).exit_code == 0, args
    return db_url


def test_add_show_and_list_across_the_spring_change(hours: str) -> None:
    assert "nothing to append" in run(hours, *ADD).stdout
    shown = run(
        hours, "series", "show", "lobby-hours", "--from", "2027-03-26", "--to", "2027-03-29", "--json"
    )
    assert json.loads(shown.stdout) == [
        {
            "occurrence": "lobby-hours@2027-03-26",
            "local_start": "2027-03-26T07:30:00",
            "local_end": "2027-03-26T16:00:00",
            "start": "2027-03-26T06:30:00Z",
            "end": "2027-03-26T15:00:00Z",
        },
        {
            "occurrence": "lobby-hours@2027-03-29",
            "local_start": "2027-03-29T07:30:00",
            "local_end": "2027-03-29T16:00:00",
            "start": "2027-03-29T05:30:00Z",
            "end": "2027-03-29T14:00:00Z",
        },
    ]
    (row,) = json.loads(run(hours, "series", "list", "--json").stdout)
    assert row == {
        "series_id": "lobby-hours",
        "target": "group lobby",
        "tz": "Europe/Berlin",
        "first_start": "2027-03-22T07:30:00",
        "first_end": "2027-03-22T16:00:00",
        "rrule": "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR",
        "skip": [],
        "status": "scheduled",
    }
    state = json.loads(run(hours, "state", "lobby-1", "--at", "2027-03-29T06:00:00Z", "--json").stdout)
    assert (state["desired_state"], state["next_boundary"]) == ("on", "2027-03-29T14:00:00Z")


def test_skip_change_unskip_and_cancel_with_actor_and_note(hours: str) -> None:
    skipped = run(
        hours, "series", "skip", "lobby-hours", "--date", "2027-03-26", "--actor", "ops", "--note", "hol"
    )
    assert skipped.exit_code == 0
    assert "1 date skipped (1 ledger event appended)" in skipped.stdout
    changed = run(hours, "series", "change", "lobby-hours", "--end", "15:00", "--until", "2027-03-31")
    assert changed.exit_code == 0, changed.output
    (row,) = json.loads(run(hours, "series", "list", "--json").stdout)
    assert (row["first_end"], row["rrule"], row["skip"]) == (
        "2027-03-22T15:00:00",
        "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;UNTIL=20270331",
        ["2027-03-26"],
    )
    names = [
        r["occurrence"]
        for r in json.loads(
            run(
                hours, "series", "show", "lobby-hours", "--from", "2027-03-25", "--to", "2027-04-05", "--json"
            ).stdout
        )
    ]
    assert names == [
        "lobby-hours@2027-03-25",
        "lobby-hours@2027-03-29",
        "lobby-hours@2027-03-30",
        "lobby-hours@2027-03-31",
    ]
    assert run(hours, "series", "unskip", "lobby-hours", "--date", "2027-03-26").exit_code == 0
    assert run(hours, "series", "cancel", "lobby-hours", "--note", "closed").exit_code == 0
    changes = json.loads(run(hours, "audit", "changes", "--group", "lobby", "--json").stdout)
    skip = next(c for c in changes if c["change"] == "SeriesSkipped")
    assert (skip["actor"], skip["note"], skip["occurrences"]) == ("ops", "hol", ["lobby-hours@2027-03-26"])
    assert [c["change"] for c in changes][-4:] == [
        "SeriesSkipped",
        "SeriesChanged",
        "SeriesUnskipped",
        "SeriesCancelled",
    ]


def test_an_overnight_series_with_days(sqlite_url: str) -> None:
    """--end not after --start is on the next day; --days adds more."""
    args = [
        "series",
        "add",
        "night",
        "--group",
        "g",
        "--tz",
        "UTC",
        "--from",
        "2027-01-01",
        "--start",
        "22:00",
        "--end",
        "06:00",
    ]
    assert run(sqlite_url, *args, "--days", "1").exit_code == 0
    (row,) = json.loads(run(sqlite_url, "series", "list", "--json").stdout)
    assert (row["first_start"], row["first_end"]) == ("2027-01-01T22:00:00", "2027-01-03T06:00:00")


BAD = [
    ["--tz", "Europe/Berlinn"],
    ["--tz", "../../etc/passwd"],
    ["--from", "2027-02-30"],
    ["--start", "7:30"],
    ["--start", "24:00"],
    ["--end", "16:00:61"],
    ["--rrule", "FREQ=HOURLY"],
    ["--rrule", "FREQ=DAILY;BYHOUR=8"],
    ["--rrule", "FREQ=DAILY;BYMINUTE=8"],
    ["--rrule", "FREQ=DAILY;BYSECOND=8"],
    ["--rrule", "FREQ=WEEKLY;BYDAY=XY"],
    ["--rrule", "nonsense"],
    ["--rrule", "FREQ=DAILY;UNTIL=tomorrow"],
    ["--rrule", "FREQ=DAILY;COUNT=3", "--until", "2027-04-01"],
    ["--days", "40"],
    ["--days", "31"],
    ["--until", "2027-13-01"],
]


@pytest.mark.parametrize("change", BAD, ids=" ".join)
def test_bad_series_input_exits_2_with_one_line_and_changes_nothing(hours: str, change: list[str]) -> None:
    args = list(ADD)
    args[2] = "other"
    option = change[0]
    i = args.index(option) if option in args else len(args)
    args[i : i + 2] = change[:2]
    args += change[2:]
    for cmd in (args, ["series", "change", "lobby-hours", *change]):
        before = notifications(hours)
        result = run(hours, *cmd)
        assert result.exit_code == 2, (cmd, result.output)
        lines = result.stderr.splitlines()
        assert len(lines) == 1
        assert lines[0].startswith("Error: ")
        assert "Traceback" not in result.stderr
        assert notifications(hours) == before


@pytest.mark.parametrize(
    "args",
    [
        [*ADD[:3], "--client", "ghost", *ADD[5:]],
        [*ADD[:3], "--client", "lobby-1", *ADD[3:]],
        [*ADD[:3], *ADD[5:]],
        [*ADD[:-1], "FREQ=DAILY"],  # the id is taken by other content
        ["series", "skip", "lobby-hours"],
        ["series", "skip", "lobby-hours", "--date", "27-03-2027"],
        ["series", "cancel", "nope"],
        ["series", "show", "nope"],
        ["series", "show", "lobby-hours", "--from", "2027-03-10", "--to", "2027-03-01"],
        [
            "series",
            "add",
            "bad/id",
            "--group",
            "g",
            "--tz",
            "UTC",
            "--from",
            "2027-01-01",
            "--start",
            "07:00",
            "--end",
            "08:00",
        ],
    ],
    ids=lambda a: " ".join(a)[:70],
)
def test_other_refusals_exit_2(hours: str, args: list[str]) -> None:
    before = notifications(hours)
    result = run(hours, *args)
    assert result.exit_code == 2, result.output
    assert len(result.stderr.splitlines()) == 1
    assert notifications(hours) == before


def test_sync_takes_the_series_list(sqlite_url: str, tmp_path: Path) -> None:
    snapshot = {
        "clients": [{"client_id": "lobby-1", "group_id": "lobby"}],
        "series": [
            {
                "series_id": "lobby-hours",
                "group_id": "lobby",
                "tz": "Europe/Berlin",
                "first_start": "2027-01-04T07:30",
                "first_end": "2027-01-04T16:00",
                "rrule": "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR",
                "skip": ["2027-05-01"],
            }
        ],
    }
    path = tmp_path / "fleet.json"
    path.write_text(json.dumps(snapshot))
    assert run(sqlite_url, "sync", str(path)).exit_code == 0
    assert "appended 0 ledger events" in run(sqlite_url, "sync", str(path)).stdout
    snapshot["series"] = []
    path.write_text(json.dumps(snapshot))
    pruned = run(sqlite_url, "sync", str(path), "--prune", "--json")
    assert [r["event"] for r in json.loads(pruned.stdout)["changes"]] == ["SeriesCancelled"]
