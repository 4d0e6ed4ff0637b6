"""Load the sample fleet, let the projector live through its day in virtual time, print the replay.

Usage: python examples/demo.py [--db URL]   (default: a fresh SQLite file in a temporary folder)
"""

from __future__ import annotations

import argparse
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ledger import Ledger, Meta
from ledger.sync import parse_snapshot
from projections.projector import Projector
from projections.queries import replay_rows

SAMPLE = Path(__file__).with_name("sample-fleet.json")
DAY_START = datetime(2026, 3, 31, 5, tzinfo=UTC)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", help="ledger URL (default: a temporary SQLite file)")
    args = parser.parse_args()
    url = args.db or f"sqlite:///{tempfile.mkdtemp(prefix='intent-ledger-demo-')}/demo.db"
    ledger = Ledger(url)
    receipt = ledger.sync(
        parse_snapshot(SAMPLE.read_bytes()), prune=False, now=DAY_START, meta=Meta("sync:sample-fleet.json")
    )
    ledger.set_policy({"bridge_gap": 900}, Meta("demo", "lessons 5 min apart stay on"))
    print(f"ledger {url}: sample fleet synced ({receipt.appended} ledger events)")

    # The demo owns a virtual clock: start at 05:00 and jump from boundary to boundary.
    projector = Projector(ledger)
    projector.start(DAY_START)
    end = DAY_START + timedelta(hours=16)
    while (wake := projector.next_wakeup()) is not None and wake <= end:
        projector.step(wake)

    for client_id in sorted(projector.view.clients):
        print(f"\n{client_id}")
        for row in replay_rows(ledger, client_id):
            window = row["event_window"]
            span = f"  window {window['start'][11:16]}-{window['end'][11:16]}" if window else ""
            print(
                f"  #{row['seq']} {row['effective_at']}  {row['desired_state']:<3} "
                f"{row['reason']:<20} {row['intent_id'][:8]}{span}"
            )
    ledger.close()


if __name__ == "__main__":
    main()
