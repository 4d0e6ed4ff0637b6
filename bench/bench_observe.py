"""Benchmark: observed state at 10,000 screens (issue 10).

  (1) audit compliance: the generated fleet (10,000 clients) synced, the
      projector driven through one day (Wednesday of the generated week, not
      measured), and a day of observation runs for every screen as the writer
      stores them (80 % obey 1-2 s late, 5 % never switch on, 5 % silent, 5 %
      stay on, 3 % go silent at noon, 2 % cannot tell). Timed:
      `compliance_report(ledger, day, day + 1 d)` for every client (what
      `audit compliance --all` prints). Baseline in the same run: the same rows
      (the day's transitions and runs) read with plain SELECTs on the raw DB-API
      connection. Goal: under 2 s.
  (2) ingestion: 10,000 screens reporting at once (a broker restart), twice
      (new runs, then runs continued), through the `Observer` component on a
      real Mosquitto, its `tick()` called every 10 ms as the daemon's loop does,
      until every report is classified and written. Baseline in the same run: a
      raw paho subscriber (QoS 1) receiving the same 10,000 messages, right
      before each burst (each burst's ratio is over its own). The steady
      load (10,000 screens every 300 s) is 33 reports/s; the headroom is the
      measured rate over it. On PostgreSQL also the CPU its backends spent a
      burst, per 1,000 reports (from /proc: the server on this machine).
  (3) latency: bench_daemon's client changes (commit -> PUBACK; made by another
      process, bench._changer) while the screens
      report (bench._reportflow, a process of its own: all at once as the changes
      start, then each every 300 s), the daemon ingesting the reports or not
      (--no-observe: the screens report all the same), in its report process
      as `run` does. Runs alternate, --pairs of them (the kinds' order alternating
      from pair to pair), --changes each; goal: the
      p99 over all runs with ingestion pooled within WITH_SERIES of the p99
      over all runs without (the median of the pairs' ratios beside it). Each run says how many of its
      changes the burst overlapped and their p50/max, and the CPU seconds the
      rest of the system spent meanwhile: the database's backends (PostgreSQL),
      the broker, the report process (figures the machine's load hardly moves).

The machine may be shared: quote the ratios, not the seconds.

    .venv/bin/python -m bench.bench_observe [--clients N] [--db sqlite|postgres] [--repeat R]
        [--changes N] [--pairs P] [--skip compliance|ingestion|latency] [--json]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

if __package__ in (None, ""):  # run as a file: the repository root on the path, for `bench.*`
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import paho.mqtt.client as paho
import sqlalchemy
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from prometheus_client import CollectorRegistry

from bench import _common as common
from bench import _tails
from bench._broker import RawPublisher, mosquitto
from bench._changer import ChangerProcess
from bench._common import scoped
from bench._cpu import Backends, cpu_seconds
from bench.goals import COMPLIANCE_SECONDS, WITH_SERIES
from ledger import Ledger, Meta, format_instant
from ledger.app import Receipt
from ledger.domain import IntentLog
from ledger.persistence import engine_of
from projections import observations as obs
from projections.observed import compliance_report
from projections.projector import Projector
from projections.readmodel import ReadModel, transitions
from publisher.config import BrokerConfig
from publisher.logs import EventLog
from publisher.observe import Observer
from publisher.report import build_report, encode_report

_tails.install()  # in the report process (it imports this module as its __mp_main__) when asked

STEADY_RATE = 10_000 / 300
DAY = common.WEEK_START + timedelta(days=2)
ERRORS = (sqlalchemy.exc.SQLAlchemyError, OSError)


def timed(fn: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    value = fn()
    return time.perf_counter() - started, value


def drive_day(ledger: Ledger) -> int:
    """Record the day's transitions: start at 00:00, step through every boundary until 24:00."""
    real = ledger.record_intents
    held: dict[str, IntentLog] = {}

    def deferred(logs: Any, stored: Any = None) -> Receipt:  # saved every 500 steps, not once per step
        del stored  # rows built ahead: the mapper encodes them when they are saved
        held.update((log.name, log) for log in logs)
        return Receipt()

    ledger.record_intents = deferred  # type: ignore[method-assign]
    steps = 0
    try:
        projector = Projector(ledger)
        projector.start(DAY)
        while (wake := projector.next_wakeup()) is not None and wake < DAY + timedelta(days=1):
            projector.step(wake)
            steps += 1
            if steps % 500 == 0:
                real(list(held.values()))
                held.clear()
        real(list(held.values()))
    finally:
        del ledger.record_intents
    return steps


