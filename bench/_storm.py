"""The boundary storm's figures from its interleaved rounds (bench_daemon part 3).

Not a benchmark itself. Each round of the storm measured a raw burst right
before each edge and then the daemon's edge; `storm_figures` turns the rounds
into one figure per edge: the medians of the rounds' seconds (ours and raw),
the median of the rounds' ratios (the figure the goal is checked on: each
round's ratio is measured under that round's load) and the pooled ratio (the
median of our seconds over the median of the raw ones) beside it; likewise
end to end (the last message the subscriber received). The breakdown of an
edge (wake, step, publish tail) is the one of its median round, so its parts
add up. `storm_lines` prints them.
"""

from __future__ import annotations

import statistics
from typing import Any

from bench.goals import BOUNDARY

__all__ = ["storm_figures", "storm_lines"]

EDGES = ("on", "off")


def _ratio(ours: float | None, base: float | None) -> float | None:
    return None if ours is None or not base else ours / base


def _median(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if len(known) == len(values) and known else None


def _round_row(edge: dict[str, Any], raw: dict[str, Any], window: int) -> dict[str, Any]:
    ours, e2e = edge["boundary_to_last_puback"], edge.get("boundary_to_last_received")
    return {
        "boundary_to_last_puback": ours,
        "raw_seconds": raw["seconds"],
        "ratio": ours / raw["seconds"],
        "boundary_to_last_received": e2e,
        "raw_received_seconds": raw["received_seconds"],
        "e2e_ratio": _ratio(e2e, raw["received_seconds"]),
        "raw_before_edge": raw["before_edge"],
        "raw_idle_wait": raw.get("idle_wait"),
        "window_seconds": window,
        "lead_seconds": edge["lead_seconds"],
    }


def storm_figures(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Per edge: the medians over the rounds and the median of the rounds' ratios; and the
    baseline pooled over every raw burst (both edges)."""
    edges = []
    for i, name in enumerate(EDGES):
        mine = [r["edges"][i] for r in rounds]
        rows = [_round_row(r["edges"][i], r["raw"][name], r["window_seconds"]) for r in rounds]
        ours = statistics.median(x["boundary_to_last_puback"] for x in rows)
        raw = statistics.median(x["raw_seconds"] for x in rows)
        by_time = sorted(range(len(mine)), key=lambda k: mine[k]["boundary_to_last_puback"])
        detail = {k: v for k, v in mine[by_time[len(by_time) // 2]].items() if k != "profile"}
        retried = [e["retried_after"] for e in mine if "retried_after" in e]
        median_ratio = statistics.median(x["ratio"] for x in rows)
        edges.append(
            detail
            | {
                "edge": name,
                "boundary_to_last_puback": ours,
                "raw_seconds": raw,
                "ratio": median_ratio,
                "median_round_ratio": median_ratio,
                "pooled_ratio": ours / raw,
                "boundary_to_last_received": _median([x["boundary_to_last_received"] for x in rows]),
                "raw_received_seconds": statistics.median(x["raw_received_seconds"] for x in rows),
                "e2e_median_round_ratio": _median([x["e2e_ratio"] for x in rows]),
                "rounds": rows,
            }
            | ({"retried_after": "; ".join(retried)} if retried else {})
        )
    pubacks = [r["raw"][e]["seconds"] for r in rounds for e in EDGES]
    received = [r["raw"][e]["received_seconds"] for r in rounds for e in EDGES]
    baseline = {
        "seconds": statistics.median(pubacks),
        "all": pubacks,
        "received_seconds": statistics.median(received),
        "received_all": received,
    }
    return {"rounds": len(rounds), "edges": edges, "baseline": baseline}


def storm_lines(n: int, figures: dict[str, Any]) -> list[str]:
    """The report's lines of part 3."""
    edges = figures["edges"]
    count = figures["rounds"]
    lines = [
        "",
        f"3. boundary storm: {n:,} windows start at the same instant, in {count} interleaved rounds "
        f"(each: a raw burst of {n:,}, the `on` boundary, a raw burst, the `off` boundary; one "
        "subscriber to every screen's and raw topic throughout); the median round added its events in "
        f"{edges[0]['setup_seconds']:.2f} s, {edges[0]['margin_seconds']:.2f} s ahead of the boundary",
    ]
    for e in edges:
        ok = bool(BOUNDARY.met(e["median_round_ratio"]))
        each = ", ".join(
            f"{x['boundary_to_last_puback']:.2f}/{x['raw_seconds']:.2f}"
            + ("" if x["raw_before_edge"] else " (raw after)")
            for x in e["rounds"]
        )
        lines += [
            f"  {e['edge']:3s} boundary -> last PUBACK {e['boundary_to_last_puback']:7.3f} s  "
            f"raw {e['raw_seconds']:.3f} s  median round ratio {e['median_round_ratio']:.2f}, "
            f"pooled {e['pooled_ratio']:.2f}  (goal {BOUNDARY.text}: {'met' if ok else 'NOT met'})",
            f"      rounds, s ours/raw: {each}",
        ]
        if "projector_step" in e:
            lines += [
                f"      median round: wake {e['wake_delay'] * 1000:.1f} ms; projector.step "
                f"{e['projector_step']:.3f} s (evaluate {e['evaluate']:.3f} s + record_intents "
                f"{e['record_intents']:.3f} s); the tick holding it {e['tick_with_step'] or 0:.3f} s",
                f"      step end -> last PUBACK {e['step_end_to_last_puback']:.3f} s; "
                f"first publish +{e['boundary_to_first_publish']:.3f} s, "
                f"last publish +{e['boundary_to_last_publish']:.3f} s",
            ]
        e2e = e["e2e_median_round_ratio"]
        lines += [
            f"      last received by the subscriber +{e['boundary_to_last_received'] or 0:.3f} s "
            f"(raw: {e['raw_received_seconds']:.3f} s; median round ratio "
            + ("-" if e2e is None else f"{e2e:.2f}")
            + ")",
            f"      last logged +{e['boundary_to_last_logged'] or 0:.3f} s; garbage collector "
            f"{e['gc_during']['seconds']:.3f} s ({e['gc_during']['collections']} collections of gen 0/1/2)",
        ]
        if "retried_after" in e:
            lines.append(f"      retried: {e['retried_after']}")
    return lines
