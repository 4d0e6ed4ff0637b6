"""Benchmark: peak resident memory of a cold start (`run_once`), per client.

The fleet (`_common.py`) is synced into a fresh SQLite file (not measured) and
a Mosquitto of our own is started (`_broker.py`). Then two child processes,
one after the other, each on its own:

- ours: `Daemon(Ledger(url), broker, RunSettings(net_process=True)).run_once()`
  (its broker session in a process of its own and one malloc arena, as
  `intent-ledger run` has them;
  `--session inline`: paho in the daemon's process) with the clock moved to
  `--at` (as bench_daemon's cold start), its log to /dev/null; then the same
  again (a restart: it resumes from the checkpoint the first saved);
- baseline: raw paho-mqtt (`_broker.RawPublisher`: one connection, MQTT 5,
  retained QoS 1) publishing the same number of messages of the median size
  of ours (the payloads built in memory first, as a publisher has to).

Each child reads `VmRSS` from /proc/self/status after its imports (the floor)
and `VmHWM` (peak resident) after the run, and the parent cross-checks the
peak with `resource.getrusage(RUSAGE_CHILDREN).ru_maxrss`. A daemon's network
process counts too: its `VmRSS` once connected (its floor: imported, nothing
published yet) and its `VmHWM` as its session closes, from /proc/PID/status.
Bytes per client = (peak - floor of the daemon's process + peak - floor of its
network process) / clients. Goal (issue 5): at most 2 KB resident per client.

    .venv/bin/python bench/bench_coldrss.py [--clients N] [--json]
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: the repository root on the path, for `bench.*`
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def status_of(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def measured_sessions(net_process: bool, network: dict[str, int]) -> Any:
    """The daemon's sessions; a network process's floor (once connected) and peak (as its
    session closes) added up in `network`."""
    from publisher.mqtt import MqttSession
    from publisher.session import ProcSessions

    # As `run`: the first session's process is started ahead, before the ledger is opened.
    base = ProcSessions(ahead=True) if net_process else MqttSession

    def make(*args: Any, **kwargs: Any) -> Any:
        session: Any = base(*args, **kwargs)
        connect, close = session.connect, session.close
        floor = [0]

        def measured_connect(timeout: float = 10.0) -> None:
            connect(timeout)
            if getattr(session, "process", None) is not None:
                floor[0] = status_of(session.process.pid, "VmRSS")

        def measured_close() -> None:
            process = getattr(session, "process", None)
            if process is not None and floor[0] and process.poll() is None:
                network["floor_kib"] += floor[0]
                network["peak_kib"] += status_of(process.pid, "VmHWM")
                network["processes"] += 1
            close()

        session.connect, session.close = measured_connect, measured_close
        return session

    return make


def child_ours(url: str, port: int, at: str, net_process: bool) -> dict[str, Any]:
    from publisher.malloc import one_arena

    one_arena()  # as `intent-ledger run`, first thing
    from bench.bench_daemon import PREFIX, ShiftedClock  # imports ledger, publisher, paho
    from ledger import Ledger, parse_instant
    from publisher.config import BrokerConfig
    from publisher.daemon import Daemon, RunSettings
    from publisher.logs import EventLog

    floor = status_kib("VmRSS")
    network = {"floor_kib": 0, "peak_kib": 0, "processes": 0}
    sessions = measured_sessions(net_process, network)
    sink = open(os.devnull, "w")  # noqa: SIM115
    ledger = Ledger(url)
    started = time.monotonic()
    daemon = Daemon(
        ledger,
        BrokerConfig(port=port),
        RunSettings(prefix=PREFIX, net_process=net_process),
        clock=ShiftedClock(parse_instant(at, "--at")),
        log=EventLog(sink),
        session_factory=sessions,
    )
    failures = daemon.run_once()
    seconds = time.monotonic() - started
    out = {
        "seconds": seconds,
        "failures": len(failures),
        "floor_kib": floor,
        "peak_kib": status_kib("VmHWM"),
        "end_kib": status_kib("VmRSS"),
        "network_process": network if network["processes"] else None,
    }
    ledger.close()
    return out


def child_raw(port: int, clients: int, size: int) -> dict[str, Any]:
    import bench.bench_daemon  # noqa: F401  (the same imports as ours, so the floors compare)
    from bench._broker import RawPublisher

    floor = status_kib("VmRSS")
    started = time.monotonic()
    raw = RawPublisher(port)
    messages = [
        (f"raw-screen/c{i:06d}/power/intent", os.urandom(size // 2).hex().encode()) for i in range(clients)
    ]
    seconds = raw.burst(messages)
    raw.close()
    return {
        "seconds": time.monotonic() - started,
        "burst_seconds": seconds,
        "floor_kib": floor,
        "peak_kib": status_kib("VmHWM"),
        "end_kib": status_kib("VmRSS"),
    }


def above_idle_kib(run: dict[str, Any]) -> int:
    """Peak minus floor of the daemon's process, plus that of its network process if it had one."""
    network = run.get("network_process") or {"peak_kib": 0, "floor_kib": 0}
    return int(run["peak_kib"] - run["floor_kib"] + network["peak_kib"] - network["floor_kib"])


