"""Database URL errors, read-only commands on a missing ledger, warnings: one clear line each."""

from __future__ import annotations

import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from cli.base import LedgerGroup
from cli.main import cli
from tests.conftest import PG_URL
from tests.publisher.broker import free_port

# What must never reach an operator: library class names, modules, links, tracebacks.
LIBRARY = re.compile(
    r"OperationalError|ArgumentError|ProgrammingError|sqlalchemy|sqlalche\.me|psycopg|sqlite3|"
    r"eventsourcing|Traceback|https?://|Background on this error",
    re.IGNORECASE,
)
SECRET = "s3cr3t-pw"
START, END = "2030-06-03T08:00:00Z", "2030-06-03T09:00:00Z"


def run(url: str, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--db", url, *args])


def assert_one_clean_line(result: Result, code: int, *expected: str) -> str:
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: "), result.stderr
    assert not LIBRARY.search(lines[0]), lines[0]
    assert SECRET not in lines[0]
    for text in expected:
        assert text in lines[0], (text, lines[0])
    return lines[0]


def _pg(user: str, database: str, port: int = 5432) -> str:
    base = PG_URL.split("@", 1)[1].split("/", 1)[0]
    host = base.rsplit(":", 1)[0]
    return f"postgresql://{user}:{SECRET}@{host}:{port}/{database}"


BAD_URLS = [
    ("garbage", "malformed database URL 'garbage'"),
    (f"postgresql://u:{SECRET}@db.example:notaport/ledger", "malformed database URL"),
    ("sqlite://relative.db", "malformed database URL"),
    (f"mysql://u:{SECRET}@db.example/ledger", "unsupported database URL 'mysql://u:***@db.example/ledger'"),
    ("redis://127.0.0.1:6379/0", "unsupported database URL"),
]


@pytest.mark.parametrize(("url", "says"), BAD_URLS, ids=[u for u, _ in BAD_URLS])
@pytest.mark.parametrize("args", [["client", "list"], ["client", "add", "c1"]], ids=" ".join)
def test_a_malformed_or_unsupported_url_exits_2_with_one_line(url: str, says: str, args: list[str]) -> None:
    """Bad input: exit 2, the URL named with its password masked, what to use instead."""
    line = assert_one_clean_line(run(url, *args), 2, says)
    assert "sqlite:///PATH" in line or "sqlite:////absolute/path" in line


def test_a_missing_directory_exits_1_and_creates_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/no/such/dir/ledger.db"
    assert_one_clean_line(run(url, "client", "add", "c1"), 1, url, f"directory {tmp_path}/no/such/dir")
    assert not (tmp_path / "no").exists()


def test_a_refused_connection_exits_1_naming_the_url_masked() -> None:
    url = _pg("postgres", "ledger", port=free_port())
    line = assert_one_clean_line(run(url, "client", "list"), 1, "connection refused", ":***@")
    assert url.replace(SECRET, "***") in line


def test_an_unknown_host_exits_1() -> None:
    assert_one_clean_line(
        run(f"postgresql://u:{SECRET}@no-such-host.invalid/ledger", "client", "list"), 1, "unknown host"
    )


@pytest.mark.postgres
def test_an_unknown_database_exits_1_and_says_how_to_create_it() -> None:
    assert_one_clean_line(
        run(_pg("postgres", "no_such_ledger_db"), "client", "list"),
        1,
        'database "no_such_ledger_db" does not exist',
        "createdb no_such_ledger_db",
        ":***@",
    )


@pytest.mark.postgres
def test_an_unknown_role_exits_1() -> None:
    assert_one_clean_line(
        run(_pg("no_such_role", "postgres"), "client", "list"), 1, 'role "no_such_role" does not exist'
    )


READ_ONLY = [
    ["client", "list"],
    ["event", "list"],
    ["override", "list"],
    ["policy", "show"],
    ["state", "c1"],
    ["replay", "c1"],
    ["audit", "why", "c1", "--at", START],
    ["audit", "fleet", "--at", START],
    ["audit", "changes"],
    ["audit", "gaps"],
    ["audit", "delivery", "c1"],
    ["timeline", "--client", "c1", "--from", START, "--to", END],
    ["projections", "rebuild"],
    ["series", "list"],
    ["series", "show", "s1"],
]
# Changes to what a ledger must hold already: a mistyped path is no new, empty ledger.
ON_EXISTING = [
    ["client", "assign", "c1", "--group", "hall"],
    ["client", "remove", "c1"],
    ["event", "move", "e1", "--start", START, "--end", END],
    ["event", "cancel", "e1"],
    ["override", "clear", "o1"],
    ["series", "change", "s1", "--start", "08:00"],
    ["series", "skip", "s1", "--date", "2030-06-03"],
    ["series", "unskip", "s1", "--date", "2030-06-03"],
    ["series", "cancel", "s1"],
    ["projections", "prune", "--before", START],
    ["simulate", "--all", "--duration", "1"],
]


@pytest.mark.parametrize("args", READ_ONLY + ON_EXISTING, ids=" ".join)
def test_a_read_only_command_never_creates_a_ledger(tmp_path: Path, args: list[str]) -> None:
    """A missing SQLite file is an error naming it (exit 1); no file appears."""
    db = tmp_path / "fleet.db"
    assert_one_clean_line(run(f"sqlite:///{db}", *args), 1, f"no ledger at sqlite:///{db}", f"file {db}")
    assert list(tmp_path.iterdir()) == []


def test_a_dry_run_sync_previews_against_an_empty_ledger_without_creating_it(tmp_path: Path) -> None:
    snapshot = tmp_path / "fleet.json"
    snapshot.write_text(json.dumps({"clients": [{"client_id": "c1", "group_id": "hall"}]}))
    result = run(f"sqlite:///{tmp_path / 'fleet.db'}", "sync", str(snapshot), "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("sync fleet.json: would append ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fleet.json"]


def test_a_writing_command_creates_the_ledger(tmp_path: Path) -> None:
    db = tmp_path / "fleet.db"
    assert run(f"sqlite:///{db}", "client", "add", "c1").exit_code == 0
    assert db.is_file()
    assert "c1" in run(f"sqlite:///{db}", "client", "list").stdout


def test_sync_prints_one_summary_line_and_lists_events_only_with_json(
    sqlite_url: str, tmp_path: Path
) -> None:
    snapshot = tmp_path / "fleet.json"
    snapshot.write_text(
        json.dumps(
            {
                "clients": [{"client_id": "c1", "group_id": "hall"}],
                "events": [{"event_id": "e1", "group_id": "hall", "start": START, "end": END}],
            }
        )
    )
    result = run(sqlite_url, "sync", str(snapshot))
    assert result.exit_code == 0
    assert result.stderr == ""
    assert result.stdout.splitlines() == [
        "sync fleet.json: appended 5 ledger events (1 ClientRegistered, 1 EventScheduled)"
    ]
    listed = json.loads(run(sqlite_url, "sync", str(snapshot), "--json").stdout)
    assert listed["appended"] == 0
    assert listed["changes"] == []


@pytest.mark.parametrize(
    "args",
    [
        ["event", "add", "e1", "--group", "hal", "--start", START, "--end", END],
        ["override", "add", "o1", "--group", "hal", "--state", "off", "--start", START, "--end", END],
    ],
    ids=lambda a: a[0],
)
def test_a_change_naming_a_group_without_members_succeeds_with_a_warning(
    sqlite_url: str, args: list[str]
) -> None:
    assert run(sqlite_url, "client", "add", "c1", "--group", "hall").exit_code == 0
    result = run(sqlite_url, *args)
    assert result.exit_code == 0, result.stderr
    assert result.stderr.splitlines() == [
        "Warning: group 'hal' has no registered member (check the spelling)"
    ]
    good = run(sqlite_url, *[("hall" if a == "hal" else a.replace("1", "2")) for a in args])
    assert good.exit_code == 0
    assert good.stderr == ""


def test_sync_warns_for_a_group_no_client_of_the_file_joins(sqlite_url: str, tmp_path: Path) -> None:
    snapshot = tmp_path / "fleet.json"
    event = {"event_id": "e1", "group_id": "lobbby", "start": START, "end": END}
    snapshot.write_text(
        json.dumps({"clients": [{"client_id": "c1", "group_id": "lobby"}], "events": [event]})
    )
    result = run(sqlite_url, "sync", str(snapshot))
    assert result.exit_code == 0
    assert result.stderr.splitlines() == [
        "Warning: group 'lobbby' has no registered member (check the spelling)"
    ]


def _entry_point() -> list[str]:
    return [sys.executable, "-c", "from cli.main import main; main()"]


def test_the_real_entry_point_says_url_errors_in_one_line(tmp_path: Path) -> None:
    """As a shell sees it: stderr is one line, exit 2 for a malformed URL, 1 for a missing ledger."""
    env = {**os.environ, "INTENT_LEDGER_DB": f"mysql://u:{SECRET}@h/db"}
    bad = subprocess.run(
        [*_entry_point(), "client", "list"], env=env, capture_output=True, text=True, cwd=tmp_path
    )
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1
    assert SECRET not in bad.stderr
    assert not LIBRARY.search(bad.stderr)
    env["INTENT_LEDGER_DB"] = "sqlite:///ledger.db"
    missing = subprocess.run(
        [*_entry_point(), "state", "c1"], env=env, capture_output=True, text=True, cwd=tmp_path
    )
    assert missing.returncode == 1
    assert missing.stderr.startswith("Error: no ledger at sqlite:///ledger.db")
    assert list(tmp_path.iterdir()) == []


def test_version_and_completion() -> None:
    version = subprocess.run([*_entry_point(), "--version"], capture_output=True, text=True)
    assert version.returncode == 0
    assert re.fullmatch(r"intent-ledger, version \d+\.\d+\.\d+\n", version.stdout)
    env = {**os.environ, "_INTENT_LEDGER_COMPLETE": "bash_source"}
    source = subprocess.run(
        [sys.executable, "-c", "from cli.main import cli; cli.main(prog_name='intent-ledger')"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert "_intent_ledger_completion" in source.stdout
    env = {
        **os.environ,
        "_INTENT_LEDGER_COMPLETE": "bash_complete",
        "COMP_WORDS": "intent-ledger cl",
        "COMP_CWORD": "1",
    }
    words = subprocess.run(
        [sys.executable, "-c", "from cli.main import cli; cli.main(prog_name='intent-ledger')"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert "plain,client" in words.stdout.split()


HEAVY = {
    "paho",
    "psycopg",
    "prometheus_client",
    "publisher.daemon",
    "projections.audit",
    "icalendar",
    "dateutil",
}
# What the application's path loads: a listing of an SQLite file reads through ledger.quickread instead.
APPLICATION = {"ledger.app", "eventsourcing.application", "eventsourcing_sqlalchemy", "sqlalchemy"}


def _loaded_by(*args: str) -> set[str]:
    code = (
        "import sys, contextlib, io; from cli.main import cli\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    cli.main({list(args)!r}, standalone_mode=False)\n"
        "print(' '.join(sorted(sys.modules)))"
    )
    return set(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.split())


@pytest.mark.parametrize("args", [["-h"], ["client", "-h"], ["run", "-h"], ["audit", "-h"]], ids=" ".join)
def test_help_loads_neither_the_daemon_nor_the_audit_code(args: list[str]) -> None:
    loaded = _loaded_by(*args)
    assert "cli.main" in loaded
    assert loaded & HEAVY == set()


def test_a_listing_loads_neither_the_daemon_nor_the_audit_code(tmp_path: Path) -> None:
    """Lazy commands: `client list` imports no paho, psycopg, prometheus-client, daemon or audit."""
    url = f"sqlite:///{tmp_path / 'fleet.db'}"
    assert run(url, "client", "add", "c1").exit_code == 0
    loaded = _loaded_by("--db", url, "client", "list")
    assert "cli.fleet" in loaded
    assert loaded & (HEAVY | APPLICATION | {"cli.run", "cli.audit"}) == set()


@pytest.mark.parametrize("args", [["-h"], ["series", "-h"], ["sync", "-h"], ["state", "-h"]], ids=" ".join)
def test_help_loads_neither_the_application_nor_icalendar(args: list[str]) -> None:
    loaded = _loaded_by(*args)
    assert "cli.main" in loaded
    assert loaded & (HEAVY | APPLICATION) == set()


def test_state_of_an_sqlite_ledger_loads_no_application(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fleet.db'}"
    assert run(url, "client", "add", "c1").exit_code == 0
    loaded = _loaded_by("--db", url, "state", "c1")
    assert "ledger.quickread" in loaded
    assert loaded & (HEAVY | APPLICATION | {"cli.audit"}) == set()


@pytest.mark.postgres
def test_a_read_only_command_on_an_empty_postgres_database_creates_no_table(pg_url: str) -> None:
    import sqlalchemy

    url = pg_url.replace("+psycopg", "")  # as an operator writes it
    line = assert_one_clean_line(run(url, "client", "list"), 1, "holds no ledger yet")
    assert url.split("@")[-1] in line
    engine = sqlalchemy.create_engine(pg_url)
    try:
        assert sqlalchemy.inspect(engine).get_table_names() == []
    finally:
        engine.dispose()
    assert run(pg_url, "client", "add", "c1").exit_code == 0
    assert "c1" in run(pg_url, "client", "list").stdout


def test_a_gap_in_an_aggregates_stored_events_says_the_ledger_is_damaged(tmp_path: Path) -> None:
    """A row deleted behind the ledger's back: one line saying so (not "fix --db"), nothing appended."""
    url = f"sqlite:///{tmp_path}/ledger.db"
    assert run(url, "client", "add", "c1").exit_code == 0
    for n in (1, 2):
        start, end = f"2030-06-0{n}T08:00:00Z", f"2030-06-0{n}T09:00:00Z"
        assert (
            run(url, "event", "add", f"e{n}", "--client", "c1", "--start", start, "--end", end).exit_code == 0
        )
    with sqlite3.connect(tmp_path / "ledger.db") as db:
        (first,) = db.execute(
            "SELECT min(id) FROM ledger_events WHERE topic LIKE '%EventScheduled'"
        ).fetchone()
        db.execute("DELETE FROM ledger_events WHERE id = ?", (first,))
        rows = db.execute("SELECT count(*) FROM ledger_events").fetchone()
    for args in (
        ["state", "c1", "--at", START],
        ["audit", "changes", "--client", "c1"],
        ["event", "add", "e3", "--client", "c1", "--start", START, "--end", END],
    ):
        line = assert_one_clean_line(
            run(url, *args), 1, f"the ledger {url} is damaged", "restore it from a backup"
        )
        assert "fix --db" not in line
    with sqlite3.connect(tmp_path / "ledger.db") as db:
        assert db.execute("SELECT count(*) FROM ledger_events").fetchone() == rows


@pytest.mark.parametrize(
    "args",
    [
        [
            "event",
            "add",
            "e1",
            "--group",
            "hall",
            "--start",
            "9999-12-31T23:00:00Z",
            "--end",
            "9999-12-31T23:30:00-01:00",
        ],
        ["state", "c1", "--at", "0001-01-01T00:00:00+01:00"],
        ["audit", "compliance", "--all", "--from", "0001-01-01T00:00:00Z", "--to", "9999-12-31T23:59:59Z"],
    ],
    ids=lambda a: " ".join(a[:2]),
)
def test_instants_near_datetimes_limits_are_bad_input(tmp_path: Path, args: list[str]) -> None:
    url = f"sqlite:///{tmp_path}/ledger.db"
    assert run(url, "client", "add", "c1", "--group", "hall").exit_code == 0
    assert_one_clean_line(run(url, *args), 2, "outside the years 1970 to 8999")


def test_date_arithmetic_past_datetimes_years_is_bad_input_in_one_line() -> None:
    """Whatever input still overflows a date somewhere: exit 2 and the ledger's years, no traceback."""
    group = LedgerGroup("g")

    @group.command("overflow")
    def overflow() -> None:
        raise OverflowError("date value out of range")

    result = CliRunner().invoke(group, ["overflow"])
    assert result.exit_code == 2, result.output
    assert "outside the years 1970 to 8999" in result.output


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///", "sqlite:///:memory:"])
@pytest.mark.parametrize(
    "args", [["client", "add", "c1"], ["client", "list"], ["run", "--once"]], ids=" ".join
)
def test_an_in_memory_database_is_refused_it_would_keep_nothing(url: str, args: list[str]) -> None:
    """`INTENT_LEDGER_DB=sqlite:///$UNSET` is `sqlite:///`: a change would say "appended" and be lost."""
    assert_one_clean_line(
        run(url, *args), 2, "in-memory database keeps nothing", "sqlite:///intent-ledger.db"
    )


def test_sync_prune_of_a_file_without_clients_is_refused_unless_allow_empty(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/ledger.db"
    assert run(url, "client", "add", "c1", "--group", "hall").exit_code == 0
    empty = tmp_path / "fleet.json"
    empty.write_text("{}")
    assert_one_clean_line(run(url, "sync", str(empty), "--prune"), 1, "no clients", "--allow-empty")
    (client,) = json.loads(run(url, "client", "list", "--json").stdout)
    assert client["status"] == "registered"
    assert run(url, "sync", str(empty), "--prune", "--allow-empty").exit_code == 0
    assert json.loads(run(url, "client", "list", "--json").stdout)[0]["status"] != "registered"


@pytest.mark.parametrize("args", [[], ["audit"], ["client"]], ids=lambda a: " ".join(a) or "none")
def test_a_group_without_a_command_prints_its_help_not_one_long_error_line(args: list[str]) -> None:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    assert result.stdout.startswith("Usage: ")
    assert "Commands:" in result.stdout
    assert len(result.stdout.splitlines()) > 5
    assert not result.stderr


def test_a_file_that_cannot_be_written_is_named_without_errno(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/ledger.db"
    assert run(url, "client", "add", "c1").exit_code == 0
    out = tmp_path / "missing" / "x.svg"
    args = ["timeline", "--client", "c1", "--from", START, "--to", END, "--svg", str(out)]
    line = assert_one_clean_line(run(url, *args), 1, f"{out}: No such file or directory")
    assert "Errno" not in line


def test_a_metrics_port_in_use_is_named_as_the_metrics_port(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        args = ["--mqtt-url", f"mqtt://127.0.0.1:{free_port()}", "run", "--once", "--metrics-port", str(port)]
        line = assert_one_clean_line(
            run(f"sqlite:///{tmp_path}/l.db", *args), 1, f"metrics on 127.0.0.1:{port}"
        )
    assert "Errno" not in line


@pytest.mark.parametrize("option", ["--note", "--actor"])
def test_bytes_that_are_not_utf8_in_a_note_or_actor_are_bad_input(tmp_path: Path, option: str) -> None:
    """A shell hands Python undecodable bytes as surrogates: refused in one line, nothing appended."""
    url = f"sqlite:///{tmp_path}/ledger.db"
    assert_one_clean_line(run(url, "client", "add", "c1", option, "ops\udcff\udcfe"), 2, "is not UTF-8 text")
    assert run(url, "client", "add", "c1", option, "grüße").exit_code == 0


def test_a_feed_url_with_a_malformed_host_is_bad_input(tmp_path: Path) -> None:
    args = ["sync", "--ics", "https://[::1/x.ics", "--group", "g", "--dry-run"]
    assert_one_clean_line(run(f"sqlite:///{tmp_path}/l.db", *args), 2, "invalid feed URL", "malformed host")


@pytest.mark.parametrize(
    "args",
    [
        ["replay", "c1", "--since", END, "--until", START],
        ["audit", "changes", "--since", END, "--until", START],
        ["audit", "delivery", "c1", "--since", END, "--until", START],
    ],
    ids=lambda a: " ".join(a[:2]),
)
def test_since_after_until_is_bad_input_not_an_empty_answer(sqlite_url: str, args: list[str]) -> None:
    assert run(sqlite_url, "client", "add", "c1").exit_code == 0
    assert_one_clean_line(run(sqlite_url, *args), 2, "--until", "must be after --since")


def test_an_overlong_id_is_shown_cut_short(sqlite_url: str) -> None:
    line = assert_one_clean_line(run(sqlite_url, "client", "add", "x" * 5000), 2, "invalid client_id")
    assert len(line) < 300


def test_control_characters_in_a_note_are_bad_input_line_breaks_are_not(sqlite_url: str) -> None:
    assert_one_clean_line(run(sqlite_url, "client", "add", "c1", "--note", "a\x00b"), 2, "control characters")
    assert run(sqlite_url, "client", "add", "c1", "--note", "line one\r\nline two\tend").exit_code == 0


def test_a_snapshot_saved_with_a_byte_order_mark_is_read(sqlite_url: str, tmp_path: Path) -> None:
    fleet = tmp_path / "fleet.json"
    fleet.write_bytes(b"\xef\xbb\xbf" + json.dumps({"clients": [{"client_id": "c1"}]}).encode())
    assert run(sqlite_url, "sync", str(fleet)).exit_code == 0
    assert "c1" in run(sqlite_url, "client", "list").stdout


def test_why_of_an_unknown_client_says_it_is_not_known(sqlite_url: str) -> None:
    assert run(sqlite_url, "client", "add", "c1").exit_code == 0
    line = assert_one_clean_line(
        run(sqlite_url, "audit", "why", "nope", "--at", START), 2, "'nope' is not known"
    )
    assert "at now" not in line
