"""Benchmark: the projection runner daemon against a Mosquitto of its own.

Three measurements, each beside a raw paho-mqtt baseline measured in the same run
(one connection, MQTT 5, default inflight window 20, retained QoS 1, PUBACKs
counted in on_publish):

  1. cold start: `Daemon(...).run_once()` on a fleet of N clients (rebuild from
     the ledger, record the first intents, publish, every PUBACK), and a second
     cold start on the same ledger (nothing new to record). Baseline: the same N
     payloads published raw. Ratio ours msg/s / raw msg/s (goals in bench/goals.py);
  2. change -> PUBACK latency with the daemon running (`Daemon.run()`, real
     clock): (a) one client, 200 changes made by another process
     (bench._changer), commit -> PUBACK p99; (b) one
     group of 500 clients, 30 changes, commit -> last PUBACK p99.
     Baseline: raw round trip with one in flight, raw burst of 500;
  3. boundary lateness: every client's window starts at the same instant;
     boundary -> last of the N PUBACKs, over raw N publishes, in interleaved
     rounds (a raw burst right before each edge; the ratio is the median of
     the rounds' ratios). The lead time to the boundary is sized from the
     measured commit time of a change; a round whose boundary was passed
     before its events were written is tried once more with a lead sized from
     that write.

    .venv/bin/python bench/bench_daemon.py [--clients N] [--db sqlite|postgres] [--json]
"""

from __future__ import annotations

import cProfile
import functools
import gc
import io
import math
import os
import pstats
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: the repository root on the path, for `bench.*`
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import msgspec

from bench._broker import (
    CaptureStream,
    RawPublisher,
    mosquitto,
    percentile,
    recording_factory,
)
from bench._changer import ChangerProcess
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
from bench._cpu import cpu_seconds
from bench._storm import storm_figures, storm_lines
from bench._subscriber import Subscriber
from bench.goals import BOUNDARY, CLIENT_P99_PG, CLIENT_P99_SQLITE, COLD_FIRST, COLD_RESTART, GROUP_P99
from ledger import Ledger, Meta, TargetRef, Window, format_instant, parse_instant
from ledger.domain import intent_id_for
from ledger.intent import IntentFields
from ledger.sync import Snapshot
from ledger.values import floor_second
from projections.chunks import Write
from publisher.config import BrokerConfig
from publisher.daemon import Daemon, RunSettings, SystemClock
from publisher.logs import EventLog
from publisher.mqtt import Delivery
from publisher.payload import build_payload, encode_payload

PREFIX = "infoscreen"
RAW_PREFIX = "raw-screen"  # same length as PREFIX: same topic and packet sizes
BIG_GROUP = "bench-big"
DEFAULT_AT = format_instant(WEEK_START + timedelta(days=2, hours=10))  # Wednesday 10:00
META = Meta("bench")
Sink = list[tuple[str, bytes, Delivery]]


# Clocks, timing wrappers, profiles.


class ShiftedClock(SystemClock):
    """The wall clock moved to `at`: real seconds pass, inside the generated week."""

    def __init__(self, at: datetime) -> None:
        self.offset = at - datetime.now(UTC)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset


class GcTimer:
    """Seconds the cyclic garbage collector ran (gc.callbacks), by generation, while installed."""

    def __init__(self) -> None:
        self.seconds = [0.0, 0.0, 0.0]
        self.counts = [0, 0, 0]
        self._started = 0.0

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.seconds[info["generation"]] += time.perf_counter() - self._started
            self.counts[info["generation"]] += 1

    def __enter__(self) -> GcTimer:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *_exc: Any) -> None:
        gc.callbacks.remove(self._callback)

    def report(self) -> dict[str, Any]:
        return {
            "seconds": round(sum(self.seconds), 4),
            "by_generation_seconds": [round(x, 4) for x in self.seconds],
            "collections": self.counts,
        }


