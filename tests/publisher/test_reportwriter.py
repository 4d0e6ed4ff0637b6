"""The report writer's thread: a long burst is written in full batches as they fill, and all of it."""

from __future__ import annotations

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
