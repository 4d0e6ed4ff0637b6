"""The sections of docs/performance.md, one function per benchmark, in the order of the report.

Each takes the `Doc` and the suite's results (`Results`: run key -> that
benchmark's JSON) and adds its tables and its summary rows; a run that could
not measure still adds its rows, marked red with the reason (`Doc.failed`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from bench import goals
from bench.report import Doc, Row, fmt

__all__ = [
    "SECTIONS",
    "Results",
    "section_audit",
    "section_boundary",
    "section_cli",
    "section_cold",
    "section_failover",
    "section_ics",
    "section_latency",
    "section_memory",
    "section_observe",
    "section_replay",
    "section_soak",
    "section_state",
    "section_sync",
    "section_with_series",
]

Results = dict[str, Any]  # "runs": key -> a benchmark's JSON; "sizes", "clients", "pg_note", ...


def run(res: Results, key: str) -> dict[str, Any] | None:
    r: dict[str, Any] | None = res["runs"].get(key)
    return r


def command(r: dict[str, Any] | None) -> str:
    return f"`{r.get('command')}`" if r else "(not run)"


def section_sync(doc: Doc, res: Results) -> None:
    r = run(res, "sync")
    doc.add("## Sync of a fleet (issue 2)", "", command(r), "")
    base = "raw eventsourcing app, 1,000 per save"
    row = Row(f"sync: ledger events/s ({res['clients']:,})", None, "ev/s", base, None, goals.SYNC, True)
    if doc.failed(r, row) or r is None:
        return
    ours, raw = r["sync"], r["baseline"]
    doc.row(
        Row(row.figure, ours["events_per_second"], "ev/s", base, raw["events_per_second"], goals.SYNC, True)
    )
    doc.add(
        f"Sync {fmt(ours.get('seconds'))} s for {fmt(ours.get('appended'))} events "
        f"({fmt(ours.get('rows_per_second'), 0)} snapshot rows/s); a second, identical sync "
        f"{fmt(r.get('resync', {}).get('seconds'))} s (0 appended).",
        "",
    )


def size_goal(n: int, goal: goals.Goal) -> goals.Goal | None:
    """Cold start and memory goals are judged at the sizes the issue names; others are context."""
    return goal if n in goals.GOAL_SIZES else None


def section_cold(doc: Doc, res: Results) -> None:
    doc.add(
        "## Cold start, `run_once` (issue 14)",
        "",
        "Publish every client's retained QoS 1 intent and wait for every PUBACK (bench_daemon part 1, "
        "the clock moved to Wednesday 10:00 of the generated week). *first*: a fresh ledger that has "
        "never seen a daemon: fold the ledger, record an intent for every client, publish, save the "
        "checkpoint. *restart*: the same ledger again, resumed from the projector's checkpoint. "
        "Baseline: raw paho, one connection, the same payloads, in the same run. Ratio = ours msg/s "
        f"/ raw msg/s. Goals at {', '.join(f'{n:,}' for n in goals.GOAL_SIZES)} clients: first "
        f"{goals.COLD_FIRST.text}, restart {goals.COLD_RESTART.text}.",
        "",
    )
    rows: list[list[Any]] = []
    measured: dict[int, dict[str, Any]] = {}
    for n in res["sizes"]:
        r = run(res, f"daemon-{n}")
        wanted = [
            Row(f"{which} start msg/s ({n:,})", None, "msg/s", "raw paho", None, size_goal(n, g), True)
            for which, g in (("first", goals.COLD_FIRST), ("restart", goals.COLD_RESTART))
        ]
        if doc.failed(r, *wanted) or r is None:
            continue
        c = r["cold_start"]
        measured[n] = c
        raw = c["baseline"]["msg_per_s"]
        for row, part in zip(wanted, (c["first"], c["second"]), strict=True):
            doc.row(Row(row.figure, part["msg_per_s"], "msg/s", "raw paho", raw, row.goal, True))
        rows.append(
            [
                f"{n:,}",
                c["first"]["seconds"],
                c["second"]["seconds"],
                c["baseline"]["seconds"],
                c["first"]["ratio"],
                c["second"]["ratio"],
            ]
        )
    if rows:
        doc.table(["clients", "first s", "restart s", "raw paho s", "ratio first", "ratio restart"], rows)
    if measured:
        n = max(measured)
        c = measured[n]
        doc.add(f"Steps at {n:,} clients (s; bench_daemon's timers around each step):", "")
        doc.table(
            ["step", "first", "restart"],
            [[k, v, c["second"]["steps"].get(k)] for k, v in c["first"]["steps"].items()],
        )
        phases = ", ".join(f"{m['first']['publish_phase_ratio']}x raw at {k:,}" for k, m in measured.items())
        doc.add(
            f"The publish phase alone (payloads, paho, PUBACKs) of a first start: {phases}. Profiles: "
            "`python -m bench.bench_daemon --profile always` (cProfile of the main thread) or "
            "`py-spy record --threads` around it.",
            "",
        )


def section_memory(doc: Doc, res: Results) -> None:
    doc.add(
        "### Peak resident memory of a cold start (issue 14)",
        "",
        "bench_coldrss: `run_once` alone in a child process (the ledger synced beforehand), then again "
        "(a restart); `VmHWM` (peak RSS) minus `VmRSS` after the imports (the idle process), divided by "
        "the clients. Baseline: raw paho in a child process with the same imports, publishing as many "
        "messages of the same size (all queued in paho at once). Goal at "
        f"{', '.join(f'{n:,}' for n in goals.GOAL_SIZES)} clients: {goals.BYTES_PER_CLIENT.text} a client.",
        "",
    )
    rows: list[list[Any]] = []
    for n in res["sizes"]:
        r = run(res, f"coldrss-{n}")
        goal = size_goal(n, goals.BYTES_PER_CLIENT)
        wanted = [
            Row(f"peak RSS a client, {which} ({n:,})", None, "B", "raw paho a message", None, goal, False)
            for which in ("first", "restart")
        ]
        if doc.failed(r, *wanted) or r is None:
            continue
        raw = r["raw_bytes_per_message"]
        for row, value in zip(wanted, (r["bytes_per_client"], r.get("bytes_per_client_again")), strict=True):
            doc.row(Row(row.figure, value, "B", row.baseline, raw, goal, False, "not in the result"))
        o, b = r["ours"], r["raw"]
        rows.append(
            [
                f"{n:,}",
                o["seconds"],
                round(o["peak_kib"] / 1024, 1),
                r["bytes_per_client"],
                r.get("bytes_per_client_again"),
                round(b["peak_kib"] / 1024, 1),
                raw,
            ]
        )
    if rows:
        doc.table(
            [
                "clients",
                "first run_once s",
                "first peak MiB",
                "first B/client",
                "restart B/client",
                "raw peak MiB",
                "raw B/message",
            ],
            rows,
        )


def section_latency(doc: Doc, res: Results) -> None:
    doc.add(
        "## Change -> PUBACK latency (issue 14)",
        "",
        "bench_daemon part 2: the daemon running in a thread on the real clock; another `Ledger` makes "
        "the change (for one client, in a process of its own, as the CLI's); from the commit"
        " to the PUBACK of the publish it caused. (a) one client override "
        "on/clear; (b) a group override on a group of 500 clients, to the last of the 500 PUBACKs. "
        "SQLite: the daemon polls; PostgreSQL: LISTEN/NOTIFY. Baseline: raw paho publish -> PUBACK "
        "round trip (one in flight), and a raw burst of 500, measured in rounds interleaved with ours "
        "(four rounds: the baseline's, then ours; the p99 of the samples of all rounds, so both see the "
        "same load; *median round ratio*: the median of the rounds' p99 ratios). Goals: one client p99 "
        f"{goals.CLIENT_P99_SQLITE.text} on SQLite, {goals.CLIENT_P99_PG.text} on PostgreSQL; the group "
        f"p99 {goals.GROUP_RATIO.text}x the raw burst's p99 and {goals.GROUP_P99.text}.",
        "",
    )
    rows: list[list[Any]] = []
    for name, key, goal in (
        ("SQLite", f"daemon-{res['clients']}", goals.CLIENT_P99_SQLITE),
        ("PostgreSQL", "daemon-postgres", goals.CLIENT_P99_PG),
    ):
        r = run(res, key)
        wanted = [
            Row(
                f"change->PUBACK p99, one client, {name}", None, "ms", "raw round trip p99", None, goal, False
            ),
            Row(
                f"change->PUBACK p99, group of 500 vs raw, {name}",
                None,
                "ms",
                "raw burst p99",
                None,
                goals.GROUP_RATIO,
                True,
            ),
            Row(
                f"change->PUBACK p99, group of 500, {name}",
                None,
                "ms",
                "raw burst p99",
                None,
                goals.GROUP_P99,
                False,
            ),
        ]
        if r is None and name == "PostgreSQL":
            r = {"error": "not run", "reason": res["pg_note"]}
        if doc.failed(r, *wanted) or r is None:
            continue
        cl = r["change_latency"]
        c, g, b = cl["client"]["commit_to_puback"], cl["group"]["commit_to_last_puback"], cl["baseline"]
        rt, bg = b["round_trip_one_in_flight"], b["burst_group"]
        for row, value, base in zip(wanted, (c, g, g), (rt, bg, bg), strict=True):
            doc.row(
                Row(row.figure, value["p99_ms"], "ms", row.baseline, base["p99_ms"], row.goal, row.on_ratio)
            )
        for label, part, mine, base in (
            ("one client", cl["client"], c, rt),
            (f"group of {cl['group']['clients']}", cl["group"], g, bg),
        ):
            figures = [mine["p50_ms"], mine["p99_ms"], base["p50_ms"], base["p99_ms"]]
            rows.append([f"{name}: {label}", *figures, part.get("median_round_ratio")])
    if rows:
        doc.table(["case", "p50 ms", "p99 ms", "raw p50 ms", "raw p99 ms", "median round ratio"], rows)


def section_boundary(doc: Doc, res: Results) -> None:
    doc.add(
        "## Boundary storm (issue 14)",
        "",
        "bench_daemon part 3: every client's window starts at the same instant (`on`) and ends later "
        "(`off`); boundary -> the last PUBACK, over raw paho publishing as many retained QoS 1 messages "
        f"(goal {goals.BOUNDARY.text}x raw). Beside it the end-to-end figure: boundary -> the last message "
        "received by a subscriber to every screen's topic (as screens are), over the raw burst's first "
        "publish -> the last message the same subscriber received. In interleaved rounds (`--storm-rounds`): "
        "each round a raw burst right before each edge, so both see that moment's load; the seconds are "
        "the medians of the rounds, the ratio checked against the goal the median of the rounds' ratios "
        "(*pooled*: median over median beside it; the summary's ratio is the median of the rounds' "
        "ratios, so it need not be the quotient of the two medians it shows). The lead time to the "
        "boundary is sized from the measured write of a change; a round whose boundary passed while its "
        "events were written is "
        "tried once more (`retried` below). Results of runs before the rounds (one storm after three "
        "raw bursts) read as one round.",
        "",
    )
    rows: list[list[Any]] = []
    notes: list[str] = []
    for name, key in (("SQLite", f"daemon-{res['clients']}"), ("PostgreSQL", "daemon-postgres")):
        r = run(res, key)
        wanted = [
            Row(
                f"boundary -> last PUBACK ({name}, {edge})",
                None,
                "s",
                "raw burst",
                None,
                goals.BOUNDARY,
                True,
            )
            for edge in ("on", "off")
        ]
        if r is None and name == "PostgreSQL":
            r = {"error": "not run", "reason": res["pg_note"]}
        if doc.failed(r, *wanted) or r is None:
            continue
        b = r["boundary"]
        pooled_raw, pooled_e2e = b["baseline"]["seconds"], b["baseline"].get("received_seconds")
        for row, e in zip(wanted, b["edges"], strict=False):
            # Runs before the rounds: one raw baseline for both edges, the ratio over it.
            raw = e.get("raw_seconds", pooled_raw)
            raw_e2e = e.get("raw_received_seconds", pooled_e2e)
            doc.row(
                Row(
                    row.figure,
                    e["boundary_to_last_puback"],
                    "s",
                    "raw burst",
                    raw,
                    goals.BOUNDARY,
                    True,
                    rounds_ratio=e.get("median_round_ratio"),
                )
            )
            e2e = e.get("boundary_to_last_received")
            doc.row(
                Row(
                    f"boundary -> last received ({name}, {e['edge']})",
                    e2e,
                    "s",
                    "raw burst received",
                    raw_e2e,
                    None,
                    True,
                    "no subscriber in this run",
                    rounds_ratio=e.get("e2e_median_round_ratio"),
                )
            )
            rows.append(
                [
                    name,
                    e["edge"],
                    e["boundary_to_last_puback"],
                    raw,
                    e.get("median_round_ratio"),
                    ratio(e["boundary_to_last_puback"], raw),
                    e2e,
                    raw_e2e,
                    e.get("e2e_median_round_ratio"),
                    len(e.get("rounds", [])) or 1,
                    e.get("lead_seconds"),
                    e.get("retried_after", "-"),
                ]
            )
            if "projector_step" in e:
                notes.append(
                    f"- {name} `{e['edge']}`: projector.step {e['projector_step']:.3f} s = evaluate "
                    f"{e['evaluate']:.3f} + record_intents {e['record_intents']:.3f}; last publish "
                    f"handed to paho +{e['boundary_to_last_publish']:.3f} s; step end -> last PUBACK "
                    f"{e['step_end_to_last_puback']:.3f} s."
                )
    if rows:
        doc.table(
            [
                "db",
                "edge",
                "-> last PUBACK s",
                "raw s",
                "median round ratio",
                "pooled ratio",
                "-> last received s",
                "raw received s",
                "e2e median round ratio",
                "rounds",
                "lead s",
                "retried",
            ],
            rows,
        )
    if notes:
        doc.add("Where the time goes (the median round):", "", *notes, "")


def section_audit(doc: Doc, res: Results) -> None:
    r = run(res, "audit")
    doc.add("## Audit fleet (issue 4)", "", command(r), "")
    row = Row(f"audit fleet --at ({res['clients']:,})", None, "s", "plain SQL", None, goals.AUDIT, True)
    if doc.failed(r, row) or r is None:
        return
    fl = r["fleet"]
    doc.row(
        Row(
            row.figure, fl["fleet_at_seconds"], "s", "plain SQL", fl["baseline"]["seconds"], goals.AUDIT, True
        )
    )
    parts = fl.get("parts", {})
    if parts:
        doc.add(
            f"Parts: Ledger.read (SQL + mapper) {fmt(parts.get('read_seconds'))} s, fold "
            f"{fmt(parts.get('fold_seconds'))} s, evaluate {fmt(parts.get('evaluate_seconds'))} s.",
            "",
        )


def section_replay(doc: Doc, res: Results) -> None:
    r = run(res, "replay")
    doc.add(
        "## Replay of a client with 10,000 transitions (issues 4 and 5)",
        "",
        f"{command(r)}: *with snapshot* `ledger.intent_log(id)`; *without* `ledger.issued(id)` (a Core "
        "SELECT of the stream, decoded typed); the library's own fold for reference; the read model's "
        "`ReadModel(ledger).replay(id)`. Baselines: plain SQL on the DB-API connection. Goal "
        f"{goals.REPLAY_MS.text}.",
        "",
    )
    paths = (
        ("read_model_replay", "ReadModel(ledger).replay", "plain_transitions", goals.REPLAY_MS),
        ("with_snapshot", "intent_log (with snapshot)", "plain_events", goals.REPLAY_MS),
        ("issued", "ledger.issued (without snapshot)", "plain_events", goals.REPLAY_MS),
        ("without_snapshot", "library fold without snapshot", "plain_events", None),
    )
    wanted = [
        Row(f"replay 10k: {label}", None, "ms", f"plain SQL ({base})", None, g, False)
        for _k, label, base, g in paths
    ]
    if doc.failed(r, *wanted) or r is None:
        return
    ms = r["median_ms"]
    for row, (key, _label, base, _g) in zip(wanted, paths, strict=True):
        doc.row(Row(row.figure, ms[key], "ms", row.baseline, ms[base], row.goal, False))
    doc.table(["path", "ours ms", "plain SQL ms"], [[p[1], ms[p[0]], ms[p[2]]] for p in paths])


def section_failover(doc: Doc, res: Results) -> None:
    doc.add(
        "## Failover (issue 5)",
        "",
        "bench_failover: two real `intent-ledger run --ttl T` processes on one ledger (SQLite: the lease "
        "file; PostgreSQL: the advisory lock, in the bench's own schema) and a bench Mosquitto; the "
        "active one gets SIGKILL; instants from the standby's JSON log (`ts`). Baseline: the standby's "
        f"lease poll interval. Goal: {goals.FAILOVER_TTL_FRACTION.text}.",
        "",
    )
    rows: list[list[Any]] = []
    for name, key in (("SQLite", "failover-sqlite"), ("PostgreSQL", "failover-postgres")):
        r = run(res, key)
        goal = goals.FAILOVER_TTL_FRACTION
        row = Row(f"failover: SIGKILL -> first PUBACK ({name})", None, "s", "standby poll", None, goal, False)
        if r is None and name == "PostgreSQL":
            r = {"error": "not run", "reason": res["pg_note"]}
        if doc.failed(r, row) or r is None:
            continue
        m, ttl = r["median_seconds"], r["ttl"]
        bounded = goals.Goal(goal.bound * ttl, goal.at_least, goal.source, "s", goal.strict)
        poll = r["baseline"]["standby_poll_seconds"]
        doc.row(Row(row.figure, m["kill_to_first_puback"], "s", "standby poll", poll, bounded, False))
        rows.append(
            [name, ttl, m["kill_to_active"], m["kill_to_first_puback"], m["kill_to_all_pubacks"], poll]
        )
    if rows:
        doc.table(
            ["db", "ttl s", "-> active s", "-> first PUBACK s", "-> every PUBACK s", "standby poll s"], rows
        )


def section_soak(doc: Doc, res: Results) -> None:
    r = run(res, "soak")
    doc.add(
        f"## Soak: {res['clients']:,} clients for 24 simulated hours after a day of warm-up (issue 14)",
        "",
        f"{command(r)}: the daemon driven on a virtual clock from timer to timer (every transition, "
        "refresh, receipt and checkpoint of the day, each burst acknowledged before the clock jumps; "
        "the self-check off); resident memory sampled every simulated hour. Figure: the largest RSS "
        "after the warm-up (the first day, in which every client's state takes its steady shape) over "
        f"the RSS at the end of the warm-up (goal {goals.SOAK_RSS_DRIFT.text}); and the rows "
        "of every table intent-ledger writes, at the end and after `projections prune --before` (the "
        "end minus 12 hours): the receipt tables are bounded by that retention, `audit_refreshes` by "
        "the fleet; the ledger and the audit read model keep everything.",
        "",
    )
    row = Row(
        "soak: largest RSS after warm-up", None, "MiB", "RSS after warm-up", None, goals.SOAK_RSS_DRIFT, True
    )
    if doc.failed(r, row) or r is None:
        return
    doc.row(Row(row.figure, r["max_rss_mib"], "MiB", row.baseline, r["warm_rss_mib"], row.goal, True))
    doc.add(
        f"ttl {r['ttl']} s; {r['publishes']:,} publishes, {r['transitions']:,} of them transitions, "
        f"in {r['real_seconds']:.0f} s of real time.",
        "",
    )
    doc.table(
        [
            "simulated hour",
            "RSS MiB",
            "transitions so far",
            "publishes so far",
            "allocated blocks",
            "pymalloc arenas MiB",
            "malloc in use MiB",
            "SQLite MiB",
        ],
        [
            [
                s["hour"],
                s["rss_mib"],
                s["transitions"],
                s["publishes"],
                s.get("allocated_blocks"),
                s.get("pymalloc_arenas_mib"),
                s.get("malloc_used_mib"),
                s.get("sqlite_mib"),
            ]
            for s in r["samples"]
            if s["hour"] % 4 == 0
        ],
    )
    doc.add(
        "Allocated blocks: `sys.getallocatedblocks()`, every block the interpreter holds; pymalloc "
        "arenas: the memory those objects live in; malloc in use: glibc's `mallinfo2` (C extensions, "
        "SQLite, buffers); SQLite: `sqlite3_memory_used()` (page cache and prepared statements). "
        "Flat blocks and arenas while RSS grows means the growth is below Python, not a leaked object.",
        "",
    )
    doc.table(
        ["table", "rows at the end", "after prune"],
        [[t, n, r["pruned_rows"].get(t)] for t, n in r["rows"].items()],
    )


def section_observe(doc: Doc, res: Results) -> None:
    doc.add(
        "## Observed state (issue 10, bench_observe)",
        "",
        "Part 1: `audit compliance --all` over one day of the fleet's screens (the generated fleet driven "
        "through the day; a day of observation runs per screen). Baseline: the same rows read with plain "
        f"SELECTs (goal {goals.COMPLIANCE_SECONDS.text}). Part 2: every screen reporting at once through "
        "the ingestion component on a real Mosquitto, classified and stored. Baseline: a raw paho "
        "subscriber receiving the same reports.",
        "",
    )
    rows: list[list[Any]] = []
    for store, key in (("SQLite", "observe"), ("PostgreSQL", "observe-postgres")):
        r = run(res, key)
        wanted = [
            Row(
                f"audit compliance, a day ({store})",
                None,
                "s",
                "plain SELECTs",
                None,
                goals.COMPLIANCE_SECONDS,
                False,
            ),
            Row(
                f"report ingestion, all at once ({store})", None, "s", "raw paho subscriber", None, None, True
            ),
        ]
        if r is None and store == "PostgreSQL":
            r = {"error": "not run", "reason": res["pg_note"]}
        if doc.failed(r, *wanted) or r is None:
            continue
        c, i = r.get("compliance"), r.get("ingestion")
        if c:
            doc.row(replace(wanted[0], value=c["compliance_seconds"], base_value=c["baseline"]["seconds"]))
            rows.append(
                [
                    f"{store}: audit compliance, {c['clients']:,} screens",
                    c["compliance_seconds"],
                    "plain SELECTs",
                    c["baseline"]["seconds"],
                    ratio(c["compliance_seconds"], c["baseline"]["seconds"]),
                ]
            )
        if i:
            raw = i["raw_subscriber"]["seconds"]
            slowest = max(i["bursts"].values(), key=lambda b: b["seconds"])
            own_raw = slowest.get("raw_subscriber_s", raw)  # right before it (older results: once)
            doc.row(replace(wanted[1], value=slowest["seconds"], base_value=own_raw))
            for label, b in i["bursts"].items():
                own = b.get("raw_subscriber_s", raw)  # measured right before the burst (older: once)
                rows.append(
                    [
                        f"{store}: ingestion of {i['screens']:,} ({label}), {b['reports_per_second']:,}/s",
                        b["seconds"],
                        "raw paho subscriber",
                        own,
                        ratio(b["seconds"], own),
                    ]
                )
    if rows:
        doc.add(
            "The summary's ingestion row is the slower of the two bursts, over the raw subscriber's run "
            "right before it; no issue sets a goal for it.",
            "",
        )
        doc.table(["figure", "seconds", "baseline", "baseline s", "ratio"], rows)


def ratio(ours: float | None, base: float | None) -> float | None:
    return None if not ours or not base else round(ours / base, 2)


def section_ics(doc: Doc, res: Results) -> None:
    feed = run(res, "ics") or {}
    doc.add(
        "## iCalendar import (issue 9, bench_ics)",
        "",
        f"{command(run(res, 'ics'))}: a timetable feed of {feed.get('lessons', 2_000):,} one-off "
        f"lessons and {feed.get('series', 200):,} weekly series with EXDATEs and a moved instance each. "
        "*Read*: `parse_ics` beside `icalendar.Calendar.from_ical` of the same bytes "
        "(the library's parse is the floor). *Import* and *again*: `Ledger.sync_feed` (with `--prune`) "
        "into an empty ledger and a second time, beside `Ledger.sync` of the same events and series as "
        "a snapshot. No goal (none in the issues); the ratios show what the feed adds.",
        "",
    )
    steps = (
        ("read", "parse_s", "icalendar parse", "raw_parse_s"),
        ("import", "import_s", "the same snapshot", "snapshot_s"),
        ("again (appends nothing)", "reimport_s", "the same snapshot again", "resnapshot_s"),
    )
    rows: list[list[Any]] = []
    for store, key in (("SQLite", "ics"), ("PostgreSQL", "ics-postgres")):
        r = run(res, key)
        wanted = [
            Row(f"sync --ics: {step} ({store})", None, "s", base, None, None, True)
            for step, _o, base, _b in steps
        ]
        if r is None and store == "PostgreSQL":
            r = {"error": "not run", "reason": res["pg_note"]}
        if doc.failed(r, *wanted) or r is None:
            continue
        for row, (step, ours, _base, base) in zip(wanted, steps, strict=True):
            doc.row(replace(row, value=r[ours], base_value=r[base]))
            rows.append([f"{store}: {step}", r[ours], r[base], r[ours] / r[base]])
    if rows:
        doc.table(["step", "ours s", "baseline s", "ratio"], rows)


def section_cli(doc: Doc, res: Results) -> None:
    r = run(res, "cli")
    doc.add(
        "## Command line start-up (issue 12, bench_cli)",
        "",
        f"{command(r)}: each command as a fresh process (interpreter start, imports, the query), "
        "round-robin with the baseline `sqlite-utils tables` on the same SQLite file (a peer click CLI); "
        f"min and median seconds, the ratio of medians. Goal: `client list` {goals.CLI.text}x the baseline.",
        "",
    )
    row = Row("client list, a fresh process", None, "s", "sqlite-utils tables", None, goals.CLI, True)
    if doc.failed(r, row) or r is None:
        return
    c = r["commands"]
    doc.row(replace(row, value=c["client list"]["median_s"], base_value=c["sqlite-utils tables"]["median_s"]))
    doc.table(
        ["command (fresh process)", "min s", "median s", "median / sqlite-utils tables"],
        [[name, x["min_s"], x["median_s"], x["ratio_median"]] for name, x in c.items()],
    )
    load = r["load_average"]
    doc.add(
        f"{r['repeat']} runs of each on a ledger of {r['clients']:,} clients; load average {load[0]} before "
        f"and {load[3]} after on {r['cpus']} CPUs (the ratio, measured in the same rounds, is the figure). "
        "`-h` loads every command module, none of them SQLAlchemy or icalendar; `client list` and "
        "`state` read the SQLite file through ledger.quickread (sqlite3), without eventsourcing's "
        "application, SQLAlchemy, the daemon, paho, psycopg, prometheus-client or the audit code; "
        "`event add` goes through the application.",
        "",
    )


def section_with_series(doc: Doc, res: Results) -> None:
    """bench_series (the same fleet with series against one-off events) and bench_observe's latency."""
    r = run(res, "series")
    fleet = (r or {}).get("fleet", {})
    doc.add(
        "## With series and reports flowing (issues 9, 10, 14)",
        "",
        f"{command(r)}: {fleet.get('clients', 0):,} clients, weekday opening hours and three lessons a "
        "day as series begun ten years ago with a dozen holidays a year, against the same schedule as "
        "one-off events, both in the same run (the cold starts and the boundary storms in interleaved "
        "rounds on fresh copies, the ratio the median of the rounds' ratios); and bench_observe's change "
        "-> PUBACK p99 with every "
        "screen reporting beside the daemon without `--observe`. Goal: each figure within "
        f"{goals.WITH_SERIES.text}x the plain fleet's.",
        "",
    )
    g = goals.WITH_SERIES
    wanted = [
        Row("series: first start", None, "s", "one-off events", None, g, True),
        Row("series: restart", None, "s", "one-off events", None, g, True),
        Row("series: boundary -> last PUBACK (on)", None, "s", "one-off events", None, g, True),
        Row("series: boundary -> last PUBACK (off)", None, "s", "one-off events", None, g, True),
        Row("series: state --at ten years on, p99", None, "ms", "-", None, goals.SERIES_STATE_MS, False),
        Row("series: series show, a year, p99", None, "ms", "-", None, goals.SERIES_SHOW_MS, False),
    ]
    if not doc.failed(r, *wanted) and r is not None:
        parts = [r.get("cold_start", {}).get(k) for k in ("first", "second")]
        parts += [r.get("boundary_storm", {}).get("edges", {}).get(k) for k in ("on", "off")]
        for row, c in zip(wanted, parts, strict=False):
            value, base = (c["series_s"], c["events_s"]) if c else (None, None)
            ratio = c.get("ratio") if c else None  # the median of the rounds' ratios
            row = replace(row, value=value, base_value=base, rounds_ratio=ratio)
            doc.row(replace(row, reason="not in the result"))
        q = r.get("queries", {})
        for row, key in zip(wanted[4:], ("state_at_ten_years", "series_show_year"), strict=True):
            doc.row(replace(row, value=q.get(key, {}).get("p99_ms"), reason="not in the result"))
        if q:
            doc.add(
                "The queries; *first* runs with nothing cached (zone files, compiled rules), as a fresh CLI:",
                "",
            )
            doc.table(
                ["query", "first ms", "p50 ms", "p99 ms"],
                [
                    [label, x.get("first_ms"), x.get("p50_ms"), x.get("p99_ms")]
                    for label, x in (
                        ("state --at ten years on", q.get("state_at_ten_years", {})),
                        ("series show, a year", q.get("series_show_year", {})),
                    )
                ],
            )
    for store, key in (("SQLite", "observe"), ("PostgreSQL", "observe-postgres")):
        o = run(res, key)
        row = Row(
            f"reports flowing: change->PUBACK p99 ({store})", None, "ms", "without --observe", None, g, True
        )
        if o is None and store == "PostgreSQL":
            o = {"error": "not run", "reason": res["pg_note"]}
        if doc.failed(o, row) or o is None:
            continue
        lat = o.get("latency")
        if lat is None:
            doc.row(replace(row, reason="no latency part in the result"))
            continue
        plain = min(lat["no_observe"]["p99_ms"], lat.get("no_observe_again", lat["no_observe"])["p99_ms"])
        doc.row(replace(row, value=lat["reports_flowing"]["p99_ms"], base_value=plain))
        if "median_pair_ratio" in lat:
            doc.add(
                f"Reports flowing ({store}): the p99 of {lat['pairs']} interleaved pairs pooled; the "
                f"median of the pairs' ratios {lat['median_pair_ratio']} "
                f"({', '.join(str(x) for x in lat['pair_ratios'])}).",
                "",
            )


