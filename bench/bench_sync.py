"""Benchmark: `Ledger.sync` of a whole fleet's week into an empty ledger.

Reports ledger events appended per second and snapshot rows per second,
beside a baseline measured in the same run with the same persistence module
and the same kind of database: a raw eventsourcing application that creates N
one-event aggregates and saves them with `app.save(*batch)`, 1,000 per
transaction (N = the number of events the sync appended). The figure that
matters is the ratio ours/raw (goal: at least 0.5).

    .venv/bin/python bench/bench_sync.py [--clients N] [--db sqlite|postgres] [--json]
"""

from __future__ import annotations

import cProfile
import io
import os
import pstats
import sys
import time
from typing import Any
from uuid import UUID

if __package__ in (None, ""):  # run as a file: the repository root on the path, for `bench.*`
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate

from bench import goals
from bench._common import (
    WEEK_START,
    Database,
    arg_parser,
    database,
    dispose,
    emit,
    environment,
    generate_fleet,
    median,
    progress,
    validated,
)
from ledger import Ledger, Meta
from ledger.urls import database_env

RAW_BATCH = 1_000
RAW_APP = "rawbench"  # its tables: rawbench_events (PostgreSQL: dropped before and after)


class Thing(Aggregate):
    """The smallest useful aggregate: created with one small value, one event."""

    def __init__(self, n: int) -> None:
        self.n = n


class RawApp(Application[UUID]):
    name = RAW_APP


def time_raw(db: Database, count: int) -> float:
    """Seconds to create `count` one-event aggregates and save them in batches of 1,000."""
    app = RawApp({**database_env(db.url), **db.env()})
    try:
        started = time.perf_counter()
        for first in range(0, count, RAW_BATCH):
            app.save(*[Thing(n) for n in range(first, min(count, first + RAW_BATCH))])
        seconds = time.perf_counter() - started
        stored = app.recorder.max_notification_id() or 0
        if stored != count:
            raise SystemExit(f"raw baseline stored {stored} events, expected {count}")
        return seconds
    finally:
        dispose(app)


def time_sync(db: Database, snapshot: Any, profile: bool) -> dict[str, Any]:
    ledger = Ledger(db.url, db.env())  # creates the tables: not timed
    meta = Meta("bench")
    try:
        profiler = cProfile.Profile() if profile else None
        started = time.perf_counter()
        if profiler:
            profiler.enable()
        receipt = ledger.sync(snapshot, prune=False, now=WEEK_START, meta=meta)
        if profiler:
            profiler.disable()
        seconds = time.perf_counter() - started
        stored = ledger.max_notification_id()
        if receipt.appended == 0 or stored != receipt.appended:
            raise SystemExit(
                f"sync appended {receipt.appended} events but the table's last id is {stored}: "
                "does another process write to this database?"
            )
        started = time.perf_counter()
        again = ledger.sync(snapshot, prune=False, now=WEEK_START, meta=meta)
        again_seconds = time.perf_counter() - started
        if again.appended != 0:
            raise SystemExit(f"the second identical sync appended {again.appended} events, expected 0")
        out: dict[str, Any] = {
            "appended": receipt.appended,
            "seconds": seconds,
            "resync_seconds": again_seconds,
        }
        if profiler:
            out["profile"] = profile_text(profiler)
        return out
    finally:
        ledger.close()


def profile_text(profiler: cProfile.Profile, limit: int = 25) -> str:
    buffer = io.StringIO()
    stats = pstats.Stats(profiler, stream=buffer)
    stats.sort_stats("tottime").print_stats(limit)
    stats.sort_stats("cumulative").print_stats(limit)
    return buffer.getvalue()


