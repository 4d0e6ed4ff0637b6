"""Benchmark: the state of every client at one instant, from a synced ledger.

The generated fleet (same as bench_sync) is synced into an empty ledger first
(not measured). Then:

  (a) load: fold the whole ledger into the fleet view, `Projector(ledger).pull()`;
  (b) state: `view.timeline(client_id).at(t)` for every client, as clients/s;
  (c) memory: tracemalloc of building the view, divided by the number of clients.

Baseline in the same run, on the same database: the same rows read with plain
SQL (`SELECT id, topic, state FROM ledger_events`, SQLAlchemy Core) and each
state blob json-decoded. The figure that matters is the ratio load / raw.

    .venv/bin/python bench/bench_state.py [--clients N] [--db sqlite|postgres] [--json]
"""

from __future__ import annotations

import gc
import json
import os
import sys
import time
import tracemalloc
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

if __package__ in (None, ""):  # run as a file: the repository root on the path, for `bench.*`
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import sqlalchemy

from bench._common import (
    WEEK_START,
    Database,
    arg_parser,
    database,
    emit,
    environment,
    generate_fleet,
    median,
    progress,
    validated,
)
from ledger import Ledger, Meta, format_instant, parse_instant
from projections.fleet import FleetView
from projections.projector import Projector

# Wednesday of the generated week, mid-morning: most groups are in or between events.
DEFAULT_AT = format_instant(WEEK_START + timedelta(days=2, hours=10))


def time_raw(engine: sqlalchemy.Engine, table: str) -> tuple[float, int]:
    """Seconds to read every ledger row with plain SQL and json-decode its state."""
    query = sqlalchemy.text(f"SELECT id, topic, state FROM {table}")
    started = time.perf_counter()
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    decoded = [(row_id, topic, json.loads(state)) for row_id, topic, state in rows]
    seconds = time.perf_counter() - started
    return seconds, len(decoded)


def time_load(ledger: Ledger) -> tuple[float, FleetView]:
    projector = Projector(ledger)
    started = time.perf_counter()
    projector.pull()
    return time.perf_counter() - started, projector.view


def time_states(view: FleetView, at: datetime) -> tuple[float, Counter[str]]:
    """Seconds to compute every client's intent at `at`; the intents by state and reason."""
    counts: Counter[str] = Counter()
    started = time.perf_counter()
    for client_id in view.clients:
        intent = view.timeline(client_id).at(at)
        counts[f"{intent.desired_state}/{intent.reason}"] += 1
    return time.perf_counter() - started, counts