def _stamp(t: int) -> str:
    return format_instant(datetime.fromtimestamp(t, UTC))


def synthetic_runs(ledger: Ledger) -> list[dict[str, Any]]:
    """A day of observation runs per screen, following its recorded transitions as described."""
    engine = engine_of(ledger)
    c = transitions.c
    query = (
        sqlalchemy.select(c.log_name, c.effective_at, c.desired_state, c.intent_id)
        .where(c.client_id.is_not(None))
        .order_by(c.log_name, c.seq)
    )
    by_client: dict[str, list[tuple[int, str, str]]] = {}
    with engine.connect() as conn:
        for name, at, state, intent_id in conn.execute(query):
            t = int(datetime.fromisoformat(at).timestamp())
            by_client.setdefault(name, []).append((t, state, intent_id))
    start, end = int(DAY.timestamp()), int((DAY + timedelta(days=1)).timestamp())
    rows = []
    for k, (name, changes) in enumerate(sorted(by_client.items())):
        kind = k % 100

        def run(
            first: int, since: int, state: str, intent_id: str | None, last: int, name: str = name
        ) -> None:
            rows.append(
                {
                    "client_id": name,
                    "started_at": _stamp(first),
                    "since": _stamp(since),
                    "intent_id": intent_id,
                    "tv_state": state,
                    "detail": None,
                    "last_reported_at": _stamp(max(first, last)),
                    "reports": max(1, (last - first) // 300 + 1),
                    "received_at": _stamp(first)[:-1] + ".000Z",
                }
            )

        if kind < 80 or kind >= 95:  # obeys (95-97: until noon; 98-99: cannot tell)
            if kind >= 98:
                run(start, start, "unknown", None, end - 60)
                continue
            stop = start + 12 * 3600 if kind >= 95 else end
            for i, (t, state, intent_id) in enumerate(changes):
                if t >= stop:
                    break
                delay = 1 + k % 2 if state == "on" else 31  # off after the grace
                nxt = changes[i + 1][0] if i + 1 < len(changes) else end
                run(t + delay + 1, t + delay, state, intent_id, min(nxt, stop) - 5)
        elif kind < 85:  # never on
            run(start, start - 3600, "off", changes[-1][2], end - 60)
        elif kind < 90:  # silent
            continue
        else:  # stays on
            run(start, start - 3600, "on", changes[-1][2], end - 60)
    return rows


def plain_rows(db_url: str, _start: str, end: str) -> int:
    """The baseline: the day's transitions and runs with plain SELECTs on the DB-API connection."""
    engine = sqlalchemy.create_engine(db_url)
    raw = engine.raw_connection()
    mark = "?" if db_url.startswith("sqlite") else "%s"
    try:
        cursor = raw.cursor()
        cursor.execute(
            "SELECT log_name, seq, effective_at, desired_state, reason, grace_seconds FROM audit_transitions "
            f"WHERE client_id IS NOT NULL AND effective_at < {mark}",
            (end,),
        )
        found = len(cursor.fetchall())
        cursor.execute(f"SELECT * FROM audit_observations WHERE started_at < {mark}", (end,))
        return found + len(cursor.fetchall())
    finally:
        raw.close()
        engine.dispose()


def measure_compliance(url: str, clients: int, seed: int, repeat: int, as_json: bool) -> dict[str, Any]:
    ledger = Ledger(url)
    try:
        fleet = common.generate_fleet(clients, None, seed)
        ledger.sync(common.validated(fleet), prune=False, now=common.WEEK_START, meta=Meta("bench"))
        common.progress(as_json, f"compliance: driving {clients:,} clients through the day (not timed) ...")
        setup, steps = timed(lambda: drive_day(ledger))
        ReadModel(ledger).catch_up()
        rows = synthetic_runs(ledger)
        engine = engine_of(ledger)
        obs.metadata.create_all(engine)
        with engine.begin() as conn:
            conn.execute(sqlalchemy.insert(obs.observations), rows)
    finally:
        ledger.close()
    start, end = DAY, DAY + timedelta(days=1)
    ours, plain = [], []
    report: dict[str, Any] = {}
    for _ in range(repeat):
        plain.append(timed(lambda: plain_rows(url, format_instant(start), format_instant(end)))[0])
        fresh = Ledger(url)
        try:
            fresh.max_notification_id()  # open the pooled connection before timing
            seconds, report = timed(lambda lg=fresh: compliance_report(lg, start, end))
            ours.append(seconds)
        finally:
            fresh.close()
    fleet_figures = report["fleet"]
    return {
        "clients": clients,
        "setup_seconds": round(setup, 1),
        "projector_steps": steps,
        "observation_runs": len(rows),
        "compliance_seconds": round(common.median(ours), 3),
        "baseline": {
            "what": "plain SELECT of the day's transitions and runs (DB-API)",
            "seconds": round(common.median(plain), 3),
        },
        "ratio": round(common.median(ours) / common.median(plain), 2),
        "meets_goal": COMPLIANCE_SECONDS.met(common.median(ours)),
        "fleet": fleet_figures,
        "runs": [round(s, 3) for s in ours],
    }


class RawSubscriber:
    """The baseline: plain paho, MQTT 5, QoS 1, counting messages in on_message."""

    def __init__(self, port: int, topic: str) -> None:
        self.count = 0
        self.last = 0.0
        self.client = paho.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.client.subscribe(topic, qos=1)
        if not subscribed.wait(10):
            raise SystemExit("raw subscriber: no SUBACK")

    def _on_message(self, _c: Any, _u: Any, _m: Any) -> None:
        self.count += 1
        self.last = time.monotonic()

    def burst(self, publisher: RawPublisher, messages: list[tuple[str, bytes]], count: int) -> float:
        """Seconds from the first of `messages` published to the last of `count` received."""
        target = self.count + count
        started = time.monotonic()
        publisher.burst(messages)
        deadline = time.monotonic() + 120
        while self.count < target:
            if time.monotonic() > deadline:
                raise SystemExit(f"raw subscriber: {self.count - target + count}/{count} within 120 s")
            time.sleep(0.005)
        return self.last - started

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _reports(
    prefix: str, names: list[str], state: Literal["on", "off", "unknown"]
) -> list[tuple[str, bytes]]:
    now = datetime.now(UTC).replace(microsecond=0)
    return [
        (
            f"{prefix}/{name}/power/state",
            encode_report(
                build_report(client_id=name, reported_at=now, intent_id=None, tv_state=state, since=now)
            ),
        )
        for name in names
    ]


def measure_ingestion(url: str, clients: int, as_json: bool) -> dict[str, Any]:
    names = [f"c{c:06d}" for c in range(clients)]
    known = set(names)
    with (
        tempfile.TemporaryDirectory(prefix="bench-observe-") as tmp,
        mosquitto(Path(tmp) / "broker") as broker,
    ):
        publisher = RawPublisher(broker.port)
        raw = RawSubscriber(broker.port, "rawbench/+/power/state")
        raws: list[float] = []
        ledger = Ledger(url)
        registry = CollectorRegistry()
        log = EventLog(open(os.devnull, "w"))  # noqa: SIM115 (closed with the process)
        observer = Observer(
            ledger,
            prefix="infoscreen",
            registry=registry,
            log=log,
            errors=ERRORS,
            registered=known.__contains__,
            broker=BrokerConfig(port=broker.port),
            background=True,  # as the daemon composes it
        )
        observer.start()  # its own session, as in the daemon
        assert observer.link is not None
        if not observer.link.subscribed.wait(10):
            raise SystemExit("ingestion: no SUBACK")
        bursts: dict[str, dict[str, Any]] = {}
        probe = sqlalchemy.create_engine(url)  # asks who the backends are, outside their pool
        backends = Backends(probe, [os.getpid()])
        try:
            states: tuple[tuple[str, Literal["on"]], ...] = (("new_runs", "on"), ("continued_runs", "on"))
            for label, state in states:
                accepted = (
                    registry.get_sample_value("intent_ledger_reports_total", {"result": "accepted"}) or 0
                )
                messages = _reports("infoscreen", names, state)
                if label == "continued_runs":
                    time.sleep(1.1)  # a later reported_at: not a duplicate
                    messages = _reports("infoscreen", names, state)
                # Its baseline right before it: both see that moment's load.
                raws.append(raw.burst(publisher, _reports("rawbench", names, state), clients))
                common.progress(as_json, f"ingestion: {clients:,} reports at once ({label}) ...")
                backends.spent()
                started = time.monotonic()
                publisher.burst(messages)
                target = accepted + clients
                deadline = time.monotonic() + 300
                while time.monotonic() < deadline:
                    observer.tick(datetime.now(UTC))
                    done = (
                        registry.get_sample_value("intent_ledger_reports_total", {"result": "accepted"}) or 0
                    )
                    if done >= target and observer.writer.pending() == 0 and not observer.inbox():
                        break
                    time.sleep(0.01)
                else:
                    raise SystemExit(f"ingestion: not done within 300 s ({label})")
                seconds = time.monotonic() - started
                bursts[label] = {
                    "seconds": round(seconds, 3),
                    "reports_per_second": round(clients / seconds),
                    "raw_subscriber_s": round(raws[-1], 3),
                    "ratio_vs_raw_subscriber": round(seconds / raws[-1], 2),
                    "backend_cpu_ms_per_1000": _per_1000(backends.spent(), clients),
                }
        finally:
            probe.dispose()
            observer.close()
            raw.close()
            publisher.close()
            ledger.close()
    slowest = max(b["seconds"] for b in bursts.values())
    return {
        "screens": clients,
        "raw_subscriber": {
            "seconds": round(common.median(raws), 3),
            "all": [round(x, 3) for x in raws],
            "received": clients,
            "reports_per_second": round(clients / common.median(raws)),
        },
        "bursts": bursts,
        "steady_reports_per_second": round(STEADY_RATE, 1),
        "headroom_over_steady": round(clients / slowest / STEADY_RATE, 1),
    }


def _per_1000(seconds: float | None, reports: int) -> float | None:
    """CPU milliseconds per 1,000 reports (None: not measured)."""
    return None if seconds is None else round(seconds * 1000 / reports * 1000, 1)


class _Cpu:
    """CPU seconds spent over a run by the PostgreSQL backends, the broker, the report process."""

    def __init__(self, engine: Any, broker: int, child: int | None) -> None:
        self._pids = {"broker": broker, "report_process": child}
        self._backends = Backends(engine, [os.getpid(), child])  # the daemon's and the child's
        self._start = {k: cpu_seconds(p) for k, p in self._pids.items()}

    def spent(self) -> dict[str, float | None]:
        spent: dict[str, float | None] = {"db_backends": self._backends.spent()}
        for key, before in self._start.items():
            after = cpu_seconds(self._pids[key])
            spent[key] = None if before is None or after is None else round(after - before, 2)
        return spent


class ReportFlow:
    """Screens reporting as a fleet does (bench._reportflow), in a process of their own: all at
    once first (a broker restart), then each screen every 300 s, until stopped."""

    def __init__(self, port: int, names: list[str], tmp: str) -> None:
        path = Path(tmp) / "screens.txt"
        path.write_text("\n".join(names))
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench._reportflow", str(port), str(path)],
            cwd=root,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        if self.process.stdout.readline().strip() != "ready":
            raise SystemExit("report flow: did not connect")
        self.sent = 0
        self.burst: float | None = None  # seconds from start() to the burst's last PUBACK

    def start(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("go\n")
        self.process.stdin.flush()

    def stop(self) -> None:
        out, _ = self.process.communicate(timeout=60)  # closes stdin: the flow stops
        words = out.split()
        self.sent = int(words[-1]) if words and words[-1].isdigit() else 0
        self.burst = float(words[words.index("burst") + 1]) if "burst" in words else None


class Ingested:
    """When the daemon had accepted `target` reports (polled every 50 ms on a thread of its own)."""

    def __init__(self, registry: CollectorRegistry, target: int) -> None:
        self.at: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(registry, target), daemon=True)
        self._thread.start()

    def _run(self, registry: CollectorRegistry, target: int) -> None:
        # Only the counter: `get_sample_value` would collect every metric, the report age of
        # each of the 10,000 screens too, every 50 ms on the GIL the measured daemon needs (a
        # Prometheus scrape does that once every 15 s or so).
        counter = registry.restricted_registry(["intent_ledger_reports_total"])
        while not self._stop.wait(0.05):
            done = sum(
                s.value
                for m in counter.collect()
                for s in m.samples
                if s.name == "intent_ledger_reports_total" and s.labels.get("result") == "accepted"
            )
            if done >= target:
                self.at = time.monotonic()
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


def _burst_figures(burst: float | None, seconds: float, samples_ms: list[float]) -> dict[str, Any]:
    """The changes measured during the burst's first `burst` seconds (the first ones of the run)."""
    from bench.bench_daemon import summary

    changes = len(samples_ms)
    during = changes if burst is None else min(changes, round(burst / seconds * changes))
    figures: dict[str, Any] = {"burst_s": None if burst is None else round(burst, 2)}
    figures["changes_during_burst"] = during
    if during:
        figures["during_burst"] = summary([ms / 1000 for ms in samples_ms[:during]])
    return figures


def _wait_subscribed(observer: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not getattr(observer, "subscribed", True):
        if time.monotonic() > deadline:
            raise SystemExit(f"the report process did not subscribe within {timeout:g} s")
        time.sleep(0.05)


def _latency_run(
    args: Any, db: Any, broker: Any, names: list[str], label: str, tmp: str, out: dict[str, Any]
) -> dict[str, Any]:
    """One run: the daemon started and settled, then the changes while the screens report; the
    daemon ingests the reports, or (`no_observe`) does not subscribe: the screens report anyway."""
    from bench.bench_daemon import PREFIX, Running, client_changes, topic, wait_publishes
    from publisher.settings import RunSettings

    fleet = common.generate_fleet(args.clients, None, args.seed)
    observe = label == "reports_flowing"
    changer = Ledger(db.url, db.env())
    changer.sync(common.validated(fleet), prune=False, now=datetime.now(UTC), meta=Meta("bench"))
    port = broker.port
    settings = RunSettings(prefix=PREFIX, observe=observe, report_process=True, net_process=True)
    flushes = os.path.join(tmp, f"flushes-{len(out['runs'])}.txt")
    os.environ[_tails.FLUSHES] = flushes  # the report process inherits it
    run = Running(db, port, settings)
    statements = _tails.Statements(engine_of(run.ledger))
    flow = ReportFlow(port, names, tmp)
    probe = sqlalchemy.create_engine(db.url)
    run.start()
    figures: dict[str, Any] = {"kind": label}
    try:
        wait_publishes(run.sink, 0, lambda t: t.startswith(PREFIX + "/c"), args.clients, timeout=300)
        if observe:  # and the report process up and subscribed: the daemon settled
            _wait_subscribed(run.daemon.observer)
        time.sleep(1.0)
        run.forget()
        remote = ChangerProcess(db.url, db.env())  # the changes from another process, as the CLI's
        child = getattr(getattr(run.daemon.observer, "process", None), "pid", None)
        others = _Cpu(probe, broker.process.pid, child)
        started, cpu = time.monotonic(), time.process_time()
        ingested = Ingested(run.daemon.metrics.registry, args.clients) if observe else None
        publishes = _tails.Publishes(run, topic(PREFIX, names[-1]))
        flow.start()
        try:
            result = client_changes(run, remote, names[-1], args.changes)
        finally:
            remote.close()
        seconds = time.monotonic() - started
        publishes.take()
        # CPU of this process (the daemon's threads and the bench's), not of the broker or the
        # report process: what ingestion costs the interpreter the transitions run in.
        figures["process_cpu_s"] = round(time.process_time() - cpu, 2)
        # And of the rest, the report process's PostgreSQL backend among the db_backends.
        figures["other_cpu_s"] = others.spent()
        figures |= {"seconds": round(seconds, 1)} | result["commit_to_puback"]
        figures["commit_to_publish"] = result["commit_to_publish"]  # the daemon's part of it
        figures["slowest"] = result["slowest"]  # each with the collector's share
        if ingested is not None:
            ingested.stop()
            figures["burst_ingested_s"] = None if ingested.at is None else round(ingested.at - started, 2)
    finally:
        probe.dispose()
        statements.close()
        run.stop()
        flow.stop()  # after the daemon: it does not see the retained reports cleared
        if observe:
            value = run.daemon.metrics.registry.get_sample_value
            out["reports_sent"] = out.get("reports_sent", 0) + flow.sent
            accepted = value("intent_ledger_reports_total", {"result": "accepted"}) or 0
            out["reports_accepted"] = out.get("reports_accepted", 0) + accepted
        changer.close()
    # The burst: until the daemon had ingested it, or (no_observe) the broker had taken it.
    burst = figures.get("burst_ingested_s", flow.burst)
    records = run.phases.calls["record_intents"]
    figures["tails"] = _tails.breakdown(
        result["samples_ms"], publishes.seen, records, statements.calls, _tails.read_flushes(flushes)
    )
    figures |= _burst_figures(burst, seconds, result["samples_ms"])
    return figures | {"samples_ms": result["samples_ms"]}


def measure_latency(args: Any, extra: tuple[str, ...]) -> dict[str, Any]:
    """bench_daemon's client changes (commit -> PUBACK), with --no-observe and with the reports
    ingested, in interleaved pairs (the machine may be shared); the p99 of each kind over all
    its runs.

    Each run on a fresh database (the changes' override ids are taken for good), the fleet
    synced and the daemon's start burst acknowledged before measuring. In both kinds the
    screens report (from another process, as screens do): the changes start as the 10,000
    reports are published at once, so the burst overlaps the first changes; the difference
    is only whether the daemon ingests them."""
    from bench._broker import percentile
    from bench.bench_daemon import summary

    fleet = common.generate_fleet(args.clients, None, args.seed)
    names = [c.client_id for c in fleet.snapshot.clients]
    samples: dict[str, list[float]] = {"no_observe": [], "reports_flowing": []}
    out: dict[str, Any] = {"changes_per_run": args.changes, "pairs": args.pairs, "runs": []}
    # The kinds' order alternates from pair to pair: a load drifting within a pair favours neither.
    kinds = list(samples)
    runs = [kind for k in range(args.pairs) for kind in (kinds if k % 2 == 0 else kinds[::-1])]
    with (
        tempfile.TemporaryDirectory(prefix="bench-observe-") as tmp,
        mosquitto(Path(tmp) / "broker") as broker,
    ):
        for k, label in enumerate(runs):
            with common.database(args.db, args.pg_url, args.pg_schema, f"latency{k}", extra) as fresh:
                common.progress(
                    args.json, f"latency ({label}, run {k + 1}/{len(runs)}): {args.changes} changes"
                )
                figures = _latency_run(args, scoped(fresh), broker, names, label, tmp, out)
                samples[label] += [ms / 1000 for ms in figures["samples_ms"]]
                out["runs"].append(figures)
    for label, values in samples.items():
        out[label] = summary(values)
    with_reports, without = (percentile(samples[k], 99) for k in ("reports_flowing", "no_observe"))
    out["p99_ratio"] = round(with_reports / without, 2)
    # Each pair's own ratio too (its two runs one after the other): a pair spoiled by another
    # process shows as one odd ratio, and their median is beside the pooled one.
    p99 = [{r["kind"]: r["p99_ms"] for r in out["runs"][k : k + 2]} for k in range(0, len(runs) - 1, 2)]
    out["pair_ratios"] = [round(p["reports_flowing"] / p["no_observe"], 2) for p in p99]
    out["median_pair_ratio"] = round(common.median(out["pair_ratios"]), 2)
    out["meets_goal"] = WITH_SERIES.met(out["p99_ratio"])
    return out


def main() -> None:
    parser = common.arg_parser(__doc__.split("\n\n")[0])
    parser.add_argument(
        "--skip",
        choices=("compliance", "ingestion", "latency"),
        action="append",
        default=[],
        help="leave out a part (repeatable)",
    )
    parser.add_argument("--changes", type=int, default=200, help="client changes a latency run (200)")
    parser.add_argument(
        "--pairs", type=int, default=3, help="latency runs without and with reports, alternating (3)"
    )
    parser.set_defaults(repeat=3)
    args = parser.parse_args()
    result: dict[str, Any] = {"benchmark": "observe", "db": args.db, "environment": common.environment()}
    lines = [f"bench_observe  db={args.db}  clients={args.clients:,}  (shared machine: quote ratios)"]
    extra = tuple(t.name for t in obs.TABLES)
    with common.database(args.db, args.pg_url, args.pg_schema, "observe", extra) as db:
        url = scoped(db).url
        if "compliance" not in args.skip:
            c = result["compliance"] = measure_compliance(
                url, args.clients, args.seed, args.repeat, args.json
            )
            lines.append(
                f"  audit compliance --all, {c['clients']:,} screens over a day: "
                f"{c['compliance_seconds']:.3f} s (goal {COMPLIANCE_SECONDS.text}: "
                f"{'met' if c['meets_goal'] else 'MISSED'}); plain SELECTs "
                f"{c['baseline']['seconds']:.3f} s, ratio {c['ratio']}; {c['observation_runs']:,} runs, "
                f"fleet coverage {c['fleet']['coverage']}"
            )
        if "ingestion" not in args.skip:
            i = result["ingestion"] = measure_ingestion(url, args.clients, args.json)
            lines.append(
                f"  raw paho subscriber (right before each burst): "
                f"{i['raw_subscriber']['reports_per_second']:,} msg/s (median; runs "
                f"{', '.join(f'{x:.2f}' for x in i['raw_subscriber']['all'])} s)"
            )
            for label, b in i["bursts"].items():
                lines.append(
                    f"  ingestion {label}: {b['reports_per_second']:,} reports/s classified and stored "
                    f"({b['seconds']:.2f} s; {b['ratio_vs_raw_subscriber']}x the raw subscriber's time)"
                    + (
                        ""
                        if b["backend_cpu_ms_per_1000"] is None
                        else f"; PostgreSQL backends {b['backend_cpu_ms_per_1000']} ms CPU per 1,000"
                    )
                )
            steady = i["steady_reports_per_second"]
            lines.append(f"  headroom over the steady load ({steady}/s): {i['headroom_over_steady']}x")
        if "latency" not in args.skip:
            lat = result["latency"] = measure_latency(args, extra)
            for r in lat["runs"]:
                during = ""
                if "during_burst" in r:
                    b = r["during_burst"]
                    during = (
                        f"; the {b['n']} during the burst: p50 {b['p50_ms']:.2f} ms, max {b['max_ms']:.2f} ms"
                    )
                figures = f"p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms"
                other = ", ".join(f"{k} {v} s" for k, v in r["other_cpu_s"].items() if v is not None)
                lines.append(f"    run {r['kind']}: {figures}, CPU {r['process_cpu_s']} s ({other}){during}")
                lines += _tails.text(r["tails"])
            for label in ("no_observe", "reports_flowing"):
                m = lat[label]
                lines.append(
                    f"  change -> PUBACK ({label}, {m['n']} changes): p50 {m['p50_ms']:.2f} ms, "
                    f"p99 {m['p99_ms']:.2f} ms"
                )
            lines.append(
                f"  p99 with reports flowing / without, pooled: {lat['p99_ratio']} (goal {WITH_SERIES.text}: "
                f"{'met' if lat['meets_goal'] else 'MISSED'}); median of the pairs' ratios "
                f"{lat['median_pair_ratio']} ({', '.join(str(x) for x in lat['pair_ratios'])}); "
                f"reports sent {lat['reports_sent']:,}, accepted {lat['reports_accepted']:,.0f}"
            )
    common.emit(result, lines, args.json)


if __name__ == "__main__":
    main()
