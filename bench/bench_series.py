"""Benchmark: a fleet scheduled by series against the same fleet as one-off events.

10,000 clients in 500 groups (zones Berlin, New York, Sydney, Kolkata, London);
each group has weekday opening hours 07:30-16:00 and three lessons a day
(16:00-16:45 touching the hours, 17:00-17:45, 18:30-19:15) as four series that
began ten years ago (2016-01-04), with a dozen skipped holidays a year and the
three days around today skipped too (so every screen is off when the storm
comes). The baseline fleet is the same schedule as one-off events: every
occurrence from 14 days before now to 14 days after, as a group event.
Measured on each, in the same run against the same Mosquitto:

  1. cold start: `run_once()` on a fresh ledger (the first) and again on the
     same ledger (the restart); ratio series / events (goal <= 1.10);
  2. boundary storm: the daemon running on the real clock, every group gets a
     window at the same instant (a one-off daily series on the series fleet,
     an event on the events fleet); boundary -> last PUBACK of the N `on`s and
     `off`s, in `--storm-rounds` interleaved rounds; ratio: the median of the
     rounds' series / events (goal <= 1.10);
  3. `state --at` ten years after the series began (state_of in-process, a
     fresh timeline each time; goal < 50 ms), and `series show` for a year of
     a weekly series (the command through click, its Ledger opened each time;
     goal < 100 ms).

    .venv/bin/python -m bench.bench_series [--clients N] [--db sqlite|postgres] [--json]
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: the repository root on the path, for `bench.*`
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from click.testing import CliRunner

from bench._broker import mosquitto, percentile
from bench._common import arg_parser as common_parser
from bench._common import database, emit, environment, median, progress
from bench.bench_daemon import META, PREFIX, Running, boundary, cold_start, fleet_ledger, wait_publishes
from bench.goals import SERIES_SHOW_MS, SERIES_STATE_MS, WITH_SERIES
from cli.main import cli
from ledger import Ledger, Recurrence, TargetRef, Window
from ledger.occurrences import clear_caches, occurrences
from ledger.recurrence import Series, parse_dates
from ledger.sync import Snapshot, SnapshotClient, SnapshotEvent, SnapshotSeries
from ledger.values import format_instant
from projections.queries import state_of
from publisher.daemon import SystemClock

ZONES = ("Europe/Berlin", "America/New_York", "Australia/Sydney", "Asia/Kolkata", "Europe/London")
BEGAN = date(2016, 1, 4)  # a Monday, ten years before the measurement
WEEKDAYS = "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR"
TIMES = (
    ("hours", "07:30", "16:00"),
    ("l1", "16:00", "16:45"),
    ("l2", "17:00", "17:45"),
    ("l3", "18:30", "19:15"),
)
HOLIDAYS = (
    "01-01",
    "01-06",
    "04-18",
    "05-01",
    "05-29",
    "06-09",
    "08-15",
    "10-03",
    "11-01",
    "12-24",
    "12-25",
    "12-26",
)
HORIZON = timedelta(days=14)


def holidays(today: date) -> list[str]:
    """A dozen a year, and the three days around today (so that every screen is off now)."""
    days = [f"{y}-{md}" for y in range(BEGAN.year, today.year + 2) for md in HOLIDAYS]
    days += [(today + timedelta(days=d)).isoformat() for d in (-1, 0, 1)]
    return sorted(set(days))


def fleets(clients: int, groups: int, now: datetime) -> tuple[Snapshot, Snapshot]:
    """The series fleet and the same schedule as one-off events around `now`."""
    members = [SnapshotClient(f"c{i:05d}", f"g{i % groups:03d}") for i in range(clients)]
    skip = holidays(now.date())
    series, events = [], []
    for g in range(groups):
        tz = ZONES[g % len(ZONES)]
        for name, start, end in TIMES:
            item = SnapshotSeries(
                series_id=f"{name}-g{g:03d}",
                group_id=f"g{g:03d}",
                tz=tz,
                first_start=f"{BEGAN}T{start}",
                first_end=f"{BEGAN}T{end}",
                rrule=WEEKDAYS,
                skip=skip,
            )
            series.append(item)
            expanded = Series(item.series_id, item.recurrence(), parse_dates(item.skip))
            events += [
                SnapshotEvent(
                    event_id=o.name.replace("@", "."),
                    group_id=item.group_id,
                    start=format_instant(o.start),
                    end=format_instant(o.end),
                )
                for o in occurrences(expanded, now - HORIZON, now + HORIZON)
            ]
    return Snapshot(clients=members, series=series), Snapshot(clients=members, events=events)


class SeriesChanger:
    """Gives `bench_daemon.boundary` a daily series where it asks for an event (UTC wall clock)."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def add_event(self, event_id: str, target: TargetRef, window: Window, meta: Any) -> None:
        start, end = (t.replace(tzinfo=None) for t in (window.start, window.end))
        recurrence = Recurrence("UTC", start, end, "FREQ=DAILY")
        self.ledger.schedule_series(event_id, target, recurrence, meta)


