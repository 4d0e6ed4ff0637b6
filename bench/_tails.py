"""Where the slow samples of bench_observe's latency runs spend their time (bench-only instrumentation).

Three records, all on the system's monotonic clock (one clock for every
process on Linux), so they can be laid side by side:

- the report process's write transactions (`ObservationLog.flush`, wrapped in
  whatever process imports this module with `FLUSHES` set in its environment:
  the report process imports bench_observe as its `__mp_main__`), a line each
  in the file `FLUSHES` names;
- the daemon's SQL statements on its own engine (`Statements`), and its
  `record_intents` calls (bench_daemon's `Phases`);
- each change's publish (`Publishes`: the delivery's start and PUBACK).

`breakdown()` says, for the k slowest changes of a run, how long the daemon took
to publish, how long its recording and its statements took, and how much of the
window the report process spent in write transactions. The product is untouched.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import event

__all__ = ["FLUSHES", "Publishes", "Statements", "breakdown", "install", "read_flushes", "text"]

FLUSHES = "INTENT_LEDGER_BENCH_FLUSHES"


def install() -> None:
    """In a process with `FLUSHES` set: time every `ObservationLog.flush` into that file."""
    path = os.environ.get(FLUSHES)
    if not path:
        return
    from projections.observations import ObservationLog

    if getattr(ObservationLog.flush, "_timed", False):
        return
    original = ObservationLog.flush

    @functools.wraps(original)
    def flush(self: Any, limit: int | None = None) -> None:
        pending = self.pending()
        started = time.monotonic()
        try:
            original(self, limit)
        finally:
            ended = time.monotonic()
            with open(path, "a") as f:
                f.write(f"{os.getpid()} {started:.6f} {ended:.6f} {pending - self.pending()}\n")

    flush._timed = True  # type: ignore[attr-defined]
    ObservationLog.flush = flush  # type: ignore[method-assign]


def read_flushes(path: str) -> list[tuple[float, float, int]]:
    """(start, end, fragments written) of each recorded flush."""
    try:
        with open(path) as f:
            lines = f.read().split("\n")
    except OSError:
        return []
    out = []
    for line in lines:
        parts = line.split()
        if len(parts) == 4:
            out.append((float(parts[1]), float(parts[2]), int(parts[3])))
    return out


class Statements:
    """The daemon's statements on `engine` (start, end, first words)."""

    def __init__(self, engine: Any) -> None:
        self.calls: list[tuple[float, float, str]] = []
        self._engine = engine
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)
        # A commit: from the Connection's commit to the connection's return to the pool (the
        # transaction's session closes at once), its fsync and any checkpoint it ran included.
        event.listen(engine, "commit", self._commit)
        event.listen(engine.pool, "checkin", self._checkin)

    def _before(self, conn: Any, _cursor: Any, _sql: str, _params: Any, _context: Any, _many: bool) -> None:
        conn.info["bench_started"] = time.monotonic()

    def _after(self, conn: Any, _cursor: Any, sql: str, _params: Any, _context: Any, _many: bool) -> None:
        started = conn.info.pop("bench_started", None)
        if started is not None:
            self.calls.append((started, time.monotonic(), " ".join(sql.split()[:3])))

    def _commit(self, conn: Any) -> None:
        conn.info["bench_commit"] = time.monotonic()

    def _checkin(self, _dbapi: Any, record: Any) -> None:
        started = record.info.pop("bench_commit", None)
        if started is not None:
            self.calls.append((started, time.monotonic(), "COMMIT"))

    def close(self) -> None:
        event.remove(self._engine, "before_cursor_execute", self._before)
        event.remove(self._engine, "after_cursor_execute", self._after)
        event.remove(self._engine, "commit", self._commit)
        event.remove(self._engine.pool, "checkin", self._checkin)


class Publishes:
    """Each publish of `topic` before bench_daemon's `Running.forget` drops it: (started, acked_at)."""

    def __init__(self, run: Any, topic: str) -> None:
        self.seen: list[tuple[float, float | None]] = []
        self._run, self._topic = run, topic
        forget: Callable[[], None] = run.forget

        def keeping() -> None:
            self.take()
            forget()

        run.forget = keeping

    def take(self) -> None:
        """Keep the publishes the sink holds now (before a forget, and after the last change)."""
        for t, _payload, delivery in self._run.sink:
            if t == self._topic:
                self.seen.append((delivery.started, delivery.acked_at))


def _overlap(a: float, b: float, spans: list[tuple[float, float]]) -> float:
    return sum(max(0.0, min(b, e) - max(a, s)) for s, e, *_ in spans)