@dataclass
class Call:
    start: float
    end: float
    size: int | None  # len() of the result, when it has one
    main: bool = True  # made on the main thread (the daemon's)

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass
class Phases:
    """Times calls of methods of one object, by replacing them on the instance (library untouched)."""

    calls: defaultdict[str, list[Call]] = field(default_factory=lambda: defaultdict(list))

    def wrap(self, obj: Any, attr: str, name: str | None = None) -> None:
        original = getattr(obj, attr)
        calls = self.calls[name or attr]

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.monotonic()
            result = None
            try:
                result = original(*args, **kwargs)
                return result
            finally:
                size = len(result) if isinstance(result, list) else getattr(result, "appended", None)
                main = threading.current_thread() is threading.main_thread()
                calls.append(Call(started, time.monotonic(), size, main))

        setattr(obj, attr, timed)

    def total(self, name: str) -> float:
        return sum(c.seconds for c in self.calls[name])

    def within(self, name: str, start: float, end: float) -> list[Call]:
        return [c for c in self.calls[name] if c.start >= start and c.end <= end]


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def short_path(filename: str) -> str:
    """A profile row's file: relative to site-packages, the repository, or the stdlib's lib/."""
    for marker in ("site-packages/", ROOT, "/lib/"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


def profile_report(profiler: cProfile.Profile, limit: int = 30) -> tuple[str, list[dict[str, Any]]]:
    """The top functions by cumulative time: pstats text and a compact list for --json."""
    buffer = io.StringIO()
    stats = pstats.Stats(profiler, stream=buffer)
    stats.sort_stats("cumulative").print_stats(limit)
    rows = sorted(stats.stats.items(), key=lambda kv: kv[1][3], reverse=True)[:limit]  # type: ignore[attr-defined]
    top = [
        {
            "function": f"{short_path(f)}:{line}({name})",
            "ncalls": nc,
            "tottime": round(tt, 4),
            "cumtime": round(ct, 4),
        }
        for (f, line, name), (_cc, nc, tt, ct, _callers) in rows
    ]
    return buffer.getvalue(), top


# Payloads and topics.


def topic(prefix: str, name: str) -> str:
    return f"{prefix}/{name}/power/intent"


def payload_for(
    client_id: str, group_id: str | None, state: str, reason: str, window: tuple[datetime, datetime] | None
) -> bytes:
    """A real v1 payload (publisher.payload), as the daemon would publish for that intent."""
    fields = IntentFields(
        client_id=client_id,
        group_id=group_id,
        desired_state=state,
        reason=reason,
        grace_seconds=30,
        event_window=None
        if window is None
        else {"start": format_instant(window[0]), "end": format_instant(window[1])},
    )
    now = floor_second(datetime.now(UTC))
    payload = build_payload(intent_id=intent_id_for(client_id, 7), fields=fields, issued_at=now, ttl=600)
    return encode_payload(payload)


def state_of(payload: bytes) -> str | None:
    if b'"desired_state":"on"' in payload:
        return "on"
    if b'"desired_state":"off"' in payload:
        return "off"
    return None


def is_state(state: str) -> Callable[[bytes], bool]:
    return lambda payload: state_of(payload) == state


def wait_publishes(
    sink: Sink,
    cursor: int,
    topics: set[str] | Callable[[str], bool],
    count: int,
    want: Callable[[bytes], bool] = lambda _p: True,
    timeout: float = 60.0,
) -> dict[str, tuple[bytes, Delivery]]:
    """The first publish after `cursor` on each of `count` topics (matching `want`), once all are acked."""
    accepts = topics.__contains__ if isinstance(topics, set) else topics
    found: dict[str, tuple[bytes, Delivery]] = {}
    deadline = time.monotonic() + timeout
    i = cursor
    while len(found) < count:
        n = len(sink)
        while i < n:
            t, payload, delivery = sink[i]
            i += 1
            if t not in found and accepts(t) and want(payload):
                found[t] = (payload, delivery)
        if len(found) >= count:
            break
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out: {len(found)}/{count} expected publishes within {timeout:g} s")
        time.sleep(0.002)
    for t, (_payload, delivery) in found.items():
        if not delivery.wait(max(0.1, deadline - time.monotonic())):
            raise SystemExit(f"timed out waiting for the PUBACK on {t}")
        if not delivery.ok:
            raise SystemExit(f"publish on {t} failed: {delivery.error}")
    return found


def intent_id_of(payload: bytes) -> str:
    return str(msgspec.json.decode(payload)["intent_id"])


# Ledgers.


@contextmanager
def fleet_ledger(args: Any, snapshot: Snapshot, template: Path | None, name: str) -> Iterator[Database]:
    """A ledger holding the synced fleet: a copy of the template (SQLite), or a fresh sync (PostgreSQL)."""
    if args.db == "sqlite":
        assert template is not None
        with tempfile.TemporaryDirectory(prefix="intent-ledger-bench-") as tmp:
            target = Path(tmp) / f"{name}.db"
            for suffix in ("", "-wal"):
                source = Path(f"{template}{suffix}")
                if source.exists():
                    shutil.copyfile(source, Path(f"{target}{suffix}"))
            yield Database(f"sqlite:///{target}")
        return
    with database(args.db, args.pg_url, args.pg_schema, name) as fresh:
        db = scoped(fresh)  # the daemon's own tables (receipts, checkpoint) in the bench schema too
        ledger = Ledger(db.url, db.env())
        try:
            ledger.sync(snapshot, prune=False, now=WEEK_START, meta=META)
        finally:
            ledger.close()
        yield db


# 1. Cold start.

PUBLISH_STEP = "publish (tick - follower.follow: payloads, paho publish)"


def cold_start(
    db: Database,
    port: int,
    clock: Any,
    profiler: cProfile.Profile | None = None,
    net_process: bool = True,
    broker_pid: int | None = None,
) -> dict[str, Any]:
    """One `run_once()` on a fresh Ledger instance, with its steps timed and the CPU it took."""
    stream = CaptureStream()
    sink: Sink = []
    connects: list[float] = []
    # As `run`: the session's process is started before the ledger is opened (neither is timed).
    sessions = recording_factory(sink, connects, keep=False, net_process=net_process)
    ledger = Ledger(db.url, db.env())  # opening the database is not timed
    try:
        phases = Phases()
        daemon = Daemon(
            ledger,
            BrokerConfig(port=port),
            RunSettings(prefix=PREFIX, net_process=net_process),
            clock=clock,
            log=EventLog(stream),
            session_factory=sessions,
        )
        waited = Write.result  # a chunk written on a thread: the daemon's wait for it is its record
        if profiler is None:
            phases.wrap(Write, "result", "write_wait")
            for obj, attr in (
                (daemon.projector, "start"),
                (daemon.projector, "pull"),
                (daemon.projector, "step"),
                (ledger, "record_intents"),
                (daemon, "_follow"),
                (daemon.follower, "follow"),
                (daemon.follower, "read_ahead"),
                (daemon, "_connect"),
                (daemon, "tick"),
                (daemon, "settle"),
            ):
                phases.wrap(obj, attr)
        cpu = CpuWindow(broker_pid)
        started = time.monotonic()
        if profiler is not None:
            profiler.enable()
        try:
            with GcTimer() as gc_timer:
                failures = daemon.run_once()
        finally:
            if profiler is not None:
                profiler.disable()
            Write.result = waited  # type: ignore[method-assign]
        seconds = time.monotonic() - started
        cpu_used = cpu.used()  # the network process is reaped by run_once's close
        if failures:
            raise SystemExit(f"run_once failed: {failures[:3]}")
        publishes = stream.records("publish")
        acked = sum(1 for _, r in publishes if r["result"] == "acked")
        transitions = len(stream.records("transition"))
        views = daemon.projector.view.logs
        states = Counter(
            f"{log.last.fields.desired_state}/{log.last.fields.reason}" for log in views.values() if log.last
        )
        sizes = [len(p) for _t, p, _d in sink if "/server/" not in _t]
        payloads = [
            (topic(RAW_PREFIX, t.split("/")[1]), p) for t, p, _d in sink if t.startswith(PREFIX + "/")
        ]
        out: dict[str, Any] = {
            "seconds": seconds,
            "published": acked,
            "transitions": transitions,
            "intents": dict(sorted(states.items())),
            "payload_bytes_median": median([float(x) for x in sizes]) if sizes else 0,
            "payloads": payloads,
            "gc": gc_timer.report(),
            "cpu": cpu_used,
        }
        if profiler is None:
            # The start goes in chunks: its first in `start`, the rest (and the read back of
            # our own intents) in `step`, each published within the tick that recorded it.
            start = phases.total("start")
            pull = phases.total("pull")
            # run_once reads the ledger (the fold, or the checkpoint's resume) while its session
            # connects (on a thread): the connect step is the daemon's wait for it after that.
            ahead = phases.calls["read_ahead"]
            pull_ahead = sum(c.seconds for a in ahead for c in phases.within("pull", a.start, a.end))
            # The daemon's thread's: the chunks it recorded itself, and its waits for the chunks
            # written on a thread while it evaluated the next one (projections.chunks).
            record = sum(c.seconds for c in phases.calls["record_intents"] if c.main)
            record += phases.total("write_wait")
            step = phases.total("step")
            follow = phases.total("follow")  # the follower's: the projector, and the transitions logged
            ticks = phases.calls["tick"]
            alone = [
                f for f in phases.calls["_follow"] if not any(t.start <= f.start <= t.end for t in ticks)
            ]
            tick = phases.total("tick") + sum(c.seconds for c in alone)  # and run_once's own follows
            settle = phases.total("settle")
            connect = sum(
                c.seconds
                for c in phases.calls["_connect"]
                if not any(t.start <= c.start <= t.end for t in ticks)
            )
            steps = {
                "rebuild (projector.pull: read + fold the ledger)": pull,
                "evaluate (timelines + IntentLog.issue; chunks, read back)": start
                + step
                - (pull - pull_ahead)
                - record,
                "record (ledger.record_intents)": record,
                "log transitions (follower.follow - projector)": follow - start - step,
                "resume (the checkpoint, while connecting)": sum(a.seconds for a in ahead) - pull_ahead,
                "connect (the wait for the broker after the read ahead)": connect,
                PUBLISH_STEP: tick - follow,
                "wait for PUBACKs (settle)": settle,
            }
            steps["other (announce, close session)"] = seconds - sum(steps.values())
            out["steps"] = steps
            out["recorded_events"] = sum(c.size or 0 for c in phases.calls["record_intents"])
        return out
    finally:
        ledger.close()


def measure_cold(
    args: Any,
    snapshot: Snapshot,
    template: Path | None,
    port: int,
    clock_for: Callable[[], Any],
    broker_pid: int | None = None,
) -> dict[str, Any]:
    runs: list[dict[str, Any]] = []
    raws: list[float] = []
    raw_cpu: dict[str, float | None] = {}
    raw = RawPublisher(port)
    payloads: list[tuple[str, bytes]] = []
    net_process = args.session == "process"
    try:
        for i in range(args.repeat):
            with fleet_ledger(args, snapshot, template, "cold") as db:
                progress(args.json, f"cold start {i + 1}/{args.repeat}: run_once on a fresh ledger ...")
                first = cold_start(db, port, clock_for(), net_process=net_process, broker_pid=broker_pid)
                payloads = first.pop("payloads")
                cpu = CpuWindow(broker_pid)
                raws.append(raw.burst(payloads))
                raw_cpu = raw_cpu or cpu.used()  # the first run's, as the report's steps
                progress(args.json, f"  run_once {first['seconds']:.2f} s; raw {raws[-1]:.2f} s; again ...")
                second = cold_start(db, port, clock_for(), net_process=net_process, broker_pid=broker_pid)
                second.pop("payloads")
                raws.append(raw.burst(payloads))
                progress(args.json, f"  second run_once {second['seconds']:.2f} s; raw {raws[-1]:.2f} s")
            runs.append({"first": first, "second": second})
    finally:
        raw.close()
    return {"runs": runs, "raw": raws, "raw_cpu": raw_cpu, "payloads": payloads}


def profile_cold(
    args: Any, snapshot: Snapshot, template: Path | None, port: int, clock_for: Callable[[], Any]
) -> dict[str, Any]:
    out = {}
    with fleet_ledger(args, snapshot, template, "profile") as db:
        for which in ("first", "second"):
            profiler = cProfile.Profile()
            result = cold_start(db, port, clock_for(), profiler, args.session == "process")
            text, top = profile_report(profiler)
            out[which] = {"seconds": result["seconds"], "text": text, "top": top}
    return out


# 2 and 3. The daemon running in a thread, on the real clock.


class Running:
    """The daemon's loop in a thread, with every publish and the log recorded."""

    def __init__(self, db: Database, port: int, settings: RunSettings | None = None) -> None:
        """`settings`: by default `run`'s session (in a process of its own) and our prefix."""
        self.ledger = Ledger(db.url, db.env())
        self.stream = CaptureStream()
        self.sink: Sink = []
        self.connects: list[float] = []
        self.phases = Phases()
        self.daemon = Daemon(
            self.ledger,
            BrokerConfig(port=port),
            settings := settings or RunSettings(prefix=PREFIX, net_process=True),
            log=EventLog(self.stream),
            session_factory=recording_factory(self.sink, self.connects, net_process=settings.net_process),
        )
        self.profiler: cProfile.Profile | None = None
        self.profiling = threading.Event()
        for obj, attr in ((self.daemon.projector, "step"), (self.ledger, "record_intents")):
            self.phases.wrap(obj, attr)
        tick = self.daemon.tick

        def profiled_tick() -> None:
            if self.profiler is not None and self.profiling.is_set():
                self.profiler.enable()
                try:
                    tick()
                finally:
                    self.profiler.disable()
            else:
                tick()

        self.daemon.tick = profiled_tick  # type: ignore[method-assign]
        self.phases.wrap(self.daemon, "tick")
        self.thread = threading.Thread(target=self.daemon.run, name="daemon")

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.daemon.stop()
        self.thread.join(60)
        self.ledger.close()
        if self.thread.is_alive():
            raise SystemExit("the daemon did not stop within 60 s")

    def forget(self) -> None:
        """Drop what earlier measurements recorded, so the recording does not grow the heap the GC walks."""
        del self.sink[:]
        del self.stream.lines[:]

    def logged_at(self, intent_ids: set[str], since: int = 0) -> dict[str, float]:
        """When the daemon logged each acknowledged publish of these intents (monotonic)."""
        out = {}
        for t, r in self.stream.records("publish", since):
            if r.get("intent_id") in intent_ids and r["result"] == "acked" and r["intent_id"] not in out:
                out[r["intent_id"]] = t
        return out


def summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50_ms": round(percentile(values, 50) * 1000, 3),
        "p99_ms": round(percentile(values, 99) * 1000, 3),
        "max_ms": round(max(values) * 1000, 3),
    }


