"""Benchmark: a soak, N clients for 24 simulated hours on a virtual clock; memory and table growth.

The fleet (`_common.py`, default 10,000 clients, its generated week) is synced
into a fresh database; a Mosquitto of our own is started. The daemon
(`publisher.daemon.Daemon`, real broker session, real ledger) is driven as the
daemon tests drive it: `tick()`, wait until every publish is acknowledged
(`settle`), then the virtual clock jumps to the next boundary or refresh
(`next_timer`). So a simulated day passes with all of its work done (every
transition recorded and published, every refresh, every receipt written,
checkpoints) in the minutes that work takes. The self-check sweep is off: it
compares with echoes that arrive in real time, which virtual time outruns (its
state is one payload per topic, bounded by the fleet).

Figures:

- resident memory (`VmRSS`) at every simulated hour; the largest sample after
  the warm-up (`--warmup` hours, default 24: a day, in which every client goes
  through its first transitions, whose state replaces what the first start
  shared between clients) over the sample at its end (goal in bench/goals.py);
- the rows of every table intent-ledger writes, at the end, and after
  `projections prune --before` (the end minus `--keep` hours, default 12),
  which bounds the receipt tables.

`--ttl` (default 3600, so refreshes every 30 minutes) sets how often every
client is refreshed: the day's refreshes are most of its publishes, and at the
daemon's default ttl of 600 a simulated day takes several times longer to run.

    .venv/bin/python -m bench.bench_soak [--clients N] [--hours H] [--ttl S] [--db D] [--json]
"""

from __future__ import annotations

import ctypes
import gc
import os
import re
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: the repository root on the path, for `bench.*`
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import sqlalchemy

from bench._broker import mosquitto
from bench._common import WEEK_START, arg_parser, database, emit, generate_fleet, progress, scoped, validated
from bench.goals import SOAK_RSS_DRIFT
from ledger import Ledger, Meta
from ledger.persistence import engine_of
from projections import retention
from projections.tables import ALL_TABLES
from publisher.config import BrokerConfig
from publisher.daemon import Daemon, RunSettings
from publisher.logs import EventLog
from tests.publisher.helpers import VirtualClock  # the daemon tests' clock


class Counting:
    """A stream for `EventLog` that keeps no lines: it counts publishes and transitions."""

    def __init__(self) -> None:
        self.publishes = self.transitions = self.failed = 0

    def write(self, text: str) -> int:
        if '"event":"publish"' in text:
            self.publishes += 1
            self.transitions += '"kind":"transition"' in text
            self.failed += '"result":"failed"' in text
        return len(text)

    def flush(self) -> None:
        pass


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def malloc_trim() -> None:
    """Hand the C allocator's free memory back to the system (glibc), as a diagnostic."""
    ctypes.CDLL("libc.so.6").malloc_trim(0)


class _Mallinfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in [
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        ]
    ]


def memory_parts() -> dict[str, float]:
    """Where the resident memory is, MiB: pymalloc's arenas (Python objects), glibc malloc (C
    extensions, SQLite, paho's buffers) in use and free but kept, and SQLite's own count."""
    out: dict[str, float] = {}
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _Mallinfo2
        m = libc.mallinfo2()
        out["malloc_used_mib"] = round((m.uordblks + m.hblkhd) / 2**20, 1)
        out["malloc_free_mib"] = round(m.fordblks / 2**20, 1)
    except (OSError, AttributeError):  # not glibc 2.33+
        pass
    try:
        lib = ctypes.CDLL("libsqlite3.so.0")  # the one Python's sqlite3 links: the same counter
        lib.sqlite3_memory_used.restype = ctypes.c_int64
        out["sqlite_mib"] = round(lib.sqlite3_memory_used() / 2**20, 1)
    except (OSError, AttributeError):
        pass
    stats = pymalloc_stats()
    if "arenas" in stats:
        out["pymalloc_arenas_mib"] = round(stats["arenas"] / 2**20, 1)
        out["pymalloc_used_mib"] = round(stats.get("used", 0) / 2**20, 1)
    return out