def breakdown(
    samples_ms: list[float],
    publishes: list[tuple[float, float | None]],
    records: list[Any],
    statements: list[tuple[float, float, str]],
    flushes: list[tuple[float, float, int]],
    k: int = 6,
) -> dict[str, Any]:
    """The k slowest changes, each split into where its time went (ms), and the flushes' lengths."""
    # One publish a change, in order; any kept before the first change are skipped.
    acked = [a for _s, a in publishes]
    started = [s for s, _a in publishes]
    offset = len(publishes) - len(samples_ms)
    spans = [(s, e) for s, e, _n in flushes]
    slow = []
    for i in sorted(range(len(samples_ms)), key=lambda j: samples_ms[j], reverse=True)[:k]:
        j = i + offset
        end = acked[j] if 0 <= j < len(acked) else None
        if end is None:
            continue
        begin = end - samples_ms[i] / 1000
        pub = started[j]
        recs = [r for r in records if r.end > begin and r.start < pub]
        stmts = [s for s in statements if s[1] > begin and s[0] < pub]
        longest = max(stmts, key=lambda s: s[1] - s[0], default=None)
        slow.append(
            {
                "ms": round(samples_ms[i], 1),
                "to_publish_ms": round((pub - begin) * 1000, 1),
                "record_ms": round(sum(r.seconds for r in recs) * 1000, 1),
                "statements_ms": round(sum(e - s for s, e, _ in stmts) * 1000, 1),
                "longest_statement": None
                if longest is None
                else f"{longest[2]} {round((longest[1] - longest[0]) * 1000, 1)}",
                "report_tx_overlap_ms": round(_overlap(begin, pub, spans) * 1000, 1),
            }
        )
    lengths = sorted((e - s) * 1000 for s, e, _n in flushes)
    # The daemon's writes that ran while a report transaction did: the waits for the write lock.
    waits = sorted(
        (e - s) * 1000
        for s, e, sql in statements
        if sql.split()[0] in ("INSERT", "UPDATE", "DELETE") and _overlap(s, e, spans) > 0
    )
    writes = sorted((e - s) * 1000 for s, e, sql in statements if sql.split()[0] in ("INSERT", "UPDATE"))
    commits = sorted((e - s) * 1000 for s, e, sql in statements if sql == "COMMIT")
    return {
        "slow": slow,
        "daemon_writes": {
            "n": len(writes),
            "p99_ms": round(writes[int(len(writes) * 0.99)], 1) if writes else None,
            "over_2ms": sum(1 for w in writes if w > 2),
            "over_2ms_total": round(sum(w for w in writes if w > 2), 1),
        },
        "daemon_commits": {
            "n": len(commits),
            "p99_ms": round(commits[int(len(commits) * 0.99)], 1) if commits else None,
            "max_ms": round(commits[-1], 1) if commits else None,
            "over_10ms": sum(1 for c in commits if c > 10),
        },
        "report_txs": len(flushes),
        "report_tx_ms_p50_p90_max": (
            [round(lengths[int(len(lengths) * q)], 1) for q in (0.5, 0.9)] + [round(lengths[-1], 1)]
            if lengths
            else None
        ),
        "daemon_writes_during_report_txs": {
            "n": len(waits),
            "total_ms": round(sum(waits), 1),
            "max_ms": round(waits[-1], 1) if waits else None,
        },
    }


def text(tails: dict[str, Any]) -> list[str]:
    """The breakdown as lines under a run's line."""
    d, c = tails["daemon_writes"], tails["daemon_commits"]
    lines = [
        f"      the daemon's writes: {d['n']}, p99 {d['p99_ms']} ms, {d['over_2ms']} over 2 ms"
        f" ({d['over_2ms_total']} ms); its commits: p99 {c['p99_ms']} ms, max {c['max_ms']} ms"
    ]
    if tails["report_txs"]:
        p50, p90, top = tails["report_tx_ms_p50_p90_max"]
        w = tails["daemon_writes_during_report_txs"]
        lines.append(
            f"      report write transactions: {tails['report_txs']}, p50 {p50}, p90 {p90}, max {top} ms;"
            f" the daemon's writes meanwhile: {w['n']}, {w['total_ms']} ms in all, max {w['max_ms']} ms"
        )
    for s in tails["slow"]:
        lines.append(
            f"      slow {s['ms']} ms: to publish {s['to_publish_ms']}, recording {s['record_ms']}, "
            f"statements {s['statements_ms']} (longest {s['longest_statement']}), "
            f"report tx overlap {s['report_tx_overlap_ms']}"
        )
    return lines
