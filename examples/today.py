"""Print a sample fleet whose events happen in the next minutes, for a live demo of the daemon.

Usage: python examples/today.py > sample.json && intent-ledger sync sample.json --prune
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta


def main() -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
    tag = now.strftime("%H%M")

    def at(minutes: int) -> str:
        return (now + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")

    fleet = {
        "clients": [
            {"client_id": "lobby-1", "group_id": "lobby"},
            {"client_id": "lobby-2", "group_id": "lobby"},
            {"client_id": "cafe-1", "group_id": "cafeteria"},
            {"client_id": "room-101", "group_id": "classrooms"},
            {"client_id": "reception"},
        ],
        "events": [
            # Adjacent windows: the lobby stays on from minute 1 to minute 5, one intent.
            {"event_id": f"lobby-a-{tag}", "group_id": "lobby", "start": at(1), "end": at(3)},
            {"event_id": f"lobby-b-{tag}", "group_id": "lobby", "start": at(3), "end": at(5)},
            # Overlapping: a client event stretches lobby-1's block to minute 6.
            {"event_id": f"lobby-1-{tag}", "client_id": "lobby-1", "start": at(4), "end": at(6)},
            {"event_id": f"cafe-{tag}", "group_id": "cafeteria", "start": at(2), "end": at(7)},
            {"event_id": f"lesson-1-{tag}", "group_id": "classrooms", "start": at(1), "end": at(2)},
            {"event_id": f"lesson-2-{tag}", "group_id": "classrooms", "start": at(3), "end": at(4)},
            {"event_id": f"desk-{tag}", "client_id": "reception", "start": at(0), "end": at(30)},
        ],
        "overrides": [
            {
                "override_id": f"drill-{tag}",
                "group_id": "cafeteria",
                "desired_state": "off",
                "start": at(4),
                "end": at(5),
                "note": "fire drill",
            },
        ],
    }
    print(json.dumps(fleet, indent=2))


if __name__ == "__main__":
    main()
