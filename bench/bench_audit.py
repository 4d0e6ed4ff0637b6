"""Benchmark: the audit queries, `audit fleet --at T` and `replay`, beside plain SQL.

  (1) fleet: `projections.audit.fleet_at(ledger, T)` on a ledger holding the
      generated fleet (synced first, not measured). Baseline in the same run:
      one plain SELECT of every schedule row of `ledger_events`
      (`select(id, topic, state)`, SQLAlchemy Core) and `json.loads` of each state.
  (2) replay: one client with `--transitions` recorded transitions (10,000),
      produced by driving `projections.projector.Projector` through every window
      boundary (not measured), the read model caught up (not measured). Timed:
      `ReadModel(ledger).replay(client_id)` and `ledger.issued(client_id)`.
      Baseline: `SELECT * FROM audit_transitions WHERE log_name = ? ORDER BY seq`
      on the raw DB-API connection.

Ratios are ours / plain (seconds); goal < 2 for each.

    .venv/bin/python bench/bench_audit.py [--clients N] [--transitions T] [--db sqlite|postgres] [--json]
"""

from __future__ import annotations

import cProfile
import gc
import io
import json
import os
import pstats
import sys
import time
from collections.abc import Callable
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
    scoped,
    validated,
)
from bench.goals import AUDIT
from ledger import Ledger, Meta, format_instant, parse_instant
from ledger.app import SCHEDULE_TOPICS, Receipt
from ledger.domain import IntentLog
from ledger.sync import Snapshot, SnapshotClient, SnapshotEvent
from projections import readmodel
from projections.audit import as_of, fleet_at
from projections.projector import Projector
from projections.readmodel import ReadModel

# Wednesday of the generated week, mid-morning (as bench_state): a mix of on and off.
DEFAULT_AT = format_instant(WEEK_START + timedelta(days=2, hours=10))
REPLAY_CLIENT = "replay-1"
REPLAY_GROUP = "replay-g"
# Every table the read model may create (PostgreSQL: dropped in --pg-schema before and after).
AUDIT_TABLES = tuple(t.name for t in readmodel.metadata.sorted_tables)


# Helpers.


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    value = fn()
    return time.perf_counter() - started, value


def profiled(fn: Callable[[], Any], limit: int) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    fn()
    profiler.disable()
    buffer = io.StringIO()
    stats = pstats.Stats(profiler, stream=buffer)
    stats.sort_stats("tottime").print_stats(limit)
    stats.sort_stats("cumulative").print_stats(limit)
    return buffer.getvalue()


