"""Benchmark: hot-standby failover, SIGKILL of the active daemon to the standby's first PUBACK.

The fleet (`_common.py`, `--clients`, default 1,000) is synced into a fresh
SQLite file (`--db postgres`: the tables in `--pg-schema`, the daemons' search
path set to it); a Mosquitto of our own is started (`_broker.py`). Two real
`intent-ledger run --ttl T` processes (`python -c "from cli.main import main;
main()" run ...`, INTENT_LEDGER_DB / INTENT_LEDGER_MQTT_URL in their
environment, JSON log on stdout into a file each) share the ledger: A starts
first and becomes active (the lease), B reports `standby`. Once A has acked a
publish for every client, A gets SIGKILL. Measured from the wall-clock instant
of the kill to:

- B's `role: active` line (it took the lease),
- B's first `publish ... result: acked` line (the figure; goal: < ttl/2),
- B's acked publish for every client.

The instants are the `ts` of B's log lines (wall clock, milliseconds). Baseline:
the standby's poll interval (`RunSettings.standby_poll`, 0.5 s) and the ttl/2
goal. The lease is a lock file beside a SQLite ledger, a session advisory lock
on PostgreSQL.

    .venv/bin/python -m bench.bench_failover [--clients N] [--ttl T] [--repeat R] [--db D] [--json]
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: the repository root on the path, for `bench.*`
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench._broker import mosquitto
from bench._common import arg_parser, database, emit, generate_fleet, median, progress, scoped, validated
from bench.goals import FAILOVER_TTL_FRACTION
from ledger import Ledger, Meta
from publisher.daemon import RunSettings

ROOT = Path(__file__).resolve().parent.parent


def records(log: Path, event: str) -> list[dict[str, Any]]:
    out = []
    for line in log.read_text().splitlines():
        if line.startswith("{") and f'"{event}"' in line:
            try:
                r = json.loads(line)
            except ValueError:
                continue  # a line being written
            if r.get("event") == event:
                out.append(r)
    return out


def acked(log: Path) -> list[dict[str, Any]]:
    return [r for r in records(log, "publish") if r.get("result") == "acked"]


def wait_for(fn: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(0.005)
    raise SystemExit(f"failover: timed out waiting for {what}")


def ts(record: dict[str, Any]) -> float:
    return datetime.fromisoformat(record["ts"]).timestamp()


def daemon(url: str, port: int, ttl: int, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "INTENT_LEDGER_DB": url, "INTENT_LEDGER_MQTT_URL": f"mqtt://127.0.0.1:{port}"}
    return subprocess.Popen(
        [sys.executable, "-c", "from cli.main import main; main()", "run", "--ttl", str(ttl)],
        env=env,
        cwd=ROOT,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )


def stop(p: subprocess.Popen[bytes] | None) -> None:
    if p is not None and p.poll() is None:
        p.terminate()
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)


def one(url: str, port: int, ttl: int, n: int, folder: Path, i: int) -> dict[str, float]:
    a_log, b_log = folder / f"a{i}.log", folder / f"b{i}.log"
    a = b = None
    try:
        a = daemon(url, port, ttl, a_log)
        wait_for(lambda: records(a_log, "role"), 30, "A's role")
        if records(a_log, "role")[0].get("role") != "active":
            raise SystemExit(f"A is not active: {records(a_log, 'role')}")
        wait_for(lambda: len({r["topic"] for r in acked(a_log)}) >= n, 120, f"A's {n} acked publishes")
        b = daemon(url, port, ttl, b_log)
        wait_for(lambda: records(b_log, "role"), 30, "B's role")
        if records(b_log, "role")[0].get("role") != "standby":
            raise SystemExit(f"B is not a standby: {records(b_log, 'role')}")
        time.sleep(1.0)  # B settled in its standby loop
        killed = time.time()
        a.send_signal(signal.SIGKILL)
        a.wait(10)
        active = wait_for(
            lambda: [r for r in records(b_log, "role") if r.get("role") == "active"], 30, "B to become active"
        )[0]
        first = wait_for(lambda: acked(b_log), 30, "B's first acked publish")[0]
        wait_for(lambda: len({r["topic"] for r in acked(b_log)}) >= n, 120, f"B's {n} acked publishes")
        every = sorted(ts(r) for r in acked(b_log))
        return {
            "kill_to_active": ts(active) - killed,
            "kill_to_first_puback": ts(first) - killed,
            "kill_to_all_pubacks": every[n - 1] - killed if len(every) >= n else float("nan"),
        }
    finally:
        stop(a)
        stop(b)


def main() -> None:
    parser = arg_parser(__doc__.split("\n\n")[0], default_clients=1_000)
    parser.add_argument("--ttl", type=int, default=10, help="the daemons' --ttl (default 10)")
    args = parser.parse_args()
    fleet = generate_fleet(args.clients, args.groups, args.seed)
    snapshot = validated(fleet)
    n = fleet.clients
    runs = []
    with (
        tempfile.TemporaryDirectory(prefix="intent-ledger-bench-") as tmp,
        database(args.db, args.pg_url, args.pg_schema, "failover") as db,
    ):
        folder = Path(tmp)
        url = scoped(db).url
        ledger = Ledger(url)
        ledger.sync(snapshot, prune=False, now=datetime.now(UTC), meta=Meta("bench"))
        ledger.close()
        with mosquitto(folder / "broker") as broker:
            for i in range(args.repeat):
                progress(
                    args.json, f"failover {i + 1}/{args.repeat}: two daemons, {n:,} clients, SIGKILL A ..."
                )
                runs.append(one(url, broker.port, args.ttl, n, folder, i))
                progress(args.json, f"  B's first PUBACK +{runs[-1]['kill_to_first_puback']:.3f} s")
    med = {k: median([r[k] for r in runs]) for k in runs[0]}
    goal = FAILOVER_TTL_FRACTION.bound * args.ttl
    result = {
        "benchmark": "failover",
        "db": args.db,
        "clients": n,
        "ttl": args.ttl,
        "runs": runs,
        "median_seconds": {k: round(v, 3) for k, v in med.items()},
        "baseline": {"standby_poll_seconds": RunSettings().standby_poll},
        "goal_seconds": goal,
        "meets_goal": med["kill_to_first_puback"] < goal,
    }
    lines = [
        f"bench_failover  db={args.db}  clients={n:,}  ttl={args.ttl}  runs={len(runs)}",
        f"  SIGKILL -> B active          {med['kill_to_active']:.3f} s",
        f"  SIGKILL -> B first PUBACK    {med['kill_to_first_puback']:.3f} s  (goal < {goal:g} s: "
        f"{'met' if result['meets_goal'] else 'NOT met'})",
        f"  SIGKILL -> B all {n:,} PUBACKs {med['kill_to_all_pubacks']:.3f} s",
    ]
    emit(result, lines, args.json)


if __name__ == "__main__":
    main()
