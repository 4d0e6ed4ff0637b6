"""Fuzzing sync snapshots: no traceback, one line per refusal, and a refused input changes nothing.

10,000 generated inputs through the pure parse/validate path; a sample of them
through `Ledger.sync` and through `intent-ledger sync` on a real SQLite ledger,
whose every row is dumped before and after each refused input and compared.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli.main import cli
from ledger import Ledger, Meta
from ledger.errors import InvalidInput, LedgerError
from ledger.sync import Snapshot, parse_snapshot

pytestmark = pytest.mark.slow

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)

# Mostly plausible values, some near misses, some nonsense: inputs a real file could hold.
ids = st.one_of(
    st.sampled_from(["lobby-1", "lobby-2", "cafe", "g1", "a.b_c-d", "x" * 64, "x" * 65, "-a", "", "é"]),
    st.text(alphabet="aZ09._- /+#\x00", max_size=6),
    st.integers(),
    st.none(),
)
instants = st.one_of(
    st.sampled_from(
        [
            "2026-06-01T08:00:00Z",
            "2026-06-01T18:00:00+02:00",
            "2026-06-01T08:00:00",
            "2026-02-30T08:00:00Z",
            "2026-06-01 08:00:00Z",
            "2026-06-01T24:00:00Z",
            "",
        ]
    ),
    st.integers(0, 10**10).map(lambda s: datetime.fromtimestamp(s, UTC).isoformat()),
    st.text(alphabet="0123456789-:TZ+ ", max_size=12),
)
zones = st.sampled_from(["Europe/Zurich", "UTC", "America/New_York", "Mars/Olympus", "", "europe/zurich"])
rrules = st.sampled_from(
    [
        "FREQ=DAILY",
        "FREQ=WEEKLY;BYDAY=MO,TU",
        "FREQ=DAILY;COUNT=3",
        "FREQ=HOURLY",
        "RRULE:FREQ=DAILY",
        "X",
        "",
    ]
)
target = st.fixed_dictionaries({}, optional={"client_id": ids, "group_id": ids})
noise = st.dictionaries(st.sampled_from(["extra", "id", "state", "note"]), ids, max_size=1)


def _item(required: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.tuples(st.fixed_dictionaries(required), target, noise).map(
        lambda parts: {**parts[0], **parts[1], **parts[2]}
    )


clients = st.fixed_dictionaries({"client_id": ids}, optional={"group_id": ids, "nickname": ids})
events = _item({"event_id": ids, "start": instants, "end": instants})
overrides = _item(
    {"override_id": ids, "desired_state": st.sampled_from(["on", "off", "ON", "maybe"]), "start": instants}
).map(lambda d: {**d, "end": "2026-06-01T20:00:00Z"})
series = _item(
    {"series_id": ids, "tz": zones, "first_start": instants, "first_end": instants, "rrule": rrules}
).map(lambda d: {**d, "skip": ["2026-06-02"]})
snapshots = st.fixed_dictionaries(
    {},
    optional={
        "clients": st.lists(clients, max_size=3),
        "events": st.lists(events, max_size=2),
        "overrides": st.lists(overrides, max_size=1),
        "series": st.lists(series, max_size=1),
        "unknown": ids,
    },
)
VALID = json.dumps(
    {
        "clients": [{"client_id": "lobby-1", "group_id": "lobby"}],
        "events": [
            {
                "event_id": "e",
                "group_id": "lobby",
                "start": "2026-06-01T08:00:00Z",
                "end": "2026-06-01T09:00:00Z",
            }
        ],
        "series": [
            {
                "series_id": "s",
                "client_id": "lobby-1",
                "tz": "Europe/Zurich",
                "first_start": "2026-06-01T08:00:00",
                "first_end": "2026-06-01T09:00:00",
            }
        ],
    }
).encode()


def _splice(edit: tuple[int, int, bytes]) -> bytes:
    at, cut, insert = edit
    return VALID[:at] + insert + VALID[at + cut :]


# Mostly well-formed: so that a share of the inputs get past parsing into the ledger.
good_ids = st.sampled_from(["lobby-1", "lobby-2", "cafe", "e1", "e2", "s1"])
good_instants = st.sampled_from(
    ["2026-06-01T08:00:00Z", "2026-06-01T10:00:00Z", "2026-06-01T12:00:00+02:00", "2026-06-02T08:00:00Z"]
)
plausible = st.fixed_dictionaries(
    {
        "clients": st.lists(
            st.fixed_dictionaries({"client_id": good_ids}, optional={"group_id": good_ids}), max_size=3
        ),
        "events": st.lists(
            st.fixed_dictionaries(
                {"event_id": good_ids, "start": good_instants, "end": good_instants},
                optional={"client_id": good_ids, "group_id": good_ids},
            ),
            max_size=2,
        ),
    }
)

documents = st.one_of(
    plausible.map(json.dumps).map(str.encode),
    snapshots.map(json.dumps).map(str.encode),
    st.tuples(st.integers(0, len(VALID)), st.integers(0, 8), st.binary(max_size=6)).map(_splice),
    st.binary(max_size=48),
)


def _parsed(data: bytes) -> Snapshot | None:
    """The snapshot, or None after checking the refusal is one clean line."""
    try:
        return parse_snapshot(data)
    except InvalidInput as e:
        message = str(e)
        assert message
        assert "\n" not in message
        assert "Traceback" not in message
        assert "msgspec" not in message
        assert "Error" not in message.split(":")[0]
        return None


@settings(max_examples=10_000, deadline=None, suppress_health_check=list(HealthCheck))
@given(documents)
def test_parse_refuses_bad_snapshots_in_one_line(data: bytes) -> None:
    snapshot = _parsed(data)
    if snapshot is not None:  # what passes is well-formed enough to be parsed again the same way
        assert parse_snapshot(data) == snapshot


def dump(db: Path) -> list[str]:
    """Every row of every table, in a stable order (the ledger's bytes, as text)."""
    with sqlite3.connect(db) as conn:
        return list(conn.iterdump())


@pytest.fixture(scope="module")
def fuzz_ledger(tmp_path_factory: pytest.TempPathFactory) -> tuple[Ledger, Path]:
    db = tmp_path_factory.mktemp("fuzz") / "ledger.db"
    app = Ledger(f"sqlite:///{db}")
    seed = {
        "clients": [{"client_id": "lobby-1", "group_id": "lobby"}, {"client_id": "cafe"}],
        "events": [
            {
                "event_id": "e1",
                "group_id": "lobby",
                "start": "2026-06-01T08:00:00Z",
                "end": "2026-06-01T18:00:00Z",
            }
        ],
    }
    app.sync(parse_snapshot(json.dumps(seed)), prune=False, now=NOW, meta=Meta("seed"))
    return app, db


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(documents, st.booleans())
def test_a_refused_sync_leaves_the_ledger_byte_identical(
    fuzz_ledger: tuple[Ledger, Path], data: bytes, prune: bool
) -> None:
    app, db = fuzz_ledger
    snapshot = _parsed(data)
    if snapshot is not None:
        refusal_changes_nothing(db, lambda: app.sync(snapshot, prune=prune, now=NOW, meta=Meta("fuzz")))


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(documents)
def test_the_sync_command_is_one_line_and_exit_2_on_bad_files(
    fuzz_ledger: tuple[Ledger, Path], tmp_path_factory: pytest.TempPathFactory, data: bytes
) -> None:
    _app, db = fuzz_ledger
    file = tmp_path_factory.mktemp("snap") / "fleet.json"
    file.write_bytes(data)
    command_refusal_changes_nothing(db, ["sync", str(file)])


def refusal_changes_nothing(db: Path, change: Callable[[], object]) -> None:
    """Make `change`; if the ledger refuses it, the refusal is one line and every row is as before."""
    before = dump(db)
    refused: LedgerError | None = None
    try:
        change()
    except (InvalidInput, LedgerError) as e:
        refused = e
    if refused is not None:
        assert "\n" not in str(refused)
        assert dump(db) == before, "a refused change altered the ledger"


def command_refusal_changes_nothing(db: Path, args: list[str]) -> None:
    """Run `intent-ledger --db <db> ARGS`: no traceback; a failure is one line, exit 1 or 2, and
    every row is as before."""
    before = dump(db)
    result = CliRunner().invoke(cli, ["--db", f"sqlite:///{db}", *args])
    assert "Traceback" not in result.output
    if result.exit_code != 0:
        assert result.exit_code in (1, 2), result.output
        assert result.stderr.count("\n") == 1, result.stderr
        assert result.stderr.startswith("Error: "), result.stderr
        assert dump(db) == before
