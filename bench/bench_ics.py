"""Benchmark: `sync --ics` of a school's timetable feed, beside the same schedule as a snapshot.

A feed shaped like a timetable export: `--lessons` one-off lessons (as
WebUntis writes each lesson) and `--series` weekly lessons with holidays as
EXDATEs and a moved instance each, in Europe/Vienna. Measured in one run:

- reading: `parse_ics` beside `icalendar.Calendar.from_ical` alone (the
  library's parse is the floor; ours adds zones, rules and ids);
- the first import: `Ledger.sync_feed` into an empty ledger beside `Ledger.sync`
  of the same events and series as a JSON snapshot into another (the ledger's
  work without the feed);
- a second import of the unchanged feed (appends nothing) beside a second
  identical snapshot sync.

    .venv/bin/python -m bench.bench_ics [--lessons N] [--series N] [--db sqlite|postgres] [--json]
"""

from __future__ import annotations

import os
import sys
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

if __package__ in (None, ""):  # run as a file: the repository root on the path, for `bench.*`
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from icalendar import Calendar

from bench._common import arg_parser, database, emit, environment, median, progress
from ledger import Ledger, Meta, TargetRef
from ledger.feed_sync import snapshot_of
from ledger.ics import parse_ics

ROOM = TargetRef("group", "room-101")
NOW = datetime(2026, 12, 1, tzinfo=UTC)
TERM = date(2027, 1, 11)  # a Monday
ZONE = "Europe/Vienna"
HOUR = timedelta(hours=1)


def timetable(lessons: int, series: int) -> bytes:
    """An iCalendar feed of one room's term: separate lessons and weekly series."""
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//bench//timetable//EN", f"X-WR-TIMEZONE:{ZONE}"]
    for n in range(lessons):
        day = TERM + timedelta(days=7 * (n // 25) + n % 5)
        start = datetime.combine(day, datetime.min.time()) + timedelta(hours=8 + n % 25 // 5, minutes=5)
        lines += _vevent(f"lesson-{n}@bench", start, start + timedelta(minutes=50), f"Lesson {n}")
    for n in range(series):
        start = datetime.combine(TERM + timedelta(days=n % 5), datetime.min.time()) + (14 + n % 3) * HOUR
        holidays = ",".join(f"{start + timedelta(weeks=w):%Y%m%dT%H%M%S}" for w in (5, 10, 11))
        extra = ("RRULE:FREQ=WEEKLY;UNTIL=20270702T215959Z", f"EXDATE;TZID={ZONE}:{holidays}")
        lines += _vevent(f"weekly-{n}@bench", start, start + timedelta(minutes=50), f"Weekly {n}", extra)
        moved = start + timedelta(weeks=3)
        rid = (f"RECURRENCE-ID;TZID={ZONE}:{moved:%Y%m%dT%H%M%S}",)
        lines += _vevent(f"weekly-{n}@bench", moved + 2 * HOUR, moved + 3 * HOUR, "moved", rid)
    lines.append("END:VCALENDAR")
    return ("\r\n".join(lines) + "\r\n").encode()


def _vevent(uid: str, start: datetime, end: datetime, summary: str, extra: tuple[str, ...] = ()) -> list[str]:
    return [
        "BEGIN:VEVENT",
        f"UID:{uid}",
        f"DTSTART;TZID={ZONE}:{start:%Y%m%dT%H%M%S}",
        f"DTEND;TZID={ZONE}:{end:%Y%m%dT%H%M%S}",
        f"SUMMARY:{summary}",
        *extra,
        "END:VEVENT",
    ]


def _timed(action: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def measure(db_kind: str, args: Any, data: bytes) -> dict[str, float]:
    meta = Meta("bench")
    parse_s = median([_timed(lambda: parse_ics(data))[0] for _ in range(3)])
    raw_parse_s = median([_timed(lambda: Calendar.from_ical(data))[0] for _ in range(3)])
    feed = parse_ics(data)
    snapshot = snapshot_of(feed, ROOM)
    out: dict[str, float] = {"parse_s": parse_s, "raw_parse_s": raw_parse_s}
    with database(db_kind, args.pg_url, args.pg_schema, "ics") as db:
        ledger = Ledger(db.url, db.env())
        try:
            sync_feed = lambda: ledger.sync_feed(feed, ROOM, prefix="ics-", prune=True, now=NOW, meta=meta)  # noqa: E731
            out["import_s"], first = _timed(sync_feed)
            out["reimport_s"], again = _timed(sync_feed)
            if first.appended == 0 or again.appended != 0:
                raise SystemExit(f"import appended {first.appended}, then {again.appended} (expected 0)")
            out["appended"] = first.appended
        finally:
            ledger.close()
    with database(db_kind, args.pg_url, args.pg_schema, "snapshot") as db:
        ledger = Ledger(db.url, db.env())
        try:
            sync = lambda: ledger.sync(snapshot, prune=False, now=NOW, meta=meta)  # noqa: E731
            out["snapshot_s"], first = _timed(sync)
            out["resnapshot_s"], again = _timed(sync)
            if first.appended != out["appended"] or again.appended != 0:
                raise SystemExit(f"the snapshot appended {first.appended}, then {again.appended}")
        finally:
            ledger.close()
    return out


def main() -> None:
    parser = arg_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--lessons", type=int, default=2_000, help="one-off lessons (default 2,000)")
    parser.add_argument("--series", type=int, default=200, help="weekly series (default 200)")
    args = parser.parse_args()
    data = timetable(args.lessons, args.series)
    progress(args.json, f"feed: {len(data):,} bytes, {args.lessons:,} lessons, {args.series:,} series ...")
    runs = [measure(args.db, args, data) for _ in range(args.repeat)]
    result: dict[str, Any] = {
        "benchmark": "ics",
        "db": args.db,
        "lessons": args.lessons,
        "series": args.series,
        "feed_bytes": len(data),
        "environment": environment(),
        **{k: round(median([r[k] for r in runs]), 4) for k in runs[0]},
    }
    result["parse_ratio"] = round(result["parse_s"] / result["raw_parse_s"], 2)
    result["import_ratio"] = round(result["import_s"] / result["snapshot_s"], 2)
    result["reimport_ratio"] = round(result["reimport_s"] / result["resnapshot_s"], 2)
    lines = [
        f"sync --ics of {args.lessons:,} lessons, {args.series:,} series ({len(data):,} bytes), {args.db}:",
        f"  read:     {result['parse_s']:.2f} s   icalendar alone {result['raw_parse_s']:.2f} s"
        f"   ({result['parse_ratio']:.2f}x)",
        f"  import:   {result['import_s']:.2f} s   same snapshot {result['snapshot_s']:.2f} s"
        f"   ({result['import_ratio']:.2f}x, {result['appended']:,} ledger events)",
        f"  again:    {result['reimport_s']:.2f} s   same snapshot {result['resnapshot_s']:.2f} s"
        f"   ({result['reimport_ratio']:.2f}x, nothing appended)",
    ]
    emit(result, lines, args.json)


if __name__ == "__main__":
    main()