def active_window() -> Window:
    now = floor_second(datetime.now(UTC))
    return Window(now - timedelta(minutes=1), now + timedelta(hours=1))


def rounds_of(count: int, rounds: int) -> int:
    """Changes a round: an even number (each override set is cleared again), `rounds` rounds at most."""
    return max(2, 2 * math.ceil(count / (2 * max(1, rounds))))


def round_figures(
    ours: list[float], raw: list[float], ours_at: list[int], raw_at: list[int]
) -> dict[str, Any]:
    """p99 of each round, ours and the baseline's (measured just before it), and their ratios."""
    rows = []
    for k in range(len(ours_at)):
        mine = ours[ours_at[k] : ours_at[k + 1] if k + 1 < len(ours_at) else None]
        base = raw[raw_at[k] : raw_at[k + 1] if k + 1 < len(raw_at) else None]
        p, b = percentile(mine, 99), percentile(base, 99)
        rows.append(
            {"p99_ms": round(p * 1000, 3), "raw_p99_ms": round(b * 1000, 3), "ratio": round(p / b, 3)}
        )
    return {"rounds": rows, "median_round_ratio": median([r["ratio"] for r in rows])}


def client_changes(
    run: Running,
    changer: Ledger | ChangerProcess,
    client_id: str,
    count: int,
    rounds: int = 1,
    baseline: Callable[[], list[float]] | None = None,
) -> dict[str, Any]:
    """Alternately set and clear a client override active now; commit -> PUBACK of the resulting publish.

    In `rounds` rounds, each after a round of the `baseline` (raw round trips): both see the
    same load, and the samples of all rounds are pooled."""
    rng = random.Random(7)
    target = {topic(PREFIX, client_id)}
    latency: list[float] = []
    to_publish: list[float] = []
    logged: list[float] = []
    writes: list[float] = []
    raw: list[float] = []
    ours_at: list[int] = []
    raw_at: list[int] = []
    gcs: list[GcTimer] = []
    per_round = rounds_of(count, rounds)
    for i in range(count):
        if i % per_round == 0 and baseline is not None:
            ours_at.append(len(latency))
            raw_at.append(len(raw))
            raw += baseline()
        time.sleep(rng.uniform(0.0, 0.02))  # spread the commits over the daemon's poll phase
        run.forget()
        cursor, log_cursor = len(run.sink), len(run.stream.lines)
        called = time.monotonic()
        want = "on" if i % 2 == 0 else "off"
        if isinstance(changer, ChangerProcess):  # its commit's time, read in that process
            committed = (
                changer.add_override(f"bench-o{i}", client_id)
                if i % 2 == 0
                else changer.clear_override(f"bench-o{i - 1}")
            )
        else:
            if i % 2 == 0:
                ref = TargetRef("client", client_id)
                changer.add_override(f"bench-o{i}", ref, "on", active_window(), META)
            else:
                changer.clear_override(f"bench-o{i - 1}", META)
            committed = time.monotonic()
        writes.append(committed - called)
        with GcTimer() as gc_timer:
            found = wait_publishes(run.sink, cursor, target, 1, is_state(want), 10)
        gcs.append(gc_timer)
        payload, delivery = found[topic(PREFIX, client_id)]
        assert delivery.acked_at is not None
        latency.append(delivery.acked_at - committed)
        to_publish.append(delivery.started - committed)
        iid = intent_id_of(payload)
        seen = wait_logged(run, {iid}, log_cursor)
        logged.append(seen[iid] - committed)
    out: dict[str, Any] = {
        "changes": count,
        "commit_to_puback": summary(latency),
        "commit_to_publish": summary(to_publish),
        "commit_to_logged": summary(logged),
        "write": summary(writes),
        "samples_ms": [round(x * 1000, 3) for x in latency],
        "slowest": slowest(latency, gcs),
    }
    if baseline is not None:
        out["baseline"] = summary(raw)
        out["baseline_samples_ms"] = [round(x * 1000, 3) for x in raw]
        out |= round_figures(latency, raw, ours_at, raw_at)
    return out


