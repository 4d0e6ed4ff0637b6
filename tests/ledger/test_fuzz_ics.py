"""Fuzzing iCalendar feeds: no traceback, one line per refusal, and a refused import changes nothing.

10,000 feeds made from real ones in tests/ledger/feeds (lines dropped,
doubled or swapped, values replaced, bytes spliced, the file cut short)
through `parse_ics`; a sample through `Ledger.sync_feed` and through
`intent-ledger sync --ics` on a real SQLite ledger, dumped before and after.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger import Ledger, Meta, TargetRef
from ledger.errors import InvalidInput
from ledger.ics import IcsFeed, parse_ics
from tests.conftest import ME
from tests.ledger.test_fuzz_sync import command_refusal_changes_nothing, refusal_changes_nothing

pytestmark = pytest.mark.slow

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
# Not the Outlook feeds: their VTIMEZONEs take 40 ms to 1.5 s a parse, too slow for 10,000 cases.
FEEDS = [
    p.read_bytes()
    for p in sorted((Path(__file__).parent / "feeds").glob("*.ics"))
    if not p.name.startswith("outlook")
]
VALUES = [
    b"20260601T080000Z",
    b"20260601T080000",
    b"20260601",
    b"20261301T250000Z",
    b"FREQ=WEEKLY;BYDAY=MO,WE",
    b"FREQ=SECONDLY",
    b"FREQ=DAILY;UNTIL=20250101",
    b"CANCELLED",
    b"Europe/Zurich",
    b"Mars/Olympus",
    b"",
    b";;;",
    b"\xff\xfe",
]


def _mutate(plan: tuple[int, list[tuple[int, int, int, bytes]]]) -> bytes:
    which, edits = plan
    lines = FEEDS[which % len(FEEDS)].split(b"\n")
    for op, at, other, value in edits:
        i, j = at % len(lines), other % len(lines)
        if op == 0:
            del lines[i]
        elif op == 1:
            lines.insert(i, lines[j])
        elif op == 2:
            lines[i], lines[j] = lines[j], lines[i]
        elif op == 3 and b":" in lines[i]:
            lines[i] = lines[i].split(b":", 1)[0] + b":" + value
        elif op == 4:
            lines[i] = lines[i][: j % (len(lines[i]) + 1)] + value
        if not lines:
            break
    return b"\n".join(lines)


edits = st.tuples(st.integers(0, 4), st.integers(0, 200), st.integers(0, 200), st.sampled_from(VALUES))
feeds = st.one_of(
    st.tuples(st.integers(0, 10), st.lists(edits, min_size=1, max_size=4)).map(_mutate),
    st.tuples(st.integers(0, 10), st.integers(0, 3000)).map(lambda p: FEEDS[p[0] % len(FEEDS)][: p[1]]),
    st.binary(max_size=40).map(lambda b: b"BEGIN:VCALENDAR\r\n" + b),
)


def _parsed(data: bytes) -> IcsFeed | None:
    try:
        return parse_ics(data)
    except InvalidInput as e:
        message = str(e)
        assert message
        assert "\n" not in message
        assert "Traceback" not in message
        return None


@settings(max_examples=10_000, deadline=None, suppress_health_check=list(HealthCheck))
@given(feeds)
def test_parse_refuses_bad_feeds_in_one_line(data: bytes) -> None:
    feed = _parsed(data)
    if feed is not None:
        assert all(note and "\n" not in note for note in feed.notes)  # what was not imported, one line each


@pytest.fixture(scope="module")
def feed_ledger(tmp_path_factory: pytest.TempPathFactory) -> tuple[Ledger, Path]:
    db = tmp_path_factory.mktemp("fuzz-ics") / "ledger.db"
    app = Ledger(f"sqlite:///{db}")
    app.add_client("room-1", "rooms", ME)
    return app, db


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(feeds, st.booleans())
def test_a_refused_import_leaves_the_ledger_byte_identical(
    feed_ledger: tuple[Ledger, Path], data: bytes, prune: bool
) -> None:
    app, db = feed_ledger
    feed = _parsed(data)
    if feed is not None:
        target = TargetRef("group", "rooms")
        refusal_changes_nothing(
            db, lambda: app.sync_feed(feed, target, prefix="ics-", prune=prune, now=NOW, meta=Meta("fuzz"))
        )


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(feeds)
def test_sync_ics_is_one_line_on_bad_feeds(
    feed_ledger: tuple[Ledger, Path], tmp_path_factory: pytest.TempPathFactory, data: bytes
) -> None:
    _app, db = feed_ledger
    file = tmp_path_factory.mktemp("feed") / "feed.ics"
    file.write_bytes(data)
    command_refusal_changes_nothing(db, ["sync", "--ics", str(file), "--group", "rooms"])