def section_state(doc: Doc, res: Results) -> None:
    r = run(res, "state")
    doc.add("## Fleet state: load and evaluate (bench_state)", "", command(r), "")
    row = Row(
        f"load (Projector.pull) ({res['clients']:,})",
        None,
        "s",
        "plain SELECT + json.loads",
        None,
        None,
        True,
    )
    if doc.failed(r, row) or r is None:
        return
    load, base = r["load"], r["baseline"]
    doc.row(Row(row.figure, load["seconds"], "s", row.baseline, base["seconds"], None, True))
    st, mem = r["state"], r["memory"]
    doc.add(
        f"State of every client: {fmt(st.get('clients_per_second'), 0)} clients/s cold, "
        f"{fmt(st.get('warm_clients_per_second'), 0)} warm; the view (tracemalloc) "
        f"{fmt(mem.get('bytes_per_client'), 0)} B/client, {fmt(mem.get('bytes_per_client_with_blocks'), 0)} "
        "with the merged group blocks. No goal in the issues: reported for context.",
        "",
    )


# The report's order; a new benchmark adds its function here (and its run in run_all.plan).
SECTIONS = [
    section_sync,
    section_cold,
    section_memory,
    section_latency,
    section_boundary,
    section_audit,
    section_replay,
    section_failover,
    section_observe,
    section_ics,
    section_cli,
    section_soak,
    section_with_series,
    section_state,
]