def storm(
    args: Any, snapshot: Snapshot, template: Path | None, port: int, series: bool
) -> list[dict[str, Any]]:
    clients = [c.client_id for c in snapshot.clients]
    groups = sorted({c.group_id for c in snapshot.clients if c.group_id})
    with fleet_ledger(args, snapshot, template, "live") as db:
        clear_caches()
        changer = Ledger(db.url, db.env())
        run = Running(db, port)
        run.start()
        try:
            wait_publishes(run.sink, 0, lambda t: t.startswith(PREFIX + "/c"), len(clients), timeout=300)
            time.sleep(1.0)
            run.forget()
            adapter: Any = SeriesChanger(changer) if series else changer
            return boundary(run, adapter, groups, clients, args.lead, args.window, "storm")
        finally:
            run.stop()
            changer.close()


def synced(stack: ExitStack, args: Any, snapshot: Snapshot, name: str, now: datetime) -> Path | None:
    if args.db != "sqlite":
        return None
    db = stack.enter_context(database("sqlite", args.pg_url, args.pg_schema, name))
    ledger = Ledger(db.url)
    started = time.perf_counter()
    receipt = ledger.sync(snapshot, prune=False, now=now, meta=META)
    ledger.close()
    progress(
        args.json, f"{name}: synced {receipt.appended:,} events in {time.perf_counter() - started:.1f} s"
    )
    return Path(db.url.removeprefix("sqlite:///"))


def queries(args: Any, snapshot: Snapshot, template: Path | None) -> dict[str, Any]:
    with fleet_ledger(args, snapshot, template, "queries") as db:
        ledger = Ledger(db.url, db.env())
        try:
            at = datetime(2026, 1, 5, 9, tzinfo=UTC)  # ten years and a day after the first occurrence
            states = []
            clear_caches()
            for i in range(50):
                t0 = time.perf_counter()
                state_of(ledger, "c00000", at + timedelta(hours=i * 7))
                states.append(time.perf_counter() - t0)
        finally:
            ledger.close()
        shows = []
        for _ in range(20):
            t0 = time.perf_counter()
            result = CliRunner().invoke(
                cli,
                [
                    "--db",
                    db.url,
                    "series",
                    "show",
                    "hours-g000",
                    "--from",
                    "2026-01-01",
                    "--to",
                    "2026-12-31",
                    "--json",
                ],
                env={"INTENT_LEDGER_DB": db.url},
            )
            shows.append(time.perf_counter() - t0)
            if result.exit_code != 0:
                raise SystemExit(f"series show failed: {result.output}")

    def figures(seconds: list[float]) -> dict[str, float]:
        # The first call runs with nothing cached (zone files, compiled rules), as a fresh CLI does.
        rest = seconds[1:]
        return {
            "first_ms": seconds[0] * 1000,
            "p50_ms": percentile(rest, 50) * 1000,
            "p99_ms": percentile(rest, 99) * 1000,
        }

    return {
        "state_at_ten_years": figures(states),
        "series_show_year": figures(shows) | {"occurrences": result.output.count('"occurrence"')},
    }


Snapshots = dict[str, Snapshot]
Templates = dict[str, Path | None]


def rounds_row(series: list[float], events: list[float]) -> dict[str, Any]:
    """One row of interleaved rounds: the medians of the seconds, and the median of the rounds'
    series / events ratios (a round's ratio is measured under that round's load)."""
    ratios = [a / b for a, b in zip(series, events, strict=True)]
    ratio = median(ratios)
    return {
        "series_s": median(series),
        "events_s": median(events),
        "ratio": ratio,
        "round_ratios": ratios,
        "ok": WITH_SERIES.met(ratio),
    }


def rounds_text(row: dict[str, Any]) -> str:
    ratios = row["round_ratios"]
    return (
        f"median ratio of {len(ratios)} rounds {row['ratio']:.3f} ({', '.join(f'{x:.2f}' for x in ratios)})  "
        f"(goal {WITH_SERIES.text})  {'ok' if row['ok'] else 'MISSED'}"
    )


def cold_starts(
    args: Any, snapshots: Snapshots, templates: Templates, port: int, lines: list[str]
) -> dict[str, dict[str, Any]]:
    """The first start and the restart of each fleet in `--cold-repeat` interleaved rounds (events,
    series, events, ...); the ratio is the median of the rounds' series / events."""
    cold: dict[str, dict[str, list[float]]] = {k: {"first": [], "second": []} for k in snapshots}
    for i in range(args.cold_repeat):
        for kind in ("events", "series"):
            with fleet_ledger(args, snapshots[kind], templates[kind], f"cold-{kind}") as db:
                for which in ("first", "second"):
                    clear_caches()  # a fresh process: no expansion cached
                    out = cold_start(db, port, SystemClock())
                    if out["published"] != args.clients:
                        raise SystemExit(f"{kind} {which} published {out['published']}")
                    cold[kind][which].append(out["seconds"])
                    progress(args.json, f"cold {i + 1} {kind} {which}: {out['seconds']:.2f} s")
    rows: dict[str, dict[str, Any]] = {}
    for which in ("first", "second"):
        series, events = cold["series"][which], cold["events"][which]
        rows[which] = row = rounds_row(series, events)
        label = "cold start" if which == "first" else "restart"
        lines.append(
            f"{label:10}  series {row['series_s']:6.2f} s  events {row['events_s']:6.2f} s  "
            + rounds_text(row)
        )
    return rows


