"""The report writer's thread: a long burst is written in full batches as they fill, and all of it."""

from __future__ import annotations

import threading

from ledger import Ledger
from projections.observation_reads import latest_reports
from projections.observations import ObservationLog, Seen
from publisher.reportwriter import ReportWriter
from tests.publisher.broker import wait_for
from tests.publisher.helpers import make_log


def test_a_burst_that_keeps_coming_is_written_as_batches_fill(ledger: Ledger) -> None:
    """Reports keep arriving (the queue never empties between slices): the writer does not
    wait for the end of the burst to write."""
    log = ObservationLog(ledger)
    events, _capture = make_log()
    arrived, most = [0], [0]

    def ingest(_budget: float) -> bool:
        n = arrived[0]
        stamp = "2026-03-31T10:00:00Z"
        log.add(Seen(f"s{n:04d}", stamp, stamp, None, "on", None, "2026-03-31T10:00:00.000Z"))
        arrived[0] += 1
        most[0] = max(most[0], log.pending())
        return arrived[0] < 1_200

    writer = ReportWriter(log, events, batch=100, ingest=ingest)
    writer.start()
    writer.wake()
    engine = ledger.factory.datastore.engine  # type: ignore[attr-defined]
    wait_for(lambda: len(latest_reports(engine)) == 1_200, 60, "every report written")
    writer.close()
    assert most[0] < 1_200  # written while the burst went on
    assert writer.pending() == 0


def test_a_round_that_stands_still_shows_as_stalled_and_one_that_waits_does_not(ledger: Ledger) -> None:
    """What the report process's "alive" rests on: a round stuck in one call (here its
    classification; a write that never returns alike) is stalled for as long as it is stuck;
    a writer waiting for work is not stalled at all."""
    log = ObservationLog(ledger)
    events, _capture = make_log()
    stuck, release = threading.Event(), threading.Event()

    def ingest(_budget: float) -> bool:
        stuck.set()
        release.wait(30)
        return False

    writer = ReportWriter(log, events, ingest=ingest)
    writer.start()
    try:
        assert writer.stalled() == 0.0  # waiting
        writer.wake()
        assert stuck.wait(10)
        first = wait_for(lambda: writer.stalled() or None, what="a stalled round")
        wait_for(lambda: writer.stalled() > first, what="the stall growing")
        release.set()
        wait_for(lambda: writer.stalled() == 0.0, what="the round over")
    finally:
        release.set()
        writer.close()