class GcClock:
    """Seconds the cyclic garbage collector ran while enabled (gc.callbacks)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._started = 0.0

    def __call__(self, phase: str, _info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._started

    def __enter__(self) -> GcClock:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self)


def ratio(ours: float, plain: float) -> float:
    return ours / plain if plain > 0 else float("inf")


# (1) audit fleet --at T.


def plain_fleet(engine: sqlalchemy.Engine, db: Database) -> int:
    """One SELECT of every schedule row of ledger_events and json.loads of each state."""
    table = sqlalchemy.table(
        "ledger_events",
        sqlalchemy.column("id"),
        sqlalchemy.column("topic"),
        sqlalchemy.column("state"),
        schema=db.schema,
    )
    query = sqlalchemy.select(table.c.id, table.c.topic, table.c.state).where(
        table.c.topic.in_(SCHEDULE_TOPICS)
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    decoded = [(row_id, topic, json.loads(state)) for row_id, topic, state in rows]
    return len(decoded)


def read_only(ledger: Ledger) -> int:
    """Our read path without the fold: `Ledger.read` (paged Core SELECT + eventsourcing mapper)."""
    n = 0
    for _ in ledger.read(topics=SCHEDULE_TOPICS):
        n += 1
    return n


def evaluate(view: Any, at: datetime) -> list[dict[str, Any]]:
    """fleet_at's loop after the fold: every registered client's intent at `at`."""
    return [
        view.timeline(c).at(at).fields() for c, client in sorted(view.clients.items()) if client.registered
    ]


def measure_fleet(
    db: Database, snapshot: Snapshot, clients: int, at: datetime, repeat: int, profile: str, as_json: bool
) -> dict[str, Any]:
    writer = Ledger(db.url, db.env())
    try:
        sync_seconds, receipt = timed(
            lambda: writer.sync(snapshot, prune=False, now=WEEK_START, meta=Meta("bench"))
        )
    finally:
        writer.close()
    progress(as_json, f"fleet: synced {receipt.appended:,} events in {sync_seconds:.2f} s; measuring ...")

    ledger = Ledger(db.url, db.env())  # a fresh reader, as the CLI is
    engine = sqlalchemy.create_engine(db.url)
    try:
        with engine.connect() as conn:  # open the baseline's pooled connection before timing
            conn.execute(sqlalchemy.text("SELECT 1"))
        runs = []
        rows: list[dict[str, Any]] = []
        for i in range(repeat):
            plain_seconds, plain_rows = timed(lambda: plain_fleet(engine, db))
            ours_seconds, rows = timed(lambda: fleet_at(ledger, at))
            if len(rows) != clients or plain_rows != receipt.appended:
                raise SystemExit(
                    f"fleet_at returned {len(rows)} rows (expected {clients}), "
                    f"plain SQL {plain_rows} (expected {receipt.appended})"
                )
            runs.append({"plain_seconds": plain_seconds, "ours_seconds": ours_seconds})
            progress(
                as_json,
                f"fleet run {i + 1}/{repeat}: plain {plain_seconds:.3f} s, fleet_at {ours_seconds:.3f} s",
            )
        # Where our time goes (one more pass of each part, not in the figures above).
        with GcClock() as clock:
            gc_total, _ = timed(lambda: fleet_at(ledger, at))
        with GcClock() as plain_clock:
            plain_gc_total, _ = timed(lambda: plain_fleet(engine, db))
        read_seconds, _ = timed(lambda: read_only(ledger))
        fold_seconds, view = timed(lambda: as_of(ledger))
        eval_seconds, _ = timed(lambda: evaluate(view, at))
        view = None
        counts: dict[str, int] = {}
        for r in rows:
            key = f"{r['desired_state']}/{r['reason']}"
            counts[key] = counts.get(key, 0) + 1
        ours = median([r["ours_seconds"] for r in runs])
        plain = median([r["plain_seconds"] for r in runs])
        prof = None
        if profile == "always" or (profile == "auto" and not AUDIT.met(ratio(ours, plain))):
            progress(as_json, "fleet: profiling one more fleet_at (cProfile) ...")
            prof = profiled(lambda: fleet_at(ledger, at), 15)
    finally:
        engine.dispose()
        ledger.close()
    return {
        "ledger_rows": receipt.appended,
        "sync_seconds": sync_seconds,
        "runs": runs,
        "ours": ours,
        "plain": plain,
        "parts": {
            "read_seconds": read_seconds,
            "as_of_seconds": fold_seconds,
            "fold_seconds": fold_seconds - read_seconds,
            "evaluate_seconds": eval_seconds,
            "gc_pass_seconds": gc_total,
            "gc_seconds": clock.seconds,
            "plain_gc_pass_seconds": plain_gc_total,
            "plain_gc_seconds": plain_clock.seconds,
        },
        "intents": dict(sorted(counts.items())),
        "profile": prof,
    }


# (2) replay of one client with many transitions.


def replay_snapshot(transitions: int) -> tuple[Snapshot, list[datetime]]:
    """One client following one group with ceil(T/2) one-minute events, one minute apart.

    The events are the group's, not the client's: the view caches a group's
    merged blocks, while a client with events of its own gets its timeline
    rebuilt (5,000 windows merged) at every evaluation, about 25 ms a boundary.
    The recorded transitions are the same either way (event_window_active /
    no_active_event, boundary causes).
    """
    events, boundaries = [], []
    for k in range((transitions + 1) // 2):
        start = WEEK_START + timedelta(minutes=2 * k)
        end = start + timedelta(minutes=1)
        events.append(
            SnapshotEvent(
                event_id=f"{REPLAY_GROUP}-e{k:05d}",
                group_id=REPLAY_GROUP,
                start=format_instant(start),
                end=format_instant(end),
            )
        )
        boundaries += [start, end]
    client = SnapshotClient(client_id=REPLAY_CLIENT, group_id=REPLAY_GROUP)
    snapshot = Snapshot(clients=[client], events=events)
    return snapshot, boundaries[:transitions]


def record_transitions(
    ledger: Ledger, boundaries: list[datetime], commit_every: int, chunks: list[float]
) -> int:
    """Drive a Projector through every boundary: start at the first, `step` at each next one.

    `ledger.record_intents` is wrapped on this instance so the projector's logs
    are saved every `commit_every` steps instead of once per step (one
    transaction per step costs ~2.5 ms on SQLite). The logs keep their pending
    events until then; what is saved is exactly what per-step saving would save.
    """
    real = ledger.record_intents
    held: dict[str, IntentLog] = {}

    def deferred(logs: Any, stored: Any = None) -> Receipt:
        del stored  # rows built ahead: the mapper encodes them when they are saved
        for log in logs:
            held[log.name] = log
        return Receipt()

    ledger.record_intents = deferred  # type: ignore[method-assign]
    try:
        projector = Projector(ledger)
        started = time.perf_counter()
        projector.start(boundaries[0])
        for i, boundary in enumerate(boundaries[1:], start=1):
            projector.step(boundary)
            if i % commit_every == 0:
                real(list(held.values()))
                chunks.append(time.perf_counter() - started)
                started = time.perf_counter()
        real(list(held.values()))
        chunks.append(time.perf_counter() - started)
        ledger.take_due_snapshots()  # as the daemon does once nothing is in flight
    finally:
        del ledger.record_intents  # back to the class's method
    log = ledger.intent_log(REPLAY_CLIENT)
    return 0 if log is None else log.seq


def plain_replay(raw: Any, db: Database, paramstyle: str) -> list[tuple[Any, ...]]:
    """The brief's baseline: SELECT * ... WHERE log_name = ? ORDER BY seq on the DB-API connection."""
    mark = "?" if paramstyle == "qmark" else "%s"
    cursor = raw.cursor()
    try:
        cursor.execute(
            f"SELECT * FROM {db.table('audit_transitions')} WHERE log_name = {mark} ORDER BY seq",
            (REPLAY_CLIENT,),
        )
        rows: list[tuple[Any, ...]] = cursor.fetchall()
        return rows
    finally:
        cursor.close()


