"""CPU (or instructions) of a boundary storm's step, in virtual time (stable on a shared machine).

A ledger of N generated clients (SQLite, or PostgreSQL with --db postgres) and a
Mosquitto of its own; the daemon (its session in a network process, as `run` has it)
is driven by ticks on a virtual clock: the first start, then an event for every group
at one instant B (its end some minutes later), the idle rounds within the ahead window
before B that evaluate it ahead, then each edge (B: every client `on`; the end: `off`).
An edge is measured from its first tick to its last PUBACK reaped: the CPU seconds of
the daemon's thread (`time.thread_time`, its waits for PUBACKs not counted) and of the
threads that write chunks (`Ledger.record_intents` off the daemon's thread), and, of
the daemon's thread, the projector's step (with the record of the last chunk) apart.

    .venv/bin/python -m bench.storm_steps --clients 10000 [--db postgres] [--edges 2]
    .venv/bin/python -m bench.storm_steps --clients 10000 --callgrind   # instructions instead

With --callgrind the measured process runs under `valgrind --tool=callgrind`,
instrumented only during the edges: instructions of the daemon's thread and of the
other threads (chunk writes, the session's pipe reader), an edge at a time. Needs
valgrind, its headers and a C compiler (as bench/instructions.py).
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
import time
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: the repository root on the path, for `bench.*`
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench._callgrind import command as cg_command
from bench._callgrind import dumps, shim
from publisher.settings import SystemClock

__all__ = ["main"]


class _Clock(SystemClock):
    """Virtual time: moves only when the driver says so (the driver ticks; nothing waits on it)."""

    def __init__(self, t: datetime) -> None:
        self.t = t

    def now(self) -> datetime:
        return self.t


class _Charged:
    """CPU seconds spent inside wrapped methods, by name and by thread kind."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    def wrap(self, obj: Any, attr: str, name: str) -> None:
        fn = getattr(obj, attr)

        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            main = threading.current_thread() is threading.main_thread()
            t0 = time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[f"{name} ({'daemon thread' if main else 'chunk thread'})"] += (
                    time.thread_time() - t0
                )

        setattr(obj, attr, timed)


def _settled(daemon: Any) -> bool:
    return not (daemon.follower.pending or daemon.outbox.waiting or daemon.outbox.outgoing)


def _prepare_ahead(daemon: Any) -> None:
    """Tick until a round was idle and left nothing to evaluate ahead (the refreshes that fell
    due on the way acknowledged)."""
    idle, ran = daemon.follower.idle, []

    def noted(now: datetime) -> None:
        ran.append(now)
        idle(now)

    daemon.follower.idle = noted
    try:
        while True:
            del ran[:]
            daemon.tick()
            if ran and not daemon.follower.preparing and _settled(daemon):
                return
    finally:
        daemon.follower.idle = idle


def _edge(daemon: Any, clock: _Clock, at: datetime, cg: Any, label: str) -> int:
    """Tick at `at` until every publish of the edge is acknowledged; the publishes it made."""
    clock.t = at
    sent: set[str] = set()
    publish = daemon.outbox.publish

    def counted(name: str, *args: Any, **kwargs: Any) -> None:
        sent.add(name)
        publish(name, *args, **kwargs)

    daemon.outbox.publish = counted
    if cg is not None:
        cg.cg_start()
        cg.cg_zero()
    try:
        daemon.tick()
        while not _settled(daemon):
            if daemon.outbox.outgoing and not daemon.follower.pending:
                daemon.outbox.await_progress(0.25)  # as the loop's sleep: the daemon's thread waits
            daemon.tick()
    finally:
        if cg is not None:
            cg.cg_dump(label.encode())
            cg.cg_stop()
        daemon.outbox.publish = publish
    return len(sent)