def wait_logged(run: Running, ids: set[str], since: int, timeout: float = 10.0) -> dict[str, float]:
    deadline = time.monotonic() + timeout
    while True:
        seen = run.logged_at(ids, since)
        if len(seen) >= len(ids) or time.monotonic() > deadline:
            return seen
        time.sleep(0.005)


def group_changes(
    run: Running,
    changer: Ledger,
    members: list[str],
    count: int,
    rounds: int = 1,
    baseline: Callable[[], list[float]] | None = None,
) -> dict[str, Any]:
    """Alternately set and clear a group override active now; commit -> last of the members' PUBACKs
    (in `rounds` rounds after a round of the `baseline` each, as `client_changes`)."""
    rng = random.Random(11)
    topics = {topic(PREFIX, c) for c in members}
    latency: list[float] = []
    first_publish: list[float] = []
    last_publish: list[float] = []
    steps: list[float] = []
    records: list[float] = []
    raw: list[float] = []
    ours_at: list[int] = []
    raw_at: list[int] = []
    gcs: list[GcTimer] = []
    per_round = rounds_of(count, rounds)
    for i in range(count):
        if i % per_round == 0 and baseline is not None:
            ours_at.append(len(latency))
            raw_at.append(len(raw))
            raw += baseline()
        time.sleep(rng.uniform(0.05, 0.1))
        run.forget()
        cursor = len(run.sink)
        if i % 2 == 0:
            changer.add_override(f"bench-g{i}", TargetRef("group", BIG_GROUP), "on", active_window(), META)
            want = "on"
        else:
            changer.clear_override(f"bench-g{i - 1}", META)
            want = "off"
        committed = time.monotonic()
        with GcTimer() as gc_timer:
            found = wait_publishes(run.sink, cursor, topics, len(topics), is_state(want), 30)
        gcs.append(gc_timer)
        acked = [d.acked_at for _p, d in found.values() if d.acked_at is not None]
        started = [d.started for _p, d in found.values()]
        latency.append(max(acked) - committed)
        first_publish.append(min(started) - committed)
        last_publish.append(max(started) - committed)
        done = max(acked)
        step = [c for c in run.phases.within("step", committed - 0.05, done) if (c.size or 0) >= len(topics)]
        if step:
            steps.append(step[0].seconds)
            rec = run.phases.within("record_intents", step[0].start, step[0].end)
            records.append(sum(c.seconds for c in rec))
    out: dict[str, Any] = {
        "changes": count,
        "clients": len(members),
        "commit_to_last_puback": summary(latency),
        "commit_to_first_publish": summary(first_publish),
        "commit_to_last_publish": summary(last_publish),
        "projector_step": summary(steps) if steps else None,
        "record_intents": summary(records) if records else None,
        "samples_ms": [round(x * 1000, 3) for x in latency],
        "gc_ms": [round(sum(g.seconds) * 1000, 3) for g in gcs],
        "gen2_collections": [g.counts[2] for g in gcs],
        "slowest": slowest(latency, gcs),
    }
    if baseline is not None:
        out["baseline"] = summary(raw)
        out["baseline_samples_ms"] = [round(x * 1000, 3) for x in raw]
        out |= round_figures(latency, raw, ours_at, raw_at)
    return out


def slowest(latency: list[float], gcs: list[GcTimer], k: int = 3) -> list[dict[str, Any]]:
    """The k slowest samples, with how long the garbage collector ran meanwhile."""
    order = sorted(range(len(latency)), key=lambda i: latency[i], reverse=True)[:k]
    return [
        {
            "ms": round(latency[i] * 1000, 3),
            "gc_ms": round(sum(gcs[i].seconds) * 1000, 3),
            "gen2_ms": round(gcs[i].seconds[2] * 1000, 3),
        }
        for i in order
    ]


def mono_of(instant: datetime) -> float:
    """The time.monotonic() reading at a wall-clock instant."""
    return time.monotonic() + (instant - datetime.now(UTC)).total_seconds()


class LostWindow(Exception):
    """Writing a boundary's events took longer than its lead time: the boundary passed first."""

    def __init__(self, setup: float, end: datetime) -> None:
        super().__init__(f"adding the boundary's events took {setup:.2f} s: past the boundary")
        self.setup = setup
        self.end = end


def lead_for(write: float, events: int, floor: float) -> float:
    """Seconds to a boundary: twice the measured time to write its events, one more second, >= floor."""
    return max(floor, 2 * write * events + 1.0)


def boundary(
    run: Running,
    changer: Ledger,
    groups: list[str],
    clients: list[str],
    lead: float,
    length: int,
    label: str,
    profile: bool = False,
    screens: Subscriber | None = None,
    between: Callable[[datetime], None] | None = None,
) -> list[dict[str, Any]]:
    """Every group gets an event [B, B + length); B -> last PUBACK of the N `on`s, then of the N `off`s.

    `between(off_instant)` runs after the `on` edge is measured, before the wait for the `off`
    boundary (the storm's rounds measure their baseline there, right before the edge)."""
    t0 = time.monotonic()
    start = floor_second(datetime.now(UTC)) + timedelta(seconds=math.ceil(lead))
    end = start + timedelta(seconds=length)
    for g in groups:
        changer.add_event(f"bench-{label}-{g}", TargetRef("group", g), Window(start, end), META)
    setup = time.monotonic() - t0
    margin = (start - datetime.now(UTC)).total_seconds()
    if margin < 0.2:
        raise LostWindow(setup, end)
    topics = {topic(PREFIX, c) for c in clients}
    out = []
    edges = [(start, "on")] if profile else [(start, "on"), (end, "off")]
    for instant, want in edges:
        if want == "off" and between is not None:
            between(instant)
        at = mono_of(instant)
        while time.monotonic() < at - 0.3:
            time.sleep(0.05)
        run.forget()
        cursor, log_cursor = len(run.sink), len(run.stream.lines)
        seen = screens.mark() if screens else 0
        if profile:
            run.profiler = cProfile.Profile()
            run.profiling.set()
        with GcTimer() as gc_timer:
            found = wait_publishes(run.sink, cursor, topics, len(topics), is_state(want), 120)
        acked = [d.acked_at for _p, d in found.values() if d.acked_at is not None]
        started = [d.started for _p, d in found.values()]
        last_ack = max(acked)
        ids = {intent_id_of(p) for p, _d in found.values()}
        logged = wait_logged(run, ids, log_cursor, 30)
        received = screens.last_arrival(seen, topics, want) if screens else None
        if profile:
            run.profiling.clear()
        at = mono_of(instant)  # again, in case the wall clock was adjusted meanwhile
        step = [c for c in run.phases.within("step", at - 0.05, last_ack + 1) if (c.size or 0) >= len(topics)]
        row: dict[str, Any] = {
            "edge": want,
            "boundary": format_instant(instant),
            "lead_seconds": lead,
            "setup_seconds": round(setup, 3),
            "margin_seconds": round(margin, 3),
            "transitions": len(found),
            "boundary_to_last_puback": last_ack - at,
            "boundary_to_first_publish": min(started) - at,
            "boundary_to_last_publish": max(started) - at,
            "boundary_to_last_logged": (max(logged.values()) - at) if logged else None,
            "boundary_to_last_received": None if received is None else received - at,
            "gc_during": gc_timer.report(),
        }
        if step:
            s = step[0]
            rec = run.phases.within("record_intents", s.start, s.end)
            ticks = [c for c in run.phases.within("tick", s.start - 1, s.end + 60) if c.start <= s.start]
            row |= {
                "wake_delay": s.start - at,
                "projector_step": s.seconds,
                "record_intents": sum(c.seconds for c in rec),
                "evaluate": s.seconds - sum(c.seconds for c in rec),
                "tick_with_step": ticks[-1].seconds if ticks else None,
                "step_end_to_last_puback": last_ack - s.end,
            }
        out.append(row)
        if profile and run.profiler is not None:
            text, top = profile_report(run.profiler)
            row["profile"] = {"text": text, "top": top}
    return out