def network_text(run: dict[str, Any]) -> str:
    network = run.get("network_process")
    if not network:
        return ""
    return f" + network process {network['floor_kib'] / 1024:.1f} -> {network['peak_kib'] / 1024:.1f} MiB"


def run_child(args: list[str]) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, os.path.abspath(__file__), *args], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise SystemExit(f"child {args[:2]} failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    result["ru_maxrss_children_kib"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return result


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        kind = sys.argv[2]
        if kind == "ours":
            r = child_ours(sys.argv[3], int(sys.argv[4]), sys.argv[5], sys.argv[6] == "process")
        else:
            r = child_raw(int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
        print(json.dumps(r))
        return

    from bench._broker import mosquitto
    from bench._common import WEEK_START, arg_parser, emit, generate_fleet, progress, validated
    from bench.bench_daemon import DEFAULT_AT, META
    from bench.goals import BYTES_PER_CLIENT
    from ledger import Ledger

    parser = arg_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--at", default=DEFAULT_AT, help=f"instant of the cold start (default {DEFAULT_AT})")
    parser.add_argument("--payload-bytes", type=int, default=356, help="raw payload size (default 356)")
    parser.add_argument(
        "--session",
        choices=("process", "inline"),
        default="process",
        help="the daemon's broker session: in a process of its own, as `intent-ledger run` has it "
        "(default; its memory counted too), or paho in the daemon's process",
    )
    args = parser.parse_args()
    if args.db != "sqlite":
        raise SystemExit("bench_coldrss: SQLite only")
    fleet = generate_fleet(args.clients, args.groups, args.seed)
    snapshot = validated(fleet)
    n = fleet.clients
    with tempfile.TemporaryDirectory(prefix="intent-ledger-bench-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'rss.db'}"
        progress(args.json, f"rss: syncing {fleet.rows:,} rows (not measured) ...")
        ledger = Ledger(url)
        ledger.sync(snapshot, prune=False, now=WEEK_START, meta=META)
        ledger.close()
        with mosquitto(Path(tmp) / "broker") as broker:
            progress(args.json, f"rss: run_once of {n:,} clients in a child process ...")
            ours = run_child(["--child", "ours", url, str(broker.port), args.at, args.session])
            progress(args.json, "rss: run_once again (a restart: from the checkpoint) ...")
            again = run_child(["--child", "ours", url, str(broker.port), args.at, args.session])
            progress(args.json, f"rss: raw paho, {n:,} messages in a child process ...")
            raw = run_child(["--child", "raw", str(broker.port), str(n), str(args.payload_bytes)])
    per = above_idle_kib(ours) * 1024 / n
    per_again = above_idle_kib(again) * 1024 / n
    raw_per = (raw["peak_kib"] - raw["floor_kib"]) * 1024 / n
    result = {
        "benchmark": "coldrss",
        "clients": n,
        "session": args.session,
        "ours": ours,
        "raw": raw,
        "again": again,
        "bytes_per_client": round(per, 1),
        "bytes_per_client_again": round(per_again, 1),
        "raw_bytes_per_message": round(raw_per, 1),
        "ratio": round(per / raw_per, 2) if raw_per > 0 else None,
        "goal_bytes_per_client": BYTES_PER_CLIENT.bound,
        "meets_goal": BYTES_PER_CLIENT.met(per),
        "meets_goal_again": BYTES_PER_CLIENT.met(per_again),
    }
    lines = [
        f"bench_coldrss  clients={n:,}",
        f"  ours: run_once {ours['seconds']:.2f} s; RSS after imports {ours['floor_kib'] / 1024:.1f} MiB, "
        f"peak {ours['peak_kib'] / 1024:.1f} MiB{network_text(ours)} -> {per:,.0f} B/client "
        f"(goal {BYTES_PER_CLIENT.text}: {'met' if BYTES_PER_CLIENT.met(per) else 'NOT met'})",
        f"  ours again (restart, from the checkpoint): run_once {again['seconds']:.2f} s; peak "
        f"{again['peak_kib'] / 1024:.1f} MiB{network_text(again)} -> {per_again:,.0f} B/client "
        f"(goal: {'met' if BYTES_PER_CLIENT.met(per_again) else 'NOT met'})",
        f"  raw paho: {raw['burst_seconds']:.2f} s; RSS after imports {raw['floor_kib'] / 1024:.1f} MiB, "
        f"peak {raw['peak_kib'] / 1024:.1f} MiB -> {raw_per:,.0f} B/message",
    ]
    emit(result, lines, args.json)


if __name__ == "__main__":
    main()