def storms(
    args: Any, snapshots: Snapshots, templates: Templates, port: int, lines: list[str]
) -> dict[str, Any]:
    """The boundary storm on each fleet in `--storm-rounds` interleaved rounds (each on fresh
    copies, the fleets' order alternating: events first in the odd rounds, series first in the
    even ones, so a load that drifts within a round favours neither); per edge the ratio is the
    median of the rounds' series / events ratios, as for the cold starts, the seconds medians."""
    edges: dict[str, list[list[dict[str, Any]]]] = {"events": [], "series": []}
    for i in range(args.storm_rounds):
        for kind in ("events", "series") if i % 2 == 0 else ("series", "events"):
            progress(args.json, f"boundary storm, round {i + 1}, on the {kind} fleet ...")
            edges[kind].append(storm(args, snapshots[kind], templates[kind], port, kind == "series"))
    rows: dict[str, dict[str, Any]] = {}
    for i, edge in enumerate(("on", "off")):
        series = [run[i]["boundary_to_last_puback"] for run in edges["series"]]
        events = [run[i]["boundary_to_last_puback"] for run in edges["events"]]
        rows[edge] = row = rounds_row(series, events)
        lines.append(
            f"storm {edge:4}  boundary -> last PUBACK: series {row['series_s']:.3f} s  "
            f"events {row['events_s']:.3f} s  " + rounds_text(row)
        )
    return {"edges": rows, "raw": edges}


def main() -> None:
    parser = common_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--lead", type=float, default=45.0, help="seconds to the storm (default 45)")
    parser.add_argument("--window", type=int, default=10, help="seconds the storm window lasts (default 10)")
    parser.add_argument(
        "--cold-repeat",
        type=int,
        default=5,
        help="interleaved rounds of the cold starts (events, then series; default 5)",
    )
    parser.add_argument(
        "--storm-rounds",
        type=int,
        default=3,
        help="interleaved rounds of the boundary storm (the fleets' order alternating; default 3)",
    )
    parser.add_argument("--skip", choices=("cold", "storm", "queries"), action="append", default=[])
    args = parser.parse_args()
    groups = args.groups or max(1, args.clients // 20)
    now = datetime.now(UTC).replace(microsecond=0)
    begun = time.monotonic()
    by_series, by_events = fleets(args.clients, groups, now)
    result: dict[str, Any] = {
        "benchmark": "series",
        "db": args.db,
        "fleet": {
            "clients": args.clients,
            "groups": groups,
            "series": len(by_series.series),
            "skipped_dates_per_series": len(by_series.series[0].skip),
            "baseline_events": len(by_events.events),
        },
        "machine_note": "a shared machine (other sessions running): compare the ratios, not the seconds",
    }
    lines = [
        f"bench_series  db={args.db}  clients={args.clients:,}  groups={groups}  "
        f"series={len(by_series.series):,}  baseline events={len(by_events.events):,} (now +- 14 days)",
        "NOTE: measured on a shared, loaded machine: the ratios (same run) matter, the seconds less so.",
    ]
    with ExitStack() as stack:
        templates = {
            "series": synced(stack, args, by_series, "series", now),
            "events": synced(stack, args, by_events, "events", now),
        }
        snapshots = {"series": by_series, "events": by_events}
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="intent-ledger-broker-")))
        broker = stack.enter_context(mosquitto(folder))
        if "cold" not in args.skip:
            result["cold_start"] = cold_starts(args, snapshots, templates, broker.port, lines)
        if "storm" not in args.skip:
            result["boundary_storm"] = storms(args, snapshots, templates, broker.port, lines)
        if "queries" not in args.skip:
            q = queries(args, by_series, templates["series"])
            result["queries"] = q
            st, sh = q["state_at_ten_years"], q["series_show_year"]
            lines.append(
                f"state --at ten years on: first {st['first_ms']:.1f} ms, p50 {st['p50_ms']:.1f} ms, "
                f"p99 {st['p99_ms']:.1f} ms "
                f"(goal {SERIES_STATE_MS.text})  {'ok' if SERIES_STATE_MS.met(st['p99_ms']) else 'MISSED'}"
            )
            lines.append(
                f"series show, a year ({sh['occurrences']} occurrences): first {sh['first_ms']:.1f} ms, "
                f"p50 {sh['p50_ms']:.1f} ms, "
                f"p99 {sh['p99_ms']:.1f} ms (goal {SERIES_SHOW_MS.text})  "
                f"{'ok' if SERIES_SHOW_MS.met(sh['p99_ms']) else 'MISSED'}"
            )
    result["seconds_total"] = round(time.monotonic() - begun, 1)
    result["environment"] = environment()
    emit(result, lines, args.json)


if __name__ == "__main__":
    main()
