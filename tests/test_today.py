"""examples/today.py, the fleet of scripts/serve: stable for a day, an on and an off within minutes."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from ledger import Ledger, Meta
from ledger.sync import parse_snapshot
from ledger.values import parse_instant
from projections.queries import state_of

TODAY = Path(__file__).parents[1] / "examples" / "today.py"
DAY = date(2030, 6, 3)


def _fleet(day: date) -> bytes:
    printed = subprocess.run([sys.executable, str(TODAY), day.isoformat()], capture_output=True, check=True)
    return printed.stdout


def test_the_same_day_gives_the_same_file_and_every_window_is_inside_it() -> None:
    """A second scripts/serve the same day syncs an identical snapshot: nothing to append."""
    first = _fleet(DAY)
    assert first == _fleet(DAY)
    assert first != _fleet(DAY + timedelta(days=1))
    snapshot = json.loads(first)
    midnight = datetime(2030, 6, 3, tzinfo=UTC)
    for item in snapshot["events"] + snapshot["overrides"]:
        start, end = parse_instant(item["start"]), parse_instant(item["end"])
        assert midnight <= start < end <= midnight + timedelta(days=1), item


def test_room_101_flips_within_three_minutes_of_any_instant(sqlite_url: str) -> None:
    """Whenever serve starts, the first transition of room-101 comes within three minutes."""
    ledger = Ledger(sqlite_url)
    try:
        midnight = datetime(2030, 6, 3, tzinfo=UTC)
        ledger.sync(parse_snapshot(_fleet(DAY)), prune=True, now=midnight, meta=Meta("test"))
        again = ledger.sync(parse_snapshot(_fleet(DAY)), prune=True, now=midnight, meta=Meta("test"))
        assert again.appended == 0
        for minutes in range(0, 24 * 60 - 3, 37):  # instants all over the day, odd minutes included
            at = midnight + timedelta(minutes=minutes, seconds=13)
            now = state_of(ledger, "room-101", at)
            boundary = parse_instant(now["next_boundary"])
            assert boundary - at <= timedelta(minutes=3), now
            assert state_of(ledger, "room-101", boundary)["desired_state"] != now["desired_state"]
    finally:
        ledger.close()
