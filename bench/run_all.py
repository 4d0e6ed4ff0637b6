"""The benchmark suite: every benchmark, one command, results in docs/performance.md.

    .venv/bin/python bench/run_all.py [--big] [--no-postgres] [--out docs/performance.md]

Runs each benchmark as a subprocess with `--json` (their own options, see
bench/README.md), collects the JSON, describes the machine (read at run time)
and writes docs/performance.md: one table per figure, beside its baseline from
the same run, with the goal from the issues and met / missed. The raw JSON is
kept in bench/results/run_all-<date>.json (git-ignored).

Without `--big` (about 3 minutes on a 2-core machine):

- bench_sync (10,000 clients), bench_state (10,000);
- bench_daemon cold start at 1,000 (`--skip live`) and 10,000 (with the live
  parts: change -> PUBACK on SQLite (polling) and the boundary storm);
- bench_daemon `--db postgres --skip cold` (change -> PUBACK with LISTEN/NOTIFY,
  boundary) in `--pg-schema` (never `public`), if PostgreSQL is reachable;
- bench_coldrss: peak RSS of a cold start in a child process, 1,000 and 10,000;
- bench_audit `--skip replay` (audit fleet) and bench_replay (10,000
  transitions, with and without the intent-log snapshot);
- bench_failover: two real daemons, SIGKILL the active one.

`--big` adds the cold start and its peak RSS at 100,000 clients (the sync of the
fleet alone takes minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from _common import PG_SCHEMA, PG_URL  # noqa: E402

# Goals from the issues.
GOAL_SYNC = 0.5  # issue 2: ours events/s / raw, at least
GOAL_COLD = 0.7  # issue 3: ours msg/s / raw paho, at least
GOAL_COLD_BIG = 1 / 1.5  # issue 5: 100k cold start within 1.5x raw paho
GOAL_CLIENT_P99_SQLITE = 50.0  # ms, issues 3 and 5
GOAL_CLIENT_P99_PG = 30.0  # ms, issue 5
GOAL_GROUP_P99 = 500.0  # ms, issue 3
GOAL_BOUNDARY = 1.5  # issue 3: ours / raw, at most
GOAL_AUDIT = 2.0  # issue 4: ours / plain SQL, below
GOAL_BYTES = 2048  # issue 5: resident bytes per client, at most
GOAL_REPLAY_MS = 100.0  # issue 5


def log(message: str) -> None:
    print(f"[run_all {datetime.now().strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def bench(script: str, *options: str, timeout: float = 900) -> dict[str, Any]:
    """One benchmark as a subprocess with --json; its stderr (progress) goes to ours."""
    cmd = [sys.executable, str(HERE / script), *options, "--json"]
    log(" ".join([Path(cmd[0]).name, *cmd[1:]]))
    started = time.monotonic()
    try:
        out = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s", "command": " ".join(cmd[1:])}
    seconds = time.monotonic() - started
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode != 0 or not lines:
        return {"error": f"exit {out.returncode}", "command": " ".join(cmd[1:]), "wall_seconds": seconds}
    result: dict[str, Any] = json.loads(lines[-1])
    result["wall_seconds"] = round(seconds, 1)
    result["command"] = " ".join(["bench/" + script, *options])
    log(f"  done in {seconds:.0f} s")
    return result


# The machine.


def first_line(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return "not installed"
    text = (out.stdout + out.stderr).strip().splitlines()
    return text[0] if text else "?"


def pg_version(url: str) -> str | None:
    try:
        import sqlalchemy

        engine = sqlalchemy.create_engine(url, connect_args={"connect_timeout": 5})
        try:
            with engine.connect() as conn:
                return str(conn.execute(sqlalchemy.text("SHOW server_version")).scalar())
        finally:
            engine.dispose()
    except Exception:  # unreachable: reported, the PostgreSQL part is skipped
        return None


def machine(pg_url: str, pg: str | None) -> dict[str, str]:
    import sqlite3

    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        kib = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))  # type: ignore[union-attr]
        mem = f"{kib / 1024 / 1024:.1f} GiB"
    except (OSError, AttributeError):
        pass
    mosq = first_line(["mosquitto", "-h"])
    m = re.search(r"mosquitto version (\S+)", mosq)
    commit = first_line(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    return {
        "CPU": f"{cpu}, {os.cpu_count()} logical cores",
        "memory": mem,
        "OS": f"{platform.system()} {platform.release()} ({platform.machine()})",
        "Python": platform.python_version(),
        "SQLite (Python's sqlite3)": sqlite3.sqlite_version,
        "PostgreSQL": f"{pg} ({pg_url.split('@')[-1]})" if pg else "not reachable",
        "Mosquitto": m.group(1) if m else mosq,
        "paho-mqtt": version("paho-mqtt"),
        "eventsourcing / eventsourcing-sqlalchemy / SQLAlchemy": (
            f"{version('eventsourcing')} / {version('eventsourcing-sqlalchemy')} / {version('sqlalchemy')}"
        ),
        "commit measured": commit,
    }


# The report.


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("**met**" if ok else "**missed**")


def f(x: Any, digits: int = 3) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        if x != x:
            return "-"
        if digits == 3:  # the default: by magnitude
            digits = 0 if abs(x) >= 1000 else 1 if abs(x) >= 10 else 3
        return f"{x:,.{digits}f}"
    return f"{x:,}" if isinstance(x, int) else str(x)


class Doc:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.summary: list[tuple[str, str, str, str]] = []  # figure, value, goal, verdict

    def add(self, *lines: str) -> None:
        self.lines.extend(lines)

    def table(self, header: list[str], rows: list[list[Any]]) -> None:
        self.add("| " + " | ".join(header) + " |", "|" + "---|" * len(header))
        for r in rows:
            self.add("| " + " | ".join(f(x) for x in r) + " |")
        self.add("")

    def failed(self, r: dict[str, Any]) -> bool:
        if "error" in r:
            self.add(f"Not measured: `{r.get('command')}` failed ({r['error']}).", "")
            return True
        return False

    def goal(self, figure: str, value: str, goal: str, ok: bool | None) -> None:
        self.summary.append((figure, value, goal, verdict(ok)))


def section_sync(doc: Doc, r: dict[str, Any]) -> None:
    doc.add("## Sync of a fleet (issue 2)", "", f"`{r.get('command')}`", "")
    if doc.failed(r):
        return
    ours, raw = r.get("sync", {}), r.get("baseline", {})
    ratio = r.get("ratio")
    ok = ratio is not None and ratio >= GOAL_SYNC
    doc.table(
        ["figure", "ours", "baseline (raw eventsourcing app, 1,000 per save)", "ratio ours/raw", "goal", ""],
        [
            [
                "ledger events/s",
                ours.get("events_per_second"),
                raw.get("events_per_second"),
                ratio,
                f">= {GOAL_SYNC}",
                verdict(ok),
            ]
        ],
    )
    doc.add(
        f"Sync {f(ours.get('seconds'))} s for {f(ours.get('appended'))} events "
        f"({f(ours.get('rows_per_second'), 0)} snapshot rows/s); a second, identical sync "
        f"{f(r.get('resync', {}).get('seconds'))} s (0 appended).",
        "",
    )
    if not ok:
        doc.add("Dominant step (missed): see `bench/bench_sync.py --profile always`.", "")
    doc.goal("sync events/s vs raw (10k)", f(ratio, 2), f">= {GOAL_SYNC}", ok)


def section_state(doc: Doc, r: dict[str, Any]) -> None:
    doc.add("## Fleet state: load and evaluate (bench_state)", "", f"`{r.get('command')}`", "")
    if doc.failed(r):
        return
    load, base = r.get("load", {}), r.get("baseline", {})
    doc.table(
        ["figure", "ours", "baseline (plain SELECT + json.loads)", "ratio ours/raw (lower is better)"],
        [["load (Projector.pull), s", load.get("seconds"), base.get("seconds"), r.get("ratio")]],
    )
    st, mem = r.get("state", {}), r.get("memory", {})
    doc.add(
        f"State of every client: {f(st.get('clients_per_second'), 0)} clients/s cold, "
        f"{f(st.get('warm_clients_per_second'), 0)} warm; the view (tracemalloc) "
        f"{f(mem.get('bytes_per_client'), 0)} B/client, {f(mem.get('bytes_per_client_with_blocks'), 0)} "
        "with the merged group blocks.",
        "",
    )
    doc.add("No goal in the issues for this one: reported for context.", "")


def cold_row(n: int, r: dict[str, Any], goal: float) -> list[Any]:
    c = r["cold_start"]
    first, second, base = c["first"], c["second"], c["baseline"]
    return [
        f"{n:,}",
        first["seconds"],
        second["seconds"],
        base["seconds"],
        first["ratio"],
        second["ratio"],
        f">= {goal:.2f}",
        verdict(first["ratio"] >= goal),
        verdict(second["ratio"] >= goal),
    ]


def section_cold(doc: Doc, runs: dict[int, dict[str, Any]], rss: dict[int, dict[str, Any]]) -> None:
    doc.add(
        "## Cold start, `run_once` (issues 3 and 5)",
        "",
        "Publish every client's retained QoS 1 intent and wait for every PUBACK (bench_daemon part 1, "
        "the clock moved to Wednesday 10:00 of the generated week). *first*: a fresh ledger that has "
        "never seen a daemon: fold the ledger, record an intent for every client (two ledger events "
        "each), publish, save the checkpoint; this happens once in a fleet's life. *restart*: the same "
        "ledger again, as every later start: resumed from the projector's checkpoint (no fold, nothing "
        "to record), publish. Baseline: raw paho, one connection, the same payloads, measured in the "
        "same run. Ratio = ours msg/s / raw msg/s (higher is better). Goal: >= 0.7 (issue 3); at "
        "100,000 within 1.5x raw, i.e. >= 0.67 (issue 5).",
        "",
    )
    rows = []
    for n, r in sorted(runs.items()):
        if "error" in r or "cold_start" not in r:
            doc.add(f"{n:,} clients: not measured ({r.get('error', 'no cold start in the result')}).", "")
            continue
        goal = GOAL_COLD_BIG if n >= 100_000 else GOAL_COLD
        row = cold_row(n, r, goal)
        rows.append(row)
        doc.goal(f"cold start ratio to raw paho, restart ({n:,})", f"{row[5]:.3f}", row[6], row[5] >= goal)
        doc.goal(f"cold start ratio to raw paho, first ({n:,})", f"{row[4]:.3f}", row[6], row[4] >= goal)
    if rows:
        doc.table(
            [
                "clients",
                "first s",
                "restart s",
                "raw paho s",
                "ratio first",
                "ratio restart",
                "goal",
                "first",
                "restart",
            ],
            rows,
        )
    measured = {n: r for n, r in sorted(runs.items()) if "cold_start" in r}
    if measured:
        n = max(measured)
        c = measured[n]["cold_start"]
        doc.add(f"Steps at {n:,} clients (s; bench_daemon's timers around each step):", "")
        doc.table(
            ["step", "first", "restart"],
            [[k, v, c["second"]["steps"].get(k)] for k, v in c["first"]["steps"].items()],
        )
        before = sum(
            v for k, v in c["first"]["steps"].items() if k.startswith(("rebuild", "evaluate", "record"))
        )
        phases = ", ".join(
            f"{r['cold_start']['first']['publish_phase_ratio']}x raw at {k:,}" for k, r in measured.items()
        )
        doc.add(
            "Where the time goes: the *first* start is dominated by the per-client Python work before "
            f"its first publish (at {n:,}: rebuild, evaluate and record, "
            f"{before:.1f} s "
            "in all: reading and folding every schedule event, building an `IntentLog` and its two "
            "events per client through eventsourcing, and writing them); a restart skips all of it. "
            f"What remains in both is the publish phase (payloads, paho, PUBACKs): {phases}. "
            "What would close the first start: recording the first intent in the log's opening "
            "event (half the records), and evaluating and recording in chunks while paho publishes the "
            "previous one. Profiles: `bench/bench_daemon.py --profile always` (cProfile of the main "
            "thread) or `py-spy record --threads` around it.",
            "",
        )

    doc.add(
        "### Peak resident memory of a cold start (issue 5)",
        "",
        "bench_coldrss: `run_once` alone in a child process (the ledger synced beforehand), then again "
        "(a restart, from the checkpoint the first saved); `VmHWM` (peak RSS) minus `VmRSS` after the "
        "imports, divided by the clients. Baseline: raw paho in a child process with the same imports, "
        "publishing as many messages of the same size (all queued in paho at once, as a raw publisher "
        "does). Goal: <= 2 KB (2,048 B) per client.",
        "",
    )
    rrows = []
    for n, r in sorted(rss.items()):
        if "error" in r:
            doc.add(f"{n:,} clients: not measured ({r['error']}).", "")
            continue
        o, b = r["ours"], r["raw"]
        again = r.get("bytes_per_client_again")
        rrows.append(
            [
                f"{n:,}",
                o["seconds"],
                round(o["peak_kib"] / 1024, 1),
                r["bytes_per_client"],
                again,
                round(b["peak_kib"] / 1024, 1),
                r["raw_bytes_per_message"],
                verdict(r["meets_goal"]),
                "-" if again is None else verdict(r["meets_goal_again"]),
            ]
        )
        if again is not None:
            doc.goal(
                f"resident bytes per client, restart ({n:,})",
                f"{again:,.0f} B",
                "<= 2,048 B",
                r["meets_goal_again"],
            )
        doc.goal(
            f"resident bytes per client, first ({n:,})",
            f"{r['bytes_per_client']:,.0f} B",
            "<= 2,048 B",
            r["meets_goal"],
        )
    if rrows:
        doc.table(
            [
                "clients",
                "first run_once s",
                "first peak RSS MiB",
                "first B/client",
                "restart B/client",
                "raw peak MiB",
                "raw B/message",
                "first <= 2 KB",
                "restart <= 2 KB",
            ],
            rrows,
        )
        doc.add(
            "What a restart holds per client: the `IntentLog` aggregate with its last intent (about "
            "1.4 KB: the aggregate's dict, the intent's fields dict, its id, instants; equal values are "
            "shared across a group's members) plus the daemon's timers and receipt state. A first start "
            "holds the whole folded `FleetView` besides (clients, groups, their events and overrides) "
            "and the records of its batch write. The fixed part (interpreter, engine, SQLite cache, "
            "one publish window of 1,000, a receipts buffer of at most 20,000) weighs most at small "
            "fleets. What would close the rest: one compact row per client (a msgspec Struct or "
            "arrays) instead of an eventsourcing aggregate with dicts.",
            "",
        )


def section_latency(doc: Doc, sqlite: dict[str, Any], pg: dict[str, Any] | None, pg_note: str) -> None:
    doc.add(
        "## Change -> PUBACK latency (issues 3 and 5)",
        "",
        "bench_daemon part 2: the daemon running in a thread on the real clock; another `Ledger` makes "
        "the change; from the commit to the PUBACK of the publish it caused. (a) one client override "
        "on/clear; (b) a group override on a group of 500 clients, to the last of the 500 PUBACKs. "
        "SQLite: the daemon polls (10 ms); PostgreSQL: LISTEN/NOTIFY. Baseline: raw paho publish -> "
        "PUBACK round trip (one in flight), and a raw burst of 500.",
        "",
    )
    rows = []
    for name, r, goal in (("SQLite", sqlite, GOAL_CLIENT_P99_SQLITE), ("PostgreSQL", pg, GOAL_CLIENT_P99_PG)):
        if r is None:
            doc.add(f"{name}: not measured ({pg_note}).", "")
            continue
        if "error" in r or "change_latency" not in r:
            doc.add(f"{name}: not measured ({r.get('error')}).", "")
            continue
        cl = r["change_latency"]
        c, g, b = cl["client"]["commit_to_puback"], cl["group"]["commit_to_last_puback"], cl["baseline"]
        rt, bg = b["round_trip_one_in_flight"], b["burst_group"]
        c_ok, g_ok = c["p99_ms"] < goal, g["p99_ms"] < GOAL_GROUP_P99
        rows.append(
            [
                f"{name}: one client",
                c["p50_ms"],
                c["p99_ms"],
                rt["p50_ms"],
                rt["p99_ms"],
                round(c["p99_ms"] / rt["p99_ms"], 1),
                f"p99 < {goal:.0f} ms",
                verdict(c_ok),
            ]
        )
        rows.append(
            [
                f"{name}: group of {cl['group']['clients']}",
                g["p50_ms"],
                g["p99_ms"],
                bg["p50_ms"],
                bg["p99_ms"],
                round(g["p99_ms"] / bg["p99_ms"], 1),
                f"p99 < {GOAL_GROUP_P99:.0f} ms",
                verdict(g_ok),
            ]
        )
        doc.goal(f"change->PUBACK p99, one client, {name}", f"{c['p99_ms']:.1f} ms", f"< {goal:.0f} ms", c_ok)
        doc.goal(f"change->PUBACK p99, group of 500, {name}", f"{g['p99_ms']:.1f} ms", "< 500 ms", g_ok)
    if rows:
        doc.table(["case", "p50 ms", "p99 ms", "raw p50 ms", "raw p99 ms", "ratio p99", "goal", ""], rows)


def section_boundary(doc: Doc, runs: list[tuple[str, dict[str, Any]]]) -> None:
    doc.add(
        "## Boundary storm (issue 3)",
        "",
        "bench_daemon part 3: every client's window starts at the same instant (`on`) and ends 10 s later "
        "(`off`); boundary -> the last PUBACK, over raw paho publishing as many retained QoS 1 messages. "
        "Goal: <= 1.5x raw.",
        "",
    )
    rows, notes = [], []
    for name, r in runs:
        if "error" in r or "boundary" not in r:
            doc.add(f"{name}: not measured ({r.get('error')}).", "")
            continue
        b = r["boundary"]
        n = b["baseline"]["messages"]
        for e in b["edges"]:
            ok = e["ratio"] <= GOAL_BOUNDARY
            rows.append(
                [
                    name,
                    f"{n:,}",
                    e["edge"],
                    e["boundary_to_last_puback"],
                    b["baseline"]["seconds"],
                    round(e["ratio"], 2),
                    "<= 1.5",
                    verdict(ok),
                ]
            )
            doc.goal(f"boundary storm ratio ({name}, {e['edge']})", f"{e['ratio']:.2f}", "<= 1.5", ok)
            if not ok and "projector_step" in e:
                parts = {
                    "projector.step (evaluate + record_intents)": e["projector_step"],
                    "publish (tick after the step)": (e.get("tick_with_step") or 0) - e["projector_step"],
                    "step end -> last PUBACK (wait for the broker)": e["step_end_to_last_puback"],
                }
                dom = max(parts, key=lambda k: parts[k])
                notes.append(
                    f"- {name} `{e['edge']}`: dominant step {dom} ({parts[dom]:.3f} s); projector.step "
                    f"{e['projector_step']:.3f} s = evaluate {e['evaluate']:.3f} + record_intents "
                    f"{e['record_intents']:.3f}; last publish handed to paho "
                    f"+{e['boundary_to_last_publish']:.3f} s."
                )
    if rows:
        doc.table(["db", "clients", "edge", "boundary -> last PUBACK s", "raw s", "ratio", "goal", ""], rows)
    if notes:
        doc.add(
            "Where the time goes (missed goals):",
            "",
            *notes,
            "",
            "The process is CPU-bound on one core (the GIL; Mosquitto has the other): before its first "
            "publish the step evaluates every due client (timeline, fields, an `IntentIssued` built "
            "through eventsourcing, about 40 us each) and records them in one transaction; then the "
            "burst runs at about the cold start's publish rate. What would close it: preparing the "
            "boundary ahead (the instant and the clients due are known: evaluate, build the events and "
            "encode the payloads before it, so that only the commit and the publishes are left at the "
            "boundary), and committing in chunks so that paho publishes one chunk while the next is "
            "written. Not done: see docs/decisions.md (a boundary's record happens at the boundary).",
            "",
        )


def section_audit(doc: Doc, r: dict[str, Any]) -> None:
    doc.add("## Audit fleet (issue 4)", "", f"`{r.get('command')}`", "")
    if doc.failed(r):
        return
    fl = r.get("fleet", {})
    ok = fl.get("meets_goal")
    doc.table(
        ["figure", "ours s", "plain SQL s", "ratio", "goal", ""],
        [
            [
                "`audit fleet --at` (fleet_at), 10,000 clients",
                fl.get("fleet_at_seconds"),
                fl.get("baseline", {}).get("seconds"),
                fl.get("ratio"),
                "< 2",
                verdict(ok),
            ]
        ],
    )
    parts = fl.get("parts", {})
    if parts:
        steps = {
            "Ledger.read (SQL + mapper)": parts.get("read_seconds", 0),
            "fold": parts.get("fold_seconds", 0),
            "evaluate": parts.get("evaluate_seconds", 0),
        }
        dom = max(steps, key=lambda k: steps[k])
        if not ok:
            doc.add(
                f"Dominant step (missed): {dom} ({steps[dom]:.3f} s); "
                f"read {steps['Ledger.read (SQL + mapper)']:.3f} s, "
                f"fold {steps['fold']:.3f} s, evaluate {steps['evaluate']:.3f} s.",
                "",
            )
    doc.goal("audit fleet vs plain SQL", f(fl.get("ratio"), 2), "< 2", ok)


def section_replay(doc: Doc, r: dict[str, Any]) -> None:
    doc.add(
        "## Replay of a client with 10,000 transitions (issues 4 and 5)",
        "",
        f"`{r.get('command')}`: the client and its transitions built as in bench_audit part 2. "
        "*With snapshot*: `ledger.intent_log(id)` (repository.get from the latest snapshot; one every "
        "100 events). *Without snapshot*: `ledger.issued(id)`, the whole history read from the event "
        "store (a Core SELECT of the stream, each record decoded by `ledger.codec`'s typed msgspec "
        "decoder); for reference, the library's own path, the aggregate folded from its whole stream "
        "by eventsourcing's repository and mapper (no goal: we do not serve replays that way). "
        "Read model: `ReadModel(ledger).replay(id)`, what `intent-ledger replay` prints. Baselines: "
        "plain SQL on the DB-API connection. Goal: < 100 ms (issue 5), < 2x plain SQL (issue 4).",
        "",
    )
    if doc.failed(r):
        return
    ms = r["median_ms"]
    rows = []
    for key, label, base_key, goal in (
        ("read_model_replay", "ReadModel(ledger).replay", "plain_transitions", True),
        ("with_snapshot", "intent_log (with snapshot)", "plain_events", True),
        ("issued", "ledger.issued (without snapshot)", "plain_events", True),
        ("without_snapshot", "library fold without snapshot (reference)", "plain_events", False),
    ):
        ok = ms[key] < GOAL_REPLAY_MS
        ratio = ms[key] / ms[base_key]
        met = verdict(ok) if goal else "-"
        rows.append([label, ms[key], ms[base_key], round(ratio, 2), met, verdict(ratio < GOAL_AUDIT)])
        if goal:
            doc.goal(f"replay 10k: {label}", f"{ms[key]:.1f} ms", "< 100 ms", ok)
    doc.table(["path", "ours ms", "plain SQL ms", "ratio", "< 100 ms", "< 2x plain"], rows)
    doc.add(
        "Plain SQL: `plain_transitions` = `SELECT * FROM audit_transitions WHERE log_name = ? ORDER BY seq` "
        f"({ms['plain_transitions']:.1f} ms); `plain_events` = the log's `ledger_events` rows with "
        f"`json.loads` of each state ({ms['plain_events']:.1f} ms). The snapshot makes `intent_log` "
        f"{1 / max(r['ratios']['with_snapshot_vs_without'], 1e-9):.0f}x faster than the library's full fold. "
        "The library fold spends its time in eventsourcing-sqlalchemy's ORM `select_events` and the "
        "mapper's `json.loads` with an object hook per record (about 40 us each); `ledger.issued` reads "
        "the same rows with a Core SELECT and decodes them typed, with the collector paused.",
        "",
    )


def section_failover(doc: Doc, r: dict[str, Any]) -> None:
    doc.add(
        "## Failover (issue 5)",
        "",
        f"`{r.get('command')}`: two real `intent-ledger run --ttl 10` processes on one SQLite ledger and a "
        "bench Mosquitto; the active one gets SIGKILL; instants from the standby's JSON log (`ts`). "
        "Baseline: the standby's lease poll interval. Goal: < ttl/2.",
        "",
    )
    if doc.failed(r):
        return
    m = r["median_seconds"]
    ok = r["meets_goal"]
    doc.table(
        ["figure (median of runs)", "seconds"],
        [
            ["SIGKILL -> standby active", m["kill_to_active"]],
            ["SIGKILL -> standby's first PUBACK", m["kill_to_first_puback"]],
            [f"SIGKILL -> standby's PUBACK for all {r['clients']:,} clients", m["kill_to_all_pubacks"]],
            ["baseline: standby lease poll", r["baseline"]["standby_poll_seconds"]],
            [f"goal: < ttl/2 = {r['goal_seconds']:g} s", verdict(ok)],
        ],
    )
    doc.add(
        "PostgreSQL (advisory lock) failover is not measured here; tests/publisher/test_failover.py "
        "covers it (about 1 s after SIGKILL).",
        "",
    )
    doc.goal(
        "failover: SIGKILL -> standby's first PUBACK (SQLite)",
        f"{m['kill_to_first_puback']:.2f} s",
        f"< {r['goal_seconds']:g} s",
        ok,
    )


def section_observe(doc: Doc, results: dict[str, Any]) -> None:
    if "observe" in results:
        from bench_observe import report_section

        observed = [("SQLite", results["observe"])]
        if "observe_postgres" in results:
            observed.append(("PostgreSQL", results["observe_postgres"]))
        report_section(doc, observed)


KEPT = "## Figures behind design choices"  # hand-written, carried over by every run


def kept_tail(out: Path) -> str:
    """The hand-written section at the end of the previous report (from KEPT on), if any."""
    old = out.read_text() if out.exists() else ""
    return "" if KEPT not in old else "\n" + old[old.index(KEPT) :].rstrip() + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--big", action="store_true", help="also the cold start and its RSS at 100,000 clients")
    p.add_argument("--no-postgres", action="store_true", help="leave out the PostgreSQL latency run")
    p.add_argument("--pg-url", default=PG_URL)
    p.add_argument("--pg-schema", default=PG_SCHEMA, help=f"never 'public' (default {PG_SCHEMA})")
    p.add_argument("--clients", type=int, default=10_000, help="the fleet of the main runs (default 10,000)")
    p.add_argument("--from-json", help="only write the report from a saved bench/results/run_all-*.json")
    p.add_argument("--out", default=str(ROOT / "docs" / "performance.md"))
    args = p.parse_args()
    if args.pg_schema == "public":
        raise SystemExit("--pg-schema public would drop the tests' tables; use a schema of its own")
    begun = time.monotonic()
    if args.from_json:
        results = json.loads(Path(args.from_json).read_text())
        started_at = datetime.fromisoformat(results["started"])
        total = results["seconds_total"]
        env, big = results["machine"], results.get("big", False)
        pg = results.get("postgres_version")
        pg_note = results.get("postgres_note", "")
        cold = {int(k): v for k, v in results["daemon"].items()}
        rss = {int(k): v for k, v in results["coldrss"].items()}
        daemon_pg = results.get("daemon_postgres")
        clients = results.get("clients", args.clients)
    else:
        started_at = datetime.now(UTC)
        pg = None if args.no_postgres else pg_version(args.pg_url)
        pg_note = "--no-postgres" if args.no_postgres else f"PostgreSQL not reachable at {args.pg_url}"
        env = machine(args.pg_url, pg)
        big, clients = args.big, args.clients
        n = str(clients)
        results = {
            "machine": env,
            "started": started_at.isoformat(),
            "big": big,
            "clients": clients,
            "postgres_version": pg,
            "postgres_note": pg_note,
        }
        results["sync"] = bench("bench_sync.py", "--clients", n, "--profile", "never")
        results["state"] = bench("bench_state.py", "--clients", n)
        sizes = [1_000, clients] + ([100_000] if big else [])
        cold = {}
        rss = {}
        for size in sizes:
            opts = ["--clients", str(size), "--profile", "never"]
            if size != clients:
                opts += ["--skip", "live"]
            cold[size] = bench("bench_daemon.py", *opts, timeout=3600)
            rss[size] = bench("bench_coldrss.py", "--clients", str(size), timeout=3600)
        results["daemon"] = {str(k): v for k, v in cold.items()}
        results["coldrss"] = {str(k): v for k, v in rss.items()}
        daemon_pg = None
        if pg:
            daemon_pg = bench(
                "bench_daemon.py",
                "--db",
                "postgres",
                "--pg-url",
                args.pg_url,
                "--pg-schema",
                args.pg_schema,
                "--clients",
                n,
                "--skip",
                "cold",
                "--profile",
                "never",
            )
            results["daemon_postgres"] = daemon_pg
        results["audit"] = bench("bench_audit.py", "--clients", n, "--skip", "replay", "--profile", "never")
        results["replay"] = bench("bench_replay.py", "--transitions", "10000")
        results["failover"] = bench("bench_failover.py", "--clients", "1000", "--repeat", "3")
        results["observe"] = bench("bench_observe.py", "--clients", n)
        if pg:
            pg_opts = ("--pg-url", args.pg_url, "--pg-schema", args.pg_schema)
            results["observe_postgres"] = bench(
                "bench_observe.py", "--clients", n, "--db", "postgres", *pg_opts
            )
        results["series"] = bench("bench_series.py", "--clients", n, timeout=1800)
        total = time.monotonic() - begun
        results["seconds_total"] = round(total, 1)
        keep = HERE / "results"
        keep.mkdir(exist_ok=True)
        saved = keep / f"run_all-{started_at.strftime('%Y%m%dT%H%M')}.json"
        saved.write_text(json.dumps(results, indent=1))
        log(f"raw results in {saved}")

    doc = Doc()
    section_sync(doc, results["sync"])
    section_cold(doc, cold, rss)
    section_latency(doc, cold[clients], daemon_pg, pg_note)
    section_boundary(doc, [("SQLite", cold[clients])] + ([("PostgreSQL", daemon_pg)] if daemon_pg else []))
    section_audit(doc, results["audit"])
    section_replay(doc, results["replay"])
    section_failover(doc, results["failover"])
    section_state(doc, results["state"])
    section_observe(doc, results)

    if "series" in results:
        from bench_series import report_section as series_section

        series_section(doc, results["series"])

    head = [
        "# Performance",
        "",
        "Written by `bench/run_all.py` (do not edit by hand; run it again). Every figure is measured beside "
        "its baseline in the same run, on this machine; compare ratios, absolute numbers move from machine "
        "to machine and run to run. The benchmarks themselves are described in `bench/README.md`.",
        "",
        "```sh",
        ".venv/bin/python bench/run_all.py          # about 3 minutes on 2 cores",
        ".venv/bin/python bench/run_all.py --big    # + 100,000 clients (about 5 minutes in all)",
        "```",
        "",
        f"Run {started_at.strftime('%Y-%m-%d %H:%M')} UTC, {total / 60:.1f} minutes"
        + ("" if big else "; without `--big`, so no 100,000-client figures")
        + ".",
        "",
        "## The machine",
        "",
        "| | |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in env.items()],
        "",
        "## Summary against the goals",
        "",
        "| figure | measured | goal | |",
        "|---|---|---|---|",
        *[f"| {a} | {b} | {c} | {d} |" for a, b, c, d in doc.summary],
        "",
    ]
    not_done = []
    if not big:
        not_done.append(
            "- 100,000 clients (cold start, its ratio to raw and RSS): run with `--big`; the issue-5 goal "
            '"100k within 1.5x raw" is only judged there.'
        )
    if not pg:
        not_done.append(f"- PostgreSQL change -> PUBACK: {pg_note}.")
    not_done.append(
        "- Failover on PostgreSQL (advisory lock): not in the suite; tests/publisher/test_failover.py."
    )
    head += ["Not measured in this run:", "", *not_done, ""]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(head + doc.lines).rstrip() + "\n" + kept_tail(out))
    log(f"wrote {out} in {total / 60:.1f} min")


if __name__ == "__main__":
    main()