def fleet_messages(snapshot: Snapshot, state: str, seconds: int) -> list[tuple[str, bytes]]:
    """The raw baseline of one storm edge: every client's intent of that edge, on the raw topics."""
    start = floor_second(datetime.now(UTC))
    span = (start, start + timedelta(seconds=seconds))
    return [
        (
            topic(RAW_PREFIX, c.client_id),
            payload_for(c.client_id, c.group_id, "on", "event_window_active", span)
            if state == "on"
            else payload_for(c.client_id, c.group_id, "off", "no_active_event", None),
        )
        for c in snapshot.clients
    ]


def raw_edge(
    raw: RawPublisher, screens: Subscriber, messages: list[tuple[str, bytes]], state: str
) -> dict[str, float]:
    """One raw burst of an edge's messages: seconds to the last PUBACK, and to the last message
    the subscriber (the same one that measures the daemon's edges) received."""
    screens.settle()
    since, started = screens.mark(), time.monotonic()
    seconds = raw.burst(messages)
    last = screens.last_arrival(since, {t for t, _p in messages}, state)
    if last is None:
        raise SystemExit("the subscriber did not receive the raw burst within 60 s")
    return {"seconds": seconds, "received_seconds": last - started}


def wait_idle(run: Running, timeout: float = 60.0) -> float:
    """Wait until the daemon has no receipts to write (the edge before's) and no boundary
    ahead to prepare, and return the seconds waited: a raw baseline measured meanwhile would
    share the machine with that work."""
    started = time.monotonic()
    writer = run.daemon.receipt_writer
    quiet_since = None
    while time.monotonic() - started < timeout:
        writing = getattr(writer, "_writing", None)  # a batch being written on a thread
        preparing = getattr(run.daemon.follower, "preparing", False)  # the next edge evaluated ahead
        busy = writer.due() or (writing is not None and writing.is_alive()) or preparing
        if busy:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= 0.3:
            break
        time.sleep(0.02)
    run.forget()
    return time.monotonic() - started


ROOM = 1.5  # the time a raw burst is given before the `off` boundary: this many raw bursts


def storm_window(least: int, raw_received: float, previous_on: float | None) -> int:
    """Seconds between a round's boundaries: room for its `on` edge and the daemon's receipts
    (as long as the round before's, or 1.5 raw bursts in the first) and the raw burst before `off`."""
    on = previous_on if previous_on is not None else 1.5 * raw_received
    return max(least, math.ceil(on + ROOM * raw_received + 1))


def storm_round(
    run: Running,
    changer: Ledger,
    groups: list[str],
    clients: list[str],
    raw: RawPublisher,
    screens: Subscriber,
    fleets: dict[str, list[tuple[str, bytes]]],
    lead: float,
    least_window: int,
    previous_on: float | None,
    label: str,
) -> dict[str, Any]:
    """One round of the storm: a raw burst, the `on` boundary, a raw burst, the `off` boundary.

    Each raw burst waits for the daemon to be idle (the edge before's receipts written). The
    raw `on` burst runs before the events are written; the raw `off` burst in the window, once
    the `on` edge is measured, if the window leaves room for it (`ROOM` times the `on` burst's),
    else right after the `off` edge (`before_edge` false). `previous_on`: how long after its
    `on` boundary the round before could start its raw `off` burst (sizes the window)."""
    idle = wait_idle(run)
    base = {"on": raw_edge(raw, screens, fleets["on"], "on") | {"idle_wait": idle, "before_edge": True}}
    window = storm_window(least_window, base["on"]["received_seconds"], previous_on)
    ready: list[float] = []

    def off_baseline(instant: datetime) -> None:
        idle = wait_idle(run)
        ready.append(window - (instant - datetime.now(UTC)).total_seconds())
        if window - ready[0] >= ROOM * base["on"]["received_seconds"] + 0.5:
            measured = raw_edge(raw, screens, fleets["off"], "off")
            # Before the edge only if it ended before the boundary: a burst that ran into the
            # edge shared the machine with it, and the round says so.
            before = datetime.now(UTC) < instant - timedelta(seconds=0.3)
            base["off"] = measured | {"idle_wait": idle, "before_edge": before}

    edges = boundary(
        run, changer, groups, clients, lead, window, label, screens=screens, between=off_baseline
    )
    if "off" not in base:
        idle = wait_idle(run)
        base["off"] = raw_edge(raw, screens, fleets["off"], "off") | {"idle_wait": idle, "before_edge": False}
    return {"window_seconds": window, "off_ready_after": ready[0], "raw": base, "edges": edges}


def storm_rounds(
    args: Any,
    run: Running,
    changer: Ledger,
    groups: list[str],
    clients: list[str],
    raw: RawPublisher,
    snapshot: Snapshot,
    lead: float,
    port: int,
) -> list[dict[str, Any]]:
    """`--storm-rounds` rounds of the boundary storm, each with its raw baseline right before
    each edge, all with one subscriber to every screen's topic and every raw topic.

    The first round's lead is `lead`, each next one's sized from the write of the round before.
    A round whose boundary passed while its events were written is run once more (after that
    window ended) with a lead sized from that write; lost twice, the run fails."""
    screens = Subscriber(port, "+/+/power/intent")
    rounds: list[dict[str, Any]] = []
    try:
        previous_on: float | None = None
        for k in range(max(1, args.storm_rounds)):
            fleets = {edge: fleet_messages(snapshot, edge, args.window) for edge in ("on", "off")}
            progress(args.json, f"  storm round {k + 1}/{args.storm_rounds} (lead {lead:.1f} s) ...")
            at = (lead, args.window, previous_on)
            try:
                one = storm_round(run, changer, groups, clients, raw, screens, fleets, *at, f"b{k}")
            except LostWindow as lost:
                lead = lead_for(lost.setup / len(groups), len(groups), args.lead)
                progress(args.json, f"  {lost}; once more with a lead of {lead:.1f} s ...")
                while datetime.now(UTC) < lost.end + timedelta(seconds=5):
                    time.sleep(0.1)  # the lost window's on and off are published meanwhile
                at = (lead, args.window, previous_on)
                try:
                    one = storm_round(run, changer, groups, clients, raw, screens, fleets, *at, f"b{k}again")
                except LostWindow as again:  # one line for run_all's report (it runs us once more)
                    raise SystemExit(f"storm round {k + 1}: {lost}; and again: {again}") from None
                one["edges"][0]["retried_after"] = str(lost)
            previous_on = one["off_ready_after"]
            # The next round's lead from this round's write of its events (the load changes).
            lead = lead_for(one["edges"][0]["setup_seconds"] / len(groups), len(groups), args.lead)
            for e in one["edges"]:
                r = one["raw"][e["edge"]]
                progress(
                    args.json,
                    f"    {e['edge']}: last PUBACK +{e['boundary_to_last_puback']:.2f} s, "
                    f"raw {r['seconds']:.2f} s (ratio {e['boundary_to_last_puback'] / r['seconds']:.2f})",
                )
            rounds.append(one)
    finally:
        screens.close()
    return rounds