def plain_replay_decoded(raw: Any, db: Database, paramstyle: str) -> list[tuple[Any, ...]]:
    """The same, plus decoding the two JSON columns (ours returns them as dicts)."""
    rows = plain_replay(raw, db, paramstyle)
    # SQLite returns JSON as text; psycopg already decodes json columns.
    load = json.loads if paramstyle == "qmark" else (lambda v: v)
    return [(*r[:9], load(r[9]) if r[9] is not None else None, load(r[10])) for r in rows]


def plain_issued(raw: Any, db: Database, paramstyle: str, originator: Any) -> list[Any]:
    """What `issued()` reads, in plain SQL: the log's rows of ledger_events, each state json-decoded."""
    mark = "?" if paramstyle == "qmark" else "%s"
    cursor = raw.cursor()
    try:
        cursor.execute(
            f"SELECT originator_version, topic, state FROM {db.table('ledger_events')} "
            f"WHERE originator_id = {mark} ORDER BY originator_version",
            (originator,),
        )
        return [(v, topic, json.loads(state)) for v, topic, state in cursor.fetchall()]
    finally:
        cursor.close()


def measure_replay(
    db: Database, transitions: int, commit_every: int, repeat: int, profile: str, as_json: bool
) -> dict[str, Any]:
    snapshot, boundaries = replay_snapshot(transitions)
    ledger = Ledger(db.url, db.env())
    try:
        sync_seconds, receipt = timed(
            lambda: ledger.sync(snapshot, prune=False, now=WEEK_START, meta=Meta("bench"))
        )
        chunks: list[float] = []
        build_seconds, recorded = timed(lambda: record_transitions(ledger, boundaries, commit_every, chunks))
        if recorded != transitions:
            raise SystemExit(f"recorded {recorded} transitions, expected {transitions}")
        catch_up_seconds, written = timed(lambda: ReadModel(ledger).catch_up())
    finally:
        ledger.close()
    progress(
        as_json,
        f"replay: synced {receipt.appended:,} events ({sync_seconds:.2f} s), recorded {recorded:,} "
        f"transitions ({build_seconds:.2f} s), read model {written:,} rows ({catch_up_seconds:.2f} s); "
        "measuring ...",
    )

    ledger = Ledger(db.url, db.env())  # a fresh reader, as the CLI is
    engine = sqlalchemy.create_engine(db.url)
    raw = engine.raw_connection()
    paramstyle = engine.dialect.paramstyle
    originator = IntentLog.id_for(REPLAY_CLIENT)
    originator_param = originator.bytes if db.schema is None else originator
    try:
        ReadModel(ledger).position()  # open our pooled connection before timing, as the baseline's
        model = ReadModel(ledger)
        runs = []
        for i in range(repeat):
            run: dict[str, float] = {}
            run["plain_seconds"], plain_rows = timed(lambda: plain_replay(raw, db, paramstyle))
            run["plain_decoded_seconds"], _ = timed(lambda: plain_replay_decoded(raw, db, paramstyle))
            run["replay_seconds"], rows = timed(lambda: model.replay(REPLAY_CLIENT))
            run["new_model_replay_seconds"], rows2 = timed(lambda: ReadModel(ledger).replay(REPLAY_CLIENT))

            def cli_path() -> list[dict[str, Any]]:
                m = ReadModel(ledger)
                m.catch_up()  # nothing new: one position query
                return m.replay(REPLAY_CLIENT)

            run["cli_path_seconds"], _ = timed(cli_path)
            run["plain_events_seconds"], plain_events = timed(
                lambda: plain_issued(raw, db, paramstyle, originator_param)
            )
            run["issued_seconds"], issued = timed(lambda: ledger.issued(REPLAY_CLIENT))
            if not (len(plain_rows) == len(rows) == len(rows2) == len(issued) == transitions):
                raise SystemExit(
                    f"rows: plain {len(plain_rows)}, replay {len(rows)}/{len(rows2)}, "
                    f"issued {len(issued)} (expected {transitions})"
                )
            if len(plain_events) != transitions + 1:  # + IntentLogOpened
                raise SystemExit(f"plain ledger_events read {len(plain_events)} rows")
            if [r["intent_id"] for r in rows] != [e.intent_id for e in issued]:
                raise SystemExit("replay and issued disagree")
            runs.append(run)
            progress(
                as_json,
                f"replay run {i + 1}/{repeat}: plain {run['plain_seconds']:.4f} s, "
                f"replay {run['replay_seconds']:.4f} s, issued {run['issued_seconds']:.4f} s",
            )
        med = {k: median([r[k] for r in runs]) for k in runs[0]}
        profiles = {}
        if profile == "always" or (
            profile == "auto" and not AUDIT.met(ratio(med["new_model_replay_seconds"], med["plain_seconds"]))
        ):
            progress(as_json, "replay: profiling ReadModel(ledger).replay (cProfile) ...")
            profiles["replay"] = profiled(lambda: ReadModel(ledger).replay(REPLAY_CLIENT), 15)
        if profile == "always" or (
            profile == "auto" and not AUDIT.met(ratio(med["issued_seconds"], med["plain_seconds"]))
        ):
            progress(as_json, "replay: profiling ledger.issued (cProfile) ...")
            profiles["issued"] = profiled(lambda: ledger.issued(REPLAY_CLIENT), 15)
    finally:
        raw.close()
        engine.dispose()
        ledger.close()
    return {
        "ledger_events": receipt.appended + transitions + 1,
        "setup": {
            "sync_seconds": sync_seconds,
            "record_seconds": build_seconds,
            "catch_up_seconds": catch_up_seconds,
            "commit_every": commit_every,
            "chunk_seconds": chunks,
        },
        "runs": runs,
        "median": med,
        "profiles": profiles,
    }


