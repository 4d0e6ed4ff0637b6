"""Benchmark: replay of one client with T transitions, with and without the intent-log snapshot.

The client, its 10,000 transitions and the read model are built exactly as in
bench_audit.py part 2 (its `replay_snapshot` and `record_transitions` are
reused; not timed). Timed, each on a fresh `Ledger`, medians of `--repeat`:

- `ledger.intent_log(id)`: the aggregate through `repository.get`, which starts
  from the latest snapshot (`Ledger.snapshotting_intervals`: every 100 events)
  and folds the events after it: **with snapshot**;
- `ledger.issued(id)`: every IntentIssued of the stream, read from the event
  store (a Core SELECT and `ledger.codec`'s typed decoder): **without snapshot**;
- for reference, the library's path: the same aggregate folded from its whole
  stream (`ledger.events.get(id)` and eventsourcing's `project_aggregate`, i.e.
  `repository.get` with the snapshot store ignored), `without_snapshot` in the
  JSON;
- `ReadModel(ledger).replay(id)`: the audit read model (what `intent-ledger
  replay` prints).

Baseline: `SELECT * FROM audit_transitions WHERE log_name = ? ORDER BY seq`
on the raw DB-API connection (bench_audit's), and for the event-store paths the
log's rows of `ledger_events` in plain SQL with `json.loads` of each state.
Goal (issue 5): replay under 100 ms; (issue 4): under 2x plain SQL.

    .venv/bin/python bench/bench_replay.py [--transitions T] [--json]
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

if __package__ in (None, ""):  # run as a file: the repository root on the path, for `bench.*`
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import sqlalchemy
from eventsourcing.application import project_aggregate  # repository.get's default projector

from bench._common import WEEK_START, arg_parser, database, emit, median, progress
from bench.bench_audit import (
    REPLAY_CLIENT,
    plain_issued,
    plain_replay,
    record_transitions,
    replay_snapshot,
)
from bench.goals import REPLAY_MS
from ledger import Ledger, Meta
from ledger.domain import IntentLog
from projections.readmodel import ReadModel


def timed(fn: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    value = fn()
    return time.perf_counter() - started, value


def main() -> None:
    parser = arg_parser(__doc__.split("\n\n")[0], default_clients=1)
    parser.add_argument("--transitions", type=int, default=10_000, help="transitions of the client (10,000)")
    parser.add_argument("--commit-every", type=int, default=1_000, help="save the logs every N steps")
    args = parser.parse_args()
    repeat = max(args.repeat, 7)
    if args.db != "sqlite":
        raise SystemExit("bench_replay: SQLite only (bench_audit.py covers PostgreSQL)")
    snapshot, boundaries = replay_snapshot(args.transitions)
    with database("sqlite", args.pg_url, args.pg_schema, "replay") as db:
        ledger = Ledger(db.url)
        try:
            ledger.sync(snapshot, prune=False, now=WEEK_START, meta=Meta("bench"))
            progress(args.json, f"replay: recording {args.transitions:,} transitions (not timed) ...")
            setup, recorded = timed(lambda: record_transitions(ledger, boundaries, args.commit_every, []))
            ReadModel(ledger).catch_up()
        finally:
            ledger.close()
        if recorded != args.transitions:
            raise SystemExit(f"recorded {recorded}, expected {args.transitions}")
        originator = IntentLog.id_for(REPLAY_CLIENT)
        engine = sqlalchemy.create_engine(db.url)
        raw = engine.raw_connection()
        runs: list[dict[str, float]] = []
        try:
            for _ in range(repeat):
                run: dict[str, float] = {}
                run["plain_transitions"], rows = timed(lambda: plain_replay(raw, db, "qmark"))
                run["plain_events"], _ = timed(lambda: plain_issued(raw, db, "qmark", originator.bytes))
                ledger = Ledger(db.url)
                try:
                    ledger.max_notification_id()  # open the pooled connection before timing
                    run["with_snapshot"], log = timed(lambda lg=ledger: lg.intent_log(REPLAY_CLIENT))
                    run["without_snapshot"], log2 = timed(
                        lambda lg=ledger: project_aggregate(None, lg.events.get(originator))
                    )
                    run["issued"], issued = timed(lambda lg=ledger: lg.issued(REPLAY_CLIENT))
                    run["read_model_replay"], replayed = timed(
                        lambda lg=ledger: ReadModel(lg).replay(REPLAY_CLIENT)
                    )
                finally:
                    ledger.close()
                if not (log.seq == log2.seq == len(issued) == len(replayed) == len(rows) == args.transitions):
                    raise SystemExit("the replay paths disagree")
                runs.append(run)
        finally:
            raw.close()
            engine.dispose()
    med = {k: median([r[k] for r in runs]) for k in runs[0]}
    ms = {k: round(v * 1000, 2) for k, v in med.items()}
    result = {
        "benchmark": "replay",
        "transitions": args.transitions,
        "repeat": repeat,
        "setup_seconds": round(setup, 2),
        "median_ms": ms,
        "ratios": {
            "with_snapshot_vs_without": round(med["with_snapshot"] / med["without_snapshot"], 4),
            "without_snapshot_vs_plain_events": round(med["without_snapshot"] / med["plain_events"], 2),
            "issued_vs_plain_events": round(med["issued"] / med["plain_events"], 2),
            "read_model_replay_vs_plain": round(med["read_model_replay"] / med["plain_transitions"], 2),
        },
        "goal_ms": REPLAY_MS.bound,
    }
    lines = [f"bench_replay  transitions={args.transitions:,}  medians of {repeat}"]
    for k, v in ms.items():
        lines.append(f"  {k:22s} {v:9.2f} ms")
    lines += [f"  {k}: {v}" for k, v in result["ratios"].items()]
    emit(result, lines, args.json)


if __name__ == "__main__":
    main()