def traced_bytes(ledger: Ledger, at: datetime) -> dict[str, int]:
    """Bytes still allocated after building a view (and after computing every state)."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        projector = Projector(ledger)
        projector.pull()
        gc.collect()
        view_bytes = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.reset_peak()
        for client_id in projector.view.clients:
            projector.view.timeline(client_id).at(at)
        gc.collect()
        current, peak = tracemalloc.get_traced_memory()
        # The view keeps each group's merged blocks once computed: that is part of the schedule too.
        with_blocks = current - before
        return {"view": view_bytes, "view_with_blocks": with_blocks, "peak": peak - before}
    finally:
        tracemalloc.stop()


def measure(
    db: Database, snapshot: Any, clients: int, at: datetime, repeat: int, as_json: bool
) -> dict[str, Any]:
    writer = Ledger(db.url, db.env())
    try:
        started = time.perf_counter()
        receipt = writer.sync(snapshot, prune=False, now=WEEK_START, meta=Meta("bench"))
        sync_seconds = time.perf_counter() - started
    finally:
        writer.close()
    progress(as_json, f"synced {receipt.appended:,} events in {sync_seconds:.2f} s; measuring ...")

    ledger = Ledger(db.url, db.env())  # a reader, as the daemon is at start: not timed
    engine = sqlalchemy.create_engine(db.url)
    try:
        with engine.connect() as conn:  # open the pool's connection before timing
            conn.execute(sqlalchemy.text("SELECT 1"))
        runs = []
        for i in range(repeat):
            raw_seconds, raw_rows = time_raw(engine, db.table("ledger_events"))
            load_seconds, view = time_load(ledger)
            if len(view.clients) != clients or raw_rows != receipt.appended:
                raise SystemExit(
                    f"view holds {len(view.clients)} clients (expected {clients}), "
                    f"raw read {raw_rows} rows (expected {receipt.appended})"
                )
            cold_seconds, counts = time_states(view, at)  # computes each group's blocks once
            warm_seconds, _ = time_states(view, at)  # group blocks cached in the view
            runs.append(
                {
                    "raw_seconds": raw_seconds,
                    "load_seconds": load_seconds,
                    "state_seconds": cold_seconds,
                    "state_warm_seconds": warm_seconds,
                }
            )
            progress(
                as_json,
                f"run {i + 1}/{repeat}: raw {raw_seconds:.3f} s, "
                f"load {load_seconds:.3f} s, states {cold_seconds:.3f} s",
            )
            del view
        memory = traced_bytes(ledger, at)
    finally:
        engine.dispose()
        ledger.close()
    return {
        "appended": receipt.appended,
        "sync_seconds": sync_seconds,
        "runs": runs,
        "counts": dict(sorted(counts.items())),
        "memory": memory,
    }


def main() -> None:
    parser = arg_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--at", default=DEFAULT_AT, help=f"the instant of the states (default {DEFAULT_AT})")
    args = parser.parse_args()
    at = parse_instant(args.at, "--at")

    fleet = generate_fleet(args.clients, args.groups, args.seed)
    snapshot = validated(fleet)
    progress(args.json, f"fleet: {fleet.rows:,} snapshot rows; syncing into {args.db} ...")
    with database(args.db, args.pg_url, args.pg_schema, "ledger") as db:
        m = measure(db, snapshot, fleet.clients, at, args.repeat, args.json)

    runs = m["runs"]
    raw = median([r["raw_seconds"] for r in runs])
    load = median([r["load_seconds"] for r in runs])
    state = median([r["state_seconds"] for r in runs])
    warm = median([r["state_warm_seconds"] for r in runs])
    rows = m["appended"]
    per_client = m["memory"]["view"] / fleet.clients
    per_client_blocks = m["memory"]["view_with_blocks"] / fleet.clients
    ratio = load / raw

    result = {
        "benchmark": "state",
        "db": args.db,
        "fleet": fleet.describe(),
        "repeat": args.repeat,
        "at": format_instant(at),
        "ledger_rows": rows,
        "sync_seconds": round(m["sync_seconds"], 4),
        "load": {"seconds": round(load, 4), "rows_per_second": round(rows / load, 1)},
        "state": {
            "seconds": round(state, 4),
            "clients_per_second": round(fleet.clients / state, 1),
            "warm_seconds": round(warm, 4),
            "warm_clients_per_second": round(fleet.clients / warm, 1),
            "intents": m["counts"],
        },
        "memory": {
            "view_bytes": m["memory"]["view"],
            "bytes_per_client": round(per_client, 1),
            "view_with_blocks_bytes": m["memory"]["view_with_blocks"],
            "bytes_per_client_with_blocks": round(per_client_blocks, 1),
        },
        "baseline": {
            "what": "SELECT id, topic, state FROM ledger_events + json.loads of every state",
            "seconds": round(raw, 4),
            "rows_per_second": round(rows / raw, 1),
        },
        "ratio": round(ratio, 3),
        "ratio_means": "our load seconds / raw seconds (lower is better; 1.0 = as fast as raw)",
        "runs": [{k: round(v, 4) for k, v in r.items()} for r in runs],
        "environment": environment(),
    }
    intents = ", ".join(f"{k} {v:,}" for k, v in m["counts"].items())
    lines = [
        f"bench_state  db={args.db}  clients={fleet.clients:,}  groups={fleet.groups}  "
        f"ledger rows={rows:,}  at={format_instant(at)}  repeat={args.repeat}",
        f"  (setup: sync {m['sync_seconds']:.2f} s, not measured)",
        f"  load fleet view     {load:8.3f} s   {rows / load:10,.0f} rows/s",
        f"  baseline raw SQL    {raw:8.3f} s   {rows / raw:10,.0f} rows/s  (SELECT + json.loads)",
        f"  ratio load/raw      {ratio:8.2f}     (lower is better)",
        f"  state of all        {state:8.3f} s   {fleet.clients / state:10,.0f} clients/s "
        f"(group blocks merged on first use)",
        f"  state again (warm)  {warm:8.3f} s   {fleet.clients / warm:10,.0f} clients/s",
        f"  memory of the view  {m['memory']['view'] / 1e6:8.2f} MB  {per_client:10,.0f} bytes/client "
        f"({per_client_blocks:,.0f} with merged group blocks)",
        f"  intents at t        {intents}",
    ]
    emit(result, lines, args.json)


if __name__ == "__main__":
    main()
