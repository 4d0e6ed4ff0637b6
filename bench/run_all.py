"""The benchmark suite: every benchmark, one command, results in docs/performance.md.

    .venv/bin/python -m bench.run_all [--big] [--no-postgres] [--out docs/performance.md]

(`.venv/bin/python bench/run_all.py` works too.) Runs each benchmark as a
subprocess with `--json` (their own options, see bench/README.md), collects the
JSON, describes the machine (read at run time) and writes docs/performance.md:
one table per figure beside its baseline from the same run, and a summary with
one row per goal (`bench.goals`): the measured value, the baseline, the ratio,
met or missed. The raw JSON is kept in bench/results/run_all-<date>.json
(git-ignored).

A benchmark that fails is run once more; one that still fails keeps its rows
in the report, marked red with the reason (its last line on stderr). `plan`
lists the runs and `bench.sections.SECTIONS` the report's sections: a new
benchmark is one `Run` there and one section function.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: the repository root on the path, for `bench.*`
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench._common import PG_SCHEMA, PG_URL
from bench.report import RED, Doc
from bench.sections import SECTIONS, Results

HERE = Path(__file__).resolve().parent
BIG = 100_000  # the fleet of --big: only the cold start and its peak RSS (bench_daemon --skip live)
ROOT = HERE.parent


def log(message: str) -> None:
    print(f"[run_all {datetime.now().strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Run:
    """One benchmark run of the suite: its key in the results, the module and its options."""

    key: str
    module: str
    options: tuple[str, ...] = ()
    timeout: float = 900


def plan(args: argparse.Namespace, sizes: list[int], pg: bool) -> list[Run]:
    """Every run of the suite, in order; PostgreSQL runs only when it is reachable."""
    n = str(args.clients)
    pg_opts = ("--db", "postgres", "--pg-url", args.pg_url, "--pg-schema", args.pg_schema)
    runs = [
        Run("sync", "bench_sync", ("--clients", n, "--profile", "never")),
        Run("state", "bench_state", ("--clients", n)),
    ]
    for size in sizes:
        live = () if size == args.clients else ("--skip", "live")
        runs.append(
            Run(f"daemon-{size}", "bench_daemon", ("--clients", str(size), "--profile", "never", *live), 3600)
        )
        runs.append(Run(f"coldrss-{size}", "bench_coldrss", ("--clients", str(size)), 3600))
    if pg:
        runs.append(
            Run(
                "daemon-postgres",
                "bench_daemon",
                (*pg_opts, "--clients", n, "--skip", "cold", "--profile", "never"),
            )
        )
    runs += [
        Run("audit", "bench_audit", ("--clients", n, "--skip", "replay", "--profile", "never")),
        Run(
            "replay",
            "bench_replay",
            (
                "--transitions",
                "10000",
            ),
        ),
        Run("failover-sqlite", "bench_failover", ("--clients", "1000", "--repeat", "3")),
    ]
    if pg:
        runs.append(
            Run("failover-postgres", "bench_failover", (*pg_opts, "--clients", "1000", "--repeat", "3"))
        )
    runs.append(Run("observe", "bench_observe", ("--clients", n)))
    runs.append(Run("ics", "bench_ics"))
    if pg:
        runs.append(Run("ics-postgres", "bench_ics", pg_opts))
        runs.append(Run("observe-postgres", "bench_observe", (*pg_opts, "--clients", n)))
    runs.append(Run("cli", "bench_cli", ("--repeat", "30")))
    runs.append(Run("series", "bench_series", ("--clients", n), 1800))
    runs.append(Run("soak", "bench_soak", ("--clients", n, "--hours", "48", "--warmup", "24"), 3600))
    return runs


def attempt(r: Run) -> dict[str, Any]:
    """One benchmark as a subprocess with --json; its stderr (progress) goes to ours, its tail is kept.

    The benchmark runs in a process group of its own, ended when it exits or times out: a
    benchmark that died leaves no broker or child behind, which would hold its stderr open
    (and the suite waiting) for ever.
    """
    cmd = [sys.executable, "-m", f"bench.{r.module}", *r.options, "--json"]
    shown = " ".join([f"bench/{r.module}.py", *r.options])
    log(shown)
    started = time.monotonic()
    tail: collections.deque[str] = collections.deque(maxlen=5)
    timed_out = False
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, stdout=out, stderr=subprocess.PIPE, text=True, start_new_session=True
        )
        reader = threading.Thread(target=relay, args=(proc, tail), daemon=True)
        reader.start()
        try:
            code = proc.wait(timeout=r.timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            end_group(proc.pid, signal.SIGKILL)
            code = proc.wait()
        end_group(proc.pid, signal.SIGTERM)  # what it started and left running
        reader.join(10)
        out.seek(0)
        lines = [line for line in out.read().splitlines() if line.startswith("{")]
    seconds = time.monotonic() - started
    if code != 0 or not lines:
        error = f"timed out after {r.timeout:.0f} s" if timed_out else f"exit {code}"
        return {"error": error, "reason": tail[-1] if tail else "", "command": shown, "wall_seconds": seconds}
    result: dict[str, Any] = json.loads(lines[-1])
    result["wall_seconds"] = round(seconds, 1)
    result["command"] = shown
    log(f"  done in {seconds:.0f} s")
    return result


def relay(proc: subprocess.Popen[str], tail: collections.deque[str]) -> None:
    """Copy a benchmark's stderr to ours, keeping its last lines (the reason, if it fails)."""
    assert proc.stderr is not None
    for line in proc.stderr:
        sys.stderr.write(line)
        if line.strip():
            tail.append(line.strip())


