"""Benchmark: wall time of one `intent-ledger` command, beside `sqlite-utils tables` in the same run.

A ledger of `--clients` clients (SQLite file, built first, not measured); then,
round-robin so machine load hits every command alike, `--repeat` runs each of:

  intent-ledger client list / state c1 / event add eK --client c1 ... / -h
  baseline: sqlite-utils tables on the same file (a peer click CLI over SQLite)

as fresh processes (the operator's view: interpreter start, imports, the
query). Reports min and median seconds and the ratio of medians to the
baseline. Goal (issue 12): `client list` at most 2x `sqlite-utils tables`.

    .venv/bin/python -m bench.bench_cli [--clients N] [--repeat R] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: the repository root on the path, for `bench.*`
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.goals import CLI
from ledger import Ledger, Meta

BIN = Path(sys.executable).parent


def _timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {done.stderr.decode().strip()}")
    return seconds


def measure(clients: int, repeat: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as folder:
        work = Path(folder)
        url = f"sqlite:///{work / 'ledger.db'}"
        ledger = Ledger(url)
        for i in range(clients):
            ledger.add_client(f"c{i}", f"g{i % 10}", Meta("bench"))
        ledger.close()
        env = {**os.environ, "INTENT_LEDGER_DB": url}
        ours = str(BIN / "intent-ledger")
        window = ["--start", "2030-01-01T08:00:00Z", "--end", "2030-01-01T09:00:00Z"]
        commands: dict[str, Callable[[int], list[str]]] = {
            "client list": lambda _: [ours, "client", "list"],
            "state": lambda _: [ours, "state", "c1"],
            "event add": lambda k: [ours, "event", "add", f"e{k}", "--client", "c1", *window],
            "-h": lambda _: [ours, "-h"],
            "sqlite-utils tables": lambda _: [str(BIN / "sqlite-utils"), "tables", str(work / "ledger.db")],
            "python -c pass": lambda _: [sys.executable, "-c", "pass"],
        }
        times: dict[str, list[float]] = {name: [] for name in commands}
        load_before = os.getloadavg()
        for k in range(repeat):
            for name, cmd in commands.items():
                times[name].append(_timed(cmd(k), work, env))
        load_after = os.getloadavg()
    base = statistics.median(times["sqlite-utils tables"])
    rows = {
        name: {
            "min_s": round(min(t), 4),
            "median_s": round(statistics.median(t), 4),
            "ratio_median": round(statistics.median(t) / base, 2),
        }
        for name, t in times.items()
    }
    ratio = rows["client list"]["ratio_median"]
    return {
        "clients": clients,
        "repeat": repeat,
        "commands": rows,
        "goal": CLI.bound,
        "meets_goal": CLI.met(ratio),
        "load_average": [round(x, 1) for x in (*load_before, *load_after)],
        "cpus": os.cpu_count(),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=int, default=100)
    p.add_argument("--repeat", type=int, default=30)
    p.add_argument("--json", action="store_true", help="one JSON line on stdout")
    args = p.parse_args()
    result = measure(args.clients, args.repeat)
    if args.json:
        print(json.dumps(result))
        return
    for name, c in result["commands"].items():
        print(f"{name:22} min {c['min_s']:.3f} s  median {c['median_s']:.3f} s  {c['ratio_median']:.2f}x")
    print(f"load average {result['load_average']}; goal client list {CLI.text}x: {result['meets_goal']}")


if __name__ == "__main__":
    main()