def pymalloc_stats() -> dict[str, int]:
    """Bytes of pymalloc's arenas and of their allocated blocks (`sys._debugmallocstats`, on fd 2)."""
    with tempfile.TemporaryFile("w+") as f:
        saved = os.dup(2)
        os.dup2(f.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        f.seek(0)
        text = f.read()
    out = {}
    for key, pattern in (
        ("arenas", r"arenas \* \d+ bytes/arena\s+=\s+([\d,]+)"),
        ("used", r"# bytes in allocated blocks\s+=\s+([\d,]+)"),
    ):
        m = re.search(pattern, text)
        if m:
            out[key] = int(m.group(1).replace(",", ""))
    return out


def table_rows(ledger: Ledger) -> dict[str, int]:
    engine = engine_of(ledger)
    names = set(sqlalchemy.inspect(engine).get_table_names())
    with engine.connect() as conn:
        return {
            t: int(conn.execute(sqlalchemy.text(f"SELECT COUNT(*) FROM {t}")).scalar_one())
            for t in ALL_TABLES
            if t in names
        }


def soak(
    daemon: Daemon, clock: VirtualClock, end: datetime, log: Counting, json_out: bool, trim: bool = False
) -> list[dict[str, Any]]:
    """Drive the daemon from timer to timer until `end`; one sample at every simulated hour."""
    start, samples = clock.t, []
    next_hour = start
    began = time.monotonic()
    while True:
        daemon.tick()
        if not daemon.settle(60):
            raise SystemExit(f"publishes not acknowledged within 60 s at {clock.t.isoformat()}")
        daemon.tick()  # reaps the acknowledgements and writes the receipts of the burst
        while clock.t >= next_hour:
            if trim:
                malloc_trim()
            hour = round((next_hour - start).total_seconds() / 3600)
            samples.append(
                {
                    "hour": hour,
                    "rss_mib": round(rss_mib(), 1),
                    "transitions": log.transitions,
                    "publishes": log.publishes,
                    "gc_objects": len(gc.get_objects()),
                    "allocated_blocks": sys.getallocatedblocks(),  # Python objects alive: a leak grows it
                    **memory_parts(),
                    "real_seconds": round(time.monotonic() - began, 1),
                }
            )
            progress(
                json_out,
                f"  hour {hour:2d}: RSS {samples[-1]['rss_mib']:.1f} MiB, {log.publishes:,} publishes; "
                + ", ".join(
                    f"{k} {v}" for k, v in samples[-1].items() if k.endswith("_mib") and k != "rss_mib"
                ),
            )
            next_hour += timedelta(hours=1)
        t = daemon.next_timer()
        if t is None or t > end:
            if clock.t >= end:
                return samples
            t = min(end, next_hour) if t is None else min(t, end)
        clock.t = max(t, clock.t)


def main() -> None:
    parser = arg_parser((__doc__ or "").split("\n\n")[0])
    parser.add_argument("--hours", type=int, default=48, help="simulated hours (default 48)")
    parser.add_argument(
        "--ttl", type=int, default=3600, help="the daemon's ttl, refresh at half (default 3600)"
    )
    parser.add_argument("--warmup", type=int, default=24, help="hours of warm-up (default 24)")
    parser.add_argument(
        "--trim", action="store_true", help="malloc_trim(0) before each sample (is the growth free memory?)"
    )
    parser.add_argument("--keep", type=int, default=12, help="prune receipts older than the end minus this")
    args = parser.parse_args()
    fleet = generate_fleet(args.clients, args.groups, args.seed)
    snapshot = validated(fleet)
    n = fleet.clients
    start = WEEK_START + timedelta(days=2)  # Wednesday 00:00 of the generated week
    end = start + timedelta(hours=args.hours)
    with (
        database(args.db, args.pg_url, args.pg_schema, "soak") as db,
        tempfile.TemporaryDirectory(prefix="intent-ledger-broker-") as folder,
        mosquitto(Path(folder)) as broker,
    ):
        db = scoped(db)  # the daemon's own tables in the bench schema too (PostgreSQL)
        ledger = Ledger(db.url, db.env())
        try:
            progress(args.json, f"soak: {n:,} clients, {args.hours} simulated hours, ttl {args.ttl} s ...")
            ledger.sync(snapshot, prune=False, now=WEEK_START, meta=Meta("bench"))
            clock, log = VirtualClock(start), Counting()
            daemon = Daemon(
                ledger,
                BrokerConfig(port=broker.port),
                RunSettings(ttl=args.ttl, self_check=False),
                clock=clock,
                log=EventLog(log, now=clock.now),  # type: ignore[arg-type]
            )
            began = time.monotonic()
            samples = soak(daemon, clock, end, log, args.json, args.trim)
            seconds = time.monotonic() - began
            daemon.shutdown()
            rows = table_rows(ledger)
            pruned = retention.prune(ledger, end - timedelta(hours=args.keep))
            after = table_rows(ledger)
        finally:
            ledger.close()
    warm = next(s for s in samples if s["hour"] >= args.warmup)
    later = [s["rss_mib"] for s in samples if s["hour"] >= args.warmup]
    growth = max(later) / warm["rss_mib"]
    result = {
        "benchmark": "soak",
        "db": args.db,
        "clients": n,
        "hours": args.hours,
        "ttl": args.ttl,
        "real_seconds": round(seconds, 1),
        "publishes": log.publishes,
        "transitions": log.transitions,
        "failed": log.failed,
        "samples": samples,
        "warm_rss_mib": warm["rss_mib"],
        "max_rss_mib": max(later),
        "rss_growth": round(growth, 4),
        "meets_goal": SOAK_RSS_DRIFT.met(growth),
        "rows": rows,
        "pruned": pruned,
        "pruned_rows": after,
    }
    lines = [
        f"bench_soak  db={args.db}  clients={n:,}  ttl={args.ttl}  "
        f"{args.hours} simulated hours in {seconds:.0f} s",
        f"  {log.publishes:,} publishes ({log.transitions:,} transitions, {log.failed} failed)",
        *(
            f"  hour {s['hour']:2d}  RSS {s['rss_mib']:7.1f} MiB  gc objects {s['gc_objects']:,}"
            for s in samples
        ),
        f"  largest RSS after hour {args.warmup} / RSS at it: {growth:.3f} (goal {SOAK_RSS_DRIFT.text}: "
        f"{'met' if result['meets_goal'] else 'NOT met'})",
        *(f"  {t:24s} {r:9,} rows; after prune {after.get(t, 0):9,}" for t, r in rows.items()),
    ]
    emit(result, lines, args.json)


if __name__ == "__main__":
    main()