def end_group(pgid: int, sig: signal.Signals) -> None:
    """Signal the process group a benchmark was started in (its id is the benchmark's pid)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):  # nothing left
        os.killpg(pgid, sig)


def bench(r: Run) -> dict[str, Any]:
    """A benchmark run, once more if it failed (a lost timing window, a busy machine)."""
    result = attempt(r)
    if "error" in result:
        log(f"  {RED} {r.module} failed ({result['error']}: {result['reason']}); once more")
        result = attempt(r) | {"attempts": 2}
        if "error" in result:
            log(f"  {RED} {r.module} failed again: it is marked not measured in the report")
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


KEPT = "## Figures behind design choices"  # hand-written, carried over by every run


def kept_tail(out: Path) -> str:
    """The hand-written section at the end of the previous report (from KEPT on), if any."""
    old = out.read_text() if out.exists() else ""
    return "" if KEPT not in old else "\n" + old[old.index(KEPT) :].rstrip() + "\n"


def big_note(results: Results) -> str:
    if not results["big"]:
        return "; without `--big`, so no 100,000-client figures"
    n = results.get("big_clients", BIG)
    return "" if n == BIG else f"; `--big` with {n:,} clients, so no 100,000-client figures"


def write_report(results: Results, out: Path) -> None:
    doc = Doc()
    for section in SECTIONS:
        section(doc, results)
    started_at = datetime.fromisoformat(results["started"])
    total = results["seconds_total"]
    unmeasured = sum(1 for row in doc.summary if row.value is None)
    head = [
        "# Performance",
        "",
        "Written by `bench/run_all.py` (do not edit by hand; run it again). Every figure is measured beside "
        "its baseline in the same run, on this machine; compare ratios, absolute numbers move from machine "
        "to machine and run to run. The benchmarks themselves are described in `bench/README.md`; the "
        "goals are defined in `bench/goals.py`.",
        "",
        "```sh",
        ".venv/bin/python -m bench.run_all          # on 2 cores, about 10 minutes",
        ".venv/bin/python -m bench.run_all --big    # + 100,000 clients",
        "```",
        "",
        f"Run {started_at.strftime('%Y-%m-%d %H:%M')} UTC, {total / 60:.1f} minutes"
        + big_note(results)
        + f". Load average at the start: {results.get('load', '?')}"
        + (
            " (the machine was shared: absolute timings are noisy, ratios less so)."
            if results.get("loaded")
            else "."
        ),
        "",
        "## The machine",
        "",
        "| | |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in results["machine"].items()],
        "",
        "## Summary against the goals",
        "",
        f"{len(doc.summary)} rows, {unmeasured} not measured ({RED}). *ratio* = measured / baseline; a goal "
        "marked *(ratio)* bounds the ratio, the others the measured value; *context*: no goal at that size.",
        "",
        *doc.summary_table(),
        "",
    ]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(head + doc.lines).rstrip() + "\n" + kept_tail(out))
    log(f"wrote {out}")


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--big", action="store_true", help="also the cold start and its RSS at 100,000 clients")
    p.add_argument(
        "--big-clients",
        type=int,
        default=BIG,
        help=f"the fleet of --big (default {BIG:,}; smaller to try the --big path quickly)",
    )
    p.add_argument("--no-postgres", action="store_true", help="leave out the PostgreSQL runs")
    p.add_argument("--pg-url", default=PG_URL)
    p.add_argument("--pg-schema", default=PG_SCHEMA, help=f"never 'public' (default {PG_SCHEMA})")
    p.add_argument("--clients", type=int, default=10_000, help="the fleet of the main runs (default 10,000)")
    p.add_argument("--only", action="append", default=[], help="run only the runs whose key starts so")
    p.add_argument("--from-json", help="only write the report from a saved bench/results/run_all-*.json")
    p.add_argument("--out", default=str(ROOT / "docs" / "performance.md"))
    args = p.parse_args()
    if args.pg_schema == "public":
        raise SystemExit("--pg-schema public would drop the tests' tables; use a schema of its own")
    if args.from_json:
        write_report(json.loads(Path(args.from_json).read_text()), Path(args.out))
        return
    begun = time.monotonic()
    started_at = datetime.now(UTC)
    pg = None if args.no_postgres else pg_version(args.pg_url)
    load = os.getloadavg()[0]
    sizes = sorted({1_000, args.clients} | ({args.big_clients} if args.big else set()))
    results: Results = {
        "machine": machine(args.pg_url, pg),
        "started": started_at.isoformat(),
        "big": args.big,
        "big_clients": args.big_clients,
        "clients": args.clients,
        "sizes": sizes,
        "postgres_version": pg,
        "pg_note": "--no-postgres" if args.no_postgres else f"PostgreSQL not reachable at {args.pg_url}",
        "load": f"{load:.2f}",
        "loaded": load > 0.5 * (os.cpu_count() or 1),
        "runs": {},
    }
    if not args.big or args.big_clients != BIG:
        results["sizes"] = sorted({*sizes, BIG})  # the goals' 100,000 rows stay, said why
        results["runs"][f"daemon-{BIG}"] = results["runs"][f"coldrss-{BIG}"] = {
            "error": "not run",
            "reason": "run with --big" if not args.big else f"--big-clients {args.big_clients:,} instead",
            "command": "bench/run_all.py --big",
        }
    for r in plan(args, sizes, pg is not None):
        if not args.only or any(r.key.startswith(o) for o in args.only):
            results["runs"][r.key] = bench(r)
    results["seconds_total"] = round(time.monotonic() - begun, 1)
    keep = HERE / "results"
    keep.mkdir(exist_ok=True)
    saved = keep / f"run_all-{started_at.strftime('%Y%m%dT%H%M')}.json"
    saved.write_text(json.dumps(results, indent=1))
    log(f"raw results in {saved}")
    write_report(results, Path(args.out))


if __name__ == "__main__":
    main()
