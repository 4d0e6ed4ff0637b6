"""How the daemon composes report ingestion: `observer_for(...)`, or `NoObserver` with --no-observe.

With `RunSettings.report_process` (what `intent-ledger run` sets) ingestion runs
in a child process of its own (publisher.reportproc); otherwise in-process (an
in-memory ledger, tests driving `tick(now)` on an injected clock).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from prometheus_client import CollectorRegistry

from ledger.app import Ledger
from ledger.names import group_of
from ledger.urls import is_postgres
from projections.projector import Projector
from publisher.config import BrokerConfig
from publisher.logs import EventLog
from publisher.observe import Observer
from publisher.reportchild import ChildSpec
from publisher.reportproc import ReportProcess
from publisher.settings import RunSettings

__all__ = ["NoObserver", "observer_for"]


class NoObserver:
    """What the daemon composes with `--no-observe`: no subscription, nothing to do."""

    def start(self) -> None:
        pass

    def tick(self, now: datetime) -> None:
        pass

    def next_deadline(self) -> datetime | None:
        return None

    def close(self) -> None:
        pass


def observer_for(
    ledger: Ledger,
    broker: BrokerConfig,
    settings: RunSettings,
    projector: Projector,
    registry: CollectorRegistry,
    log: EventLog,
) -> Observer | ReportProcess | NoObserver:
    """The ingestion component for a daemon (its projector answers who is registered)."""
    if not settings.observe:
        return NoObserver()

    def registered(name: str) -> bool:
        client = projector.view.clients.get(name)
        return client is not None and client.registered

    def intended() -> Iterator[tuple[str, str, datetime, int]]:
        # A screen with an intent has a log: the logs' names are copied at once (the count goes
        # on over rounds while logs are added), and the per-name work is done a chunk at a time,
        # so no round of the count holds the loop for the whole fleet.
        owns = projector.shard.owns
        for name in list(projector.view.logs):
            if group_of(name) is not None or not owns(name):
                continue
            current = projector.current(name)
            if current is None or current.removed:
                continue
            yield name, current.fields.desired_state, current.effective_at, current.fields.grace_seconds

    if settings.report_process and (ledger.url.path is not None or is_postgres(ledger.db_url)):
        spec = ChildSpec(
            ledger.db_url, dict(ledger.env), broker, settings.prefix, projector.shard, settings.report_stale
        )
        return ReportProcess(spec, registry=registry, log=log, intended=intended)
    return Observer(
        ledger,
        prefix=settings.prefix,
        registry=registry,
        log=log,
        stale=settings.report_stale,
        owns=projector.shard.owns,
        registered=registered,
        intended=intended,
        broker=broker,
        background=True,
    )