def _run(args: argparse.Namespace, shim_path: Path | None) -> None:
    """The measured process: the fleet, the start, the boundary prepared ahead, its edges."""
    from bench._broker import mosquitto
    from bench._common import WEEK_START, database, generate_fleet, scoped, validated
    from ledger import Ledger, Meta, TargetRef, Window
    from publisher.config import BrokerConfig
    from publisher.daemon import Daemon, RunSettings
    from publisher.follower import AHEAD
    from publisher.logs import EventLog

    cg = None if shim_path is None else ctypes.CDLL(str(shim_path))
    meta = Meta("bench")
    fleet = validated(generate_fleet(args.clients))
    groups = sorted({c.group_id for c in fleet.clients if c.group_id})
    start = WEEK_START + timedelta(days=14, hours=3)  # after the generated week: nothing on
    b = start + timedelta(minutes=5)
    end = b + timedelta(minutes=5)
    with (
        tempfile.TemporaryDirectory(prefix="intent-ledger-storm-") as tmp,
        database(args.db, args.pg_url, args.pg_schema, "storm") as fresh,
        mosquitto(Path(tmp) / "broker") as broker,
        open(os.devnull, "w") as sink,
    ):
        db = scoped(fresh)
        ledger = Ledger(db.url, db.env())
        changer = Ledger(db.url, db.env())
        try:
            changer.sync(fleet, prune=False, now=WEEK_START, meta=meta)
            clock = _Clock(start)
            # No refresh falls due within the measured edges: only the boundary's own publishes.
            settings = RunSettings(
                prefix="infoscreen", net_process=True, self_check=False, ack_timeout=600.0, ttl=30 * 86400
            )
            daemon = Daemon(ledger, BrokerConfig(port=broker.port), settings, clock=clock, log=EventLog(sink))
            charged = _Charged()
            charged.wrap(daemon.projector, "step", "projector.step")
            charged.wrap(ledger, "record_intents", "record_intents")
            for owner, attr, name in (
                (daemon.follower, "follow", "follower.follow (the step, its log lines)"),
                (daemon, "_follow", "daemon._follow (follow, the window's publishes)"),
                (daemon.outbox, "drain", "outbox.drain (the backlog's publishes)"),
                (daemon.acks, "reap", "acks.reap"),
                (daemon.receipt_writer, "write", "receipt_writer.write"),
            ):
                charged.wrap(owner, attr, name)
            daemon.connection.announce(settings)
            daemon.tick()
            while not _settled(daemon):
                daemon.tick()
            for g in groups:
                changer.add_event(f"storm-{g}", TargetRef("group", g), Window(b, end), meta)
            for instant in (start + timedelta(seconds=1), b - AHEAD + timedelta(seconds=1)):
                clock.t = instant  # the change folded; then the idle rounds evaluate B ahead
                _prepare_ahead(daemon)
            print(f"{args.clients:,} clients, {args.db}: the boundary's edges (virtual time)")
            for label, at in (("on", b), ("off", end))[: args.edges]:
                charged.seconds.clear()
                t0, p0 = time.thread_time(), time.process_time()
                sent = _edge(daemon, clock, at, cg, label)
                daemon_cpu, process_cpu = time.thread_time() - t0, time.process_time() - p0
                print(f"  edge {label}: {sent:,} publishes")
                print(f"    {'daemon thread, first tick to last PUBACK':48s} {daemon_cpu:8.3f} s CPU")
                for name, seconds in sorted(charged.seconds.items()):
                    print(f"    {name:48s} {seconds:8.3f} s CPU")
                print(f"    {'this process, all threads':48s} {process_cpu:8.3f} s CPU")
                # The next edge's evaluations ahead, as the idle daemon would make them.
                clock.t = end - AHEAD + timedelta(seconds=1)
                if label == "on":
                    _prepare_ahead(daemon)
            daemon.shutdown()
        finally:
            ledger.close()
            changer.close()


def _totals(folder: Path) -> dict[str, int]:
    """Instructions of the daemon's thread by edge, and of the other threads (chunk writes, the
    pipe reader: dumped at their ends) over all the edges."""
    totals: dict[str, int] = defaultdict(int)
    for main, edge, count in dumps(folder):
        if not main:
            totals["other threads, every edge"] += count
        elif edge is not None:
            totals[f"{edge}: daemon thread"] += count
    return totals


def _callgrind(args: argparse.Namespace, argv: list[str]) -> None:
    with tempfile.TemporaryDirectory(prefix="intent-ledger-storm-cg-") as tmp:
        folder = Path(tmp)
        library = shim(folder, ("mosquitto",))
        out = args.keep or folder / "callgrind"
        out.mkdir(parents=True, exist_ok=True)
        run = [*[a for a in argv if a != "--callgrind"], "--shim", str(library)]
        env = dict(os.environ, PYTHONHASHSEED="0")
        with (folder / "valgrind.log").open("w") as log:
            done = subprocess.run(cg_command(out, "bench.storm_steps", run), env=env, stderr=log, check=False)
        if done.returncode:
            raise SystemExit(f"the measured run failed (exit {done.returncode}); see valgrind's log")
        totals = _totals(out)
    print(f"instructions, {args.clients:,} clients (callgrind; a client: / {args.clients:,})")
    for what, count in totals.items():
        print(f"  {what:28s} {count:>16,} ({count / args.clients:,.0f} a client)")


def main(argv: list[str] | None = None) -> None:
    from bench._common import arg_parser

    argv = sys.argv[1:] if argv is None else argv
    parser = arg_parser(__doc__.split("\n\n")[0], default_clients=10_000)
    parser.add_argument("--edges", type=int, default=2, choices=(1, 2), help="on only (1), or on and off")
    parser.add_argument("--callgrind", action="store_true", help="count instructions (valgrind)")
    parser.add_argument("--keep", type=Path, help="with --callgrind: keep callgrind's files here")
    parser.add_argument("--shim", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.callgrind:
        _callgrind(args, argv)
    else:
        _run(args, args.shim)


if __name__ == "__main__":
    main()