def measure_live(
    args: Any, snapshot: Snapshot, template: Path | None, port: int, profile: str
) -> dict[str, Any]:
    clients = [c.client_id for c in snapshot.clients]
    big = min(args.group_size, len(clients) // 2)
    members = clients[:big]
    ordinary = clients[big]  # not in the big group
    groups = sorted({c.group_id for c in snapshot.clients if c.group_id} | {BIG_GROUP})

    # Every baseline is measured in rounds interleaved with the daemon's measurements: the
    # change latency's before each round of changes, the storm's right before each edge.
    raw = RawPublisher(port)
    window = active_window()
    one = payload_for(ordinary, "g", "on", "client_override", (window.start, window.end))
    burst = [
        (
            topic(RAW_PREFIX, c),
            payload_for(c, BIG_GROUP, "on", "group_override", (window.start, window.end)),
        )
        for c in members
    ]
    rounds = max(1, args.rounds)
    per_client_round = rounds_of(args.changes, rounds)
    round_trips = functools.partial(raw.round_trips, topic(RAW_PREFIX, ordinary), one, per_client_round)
    bursts = functools.partial(raw.bursts, burst, args.bursts)
    raw_out: dict[str, Any] = {}

    with fleet_ledger(args, snapshot, template, "live") as db:
        changer = Ledger(db.url, db.env())  # another connection, as the CLI would be
        try:
            moved = msgspec.structs.replace(
                snapshot,
                clients=[
                    msgspec.structs.replace(c, group_id=BIG_GROUP) if i < big else c
                    for i, c in enumerate(snapshot.clients)
                ],
            )
            changer.sync(moved, prune=False, now=datetime.now(UTC), meta=META)  # not timed
            run = Running(db, port, RunSettings(prefix=PREFIX, net_process=args.session == "process"))
            progress(
                args.json,
                f"daemon running (real clock); waiting for its {len(clients):,} start publishes ...",
            )
            t0 = time.monotonic()
            run.start()
            try:
                wait_publishes(run.sink, 0, lambda t: t.startswith(PREFIX + "/c"), len(clients), timeout=180)
                startup = time.monotonic() - t0
                # Steady state: the start's burst acknowledged and logged (its receipts follow
                # within a few rounds), not merely handed to paho.
                deadline = time.monotonic() + 120
                while sum(1 for line in run.stream.lines if '"publish"' in line[1]) < len(clients):
                    if time.monotonic() > deadline:
                        raise SystemExit("the start's publishes were not all logged within 120 s")
                    time.sleep(0.05)
                time.sleep(0.5)
                run.forget()
                gc.collect()
                tracked = len(gc.get_objects())  # what a full (generation 2) collection walks
                progress(args.json, f"  started in {startup:.2f} s; {args.changes} client changes ...")
                # The client's changes from a process of their own, as the CLI's are (bench._changer).
                remote = ChangerProcess(db.url, db.env())
                try:
                    client = client_changes(run, remote, ordinary, args.changes, rounds, round_trips)
                finally:
                    remote.close()
                raw_out["round_trip"] = client["baseline"]
                progress(
                    args.json,
                    f"  client p50 {client['commit_to_puback']['p50_ms']:.1f} ms, "
                    f"p99 {client['commit_to_puback']['p99_ms']:.1f} ms; "
                    f"{args.group_changes} group changes ({len(members)} clients) ...",
                )
                group = group_changes(run, changer, members, args.group_changes, rounds, bursts)
                raw_out["burst_group"] = {"messages": len(burst), **group["baseline"]}
                progress(
                    args.json,
                    f"  group p50 {group['commit_to_last_puback']['p50_ms']:.1f} ms, "
                    f"p99 {group['commit_to_last_puback']['p99_ms']:.1f} ms; "
                    f"then {args.storm_rounds} rounds of the boundary storm ...",
                )
                # The lead time from what writing a change cost here (p99 of the client changes).
                lead = lead_for(client["write"]["p99_ms"] / 1000, len(groups), args.lead)
                storm_started = time.monotonic()
                storm = storm_rounds(args, run, changer, groups, clients, raw, snapshot, lead, port)
                storm_seconds = time.monotonic() - storm_started
                profiled = None
                missed = not all(BOUNDARY.met(e["median_round_ratio"]) for e in storm_figures(storm)["edges"])
                if profile == "always" or (profile == "auto" and missed):
                    progress(args.json, "  profiling one more boundary (cProfile in the daemon thread) ...")
                    try:
                        profiled = boundary(
                            run, changer, groups, clients, lead, max(args.window, 300), "profiled", True
                        )[0]
                    except LostWindow as lost:  # the figures above stand; only the profile is lost
                        progress(args.json, f"  no profile: {lost}")
            finally:
                run.stop()
        finally:
            changer.close()
            raw.close()
    return {
        "raw": raw_out,
        "startup_seconds": startup,
        "gc_tracked_objects": tracked,
        "client": client,
        "group": group,
        "storm": storm,
        "storm_seconds": storm_seconds,
        "profiled_boundary": profiled,
        "log_errors": [r for _t, r in run.stream.records() if r.get("result") == "failed"][:5],
    }


# The report.


def git_state() -> dict[str, Any]:
    """The commit measured (read-only git calls), and whether the working tree differed from it."""
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=here, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=here, capture_output=True, text=True
        ).stdout.rstrip("\n")
    except (OSError, subprocess.CalledProcessError):
        return {}
    return {"commit": commit, "modified_files": dirty.splitlines()}


def r4(x: Any) -> Any:
    return round(x, 4) if isinstance(x, float) else x


def rounded(x: Any) -> Any:
    """`r4` all the way down (dicts and lists)."""
    if isinstance(x, dict):
        return {k: rounded(v) for k, v in x.items()}
    if isinstance(x, list):
        return [rounded(v) for v in x]
    return r4(x)


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def ms_line(label: str, s: dict[str, float]) -> str:
    return (
        f"      {label:28s} p50 {s['p50_ms']:8.2f} ms  p99 {s['p99_ms']:8.2f} ms  max {s['max_ms']:8.2f} ms"
    )


class CpuWindow:
    """CPU seconds from now on: this process (every thread), its reaped children (the network
    process), and the broker. Whether both cores were busy tells a first start's lever: less
    work anywhere, or more overlap."""

    def __init__(self, broker_pid: int | None) -> None:
        self.broker_pid = broker_pid
        self.own, self.children, self.broker = time.process_time(), _children_cpu(), cpu_seconds(broker_pid)

    def used(self) -> dict[str, float | None]:
        broker = cpu_seconds(self.broker_pid)
        return {
            "process": r4(time.process_time() - self.own),
            "children": r4(_children_cpu() - self.children),
            "broker": None if broker is None or self.broker is None else r4(broker - self.broker),
        }