def main() -> None:
    parser = arg_parser(__doc__.split("\n\n")[0])
    parser.add_argument(
        "--profile",
        choices=("auto", "always", "never"),
        default="auto",
        help="cProfile an extra sync and print the top functions (auto: when the ratio is below the goal)",
    )
    args = parser.parse_args()

    fleet = generate_fleet(args.clients, args.groups, args.seed)
    started = time.perf_counter()
    snapshot = validated(fleet)
    parse_seconds = time.perf_counter() - started
    progress(args.json, f"fleet: {fleet.rows:,} snapshot rows; syncing into {args.db} ...")

    runs: list[dict[str, Any]] = []
    for i in range(args.repeat):
        with database(args.db, args.pg_url, args.pg_schema, "ledger") as db:
            ours = time_sync(db, snapshot, profile=False)
        with database(args.db, args.pg_url, args.pg_schema, "raw", (f"{RAW_APP}_events",)) as db:
            raw_seconds = time_raw(db, ours["appended"])
        runs.append({**ours, "raw_seconds": raw_seconds})
        progress(
            args.json, f"run {i + 1}/{args.repeat}: sync {ours['seconds']:.2f} s, raw {raw_seconds:.2f} s"
        )

    appended = runs[0]["appended"]
    seconds = median([r["seconds"] for r in runs])
    raw_seconds = median([r["raw_seconds"] for r in runs])
    resync = median([r["resync_seconds"] for r in runs])
    ours_eps = appended / seconds
    raw_eps = appended / raw_seconds
    ratio = ours_eps / raw_eps

    profile = None
    if args.profile == "always" or (args.profile == "auto" and not goals.SYNC.met(ratio)):
        progress(args.json, "profiling one more sync (cProfile) ...")
        with database(args.db, args.pg_url, args.pg_schema, "ledger") as db:
            profile = time_sync(db, snapshot, profile=True)["profile"]

    result = {
        "benchmark": "sync",
        "db": args.db,
        "fleet": fleet.describe(),
        "repeat": args.repeat,
        "parse_seconds": round(parse_seconds, 4),
        "sync": {
            "appended": appended,
            "seconds": round(seconds, 4),
            "events_per_second": round(ours_eps, 1),
            "rows_per_second": round(fleet.rows / seconds, 1),
        },
        "resync": {"appended": 0, "seconds": round(resync, 4)},
        "baseline": {
            "what": f"eventsourcing Application.save of {appended} one-event aggregates, "
            f"{RAW_BATCH} per transaction",
            "events": appended,
            "seconds": round(raw_seconds, 4),
            "events_per_second": round(raw_eps, 1),
        },
        "ratio": round(ratio, 3),
        "goal": goals.SYNC.bound,
        "meets_goal": goals.SYNC.met(ratio),
        "runs": [{k: round(v, 4) for k, v in r.items()} for r in runs],
        "environment": environment(),
    }
    if profile is not None:
        result["profile"] = profile
    lines = [
        f"bench_sync  db={args.db}  clients={fleet.clients:,}  groups={fleet.groups}  "
        f"events={fleet.group_events + fleet.client_events:,} "
        f"({fleet.adjacent} adjacent, {fleet.overlapping} overlapping)  repeat={args.repeat}",
        f"  parse snapshot      {parse_seconds:8.3f} s   ({fleet.rows:,} rows, not in the sync figure)",
        f"  sync (empty ledger) {seconds:8.3f} s   {appended:,} events appended",
        f"    ledger events/s   {ours_eps:10,.0f}",
        f"    snapshot rows/s   {fleet.rows / seconds:10,.0f}",
        f"  baseline raw save   {raw_seconds:8.3f} s   {appended:,} events, {RAW_BATCH:,}/txn",
        f"    raw events/s      {raw_eps:10,.0f}",
        f"  ratio ours/raw      {ratio:10.2f}   "
        f"(goal {goals.SYNC.text}: {'met' if goals.SYNC.met(ratio) else 'NOT met'})",
        f"  second sync         {resync:8.3f} s   0 events appended",
    ]
    if profile is not None:
        lines += ["", "cProfile of one sync (top by tottime, then by cumulative):", profile]
    emit(result, lines, args.json)


if __name__ == "__main__":
    main()
