"""Print today's sample fleet (UTC day): screens that switch on and off every few minutes, all day.

The file depends only on the date, so running it again the same day gives the
same schedule and a second `sync` appends nothing (no screen flickers).
Within any three minutes room-101 goes on and off; the cafeteria follows a
ten-minute rhythm; the lobby is on all day with a short test blackout each hour.

Usage: python examples/today.py > today.json && intent-ledger sync today.json --prune
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, date, datetime, timedelta
from typing import Any


def fleet(day: date) -> dict[str, Any]:
    """The sample fleet of `day`: every window inside that UTC day."""
    midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
    tag = f"{day:%m%d}"

    def at(minutes: int) -> str:
        return (midnight + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")

    def hhmm(minutes: int) -> str:
        return f"{minutes // 60:02d}{minutes % 60:02d}"

    day_minutes = 24 * 60
    events: list[dict[str, str]] = [
        {"event_id": f"lobby-{tag}", "group_id": "lobby", "start": at(0), "end": at(day_minutes)},
        {"event_id": f"desk-{tag}", "client_id": "reception", "start": at(7 * 60), "end": at(19 * 60)},
    ]
    # Lessons of two minutes, one-minute breaks: an on and an off in any three minutes.
    events += [
        {"event_id": f"lesson-{tag}-{hhmm(m)}", "group_id": "classrooms", "start": at(m), "end": at(m + 2)}
        for m in range(0, day_minutes, 3)
    ]
    # The cafeteria: five minutes on, five off.
    events += [
        {"event_id": f"cafe-{tag}-{hhmm(m)}", "group_id": "cafeteria", "start": at(m), "end": at(m + 5)}
        for m in range(0, day_minutes, 10)
    ]
    overrides = [
        {
            "override_id": f"lobby-test-{tag}-{h:02d}",
            "client_id": "lobby-2",
            "desired_state": "off",
            "start": at(h * 60 + 30),
            "end": at(h * 60 + 31),
            "note": "hourly panel test",
        }
        for h in range(24)
    ]
    return {
        "clients": [
            {"client_id": "lobby-1", "group_id": "lobby"},
            {"client_id": "lobby-2", "group_id": "lobby"},
            {"client_id": "cafe-1", "group_id": "cafeteria"},
            {"client_id": "room-101", "group_id": "classrooms"},
            {"client_id": "reception"},
        ],
        "events": events,
        "overrides": overrides,
    }


def main() -> None:
    day = date.fromisoformat(sys.argv[1]) if len(sys.argv) > 1 else datetime.now(UTC).date()
    print(json.dumps(fleet(day), indent=1))


if __name__ == "__main__":
    main()