def _children_cpu() -> float:
    times = os.times()
    return times.children_user + times.children_system


def cpu_lines(ours: dict[str, Any], wall: float, raw: dict[str, Any], raw_wall: float) -> list[str]:
    """The CPU of a first start and of the raw burst, against what two cores could give."""
    cores = os.cpu_count() or 1

    def line(label: str, cpu: dict[str, Any], seconds: float) -> str:
        if not cpu or cpu.get("broker") is None:
            return f"      {label}: CPU not measured (the broker's /proc entry could not be read)"
        total = cpu["process"] + cpu["children"] + cpu["broker"]
        return (
            f"      {label}: CPU {cpu['process']:.2f} s this process + {cpu['children']:.2f} s network "
            f"process + {cpu['broker']:.2f} s broker = {total:.2f} s of {cores} x {seconds:.3f} s "
            f"({total / (cores * seconds):.0%} of the cores)"
        )

    return [line("first start", ours, wall), line("raw paho", raw, raw_wall)]


def report_cold(
    args: Any, n: int, cold: dict[str, Any], profile: dict[str, Any] | None
) -> tuple[dict[str, Any], list[str]]:
    raw_s = median(cold["raw"])
    first = median([r["first"]["seconds"] for r in cold["runs"]])
    second = median([r["second"]["seconds"] for r in cold["runs"]])
    f0, s0 = cold["runs"][0]["first"], cold["runs"][0]["second"]
    raw_rate = n / raw_s
    ratio1, ratio2 = n / first / raw_rate, n / second / raw_rate
    publish_keys = (PUBLISH_STEP, "wait for PUBACKs (settle)")
    publish_phase = sum(f0["steps"][k] for k in publish_keys)

    def part(run: dict[str, Any], seconds: float, ratio: float) -> dict[str, Any]:
        steps = run["steps"]
        return {
            "seconds": r4(seconds),
            "msg_per_s": round(n / seconds, 1),
            "ratio": round(ratio, 3),
            "transitions": run["transitions"],
            "recorded_events": run["recorded_events"],
            "gc_during": run["gc"],
            "steps": {k: r4(v) for k, v in steps.items()},
            "dominant_step": max(steps, key=lambda k: steps[k]),
        }

    out: dict[str, Any] = {
        "first": part(f0, first, ratio1)
        | {
            "intents": f0["intents"],
            "publish_phase_msg_per_s": round(n / publish_phase, 1),
            "publish_phase_ratio": round(n / publish_phase / raw_rate, 3),
        },
        "second": part(s0, second, ratio2),
        "baseline": {
            "what": f"raw paho, one connection, inflight 20: the same {n} retained QoS 1 payloads",
            "seconds": r4(raw_s),
            "all": [r4(x) for x in cold["raw"]],
            "msg_per_s": round(raw_rate, 1),
            "payload_bytes_median": f0["payload_bytes_median"],
        },
        "goal": {"first": COLD_FIRST.bound, "second": COLD_RESTART.bound},
        "meets_goal": bool(COLD_FIRST.met(ratio1) and COLD_RESTART.met(ratio2)),
    }
    if profile:
        out["profile"] = {k: {"seconds": r4(v["seconds"]), "top": v["top"]} for k, v in profile.items()}
    lines = [
        "",
        f"1. cold start: run_once on {n:,} clients at {args.at} "
        f"(payload ~{f0['payload_bytes_median']:.0f} B; {f0['intents']})",
    ]
    for name, run, seconds, ratio, goal in (
        (f"first: rebuild + record {f0['transitions']:,} + publish", f0, first, ratio1, COLD_FIRST),
        ("second: rebuild, nothing to record, publish", s0, second, ratio2, COLD_RESTART),
    ):
        lines.append(
            f"  {name:48s} {seconds:7.3f} s {n / seconds:8,.0f} msg/s  "
            f"ratio {ratio:.2f}  (goal {goal.text}: {verdict(bool(goal.met(ratio)))})"
        )
        lines += [f"      {k:56s} {v:7.3f} s" for k, v in run["steps"].items()]
        lines.append(
            f"      (the garbage collector ran {run['gc']['seconds']:.3f} s of it: "
            f"{run['gc']['collections']} collections of generations 0/1/2, "
            f"{run['gc']['by_generation_seconds']} s)"
        )
        if run is f0:
            lines.append(
                f"      publish phase alone (publish + settle): {n / publish_phase:,.0f} msg/s "
                f"= {n / publish_phase / raw_rate:.2f} x raw"
            )
    lines.append(
        f"  {'baseline: raw paho, same ' + format(n, ',') + ' payloads':48s} {raw_s:7.3f} s "
        f"{raw_rate:8,.0f} msg/s  (runs: {', '.join(f'{x:.3f}' for x in cold['raw'])})"
    )
    lines += cpu_lines(f0["cpu"], f0["seconds"], cold.get("raw_cpu") or {}, cold["raw"][0])
    out["cpu"] = {"first": f0["cpu"], "raw": cold.get("raw_cpu")}
    for k, v in (profile or {}).items():
        lines += [
            "",
            f"cProfile of a {k} cold start ({v['seconds']:.2f} s under the profiler), top by cumulative:",
            v["text"],
        ]
    return out, lines


def rounds_line(part: dict[str, Any]) -> str:
    """The p99 of each round (ours / its baseline's) and the median of their ratios."""
    rounds = part.get("rounds", [])
    each = ", ".join(f"{r['p99_ms']:.1f}/{r['raw_p99_ms']:.2f}" for r in rounds)
    return f"      {len(rounds)} interleaved rounds, p99 ms ours/raw: {each}; median ratio " + (
        f"{part['median_round_ratio']:.2f}" if rounds else "-"
    )


