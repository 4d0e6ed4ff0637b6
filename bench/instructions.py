"""Instructions of a first start by step, counted by callgrind (stable on a shared machine).

Wall-clock figures of a loaded two-core machine move by tens of percent from run to run;
instruction counts of the same work do not. This runs `Daemon.run_once()` on a fresh
ledger of N generated clients (SQLite, a Mosquitto of its own) under
`valgrind --tool=callgrind`, with collection from the start of `run_once` only, and dumps
the counters whenever one of the daemon's steps is entered or left (the steps
bench_daemon times). Each dump is credited to the innermost step running; the report is
instructions a client, per step, of the daemon's own thread (paho's network thread
apart: its count depends on how valgrind schedules the threads; the writes of a step's
chunks but its last apart too: they run on a thread while the next chunk is evaluated).

    .venv/bin/python -m bench.instructions --clients 2000 [--keep DIR]

Needs valgrind and its headers (valgrind/callgrind.h) and a C compiler: the client
requests are a few lines of C compiled into a temporary library at each run.
"""

from __future__ import annotations

import argparse
import ctypes
import functools
import os
import subprocess
import sys
import tempfile
import threading
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: the repository root on the path, for `bench.*`
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench._callgrind import command as cg_command
from bench._callgrind import dumps, shim

__all__ = ["STEPS", "main"]

# (object, method, step): the innermost one running is charged.
STEPS = (
    ("projector", "pull", "rebuild (projector.pull)"),
    ("projector", "start", "evaluate (projector.start, less pull and record)"),
    ("projector", "step", "evaluate (projector.step: later chunks)"),
    ("ledger", "record_intents", "record (ledger.record_intents)"),
    ("follower", "follow", "log transitions (follower.follow, less the projector)"),
    ("daemon", "_follow", "publish transitions (daemon._follow, less follow)"),
    ("daemon", "tick", "tick (drain, reap; less _follow)"),
    ("daemon", "settle", "settle (reap, drain the backlog)"),
    ("receipt_writer", "write", "receipts (ReceiptWriter.write)"),
    ("follower", "save_checkpoint", "checkpoint (Follower.save_checkpoint)"),
)
OTHER = "other (announce, connect, close)"


def _prepare(clients: int, path: Path) -> None:
    from bench._common import WEEK_START, generate_fleet, validated
    from ledger import Ledger, Meta

    ledger = Ledger(f"sqlite:///{path}")
    try:
        ledger.sync(validated(generate_fleet(clients)), prune=False, now=WEEK_START, meta=Meta("bench"))
    finally:
        ledger.close()


def _run(db: Path, port: int, shim_path: Path) -> None:
    """The measured process (under callgrind): one run_once, a dump at every step's edges."""
    from bench.bench_daemon import DEFAULT_AT, PREFIX, ShiftedClock
    from ledger import Ledger, parse_instant
    from publisher.config import BrokerConfig
    from publisher.daemon import Daemon, RunSettings
    from publisher.logs import EventLog

    shim = ctypes.CDLL(str(shim_path))
    running = [OTHER]

    def charged(fn: Callable[..., Any], step: str) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if threading.current_thread() is not threading.main_thread():
                # A chunk written on a thread of its own (projections.chunks): not the daemon's
                # thread, whose dumps would otherwise carry this step's name meanwhile.
                return fn(*args, **kwargs)
            shim.cg_dump(running[-1].encode())
            running.append(step)
            try:
                return fn(*args, **kwargs)
            finally:
                shim.cg_dump(step.encode())
                running.pop()

        return wrapper

    ledger = Ledger(f"sqlite:///{db}")
    with open(os.devnull, "w") as sink:
        daemon = Daemon(
            ledger,
            BrokerConfig(port=port),
            RunSettings(prefix=PREFIX, ack_timeout=600.0),  # valgrind is slow: no false timeouts
            clock=ShiftedClock(parse_instant(DEFAULT_AT)),
            log=EventLog(sink),
        )
        owners = {
            "projector": daemon.projector,
            "ledger": ledger,
            "daemon": daemon,
            "follower": daemon.follower,
            "receipt_writer": daemon.receipt_writer,
        }
        for owner, method, step in STEPS:
            setattr(owners[owner], method, charged(getattr(owners[owner], method), step))
        shim.cg_start()
        shim.cg_zero()
        failures = daemon.run_once(timeout=600.0)
        shim.cg_dump(OTHER.encode())
        shim.cg_stop()
    ledger.close()
    if failures:
        raise SystemExit(f"run_once failed: {failures[:3]}")


def _totals(folder: Path) -> dict[str, int]:
    """Instructions of the main thread's dumps (files `...-01`), by the step each names."""
    totals: dict[str, int] = defaultdict(int)
    for main, step, count in dumps(folder):
        if main and step is not None:
            totals[step] += count
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=2000, help="fleet size (default 2,000)")
    parser.add_argument("--keep", type=Path, help="keep callgrind's files in this folder")
    parser.add_argument("--run", nargs=3, metavar=("DB", "PORT", "SHIM"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        _run(Path(args.run[0]), int(args.run[1]), Path(args.run[2]))
        return
    from bench._broker import mosquitto

    with tempfile.TemporaryDirectory(prefix="intent-ledger-instructions-") as tmp:
        folder = Path(tmp)
        library = shim(folder, ("mosquitto",))
        db = folder / "ledger.db"
        _prepare(args.clients, db)  # natively: only run_once is measured
        out = args.keep or folder / "callgrind"
        out.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, PYTHONHASHSEED="0")
        with mosquitto(folder / "broker") as broker, (folder / "valgrind.log").open("w") as log:
            run = ["--run", str(db), str(broker.port), str(library)]
            command = cg_command(out, "bench.instructions", run)
            done = subprocess.run(command, env=env, stderr=log, check=False)
        if done.returncode:
            raise SystemExit(f"the measured run failed (exit {done.returncode}); see valgrind's log")
        totals = _totals(out)
    n = args.clients
    print(f"first start, {n:,} clients: instructions a client, the daemon's thread (callgrind)")
    for _, _, step in (*STEPS, ("", "", OTHER)):
        print(f"  {step:58s} {totals.get(step, 0) / n:>10,.0f}")
    print(f"  {'total':58s} {sum(totals.values()) / n:>10,.0f}")


if __name__ == "__main__":
    main()