# Report.


def main() -> None:
    parser = arg_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--at", default=DEFAULT_AT, help=f"the instant of audit fleet (default {DEFAULT_AT})")
    parser.add_argument(
        "--transitions", type=int, default=10_000, help="recorded transitions of the replayed client"
    )
    parser.add_argument(
        "--commit-every", type=int, default=1_000, help="projector steps per saved batch while building"
    )
    parser.add_argument(
        "--profile",
        choices=("auto", "always", "never"),
        default="always",
        help="cProfile one more call of each measured function (auto: only when its ratio misses the goal)",
    )
    parser.add_argument("--skip", choices=("fleet", "replay"), help="leave out one part")
    parser.add_argument(
        "--replay-repeat", type=int, default=9, help="measurements of part 2 (cheap), medians (default 9)"
    )
    parser.set_defaults(repeat=5)
    args = parser.parse_args()
    at = parse_instant(args.at, "--at")
    if args.transitions < 2:
        parser.error("--transitions must be at least 2")

    result: dict[str, Any] = {
        "benchmark": "audit",
        "db": args.db,
        "repeat": args.repeat,
        "goal": f"ours / plain {AUDIT.text}",
    }
    lines: list[str] = []
    profiles: list[str] = []

    if args.skip != "fleet":
        fleet = generate_fleet(args.clients, args.groups, args.seed)
        snapshot = validated(fleet)
        progress(args.json, f"fleet: {fleet.rows:,} snapshot rows; syncing into {args.db} ...")
        with database(args.db, args.pg_url, args.pg_schema, "fleet") as db:
            m = measure_fleet(db, snapshot, fleet.clients, at, args.repeat, args.profile, args.json)
        r = ratio(m["ours"], m["plain"])
        p = m["parts"]
        result["fleet"] = {
            "fleet": fleet.describe(),
            "at": format_instant(at),
            "ledger_rows": m["ledger_rows"],
            "sync_seconds": round(m["sync_seconds"], 4),
            "fleet_at_seconds": round(m["ours"], 4),
            "baseline": {
                "what": "SELECT id, topic, state FROM ledger_events WHERE topic IN (schedule topics) "
                "(SQLAlchemy Core, one query) + json.loads of every state",
                "seconds": round(m["plain"], 4),
            },
            "ratio": round(r, 3),
            "meets_goal": AUDIT.met(r),
            "parts": {k: round(v, 4) for k, v in p.items()},
            "intents": m["intents"],
            "runs": [{k: round(v, 4) for k, v in run.items()} for run in m["runs"]],
        }
        if m["profile"]:
            result["fleet"]["profile"] = m["profile"]
            profiles += ["", "cProfile of fleet_at (top by tottime, then by cumulative):", m["profile"]]
        intents = ", ".join(f"{k} {v:,}" for k, v in m["intents"].items())
        lines += [
            f"bench_audit  db={args.db}  repeat={args.repeat}  (medians; goal ours/plain {AUDIT.text})",
            f"1. audit fleet --at {format_instant(at)}: clients={fleet.clients:,} groups={fleet.groups} "
            f"ledger rows={m['ledger_rows']:,} (setup: sync {m['sync_seconds']:.2f} s, not measured)",
            f"  fleet_at(ledger, T)       {m['ours']:8.3f} s   {fleet.clients / m['ours']:10,.0f} clients/s",
            f"  plain SELECT + json.loads {m['plain']:8.3f} s   "
            f"{m['ledger_rows'] / m['plain']:10,.0f} rows/s",
            f"  ratio ours/plain          {r:8.2f}     ({'met' if AUDIT.met(r) else 'NOT met'})",
            f"  where ours goes (one extra pass each): Ledger.read {p['read_seconds']:.3f} s "
            f"(SQL + eventsourcing mapper), fold {p['fold_seconds']:.3f} s "
            f"(as_of {p['as_of_seconds']:.3f} s), "
            f"evaluate {p['evaluate_seconds']:.3f} s",
            f"  cyclic gc inside one more fleet_at: {p['gc_seconds']:.3f} s of {p['gc_pass_seconds']:.3f} s "
            f"(plain: {p['plain_gc_seconds']:.3f} s of {p['plain_gc_pass_seconds']:.3f} s)",
            f"  intents at T              {intents}",
        ]
    else:
        lines.append(
            f"bench_audit  db={args.db}  repeat={args.repeat}  (medians; goal ours/plain {AUDIT.text})"
        )

    if args.skip != "replay":
        progress(args.json, f"replay: building a client with {args.transitions:,} transitions ...")
        with database(args.db, args.pg_url, args.pg_schema, "replay", AUDIT_TABLES) as db:
            m = measure_replay(
                scoped(db), args.transitions, args.commit_every, args.replay_repeat, args.profile, args.json
            )
        med = m["median"]
        plain = med["plain_seconds"]
        figures = {
            "replay_seconds": med["replay_seconds"],
            "new_model_replay_seconds": med["new_model_replay_seconds"],
            "cli_path_seconds": med["cli_path_seconds"],
            "issued_seconds": med["issued_seconds"],
        }
        result["replay"] = {
            "repeat": args.replay_repeat,
            "client_id": REPLAY_CLIENT,
            "transitions": args.transitions,
            "ledger_events": m["ledger_events"],
            "setup": {
                k: [round(x, 3) for x in v] if isinstance(v, list) else round(v, 4)
                for k, v in m["setup"].items()
            },
            **{k: round(v, 5) for k, v in figures.items()},
            "baseline": {
                "what": "SELECT * FROM audit_transitions WHERE log_name = ? ORDER BY seq "
                "(DB-API cursor, fetchall)",
                "seconds": round(plain, 5),
                "with_json_decode_seconds": round(med["plain_decoded_seconds"], 5),
                "ledger_events_rows_seconds": round(med["plain_events_seconds"], 5),
            },
            "ratios": {
                "replay": round(ratio(med["replay_seconds"], plain), 3),
                "new_model_replay": round(ratio(med["new_model_replay_seconds"], plain), 3),
                "cli_path": round(ratio(med["cli_path_seconds"], plain), 3),
                "issued": round(ratio(med["issued_seconds"], plain), 3),
                "replay_vs_decoded": round(ratio(med["replay_seconds"], med["plain_decoded_seconds"]), 3),
                "issued_vs_ledger_events_rows": round(
                    ratio(med["issued_seconds"], med["plain_events_seconds"]), 3
                ),
            },
            "runs": [{k: round(v, 5) for k, v in run.items()} for run in m["runs"]],
        }
        rr = result["replay"]["ratios"]
        result["replay"]["meets_goal"] = {
            k: AUDIT.met(rr[k]) for k in ("replay", "new_model_replay", "cli_path", "issued")
        }
        for name, text in m["profiles"].items():
            result["replay"][f"profile_{name}"] = text
            what = "ReadModel(ledger).replay" if name == "replay" else "ledger.issued"
            profiles += ["", f"cProfile of {what} (top by tottime, then by cumulative):", text]
        s = m["setup"]

        def line(label: str, seconds: float, key: str, base: str = "plain") -> str:
            ok = "met" if AUDIT.met(rr[key]) else "NOT met"
            return f"  {label:34s}{seconds * 1000:9.1f} ms   ratio {rr[key]:6.2f} vs {base} ({ok})"

        n = args.transitions
        lines += [
            f"2. replay {REPLAY_CLIENT}: repeat={args.replay_repeat}, {n:,} transitions, "
            f"{m['ledger_events']:,} ledger events "
            f"(setup: sync {s['sync_seconds']:.2f} s, projector {s['record_seconds']:.2f} s, "
            f"catch_up {s['catch_up_seconds']:.2f} s, not measured)",
            f"  (projector, {s['commit_every']:,} steps at a time: first {s['chunk_seconds'][0]:.2f} s, "
            f"last {s['chunk_seconds'][-1]:.2f} s; each step's read scans every intent row recorded "
            "since the last schedule change)",
            f"  plain SELECT * (DB-API)           {plain * 1000:9.1f} ms   "
            f"{n / plain:10,.0f} rows/s  (baseline)",
            f"  plain SELECT * + JSON decode      {med['plain_decoded_seconds'] * 1000:9.1f} ms",
            line("model.replay(id) (model built)", med["replay_seconds"], "replay"),
            line("ReadModel(ledger).replay(id)", med["new_model_replay_seconds"], "new_model_replay"),
            line("  + catch_up() first (CLI path)", med["cli_path_seconds"], "cli_path"),
            line("ledger.issued(id)", med["issued_seconds"], "issued"),
            f"  plain ledger_events rows + json   {med['plain_events_seconds'] * 1000:9.1f} ms   "
            f"(issued / this: {rr['issued_vs_ledger_events_rows']:.2f})",
        ]

    result["environment"] = environment()
    emit(result, lines + profiles, args.json)


if __name__ == "__main__":
    main()