def report_live(db: str, n: int, live: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    raw = live["raw"]
    client, group = live["client"], live["group"]
    storm = storm_figures(live["storm"])
    client_goal = CLIENT_P99_PG if db == "postgres" else CLIENT_P99_SQLITE
    client_ok = bool(client_goal.met(client["commit_to_puback"]["p99_ms"]))
    group_ok = bool(GROUP_P99.met(group["commit_to_last_puback"]["p99_ms"]))
    boundary_ok = all(BOUNDARY.met(e["median_round_ratio"]) for e in storm["edges"])
    pb = live["profiled_boundary"]
    latency = {
        "client": client,
        "group": group,
        "baseline": {"round_trip_one_in_flight": raw["round_trip"], "burst_group": raw["burst_group"]},
        "goals_ms": {"client_p99": client_goal.bound, "group_p99": GROUP_P99.bound},
        "meets_goals": {"client": client_ok, "group": group_ok},
        "daemon_start_seconds": r4(live["startup_seconds"]),
        "gc_tracked_objects": live["gc_tracked_objects"],
    }
    bound: dict[str, Any] = {
        "rounds": storm["rounds"],
        "seconds": r4(live["storm_seconds"]),
        "edges": [rounded(e) for e in storm["edges"]],
        "baseline": {
            "what": f"raw paho: {n} retained QoS 1 messages right before each edge, with the subscriber",
            "messages": n,
            **rounded(storm["baseline"]),
        },
        "goal": BOUNDARY.bound,
        "meets_goal": boundary_ok,
    }
    if pb is not None:
        bound["profile"] = {
            "boundary_to_last_puback": r4(pb["boundary_to_last_puback"]),
            "top": pb["profile"]["top"],
        }

    def slow(rows: list[dict[str, Any]]) -> str:
        return ", ".join(f"{x['ms']:.0f} ms (gc {x['gc_ms']:.0f}, gen2 {x['gen2_ms']:.0f})" for x in rows)

    cp, gp = client["commit_to_puback"], group["commit_to_last_puback"]
    lines = [
        "",
        f"2. change -> PUBACK, daemon running (real clock; it started in {live['startup_seconds']:.2f} s; "
        f"{live['gc_tracked_objects']:,} objects tracked by the GC in the process)",
        f"  (a) one client, {client['changes']} changes: p99 {cp['p99_ms']:.2f} ms "
        f"(goal {client_goal.text}: {verdict(client_ok)})",
        ms_line("commit -> PUBACK", cp),
        ms_line("commit -> publish", client["commit_to_publish"]),
        ms_line("commit -> logged", client["commit_to_logged"]),
        f"      slowest: {slow(client['slowest'])}",
        ms_line("baseline raw round trip", raw["round_trip"]),
        rounds_line(client),
        f"  (b) group of {group['clients']}, {group['changes']} changes: p99 {gp['p99_ms']:.2f} ms "
        f"(goal {GROUP_P99.text}: {verdict(group_ok)})",
        ms_line("commit -> last PUBACK", gp),
        ms_line("commit -> first publish", group["commit_to_first_publish"]),
        ms_line("commit -> last publish", group["commit_to_last_publish"]),
    ]
    if group["projector_step"]:
        lines += [
            ms_line("projector.step", group["projector_step"]),
            ms_line("  of it record_intents", group["record_intents"]),
        ]
    lines += [
        f"      slowest: {slow(group['slowest'])}",
        ms_line(f"baseline raw burst of {raw['burst_group']['messages']}", raw["burst_group"]),
        rounds_line(group),
    ]
    lines += storm_lines(n, storm)
    lines.append(f"  (the storm's rounds took {live['storm_seconds']:.0f} s)")
    if pb is not None:
        lines += [
            "",
            "cProfile of the daemon thread's ticks around one more boundary "
            f"(boundary -> last PUBACK {pb['boundary_to_last_puback']:.2f} s under the profiler), "
            "top by cumulative:",
            pb["profile"]["text"],
        ]
    if live["log_errors"]:
        lines.append(f"  failed publishes in the log: {live['log_errors']}")
    return latency, bound, lines


def main() -> None:
    parser = arg_parser(__doc__.split("\n\n")[0])
    parser.add_argument(
        "--at",
        default=DEFAULT_AT,
        help=f"instant of the cold start (a clock moved there; default {DEFAULT_AT}); 'now': the real clock",
    )
    parser.add_argument("--changes", type=int, default=200, help="client changes in 2a (default 200)")
    parser.add_argument("--group-changes", type=int, default=40, help="group changes in 2b (default 40)")
    parser.add_argument(
        "--rounds",
        type=int,
        default=4,
        help="2a and 2b in this many rounds, each after a round of its raw baseline (default 4)",
    )
    parser.add_argument(
        "--bursts", type=int, default=5, help="raw bursts of the group's size a round in 2b (default 5)"
    )
    parser.add_argument(
        "--group-size", type=int, default=500, help="clients of the group in 2b (default 500)"
    )
    parser.add_argument("--lead", type=float, default=5.0, help="seconds to the boundary in 3 (default 5)")
    parser.add_argument(
        "--window",
        type=int,
        default=10,
        help="least seconds between the boundaries in 3 (default 10; more if the raw burst before "
        "the off boundary needs it)",
    )
    parser.add_argument(
        "--storm-rounds",
        type=int,
        default=3,
        help="3 in this many rounds, a raw burst right before each edge (default 3)",
    )
    parser.add_argument(
        "--profile",
        choices=("auto", "always", "never"),
        default="auto",
        help="cProfile a cold start and a boundary (auto: when the goal is missed)",
    )
    parser.add_argument("--skip", choices=("cold", "live"), action="append", default=[], help="skip a part")
    parser.add_argument(
        "--session",
        choices=("process", "inline"),
        default="process",
        help="the daemon's broker session: in a process of its own, as `intent-ledger run` has it "
        "(default), or paho in the daemon's process",
    )
    args = parser.parse_args()
    args.changes += args.changes % 2  # every override set is cleared again
    args.group_changes += args.group_changes % 2
    clock_for: Callable[[], Any]
    if args.at == "now":
        clock_for = SystemClock
    else:
        at = parse_instant(args.at, "--at")
        clock_for = lambda: ShiftedClock(at)  # noqa: E731

    begun = time.monotonic()
    fleet = generate_fleet(args.clients, args.groups, args.seed)
    snapshot = validated(fleet)
    progress(args.json, f"fleet: {fleet.rows:,} snapshot rows; syncing into {args.db} (not timed) ...")
    n = fleet.clients
    result: dict[str, Any] = {"benchmark": "daemon", "db": args.db, "fleet": fleet.describe()}
    lines = [f"bench_daemon  db={args.db}  clients={n:,}  groups={fleet.groups}"]
    with ExitStack() as stack:
        template: Path | None = None
        if args.db == "sqlite":
            tdb = stack.enter_context(database("sqlite", args.pg_url, args.pg_schema, "template"))
            ledger = Ledger(tdb.url)
            started = time.perf_counter()
            receipt = ledger.sync(snapshot, prune=False, now=WEEK_START, meta=META)
            ledger.close()
            template = Path(tdb.url.removeprefix("sqlite:///"))
            progress(
                args.json, f"synced {receipt.appended:,} events in {time.perf_counter() - started:.1f} s"
            )
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="intent-ledger-broker-")))
        broker = stack.enter_context(mosquitto(folder))
        progress(args.json, f"mosquitto on 127.0.0.1:{broker.port} (log {broker.log_file})")

        if "cold" not in args.skip:
            cold = measure_cold(args, snapshot, template, broker.port, clock_for, broker.process.pid)
            for r in cold["runs"]:
                for which in ("first", "second"):
                    if r[which]["published"] != n:
                        raise SystemExit(f"the {which} cold start published {r[which]['published']}, not {n}")
            raw_rate = n / median(cold["raw"])
            missed = any(
                not goal.met(n / r[w]["seconds"] / raw_rate)
                for r in cold["runs"]
                for w, goal in (("first", COLD_FIRST), ("second", COLD_RESTART))
            )
            profile = None
            if args.profile == "always" or (args.profile == "auto" and missed):
                progress(args.json, "profiling two more cold starts (cProfile) ...")
                profile = profile_cold(args, snapshot, template, broker.port, clock_for)
            result["cold_start"], more = report_cold(args, n, cold, profile)
            lines += more

        if "live" not in args.skip:
            live = measure_live(args, snapshot, template, broker.port, args.profile)
            result["change_latency"], result["boundary"], more = report_live(args.db, n, live)
            lines += more

    result["seconds_total"] = round(time.monotonic() - begun, 1)
    result["environment"] = environment() | {"paho_mqtt": version("paho-mqtt"), **git_state()}
    env = result["environment"]
    changed = ", ".join(line[3:] for line in env.get("modified_files", [])) or "none"
    lines.append(
        f"\ntotal {result['seconds_total']:.0f} s; commit {env.get('commit')}; modified files: {changed}"
    )
    emit(result, lines, args.json)


if __name__ == "__main__":
    main()
