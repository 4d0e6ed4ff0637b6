"""Simulated screens for a deployment's end-to-end check (`intent-ledger simulate`).

Each chosen client gets a screen (the same contract and report rules as
`intent-ledger screen`) whose TV obeys at once, on its own MQTT connection.
After the run, the observation tables are polled until the daemon has stored
each screen's last report, so the compliance read next covers the whole run.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from ledger.app import Ledger
from ledger.errors import ClientNotFound, InvalidInput
from ledger.persistence import engine_of
from ledger.values import floor_second, format_instant
from projections.observation_reads import latest_reports
from projections.observations import metadata
from projections.queries import client_rows
from publisher.config import BrokerConfig
from publisher.errors import PublisherError
from publisher.logs import EventLog
from publisher.screen import Screen, ScreenLoop, ScreenSettings
from publisher.tv import SimulatedTv

__all__ = ["SimulatedRun", "await_ingestion", "chosen_clients", "simulate", "simulated_client_id"]


@dataclass(frozen=True)
class SimulatedRun:
    """What a simulation covered: its clients, `[start, end)`, and whose last report is not stored."""

    clients: list[str]
    start: datetime
    end: datetime
    missing: list[str]


def simulated_client_id(client_id: str) -> str:
    """Simulated screens never take a real screen's MQTT client id (the broker would drop it)."""
    return f"intent-ledger-simulate-{os.getpid()}-{client_id}"


def chosen_clients(ledger: Ledger, clients: list[str] | None, group_id: str | None) -> list[str]:
    """The registered clients named, or the members of `group_id`, or (neither) every one."""
    registered = {r["client_id"]: r["group_id"] for r in client_rows(ledger) if r["status"] == "registered"}
    if clients is not None:
        missing = [c for c in clients if c not in registered]
        if missing:
            raise ClientNotFound(missing[0])
        return list(dict.fromkeys(clients))
    chosen = sorted(c for c, g in registered.items() if group_id is None or g == group_id)
    if not chosen:
        raise InvalidInput(f"no registered clients{f' in group {group_id!r}' if group_id else ''}")
    return chosen


def simulate(
    ledger: Ledger,
    broker: BrokerConfig,
    clients: list[str],
    duration: int,
    settings: ScreenSettings,
    on_loop: Callable[[ScreenLoop], None] = lambda _loop: None,
    warm_up: float = 30.0,
) -> SimulatedRun:
    """Run simulated screens for `duration` seconds, then wait for their reports to be stored.

    The audited range starts once every screen follows an intent (at most `warm_up`
    seconds after the start). `on_loop` receives the loop before it starts (to stop it
    from a signal handler).
    """
    with open(os.devnull, "w") as quiet:  # what the run did is the compliance read afterwards
        screens = [Screen(c, SimulatedTv(), settings) for c in clients]
        loop = ScreenLoop(screens, broker, log=EventLog(quiet))
        on_loop(loop)
        try:
            # Warm-up, outside the audited range: every screen connected and following
            # its first intent (a screen that has none yet would count as a mismatch).
            loop.serve(
                loop.now() + timedelta(seconds=warm_up), lambda: all(s.contract.decided for s in screens)
            )
            if loop.stopping:
                raise PublisherError(
                    "stopped before every simulated screen followed an intent: nothing audited"
                )
            undecided = [s for s in screens if not s.contract.decided]
            if len(undecided) == len(screens):  # some without: audited all the same, as mismatches
                raise PublisherError(_undecided(undecided, broker, warm_up))
            start = floor_second(loop.now()) + timedelta(seconds=1)
            loop.serve(start + timedelta(seconds=duration))
        finally:
            loop.close("simulation ended")
    end = floor_second(loop.now())
    return SimulatedRun(clients, start, end, await_ingestion(ledger, screens))


def _undecided(screens: list[Screen], broker: BrokerConfig, warm_up: float) -> str:
    """Why the simulation cannot start: what its screens, none of which follows an intent, lack."""
    shown = ", ".join(s.client_id for s in screens[:5])
    if all(s.session is None for s in screens):
        return (
            f"cannot reach broker {broker.redacted()}: no simulated screen connected within {warm_up:.0f} s"
        )
    return (
        f"{len(screens)} simulated screen(s) received no intent within {warm_up:.0f} s ({shown}): "
        "is `intent-ledger run` publishing to this broker, with this prefix? nothing audited"
    )


def await_ingestion(ledger: Ledger, screens: list[Screen], timeout: float = 15.0) -> list[str]:
    """Wait until the observation tables hold each screen's last report; the screens still missing."""
    engine = engine_of(ledger)
    metadata.create_all(engine, checkfirst=True)
    sent = {s.client_id: s.reporter.last for s in screens}
    last = {c: format_instant(r.reported_at) for c, r in sent.items() if r is not None}
    deadline = time.monotonic() + timeout
    while True:
        stored = latest_reports(engine)
        missing = [c for c, at in last.items() if c not in stored or stored[c]["reported_at"] < at]
        if not missing or time.monotonic() > deadline:
            return missing
        time.sleep(0.2)  # a poll with a deadline: the daemon writes reports in batches
